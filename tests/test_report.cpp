// Report layer: CSV and JSON writers, SVG builder, heatmaps (scaled and signed), clustering,
// scatter plot, PCA, and the pipeline's signed z-score and group programme figures.

#include "exsal/core/random.hpp"
#include "exsal/interpret/pca.hpp"
#include "exsal/pipeline/result_figures.hpp"
#include "exsal/pipeline/result_tables.hpp"
#include "exsal/report/cluster.hpp"
#include "exsal/report/csv_table.hpp"
#include "exsal/report/heatmap.hpp"
#include "exsal/report/json.hpp"
#include "exsal/report/scatter.hpp"
#include "exsal/report/svg.hpp"

#include <doctest/doctest.h>

#include <Eigen/SVD>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using exsal::Index;

namespace {

// A fresh, empty output folder for one test case under the build tree.
fs::path fresh_dir(const std::string& name) {
    const fs::path dir = fs::path(EXSAL_BINARY_DIR) / "test_report_out" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::set<std::string> file_names(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
    return names;
}

// RFC 4180 reader used as the oracle for the writer: records of unquoted fields.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string field;
    bool quoted = false, after_quote = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                    after_quote = true;
                }
            } else {
                field += c;
            }
        } else if (c == '"') {
            REQUIRE(field.empty());
            REQUIRE_FALSE(after_quote);
            quoted = true;
        } else if (c == ',') {
            record.push_back(field);
            field.clear();
            after_quote = false;
        } else if (c == '\n') {
            record.push_back(field);
            records.push_back(record);
            record.clear();
            field.clear();
            after_quote = false;
        } else {
            REQUIRE_FALSE(after_quote);
            field += c;
        }
    }
    REQUIRE_FALSE(quoted);
    REQUIRE(record.empty()); // the last record ends with a newline
    return records;
}

bool have_xmllint() { return std::system("xmllint --version > /dev/null 2>&1") == 0; }

// xmllint's verdict on a file: true when it parses as well-formed XML.
bool xml_well_formed(const fs::path& path) {
    const std::string command = "xmllint --noout '" + path.string() + "' 2>&1";
    return std::system(command.c_str()) == 0;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
    return n;
}

// Random impacts (sets x units) with a few constant rows and a block of strong set-unit pairs.
exsal::MatrixD random_impacts(Index sets, Index units, std::uint64_t seed) {
    exsal::Rng rng(seed);
    exsal::MatrixD m(sets, units);
    for (Index s = 0; s < sets; ++s)
        for (Index u = 0; u < units; ++u) m(s, u) = 1e-3 * rng.gamma(2.0, 1.0);
    for (Index s = 0; s < sets; s += 5) {
        const Index u = static_cast<Index>(rng.below(static_cast<std::uint64_t>(units)));
        m(s, u) += 0.02;
    }
    m.row(3).setConstant(0.004); // constant rows scale to zeros
    m.row(sets - 1).setZero();
    return m;
}

std::vector<std::string> hallmark_like_names(Index n) {
    const char* stems[] = {"HALLMARK_REACTIVE_OXIGEN_SPECIES_PATHWAY", "HALLMARK_MYOGENESIS", "HALLMARK_E2F_TARGETS",
                           "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "HALLMARK_TNFA_SIGNALING_VIA_NFKB"};
    std::vector<std::string> names;
    for (Index i = 0; i < n; ++i) names.push_back(std::string(stems[i % 5]) + "_" + std::to_string(i));
    return names;
}

std::vector<std::string> unit_names(Index n) {
    std::vector<std::string> names;
    for (Index i = 0; i < n; ++i) names.push_back("unit_" + std::string(i < 10 ? "0" : "") + std::to_string(i));
    return names;
}

} // namespace

TEST_CASE("CsvTable quotes only fields that need it and round-trips text") {
    CHECK(exsal::CsvTable::quote("plain text") == "plain text");
    CHECK(exsal::CsvTable::quote("a,b") == "\"a,b\"");
    CHECK(exsal::CsvTable::quote("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(exsal::CsvTable::quote("two\nlines") == "\"two\nlines\"");
    CHECK(exsal::CsvTable::quote("cr\r") == "\"cr\r\"");
    CHECK(exsal::CsvTable::quote("") == "");

    exsal::CsvTable table("quoting", {"name", "note", "n"});
    const std::vector<std::vector<std::string>> rows = {
        {"HALLMARK_MYOGENESIS", "a, b", "1"}, {"x\"y", "line1\nline2", "2"}, {"", "\"", "3"}, {"é ü", " spaced ", "4"}};
    for (const auto& r : rows) table.add_row({r[0], r[1], std::stoi(r[2])});
    const auto parsed = parse_csv(table.to_string());
    REQUIRE(parsed.size() == rows.size() + 1);
    CHECK(parsed[0] == std::vector<std::string>{"name", "note", "n"});
    for (std::size_t i = 0; i < rows.size(); ++i) CHECK(parsed[i + 1] == rows[i]);
    CHECK(table.to_string().find("HALLMARK_MYOGENESIS,\"a, b\",1\n") != std::string::npos);
}

TEST_CASE("CsvTable writes numbers that read back exactly") {
    exsal::Rng rng(20240601);
    std::vector<double> doubles = {0.0, -0.0, 0.1, 1.0 / 3.0, 1e-300, 5e-324, std::numeric_limits<double>::max(),
                                   std::numeric_limits<double>::lowest(), 123456789.125, -2.5e-7};
    std::vector<float> floats = {0.0f, 0.1f, 1.0f / 3.0f, 1e-40f, std::numeric_limits<float>::max(), -7.25f};
    for (int i = 0; i < 300; ++i) {
        const double magnitude = std::pow(10.0, static_cast<double>(rng.below(80)) - 40.0);
        doubles.push_back(rng.normal() * magnitude);
        floats.push_back(static_cast<float>(rng.normal() * magnitude * 1e-5));
    }
    const auto dir = fresh_dir("csv_numbers");
    exsal::CsvTable table("numbers", {"double", "float", "int"});
    const std::vector<long long> ints = {0, -1, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max()};
    for (std::size_t i = 0; i < doubles.size(); ++i)
        table.add_row({doubles[i], floats[i % floats.size()], ints[i % ints.size()]});
    table.write((dir / "numbers.csv").string());
    const auto parsed = parse_csv(read_text(dir / "numbers.csv"));
    REQUIRE(parsed.size() == doubles.size() + 1);
    for (std::size_t i = 0; i < doubles.size(); ++i) {
        const auto& f = parsed[i + 1];
        double d = 0;
        float x = 0;
        long long k = 0;
        REQUIRE(std::from_chars(f[0].data(), f[0].data() + f[0].size(), d).ptr == f[0].data() + f[0].size());
        REQUIRE(std::from_chars(f[1].data(), f[1].data() + f[1].size(), x).ptr == f[1].data() + f[1].size());
        REQUIRE(std::from_chars(f[2].data(), f[2].data() + f[2].size(), k).ptr == f[2].data() + f[2].size());
        CHECK(std::memcmp(&d, &doubles[i], sizeof d) == 0); // bit-identical, sign of zero included
        const float expected = floats[i % floats.size()];
        CHECK(std::memcmp(&x, &expected, sizeof x) == 0);
        CHECK(k == ints[i % ints.size()]);
    }
    // A float keeps its own shortest form rather than the double expansion of its value.
    CHECK(exsal::CsvField(0.1f).text() == "0.1");
    // Non-finite values as R and pandas read them.
    CHECK(exsal::CsvField(std::numeric_limits<double>::quiet_NaN()).text() == "NA");
    CHECK(exsal::CsvField(std::numeric_limits<float>::infinity()).text() == "Inf");
    CHECK(exsal::CsvField(-std::numeric_limits<double>::infinity()).text() == "-Inf");
    CHECK(exsal::CsvField(true).text() == "true");
    CHECK(exsal::CsvField(std::size_t{18446744073709551615ULL}).text() == "18446744073709551615");
    CHECK(file_names(dir) == std::set<std::string>{"numbers.csv"});
}

TEST_CASE("CsvTable rejects rows of the wrong width and bad headers, naming the table") {
    exsal::CsvTable table("unit_summary", {"a", "b"});
    table.add_row({1, 2});
    try {
        table.add_row({1, 2, 3});
        FAIL("no exception");
    } catch (const exsal::ArgumentError& e) {
        CHECK(std::string(e.what()).find("unit_summary") != std::string::npos);
        CHECK(std::string(e.what()).find("3 fields") != std::string::npos);
    }
    CHECK_THROWS_AS(table.add_row({"only one"}), exsal::ArgumentError);
    CHECK(table.n_rows() == 1);
    CHECK_THROWS_AS(exsal::CsvTable("t", {}), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::CsvTable("t", {"a", "a"}), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::CsvTable("t", {"a", ""}), exsal::ArgumentError);
    CHECK_THROWS_AS(table.write("/nonexistent-folder/x.csv"), exsal::FileError);
}

TEST_CASE("JsonValue escapes strings per RFC 8259 and writes nested documents") {
    using exsal::JsonValue;
    CHECK(JsonValue::escape("plain") == "\"plain\"");
    CHECK(JsonValue::escape("q\"b\\s/") == "\"q\\\"b\\\\s/\"");
    CHECK(JsonValue::escape("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
    CHECK(JsonValue::escape(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
    CHECK(JsonValue::escape(std::string("nul\0!", 5)) == "\"nul\\u0000!\"");
    CHECK(JsonValue::escape("\xC3\xA9") == "\"\xC3\xA9\"");            // UTF-8 passes through
    CHECK(JsonValue::escape("a\xFF" "b") == "\"a\xEF\xBF\xBD" "b\"");    // invalid byte -> U+FFFD
    CHECK(JsonValue::escape("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); // surrogate

    JsonValue run = JsonValue::object();
    run["name"] = "velten \"run\"";
    run["seed"] = std::uint64_t{42};
    run["ok"] = true;
    run["nothing"] = nullptr;
    run["loss"] = 0.25;
    run["lr"] = 1e-3f;
    run["bad"] = std::numeric_limits<double>::quiet_NaN();
    run["inf"] = -std::numeric_limits<float>::infinity();
    run["model"]["layers"] = JsonValue::array({128, 64, 128});
    run["model"]["activation"] = "softplus";
    run["empty"] = JsonValue::array();
    run["seed"] = 7; // replaces, keeps position
    run["sets"] = JsonValue::array_of(std::vector<std::string>{"A", "B"});
    CHECK(run.dump(0) ==
          "{\"name\":\"velten \\\"run\\\"\",\"seed\":7,\"ok\":true,\"nothing\":null,\"loss\":0.25,\"lr\":0.001,"
          "\"bad\":null,\"inf\":null,\"model\":{\"layers\":[128,64,128],\"activation\":\"softplus\"},\"empty\":[],"
          "\"sets\":[\"A\",\"B\"]}");
    CHECK_THROWS_AS(run["seed"]["x"], exsal::ArgumentError);
    CHECK_THROWS_AS(run["model"].push_back(1), exsal::ArgumentError);

    const auto dir = fresh_dir("json");
    exsal::write_json((dir / "run.json").string(), run);
    const std::string text = read_text(dir / "run.json");
    CHECK(text == run.dump(2) + "\n");
    CHECK(text.find("\n  \"model\": {\n    \"layers\": [\n      128,") != std::string::npos);
    CHECK(file_names(dir) == std::set<std::string>{"run.json"});
    // An independent parser, when available, agrees that the file is valid JSON.
    if (std::system("python3 -c 'import json' > /dev/null 2>&1") == 0) {
        const std::string command = "python3 -c \"import json,sys; d=json.load(open(sys.argv[1], encoding='utf-8')); "
                                    "assert d['model']['layers']==[128,64,128] and d['bad'] is None and "
                                    "d['name']=='velten \\\"run\\\"'\" '" +
                                    (dir / "run.json").string() + "'";
        CHECK(std::system(command.c_str()) == 0);
    } else {
        MESSAGE("python3 not found: JSON not checked by an independent parser");
    }
}

TEST_CASE("SvgDocument escapes text and attributes and formats numbers in fixed notation") {
    exsal::SvgDocument svg(100, 50);
    svg.set_title("A & B <figure>");
    svg.begin_group({"g&1", 1.5, 0});
    svg.rect(0.126, 1e-9, 10, 2.0 / 3.0, {"#ff0000", "\"evil\"", 1}, "tip <1>");
    svg.text(3, 4, "x < y & \"z\" 'w' \x01 \xFF", {10, "middle", -90.0, true});
    svg.circle(5, 5, 1e6, {"none"});
    svg.end_group();
    const std::string s = svg.to_string();
    CHECK(s.find("<title>A &amp; B &lt;figure&gt;</title>") != std::string::npos);
    CHECK(s.find("x=\"0.13\" y=\"0\" width=\"10\" height=\"0.67\"") != std::string::npos);
    CHECK(s.find("stroke=\"&quot;evil&quot;\"") != std::string::npos);
    CHECK(s.find(">x &lt; y &amp; &quot;z&quot; &apos;w&apos; \xEF\xBF\xBD \xEF\xBF\xBD</text>") != std::string::npos);
    CHECK(s.find("r=\"1000000\"") != std::string::npos);
    CHECK(s.find("id=\"g&amp;1\"") != std::string::npos);
    CHECK_FALSE(std::regex_search(s, std::regex("[0-9][eE][-+]?[0-9]"))); // no exponent notation

    CHECK_THROWS_AS(svg.rect(std::nan(""), 0, 1, 1, {}), exsal::ArgumentError);
    CHECK_THROWS_AS(svg.end_group(), exsal::ArgumentError);
    CHECK_THROWS_AS(svg.text(0, 0, "x", {10, "left"}), exsal::ArgumentError);
    exsal::SvgDocument open(10, 10);
    open.begin_group();
    CHECK_THROWS_AS(open.to_string(), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::SvgDocument(0, 10), exsal::ArgumentError);

    if (!have_xmllint()) {
        MESSAGE("xmllint not found (Debian libxml2-utils): SVG well-formedness not checked");
        return;
    }
    const auto dir = fresh_dir("svg_escape");
    svg.write((dir / "escape.svg").string());
    CHECK(xml_well_formed(dir / "escape.svg"));
    CHECK(file_names(dir) == std::set<std::string>{"escape.svg"});
}

TEST_CASE("heatmap selection: a unit is shown iff some min-max scaled set value exceeds the threshold") {
    const exsal::MatrixD impacts = random_impacts(50, 64, 11);
    const exsal::HeatmapOptions options; // threshold 0.7
    const auto sel = exsal::select_heatmap(impacts, options);

    // Oracle: scaling and rule written out directly.
    REQUIRE(sel.scaled.rows() == 50);
    REQUIRE(sel.scaled.cols() == 64);
    std::vector<Index> expected;
    for (Index u = 0; u < 64; ++u) {
        bool shown = false;
        for (Index s = 0; s < 50; ++s) {
            const double lo = impacts.row(s).minCoeff(), hi = impacts.row(s).maxCoeff();
            const double scaled = hi > lo ? (impacts(s, u) - lo) / (hi - lo) : 0.0;
            CHECK(sel.scaled(s, u) == doctest::Approx(scaled).epsilon(1e-12));
            shown = shown || scaled > 0.7;
        }
        if (shown) expected.push_back(u);
    }
    CHECK(sel.columns == expected);
    CHECK(sel.scaled.row(3).isZero(0.0));  // constant rows -> zeros
    CHECK(sel.scaled.row(49).isZero(0.0));
    CHECK(static_cast<Index>(expected.size()) < 64); // the random matrix leaves some units out
    CHECK(!expected.empty());
    std::vector<Index> identity(50);
    std::iota(identity.begin(), identity.end(), Index{0});
    CHECK(sel.rows == identity);

    // A tiny case by hand: unit 1 is shown only because of set 0 (0.75 > 0.7); unit 2 never.
    exsal::MatrixD small(3, 4);
    small << 0.0, 0.75, 0.5, 1.0,  //
        1.0, 0.0, 0.7, 0.2,        //
        5.0, 5.0, 5.0, 5.0;
    CHECK(exsal::select_heatmap(small).columns == std::vector<Index>{0, 1, 3});
    exsal::HeatmapOptions strict;
    strict.threshold = 0.8;
    CHECK(exsal::select_heatmap(small, strict).columns == std::vector<Index>{0, 3});

    // max_columns keeps the units with most sets above the threshold (ties: larger sum).
    exsal::HeatmapOptions capped;
    capped.max_columns = 5;
    const auto cap = exsal::select_heatmap(impacts, capped);
    REQUIRE(cap.columns.size() == 5);
    CHECK(std::is_sorted(cap.columns.begin(), cap.columns.end()));
    const auto above = [&](Index u) { return (sel.scaled.col(u).array() > 0.7).count(); };
    Index min_kept = 1000;
    for (const Index u : cap.columns) min_kept = std::min<Index>(min_kept, above(u));
    for (const Index u : expected)
        if (std::find(cap.columns.begin(), cap.columns.end(), u) == cap.columns.end()) CHECK(above(u) <= min_kept);

    // Argmax ordering: the column position of each row's maximum never decreases down the rows.
    exsal::HeatmapOptions ordered;
    ordered.order_rows_by_argmax = true;
    const auto ord = exsal::select_heatmap(impacts, ordered);
    REQUIRE(ord.rows.size() == 50);
    CHECK(std::set<Index>(ord.rows.begin(), ord.rows.end()).size() == 50);
    Index last = -1;
    bool tail = false;
    for (const Index s : ord.rows) {
        Index pos = -1;
        double best = 0.7;
        for (std::size_t k = 0; k < ord.columns.size(); ++k)
            if (ord.scaled(s, ord.columns[k]) > best) {
                best = ord.scaled(s, ord.columns[k]);
                pos = static_cast<Index>(k);
            }
        if (pos < 0) {
            tail = true; // rows without a shown value above the threshold come last
            continue;
        }
        CHECK_FALSE(tail);
        CHECK(pos >= last);
        last = pos;
    }
}

TEST_CASE("heatmap, group heatmap and scatter plot are well-formed SVG showing what was selected") {
    const Index sets = 50, units = 64;
    const exsal::MatrixD impacts = random_impacts(sets, units, 12);
    const auto names = hallmark_like_names(sets);
    const auto units_labels = unit_names(units);
    const auto dir = fresh_dir("figures");

    exsal::HeatmapOptions options;
    options.title = "Velten-like impacts (random)";
    const auto sel = exsal::write_heatmap((dir / "heatmap.svg").string(), impacts.cast<float>(), names, units_labels, options);
    const std::string heatmap = read_text(dir / "heatmap.svg");
    for (Index u = 0; u < units; ++u) {
        const bool shown = std::find(sel.columns.begin(), sel.columns.end(), u) != sel.columns.end();
        CHECK((heatmap.find(">" + units_labels[static_cast<std::size_t>(u)] + "</text>") != std::string::npos) == shown);
    }
    for (const auto& n : names) CHECK(heatmap.find(">" + n + "</text>") != std::string::npos);
    // One tooltip per cell (sets x shown units).
    CHECK(count(heatmap, "<rect") >= static_cast<std::size_t>(sets) * sel.columns.size());
    CHECK(count(heatmap, ": impact ") == static_cast<std::size_t>(sets) * sel.columns.size());

    // Group variant: one marker per shown cell whose scaled impact exceeds 0.85.
    exsal::Rng rng(99);
    exsal::MatrixD diff(sets, units);
    for (Index u = 0; u < units; ++u)
        for (Index s = 0; s < sets; ++s) diff(s, u) = 1e-3 * rng.normal();
    exsal::HeatmapOptions group_options;
    group_options.title = "HSC vs rest";
    group_options.order_rows_by_argmax = true;
    const auto gsel =
        exsal::write_group_heatmap((dir / "group_heatmap.svg").string(), impacts, diff, names, units_labels, group_options);
    std::size_t markers = 0;
    for (const Index u : gsel.columns)
        for (Index s = 0; s < sets; ++s) markers += gsel.scaled(s, u) > 0.85 ? 1 : 0;
    const std::string group_heatmap = read_text(dir / "group_heatmap.svg");
    CHECK(markers > 0);
    CHECK(count(group_heatmap, "<circle") == markers);
    CHECK(gsel.columns == sel.columns);

    // Scatter: 3000 points in 12 groups.
    const Index n = 3000;
    exsal::VectorF x(n), y(n);
    std::vector<std::string> groups;
    for (Index i = 0; i < n; ++i) {
        const int g = static_cast<int>(rng.below(12));
        x(i) = static_cast<float>(std::cos(g * 0.52) * 6 + rng.normal());
        y(i) = static_cast<float>(std::sin(g * 0.52) * 4 + rng.normal());
        groups.push_back(g == 0 ? "HSC" : g == 1 ? "MPP" : "group_" + std::to_string(g));
    }
    exsal::ScatterOptions so;
    so.title = "PCA of the input";
    so.x_label = exsal::pca_axis_label(1, 0.2346);
    so.y_label = exsal::pca_axis_label(2, 0.1);
    exsal::write_scatter((dir / "scatter.svg").string(), x, y.transpose(), groups, so);
    const std::string scatter = read_text(dir / "scatter.svg");
    CHECK(count(scatter, "<circle") == static_cast<std::size_t>(n) + 12); // points + legend keys
    CHECK(scatter.find(">PC1 (23.5 %)</text>") != std::string::npos);
    CHECK(scatter.find(">HSC (") != std::string::npos);
    // Legend in natural order: group_2 before group_10 (plain sorting would put it after).
    CHECK(scatter.find(">group_2 (") < scatter.find(">group_10 ("));
    CHECK(scatter.find(">group_10 (") < scatter.find(">group_11 ("));
    CHECK_THROWS_AS(exsal::make_scatter(x, y.head(10), groups), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_heatmap(impacts, names, unit_names(3)), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_group_heatmap(impacts, diff.leftCols(3), names, units_labels), exsal::ArgumentError);

    // Nothing above the threshold (all rows constant): an empty grid that says so.
    const auto none = exsal::write_heatmap((dir / "empty_heatmap.svg").string(), exsal::MatrixD::Ones(4, 6),
                                           hallmark_like_names(4), unit_names(6));
    CHECK(none.columns.empty());
    CHECK(read_text(dir / "empty_heatmap.svg").find("no unit above the threshold") != std::string::npos);

    // Atomic writes leave exactly the final files.
    CHECK(file_names(dir) ==
          std::set<std::string>{"heatmap.svg", "group_heatmap.svg", "scatter.svg", "empty_heatmap.svg"});

    if (!have_xmllint()) {
        MESSAGE("xmllint not found (Debian libxml2-utils): SVG well-formedness not checked");
        return;
    }
    CHECK(xml_well_formed(dir / "heatmap.svg"));
    CHECK(xml_well_formed(dir / "group_heatmap.svg"));
    CHECK(xml_well_formed(dir / "scatter.svg"));
    CHECK(xml_well_formed(dir / "empty_heatmap.svg"));
}

namespace {
// Data features x samples = A F + noise with orthonormal axes A (features x 3) and independent
// factors F (3 x samples) of standard deviations 10, 5, 2.
struct Planted {
    exsal::MatrixF data;
    exsal::MatrixD axes;    // features x 3
    exsal::MatrixD factors; // 3 x samples
};

Planted planted_data(Index features, Index samples, std::uint64_t seed) {
    exsal::Rng rng(seed);
    exsal::MatrixD g(features, 3);
    for (Index j = 0; j < 3; ++j)
        for (Index i = 0; i < features; ++i) g(i, j) = rng.normal();
    const Eigen::HouseholderQR<exsal::MatrixD> qr(g);
    Planted p;
    p.axes = qr.householderQ() * exsal::MatrixD::Identity(features, 3);
    p.factors.resize(3, samples);
    const double sd[3] = {10.0, 5.0, 2.0};
    for (Index c = 0; c < samples; ++c)
        for (Index j = 0; j < 3; ++j) p.factors(j, c) = sd[j] * rng.normal();
    exsal::MatrixD x = p.axes * p.factors;
    for (Index c = 0; c < samples; ++c)
        for (Index i = 0; i < features; ++i) x(i, c) += 0.05 * rng.normal() + 3.0; // offset tests centring
    p.data = x.cast<float>();
    return p;
}

double abs_correlation(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
    const Eigen::VectorXd ca = a.array() - a.mean(), cb = b.array() - b.mean();
    return std::abs(ca.dot(cb)) / (ca.norm() * cb.norm());
}
} // namespace

TEST_CASE("pca agrees with an SVD oracle and recovers planted axes (both Gram branches, dense and iterative)") {
    // Gram matrices 20 and 40 (dense solver), 264 and 260 (> 256: subspace iteration).
    for (const auto& shape : {std::pair<Index, Index>{20, 300}, std::pair<Index, Index>{300, 40},
                              std::pair<Index, Index>{264, 300}, std::pair<Index, Index>{400, 260}}) {
        const Index features = shape.first, samples = shape.second;
        CAPTURE(features);
        CAPTURE(samples);
        const Planted p = planted_data(features, samples, 5 + static_cast<std::uint64_t>(features));
        const int k = 4;
        const exsal::PcaResult r = exsal::pca(p.data, k);
        REQUIRE(r.scores.rows() == k);
        REQUIRE(r.scores.cols() == samples);
        REQUIRE(r.loadings.rows() == features);
        REQUIRE(r.explained_variance_ratio.size() == k);

        // Oracle: SVD of the centred data in double.
        const exsal::MatrixD x = p.data.cast<double>();
        const exsal::MatrixD xc = x.colwise() - x.rowwise().mean();
        const Eigen::BDCSVD<exsal::MatrixD> svd(xc, Eigen::ComputeThinU);
        const Eigen::VectorXd s2 = svd.singularValues().array().square();
        for (int j = 0; j < k; ++j) {
            CHECK(r.explained_variance_ratio(j) == doctest::Approx(s2(j) / s2.sum()).epsilon(1e-5));
            // Same axis up to sign.
            CHECK(std::abs(r.loadings.col(j).cast<double>().dot(svd.matrixU().col(j))) == doctest::Approx(1.0).epsilon(1e-5));
        }
        // Planted structure: factor variances 100 : 25 : 4 against noise variance 0.05^2 per feature.
        const double signal = 129.0, noise = 0.0025 * static_cast<double>(features);
        CHECK(r.explained_variance_ratio.head(3).sum() == doctest::Approx(signal / (signal + noise)).epsilon(0.01));
        CHECK(r.explained_variance_ratio(0) > r.explained_variance_ratio(1));
        CHECK(r.explained_variance_ratio(1) > r.explained_variance_ratio(2));
        for (int j = 0; j < 3; ++j)
            CHECK(abs_correlation(r.scores.row(j).transpose().cast<double>(), p.factors.row(j).transpose()) > 0.99);
        // Scores: rows orthogonal, squared norms = s_j^2; scores = V^T (X - mean).
        const exsal::MatrixD sd = r.scores.cast<double>();
        const exsal::MatrixD gram = sd * sd.transpose();
        for (int a = 0; a < k; ++a) {
            CHECK(gram(a, a) == doctest::Approx(s2(a)).epsilon(1e-4));
            for (int b = 0; b < a; ++b) CHECK(std::abs(gram(a, b)) < 1e-4 * std::sqrt(gram(a, a) * gram(b, b)));
        }
        const exsal::MatrixD v = r.loadings.cast<double>();
        CHECK((v.transpose() * v - exsal::MatrixD::Identity(k, k)).cwiseAbs().maxCoeff() < 1e-5);
        CHECK((v.transpose() * xc - sd).cwiseAbs().maxCoeff() < 1e-4 * sd.cwiseAbs().maxCoeff());
        CHECK((r.mean.cast<double>() - x.rowwise().mean()).cwiseAbs().maxCoeff() < 1e-4);
        // Sign convention: the largest-|loading| entry of each component is positive.
        for (int j = 0; j < k; ++j) {
            Index arg = 0;
            r.loadings.col(j).cwiseAbs().maxCoeff(&arg);
            CHECK(r.loadings(arg, j) > 0.0f);
        }
        // Flipping the data's sign flips nothing in the convention: same loadings, negated scores.
        const exsal::PcaResult neg = exsal::pca(-p.data, k);
        CHECK((neg.loadings - r.loadings).cwiseAbs().maxCoeff() < 1e-4f);
        CHECK((neg.scores + r.scores).cwiseAbs().maxCoeff() < 1e-3f * r.scores.cwiseAbs().maxCoeff());
    }
}

TEST_CASE("pca agrees with the SVD oracle on a flat spectrum (pure noise, iterative path gives up)") {
    exsal::Rng rng(77);
    exsal::MatrixF noise(300, 270);
    for (Index c = 0; c < noise.cols(); ++c)
        for (Index i = 0; i < noise.rows(); ++i) noise(i, c) = static_cast<float>(rng.normal());
    const exsal::PcaResult r = exsal::pca(noise, 3);
    const exsal::MatrixD x = noise.cast<double>();
    const exsal::MatrixD xc = x.colwise() - x.rowwise().mean();
    const Eigen::BDCSVD<exsal::MatrixD> svd(xc, Eigen::ComputeThinU);
    const Eigen::VectorXd s2 = svd.singularValues().array().square();
    for (int j = 0; j < 3; ++j) {
        CHECK(r.explained_variance_ratio(j) == doctest::Approx(s2(j) / s2.sum()).epsilon(1e-5));
        CHECK(std::abs(r.loadings.col(j).cast<double>().dot(svd.matrixU().col(j))) == doctest::Approx(1.0).epsilon(1e-4));
    }
}

TEST_CASE("pca handles degenerate input and rejects bad arguments") {
    exsal::MatrixF constant = exsal::MatrixF::Constant(5, 8, 2.5f);
    const auto r = exsal::pca(constant, 2);
    CHECK(r.scores.isZero(0.0f));
    CHECK(r.explained_variance_ratio.isZero(0.0f));
    // Rank one: the second component is negligible and zeroed.
    exsal::MatrixF rank1(4, 6);
    for (Index c = 0; c < 6; ++c)
        for (Index i = 0; i < 4; ++i) rank1(i, c) = static_cast<float>((i + 1) * (c - 2));
    const auto r1 = exsal::pca(rank1, 2);
    CHECK(r1.explained_variance_ratio(0) == doctest::Approx(1.0));
    CHECK(r1.explained_variance_ratio(1) == 0.0f);
    CHECK(r1.scores.row(1).isZero(0.0f));
    CHECK_THROWS_AS(exsal::pca(constant, 0), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::pca(constant, 6), exsal::ArgumentError);
    constant(1, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(exsal::pca(constant, 1), exsal::ArgumentError);
}

namespace {
// Items (rows) x features: row i follows profile i % blocks (random, one per block) times a
// positive scale plus an offset and noise, so rows of one block are strongly correlated.
exsal::MatrixD block_rows(Index rows, Index cols, Index blocks, std::uint64_t seed) {
    exsal::Rng rng(seed);
    exsal::MatrixD profiles(blocks, cols);
    for (Index b = 0; b < blocks; ++b)
        for (Index j = 0; j < cols; ++j) profiles(b, j) = rng.normal();
    exsal::MatrixD m(rows, cols);
    for (Index i = 0; i < rows; ++i) {
        const double scale = 0.5 + rng.uniform(), offset = rng.normal();
        for (Index j = 0; j < cols; ++j) m(i, j) = scale * profiles(i % blocks, j) + offset + 0.25 * rng.normal();
    }
    return m;
}

bool is_permutation_of_iota(const std::vector<Index>& order, Index n) {
    std::vector<Index> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<Index> identity(static_cast<std::size_t>(n));
    std::iota(identity.begin(), identity.end(), Index{0});
    return sorted == identity;
}

// True when the items i with i % blocks == b are contiguous in `order`, for every block b.
bool blocks_contiguous(const std::vector<Index>& order, Index blocks) {
    for (Index b = 0; b < blocks; ++b) {
        std::size_t first = order.size(), last = 0, members = 0;
        for (std::size_t p = 0; p < order.size(); ++p)
            if (order[p] % blocks == b) {
                first = std::min(first, p);
                last = p;
                ++members;
            }
        if (members > 0 && last - first + 1 != members) return false;
    }
    return true;
}

// The part of an SVG text from `<g id="<id>"` to the group's closing tag (nested groups included).
std::string svg_group(const std::string& svg, const std::string& id) {
    const std::size_t start = svg.find("<g id=\"" + id + "\"");
    if (start == std::string::npos) return "";
    int depth = 0;
    for (std::size_t pos = start; pos < svg.size(); ++pos) {
        if (svg.compare(pos, 3, "<g ") == 0 || svg.compare(pos, 3, "<g>") == 0) ++depth;
        if (svg.compare(pos, 4, "</g>") == 0 && --depth == 0) return svg.substr(start, pos - start);
    }
    return svg.substr(start);
}

// `<rect ... fill="<colour>"><title><tooltip></title>` is in the SVG text.
bool has_cell(const std::string& svg, const std::string& colour, const std::string& tooltip) {
    return svg.find("fill=\"" + colour + "\"><title>" + exsal::detail::xml_escape(tooltip) + "</title>") !=
           std::string::npos;
}
} // namespace

TEST_CASE("correlation_distances: 1 - Pearson over shared finite values, 1 when undefined") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    exsal::MatrixD m(7, 5);
    m << 1, 2, 3, 4, 5,          //
        2, 4, 6, 8, 10,          // r = 1 with row 0
        5, 4, 3, 2, 1,           // r = -1
        7, 7, 7, 7, 7,           // constant
        1, nan, 3, nan, 4,       // shared with row 0: columns 0, 2, 4
        nan, nan, nan, nan, 2,   // one finite value
        3, 1, 4, 1, 5;
    const exsal::MatrixD d = exsal::correlation_distances(m);
    REQUIRE(d.rows() == 7);
    REQUIRE(d.cols() == 7);
    CHECK(d.diagonal().isZero(0.0));
    CHECK((d - d.transpose()).isZero(0.0));
    CHECK(d(0, 1) == doctest::Approx(0.0).scale(1.0));
    CHECK(d(0, 2) == doctest::Approx(2.0));
    CHECK(d(0, 3) == 1.0); // zero variance
    CHECK(d(3, 6) == 1.0);
    CHECK(d(5, 0) == 1.0); // fewer than 2 shared values
    CHECK(d(5, 4) == 1.0);
    // Row 4 against row 0 over columns 0, 2, 4: (1, 3, 4) and (1, 3, 5).
    const double ax[3] = {1, 3, 4}, bx[3] = {1, 3, 5};
    const double ma = 8.0 / 3.0, mb = 3.0;
    double sab = 0, saa = 0, sbb = 0;
    for (int k = 0; k < 3; ++k) {
        sab += (ax[k] - ma) * (bx[k] - mb);
        saa += (ax[k] - ma) * (ax[k] - ma);
        sbb += (bx[k] - mb) * (bx[k] - mb);
    }
    CHECK(d(4, 0) == doctest::Approx(1.0 - sab / std::sqrt(saa * sbb)).epsilon(1e-12));
    // Row 6 against row 0: Pearson of (3, 1, 4, 1, 5) and 1..5.
    const Eigen::VectorXd a = m.row(6).transpose(), b = m.row(0).transpose();
    const Eigen::VectorXd ca = a.array() - a.mean(), cb = b.array() - b.mean();
    CHECK(d(6, 0) == doctest::Approx(1.0 - ca.dot(cb) / (ca.norm() * cb.norm())).epsilon(1e-12));
    CHECK((d.array() >= 0.0).all());
    CHECK((d.array() <= 2.0).all());
}

TEST_CASE("cluster_order puts blocks of correlated rows together, is a permutation and tolerates NaN") {
    for (const Index blocks : {Index{2}, Index{3}}) {
        CAPTURE(blocks);
        exsal::MatrixD m = block_rows(30, 40, blocks, 7 + static_cast<std::uint64_t>(blocks)); // blocks interleaved
        const auto order = exsal::cluster_order(m);
        REQUIRE(order.size() == 30);
        CHECK(is_permutation_of_iota(order, 30));
        CHECK(blocks_contiguous(order, blocks));
        CHECK(order.front() < order.back()); // normalised direction
        CHECK(exsal::cluster_order(m) == order); // deterministic

        // 15 % of the entries NaN, one row almost all NaN (it may go anywhere).
        exsal::Rng rng(3);
        for (Index i = 0; i < m.rows(); ++i)
            for (Index j = 0; j < m.cols(); ++j)
                if (rng.uniform() < 0.15) m(i, j) = std::numeric_limits<double>::quiet_NaN();
        const auto with_nan = exsal::cluster_order(m);
        CHECK(is_permutation_of_iota(with_nan, 30));
        CHECK(blocks_contiguous(with_nan, blocks));
        m.row(5).setConstant(std::numeric_limits<double>::quiet_NaN());
        m(5, 0) = 1.0;
        CHECK(is_permutation_of_iota(exsal::cluster_order(m), 30));
    }
    // Columns: the transpose.
    const exsal::MatrixD cols = block_rows(24, 30, 2, 5).transpose();
    CHECK(blocks_contiguous(exsal::cluster_order(cols.transpose()), 2));

    // Small and degenerate cases; ties (all distances 1) keep the input order.
    CHECK(exsal::cluster_order(exsal::MatrixD(0, 4)).empty());
    CHECK(exsal::cluster_order(exsal::MatrixD::Ones(1, 4)) == std::vector<Index>{0});
    CHECK(exsal::cluster_order(exsal::MatrixD::Ones(2, 3)) == std::vector<Index>{0, 1});
    CHECK(exsal::cluster_order(exsal::MatrixD::Ones(5, 3)) == std::vector<Index>{0, 1, 2, 3, 4});
    CHECK(exsal::cluster_order(exsal::MatrixD(4, 0)) == std::vector<Index>{0, 1, 2, 3});
    // Two anti-correlated pairs: {0, 2} and {1, 3} each merge first.
    exsal::MatrixD pairs(4, 4);
    pairs << 1, 2, 3, 4,  //
        4, 1, 3, 2,       //
        1, 2, 3, 5,       //
        4, 1, 3, 1;
    const auto p = exsal::cluster_order(pairs);
    CHECK(blocks_contiguous(p, 2));
}

TEST_CASE("signed heatmap: diverging colours clipped at max_abs, marks, bold rows, order and legend") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(exsal::signed_scale_limit(exsal::MatrixD::Constant(3, 3, 0.5)) == 2.0); // floor
    exsal::MatrixD hundred(10, 10);
    for (Index i = 0; i < 100; ++i) hundred(i % 10, i / 10) = (i % 2 ? -1.0 : 1.0) * static_cast<double>(i + 1);
    hundred(0, 0) = nan;                                          // |values| 2 .. 100 (99 values)
    CHECK(exsal::signed_scale_limit(hundred) == doctest::Approx(2.0 + 0.98 * 98.0)); // position 96.04 of 0 .. 98
    CHECK(exsal::signed_scale_limit(exsal::MatrixD::Constant(2, 2, nan)) == 2.0);

    exsal::MatrixD q(1, 5);
    q << 0.2, 0.05, 0.01, nan, 0.001;
    CHECK(exsal::mark_levels(q, {0.05, 0.01}) == (exsal::MarkLevels(1, 5) << 0, 1, 2, 0, 2).finished());
    CHECK_THROWS_AS(exsal::mark_levels(q, {nan}), exsal::ArgumentError);

    // Known cells, input order.
    exsal::MatrixD v(3, 3);
    v << 2.0, -2.0, 0.0,  //
        1.0, nan, 5.0,    //
        -0.5, 0.25, -7.0;
    const std::vector<std::string> rows = {"SET_A", "SET_B", "SET_<C>"}, cols = {"u0", "u1", "u2"};
    exsal::MarkLevels marks = exsal::MarkLevels::Zero(3, 3);
    marks(0, 0) = 1;
    marks(1, 2) = 2;
    exsal::SignedHeatmapOptions o;
    o.max_abs = 2.0;
    o.cluster_rows = o.cluster_columns = false;
    o.title = "Known cells";
    o.subtitle = "red: up; blue: down";
    o.mark_labels = {"q <= 0.05", "q <= 0.01"};
    o.highlight_label = "bold: planted";
    const auto h = exsal::make_signed_heatmap(v, rows, cols, {false, true, false}, marks, o);
    CHECK(h.selection.rows == std::vector<Index>{0, 1, 2});
    CHECK(h.selection.columns == std::vector<Index>{0, 1, 2});
    CHECK(h.selection.max_abs == 2.0);
    const std::string s = h.svg.to_string();
    CHECK(has_cell(s, "#b2182b", "SET_A / u0: 2, q <= 0.05"));
    CHECK(has_cell(s, "#2166ac", "SET_A / u1: \xE2\x88\x92" "2"));
    CHECK(has_cell(s, "#f7f7f7", "SET_A / u2: 0"));
    CHECK(has_cell(s, exsal::blue_white_red(0.5).hex(), "SET_B / u0: 1"));
    CHECK(has_cell(s, "#d9d9d9", "SET_B / u1: no value"));
    CHECK(has_cell(s, "#b2182b", "SET_B / u2: 5, q <= 0.01")); // clipped
    CHECK(has_cell(s, exsal::blue_white_red(-0.25).hex(), "SET_<C> / u0: \xE2\x88\x92" "0.5"));
    CHECK(has_cell(s, "#2166ac", "SET_<C> / u2: \xE2\x88\x92" "7"));
    CHECK(count(svg_group(s, "cells"), "<rect") == 9);
    // Marks: one small and one larger dot; the legend shows both levels.
    const std::string dots = svg_group(s, "marks");
    CHECK(count(dots, "<circle") == 2);
    CHECK(count(dots, "r=\"2.1\"") == 1);  // 0.15 x 14
    CHECK(count(dots, "r=\"3.64\"") == 1); // 0.26 x 14
    const std::string legend = svg_group(s, "legend");
    CHECK(count(legend, "<circle") == 2);
    CHECK(legend.find(">q &lt;= 0.01</text>") != std::string::npos);
    CHECK(legend.find(">signed z-score</text>") != std::string::npos);
    CHECK(legend.find(">clipped at \xC2\xB1" "2</text>") != std::string::npos);
    CHECK(legend.find(">no value</text>") != std::string::npos);
    CHECK(legend.find(">bold: planted</text>") != std::string::npos);
    // Bold only for the highlighted row.
    CHECK(s.find("font-weight=\"bold\">SET_B</text>") != std::string::npos);
    CHECK(s.find("font-weight=\"bold\">SET_A</text>") == std::string::npos);
    CHECK(s.find(">SET_A</text>") != std::string::npos);
    CHECK(s.find(">SET_&lt;C&gt;</text>") != std::string::npos);
    CHECK(s.find(">Known cells</text>") != std::string::npos);
    CHECK(s.find(">red: up; blue: down</text>") != std::string::npos);

    // Without marks, NaN or clipping the legend leaves those lines out; the default scale is used.
    exsal::SignedHeatmapOptions plain;
    plain.mark_labels.clear();
    const auto p = exsal::make_signed_heatmap(exsal::MatrixD::Constant(2, 2, 1.0), {"a", "b"}, {"x", "y"}, {}, {}, plain);
    CHECK(p.selection.max_abs == 2.0);
    const std::string ps = p.svg.to_string();
    CHECK(ps.find("<circle") == std::string::npos);
    CHECK(ps.find(">no value</text>") == std::string::npos);
    CHECK(ps.find("clipped at") == std::string::npos);

    // Clustering: rows and columns in cluster_order.
    const exsal::MatrixD big = block_rows(60, 60, 3, 21);
    const auto c = exsal::make_signed_heatmap(big, hallmark_like_names(60), unit_names(60));
    CHECK(c.selection.rows == exsal::cluster_order(big));
    CHECK(c.selection.columns == exsal::cluster_order(big.transpose()));
    CHECK(blocks_contiguous(c.selection.rows, 3));
    CHECK(c.selection.max_abs == doctest::Approx(exsal::signed_scale_limit(big)));

    // Caller mistakes.
    CHECK_THROWS_AS(exsal::make_signed_heatmap(v, {"a"}, cols), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_signed_heatmap(v, rows, {"a"}), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_signed_heatmap(v, rows, cols, {true}), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_signed_heatmap(v, rows, cols, {}, exsal::MarkLevels::Zero(2, 3)), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::make_signed_heatmap(v, rows, cols, {}, exsal::MarkLevels::Constant(3, 3, 4)),
                    exsal::ArgumentError);
    exsal::SignedHeatmapOptions bad;
    bad.max_abs = -1.0;
    try {
        exsal::make_signed_heatmap(v, rows, cols, {}, {}, bad);
        FAIL("no exception");
    } catch (const exsal::ArgumentError& e) {
        CHECK(e.where() == "make_signed_heatmap");
    }

    // Files: empty (no rows, no columns) and full, well-formed.
    const auto dir = fresh_dir("signed_heatmap");
    exsal::SignedHeatmapOptions eo;
    eo.empty_message = "nothing here";
    const auto e0 = exsal::write_signed_heatmap((dir / "no_rows.svg").string(), exsal::MatrixD(0, 3), {}, cols, {}, {}, eo);
    CHECK(e0.rows.empty());
    CHECK(e0.columns.empty());
    exsal::write_signed_heatmap((dir / "no_columns.svg").string(), exsal::MatrixD(3, 0), rows, {}, {}, {}, eo);
    exsal::write_signed_heatmap((dir / "known.svg").string(), v, rows, cols, {false, true, false}, marks, o);
    for (const char* f : {"no_rows.svg", "no_columns.svg"}) {
        const std::string t = read_text(dir / f);
        CHECK(t.find(">nothing here</text>") != std::string::npos);
        CHECK(t.find("<g id=\"cells\"") == std::string::npos);
    }
    CHECK(file_names(dir) == std::set<std::string>{"no_rows.svg", "no_columns.svg", "known.svg"});
    if (!have_xmllint()) {
        MESSAGE("xmllint not found (Debian libxml2-utils): SVG well-formedness not checked");
        return;
    }
    for (const char* f : {"no_rows.svg", "no_columns.svg", "known.svg"}) CHECK(xml_well_formed(dir / f));
}

TEST_CASE("write_signed_z_heatmap: z times direction over active units, dots at q <= 0.05, bold planted or significant") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Index sets = 6, units = 5;
    exsal::Interpretation in;
    in.set_names = {"SET_0", "SET_1", "SET_2", "SET_3", "SET_4", "SET_5"};
    in.set_descriptions = {"", "planted", "", "", "", ""};
    exsal::Rng rng(8);
    in.z_score.resize(sets, units);
    in.set_direction.resize(sets, units);
    for (Index u = 0; u < units; ++u)
        for (Index s = 0; s < sets; ++s) {
            in.z_score(s, u) = 1.5 * rng.normal();
            in.set_direction(s, u) = rng.uniform() < 0.5 ? -1.0 : 1.0;
        }
    in.z_score(2, 3) = nan;
    in.q_value = exsal::MatrixD::Constant(sets, units, 0.5);
    in.q_value(0, 0) = 0.01;  // active unit: dot, bold
    in.q_value(3, 1) = 0.001; // inactive unit: neither
    in.q_value(5, 2) = 0.05;  // active: dot, bold
    in.q_value(4, 3) = nan;
    in.q_value(1, 4) = 0.02;  // inactive unit; SET_1 is bold as planted
    const std::vector<bool> active = {true, false, true, true, false};
    const std::vector<Index> rows = {0, 1, 3, 5, 2};
    const auto dir = fresh_dir("signed_z_heatmap");

    const exsal::HeatmapSelection sel = exsal::write_signed_z_heatmap((dir / "signed_z.svg").string(), in, active, rows);
    CHECK(is_permutation_of_iota(sel.rows, 5));            // positions in `rows`
    CHECK(sel.columns == std::vector<Index>{0, 2, 3});      // active units
    REQUIRE(sel.scaled.rows() == 5);
    REQUIRE(sel.scaled.cols() == units);
    // The drawing order of the rows is the cluster order of the drawn values.
    exsal::MatrixD drawn(5, 3);
    for (Index i = 0; i < 5; ++i)
        for (Index k = 0; k < 3; ++k) {
            const Index set = rows[static_cast<std::size_t>(i)], u = sel.columns[static_cast<std::size_t>(k)];
            drawn(i, k) = in.z_score(set, u) * in.set_direction(set, u);
        }
    CHECK(sel.rows == exsal::cluster_order(drawn));
    const double max_abs = exsal::signed_scale_limit(drawn);
    for (Index i = 0; i < 5; ++i)
        for (Index u = 0; u < units; ++u) {
            const auto k = std::find(sel.columns.begin(), sel.columns.end(), u) - sel.columns.begin();
            if (k == 3 || std::isnan(drawn(i, k))) CHECK(std::isnan(sel.scaled(i, u)));
            else CHECK(sel.scaled(i, u) == doctest::Approx(std::clamp(drawn(i, k) / max_abs, -1.0, 1.0)));
        }
    const std::string s = read_text(dir / "signed_z.svg");
    for (const char* u : {">unit_0</text>", ">unit_2</text>", ">unit_3</text>"}) CHECK(s.find(u) != std::string::npos);
    for (const char* u : {">unit_1</text>", ">unit_4</text>"}) CHECK(s.find(u) == std::string::npos);
    CHECK(s.find(">SET_4</text>") == std::string::npos);
    CHECK(count(svg_group(s, "cells"), "<rect") == 15);
    // Every shown cell: colour of z x direction on the figure's scale.
    for (const Index set : rows)
        for (const Index u : {Index{0}, Index{2}, Index{3}}) {
            const double v = in.z_score(set, u) * in.set_direction(set, u);
            const std::string colour =
                std::isnan(v) ? "#d9d9d9" : exsal::blue_white_red(std::clamp(v / max_abs, -1.0, 1.0)).hex();
            std::string tip = in.set_names[static_cast<std::size_t>(set)] + " / unit_" + std::to_string(u) + ": " +
                              (std::isnan(v) ? "no value" : exsal::detail::with_minus_sign(exsal::detail::format_significant(v, 3)));
            if (in.q_value(set, u) <= 0.05) tip += ", q \xE2\x89\xA4 0.05";
            CAPTURE(tip);
            CHECK(has_cell(s, colour, tip));
        }
    CHECK(count(svg_group(s, "marks"), "<circle") == 2);
    CHECK(s.find("font-weight=\"bold\">SET_0</text>") != std::string::npos);
    CHECK(s.find("font-weight=\"bold\">SET_1</text>") != std::string::npos); // planted
    CHECK(s.find("font-weight=\"bold\">SET_5</text>") != std::string::npos);
    CHECK(s.find("font-weight=\"bold\">SET_3</text>") == std::string::npos); // only an inactive unit
    CHECK(s.find(">SET_3</text>") != std::string::npos);
    CHECK(s.find("signed z-score (dot: q \xE2\x89\xA4 0.05)</text>") != std::string::npos);
    CHECK(s.find(">red: the unit rises with the set&apos;s genes; blue: it falls</text>") != std::string::npos);
    CHECK(s.find(">bold: planted set, or q \xE2\x89\xA4 0.05 in some active unit</text>") != std::string::npos);

    // No active unit, no rows: a figure that says so.
    const auto none = exsal::write_signed_z_heatmap((dir / "no_units.svg").string(), in, std::vector<bool>(5, false), rows);
    CHECK(none.columns.empty());
    CHECK(read_text(dir / "no_units.svg").find(">no active unit</text>") != std::string::npos);
    exsal::write_signed_z_heatmap((dir / "no_sets.svg").string(), in, active, {});
    CHECK(read_text(dir / "no_sets.svg").find(">no gene set</text>") != std::string::npos);

    // Caller mistakes.
    CHECK_THROWS_AS(exsal::write_signed_z_heatmap((dir / "x.svg").string(), in, {true, true}, rows), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::write_signed_z_heatmap((dir / "x.svg").string(), in, active, {0, 6}), exsal::ArgumentError);
    exsal::Interpretation old = in;
    old.set_direction.resize(0, 0);
    try {
        exsal::write_signed_z_heatmap((dir / "x.svg").string(), old, active, rows);
        FAIL("no exception");
    } catch (const exsal::ArgumentError& e) {
        CHECK(e.where() == "write_signed_z_heatmap");
        CHECK(e.message().find("set_direction") != std::string::npos);
    }
    CHECK(file_names(dir) == std::set<std::string>{"signed_z.svg", "no_units.svg", "no_sets.svg"});
    if (!have_xmllint()) {
        MESSAGE("xmllint not found (Debian libxml2-utils): SVG well-formedness not checked");
        return;
    }
    for (const char* f : {"signed_z.svg", "no_units.svg", "no_sets.svg"}) CHECK(xml_well_formed(dir / f));
}

TEST_CASE("group programmes figure: each group's top sets, ordered by the group where they rank best") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<std::string> groups = {"HSC", "MPP", "Ery"};
    const std::vector<std::string> names = {"SET_0", "SET_1", "SET_2", "SET_3", "SET_4", "SET_5", "SET_6"};
    exsal::MatrixD score(7, 3);
    score << 3.0, -1.0, 0.5, //
        2.0, 2.5, nan,       //
        1.0, 4.0, -2.0,      //
        -1.0, 1.0, 1.5,      //
        nan, 0.2, 3.0,       //
        0.5, -0.5, -0.1,     //
        2.0, 0.0, 0.2;
    // HSC ranks 0, 1, 6 (tie with 1: lower index first), 2, 5; MPP 2, 1, 3, 4; Ery 4, 3, 0, 6.
    // Top 2: HSC {0, 1}, MPP {2, 1}, Ery {4, 3}; set 1 ranks 2nd in HSC and MPP: HSC (earlier).
    CHECK(exsal::group_programme_rows(score, 2) == std::vector<Index>{0, 1, 2, 4, 3});
    CHECK(exsal::group_programme_rows(score, 1) == std::vector<Index>{0, 2, 4});
    CHECK(exsal::group_programme_rows(score, 10) == std::vector<Index>{0, 1, 6, 5, 2, 4, 3});
    CHECK(exsal::group_programme_rows(-exsal::MatrixD::Ones(3, 2), 3).empty());
    CHECK_THROWS_AS(exsal::group_programme_rows(score, 0), exsal::ArgumentError);

    exsal::MatrixD q = exsal::MatrixD::Constant(7, 3, 0.5);
    q(0, 0) = 0.001; // large dot
    q(1, 1) = 0.03;  // small dot
    q(3, 2) = 0.04;  // small dot
    q(4, 2) = nan;
    q(5, 0) = 0.001; // set 5 is not shown
    const auto dir = fresh_dir("group_programmes");
    exsal::write_group_programmes_figure((dir / "programmes.svg").string(), groups, names, score, q, 2);
    const std::string s = read_text(dir / "programmes.svg");
    for (const auto& g : groups) CHECK(s.find(">" + g + "</text>") != std::string::npos);
    for (const char* n : {"SET_0", "SET_1", "SET_2", "SET_3", "SET_4"})
        CHECK(s.find(">" + std::string(n) + "</text>") != std::string::npos);
    for (const char* n : {"SET_5", "SET_6"}) CHECK(s.find(">" + std::string(n) + "</text>") == std::string::npos);
    // Rows top to bottom 0, 1, 2, 4, 3; columns in the given order.
    CHECK(s.find(">SET_0</text>") < s.find(">SET_1</text>"));
    CHECK(s.find(">SET_2</text>") < s.find(">SET_4</text>"));
    CHECK(s.find(">SET_4</text>") < s.find(">SET_3</text>"));
    CHECK(s.find(">HSC</text>") < s.find(">MPP</text>"));
    CHECK(s.find(">MPP</text>") < s.find(">Ery</text>"));
    // Colours on a scale that spans the shown scores (largest |score| shown: 4).
    const double m = exsal::detail::select_rows(score, {0, 1, 2, 4, 3}).array().isFinite().select(
                         exsal::detail::select_rows(score, {0, 1, 2, 4, 3}).array().abs(), 0.0).maxCoeff();
    CHECK(m == 4.0);
    CHECK(has_cell(s, "#b2182b", "SET_2 / MPP: 4")); // the end of the scale
    CHECK(has_cell(s, exsal::blue_white_red(-2.0 / m).hex(), "SET_2 / Ery: \xE2\x88\x92" "2"));
    CHECK(has_cell(s, exsal::blue_white_red(3.0 / m).hex(), "SET_0 / HSC: 3, q \xE2\x89\xA4 0.01"));
    CHECK(has_cell(s, "#d9d9d9", "SET_1 / Ery: no value"));
    const std::string dots = svg_group(s, "marks");
    CHECK(count(dots, "<circle") == 3);
    CHECK(count(dots, "r=\"4.68\"") == 1); // q <= 0.01: 0.26 x 18
    CHECK(count(dots, "r=\"2.7\"") == 2);  // q <= 0.05: 0.15 x 18
    const std::string legend = svg_group(s, "legend");
    CHECK(legend.find(">q \xE2\x89\xA4 0.05</text>") != std::string::npos);
    CHECK(legend.find(">q \xE2\x89\xA4 0.01</text>") != std::string::npos);
    CHECK(legend.find(">score / largest score of the group (negative: set lower in the group)</text>") != std::string::npos);
    CHECK(s.find(">Programmes that tell each group apart</text>") != std::string::npos);

    // Empty input: no groups, or no positive score.
    exsal::write_group_programmes_figure((dir / "no_groups.svg").string(), {}, names, exsal::MatrixD(7, 0),
                                         exsal::MatrixD(7, 0));
    CHECK(read_text(dir / "no_groups.svg").find(">no groups to compare</text>") != std::string::npos);
    exsal::write_group_programmes_figure((dir / "nothing.svg").string(), {}, {}, exsal::MatrixD(0, 0), exsal::MatrixD(0, 0));
    exsal::write_group_programmes_figure((dir / "no_positive.svg").string(), groups, names, -score.cwiseAbs(), q);
    CHECK(read_text(dir / "no_positive.svg").find(">no set with a positive score in any group</text>") != std::string::npos);

    // Caller mistakes.
    const std::string x = (dir / "x.svg").string();
    CHECK_THROWS_AS(exsal::write_group_programmes_figure(x, {"HSC", "MPP"}, names, score, q), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::write_group_programmes_figure(x, groups, {"SET_0"}, score, q), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::write_group_programmes_figure(x, groups, names, score, q.leftCols(2)), exsal::ArgumentError);
    CHECK_THROWS_AS(exsal::write_group_programmes_figure(x, groups, names, score, q, 0), exsal::ArgumentError);
    CHECK(file_names(dir) == std::set<std::string>{"programmes.svg", "no_groups.svg", "nothing.svg", "no_positive.svg"});
    if (!have_xmllint()) {
        MESSAGE("xmllint not found (Debian libxml2-utils): SVG well-formedness not checked");
        return;
    }
    for (const char* f : {"programmes.svg", "no_groups.svg", "nothing.svg", "no_positive.svg"})
        CHECK(xml_well_formed(dir / f));
}

TEST_CASE("representation.csv written row by row equals the table, quoting included") {
    using namespace exsal;
    const std::vector<std::string> cells{"c1", "cell, with comma", "c\"3"};
    MatrixF r(2, 3);
    r << 0.5f, -1.25f, 3e-8f, 2.0f, 0.0f, 123456.7f;
    const std::string dir = (std::filesystem::temp_directory_path() / "exsal_test_representation").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const std::vector<std::string>& groups : {std::vector<std::string>{}, std::vector<std::string>{"A", "", "B,C"}}) {
        write_representation(dir + "/streamed.csv", cells, groups, r);
        std::ifstream in(dir + "/streamed.csv", std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        CHECK(text.str() == representation_table(cells, groups, r).to_string());
    }
    CHECK_THROWS_AS(write_representation(dir + "/bad.csv", {"only one"}, {}, r), ArgumentError);
    CHECK(!std::filesystem::exists(dir + "/bad.csv"));
    std::filesystem::remove_all(dir);
}
