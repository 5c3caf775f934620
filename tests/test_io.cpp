// Tests of the data layer's files: the gzip-aware byte source under io::LineReader, the
// expression table reader and writer, and GMT gene sets with their coverage.
// Oracles: zlib used directly (gzip/gunzip), strtof for numbers, brute force for coverage.

#include <doctest/doctest.h>

#include "test_files.hpp"

#include "exsal/core/random.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/expression_writer.hpp"
#include "exsal/io/gmt.hpp"

#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using exsal::ExpressionMatrix;
using exsal::ExpressionReadOptions;
using exsal::ExpressionWriteOptions;
using exsal::FileError;
using exsal::Index;

namespace {

using exsal_test::gzip_member;
using exsal_test::read_bytes;
using exsal_test::TempDir;
using exsal_test::write_bytes;

// The text of a gzip file, inflated with zlib's gzFile (the oracle for the writer's deflate).
std::string gunzip_file(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    std::string text;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    REQUIRE(n == 0);
    gzclose(f);
    return text;
}

bool is_gzip_file(const std::string& path) {
    const std::string b = read_bytes(path);
    return b.size() >= 2 && static_cast<unsigned char>(b[0]) == 0x1f && static_cast<unsigned char>(b[1]) == 0x8b;
}

// Runs f, which must throw a FileError for `path` at `line` and `column` (0 = none) whose
// message carries the "path:line:column:" prefix and every one of `words`.
void expect_file_error(const std::function<void()>& f, const std::string& path, std::size_t line,
                       std::size_t column, std::initializer_list<std::string> words) {
    bool thrown = false;
    try {
        f();
    } catch (const FileError& e) {
        thrown = true;
        const std::string what = e.what();
        INFO("message: " << what);
        CHECK(e.path() == path);
        CHECK(e.line() == line);
        CHECK(e.column() == column);
        std::string prefix = path;
        if (line > 0) prefix += ":" + std::to_string(line);
        if (line > 0 && column > 0) prefix += ":" + std::to_string(column);
        CHECK(what.rfind(prefix + ": ", 0) == 0);
        for (const auto& w : words) CHECK_MESSAGE(what.find(w) != std::string::npos, "missing words: " << w);
    }
    CHECK_MESSAGE(thrown, "no FileError for " << path);
}

// A table read from `text` written to `path`.
ExpressionMatrix read_text(const std::string& path, const std::string& text, const ExpressionReadOptions& opt = {}) {
    write_bytes(path, text);
    return exsal::read_expression(path, opt);
}

// genes x cells with counts, decimals, zeros and extreme magnitudes, awkward names and groups.
ExpressionMatrix random_matrix(Index n_genes, Index n_cells, std::uint64_t seed) {
    exsal::Rng rng(seed);
    ExpressionMatrix m;
    m.values.resize(n_genes, n_cells);
    for (Index j = 0; j < n_cells; ++j)
        for (Index i = 0; i < n_genes; ++i) {
            const auto kind = rng.below(6);
            float v;
            if (kind == 0) v = 0.0f;
            else if (kind == 1) v = static_cast<float>(rng.poisson(5.0));
            else if (kind == 2) v = static_cast<float>(rng.lognormal(0.0, 2.0));
            else if (kind == 3) v = static_cast<float>(rng.uniform() * 1e-30);
            else if (kind == 4) v = static_cast<float>(rng.uniform() * 1e30);
            else v = static_cast<float>(std::round(rng.uniform() * 1e6) / 1e3);
            m.values(i, j) = v;
        }
    const char* awkward[] = {"cell,comma", "cell \"quoted\"", " padded ", "tab\there", "plain"};
    for (Index i = 0; i < n_genes; ++i) m.genes.push_back("GENE" + std::to_string(i) + (i == 3 ? ",X" : ""));
    for (Index j = 0; j < n_cells; ++j)
        m.cells.push_back(j < 5 ? std::string(awkward[j]) + std::to_string(j) : "C" + std::to_string(j));
    const char* labels[] = {"HSC", "MPP", "CMP, early", "\"GMP\"", ""};
    for (Index j = 0; j < n_cells; ++j) m.groups.push_back(labels[rng.below(5)]);
    return m;
}

bool same_bits(const exsal::MatrixF& a, const exsal::MatrixF& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

TEST_CASE("write_expression then read_expression gives the same matrix: both layouts, comma and tab, plain and gzip") {
    TempDir tmp("roundtrip");
    const ExpressionMatrix m = random_matrix(37, 23, 11);
    for (bool genes_in_rows : {false, true})
        for (char sep : {',', '\t'})
            for (bool gz : {false, true}) {
                CAPTURE(genes_in_rows);
                CAPTURE(sep);
                CAPTURE(gz);
                const std::string path = tmp.file(std::string("m") + (genes_in_rows ? "_g" : "_c") +
                                                  (sep == ',' ? ".csv" : ".tsv") + (gz ? ".gz" : ""));
                ExpressionWriteOptions w;
                w.genes_in_rows = genes_in_rows;
                w.separator = sep;
                exsal::write_expression(path, m, w);
                CHECK(is_gzip_file(path) == gz); // by_extension
                ExpressionReadOptions r;
                r.genes_in_rows = genes_in_rows;
                const ExpressionMatrix back = exsal::read_expression(path, r);
                CHECK(same_bits(back.values, m.values));
                CHECK(back.genes == m.genes);
                CHECK(back.cells == m.cells);
                if (genes_in_rows)
                    CHECK(back.groups.empty()); // this layout has no group column
                else
                    CHECK(back.groups == m.groups);
            }
    // The gzip file holds exactly the plain file's text (inflated by zlib itself).
    CHECK(gunzip_file(tmp.file("m_c.csv.gz")) == read_bytes(tmp.file("m_c.csv")));
    CHECK(gunzip_file(tmp.file("m_g.tsv.gz")) == read_bytes(tmp.file("m_g.tsv")));
    // No temporaries are left behind.
    for (const auto& e : fs::directory_iterator(tmp.dir)) CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("write_expression: integers, signed zeros, limits of the float range and negatives read back bit for bit") {
    TempDir tmp("edge_values");
    const float edge[] = {0.0f, -0.0f, 1.0f, -1.0f, 16777215.0f, 16777216.0f, 16777218.0f, -16777216.0f, 1e7f,
                          123456789.0f, 0.1f, 1.0f / 3.0f, std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::lowest(), std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(), 2147483648.0f, -2147483904.0f};
    const Index n = static_cast<Index>(sizeof edge / sizeof edge[0]);
    ExpressionMatrix m;
    m.values.resize(n, 1);
    for (Index i = 0; i < n; ++i) {
        m.values(i, 0) = edge[i];
        m.genes.push_back("G" + std::to_string(i));
    }
    m.cells = {"c"};
    ExpressionReadOptions opt;
    opt.allow_negative = true;
    for (bool genes_in_rows : {false, true}) {
        ExpressionWriteOptions w;
        w.genes_in_rows = genes_in_rows;
        opt.genes_in_rows = genes_in_rows;
        exsal::write_expression(tmp.file("e.csv"), m, w);
        CHECK(same_bits(exsal::read_expression(tmp.file("e.csv"), opt).values, m.values));
    }
}

TEST_CASE("write_expression: compression option, reference header, group column only with groups") {
    TempDir tmp("writer");
    ExpressionMatrix m;
    m.values.resize(2, 3);
    m.values << 1.0f, 0.5f, 0.0f, 2.0f, 1e-3f, 250000.0f;
    m.genes = {"A", "B"};
    m.cells = {"c1", "c2", "c3"};
    ExpressionWriteOptions w;
    w.compression = exsal::Compression::gzip;
    exsal::write_expression(tmp.file("forced_gzip.csv"), m, w);
    CHECK(is_gzip_file(tmp.file("forced_gzip.csv")));
    w.compression = exsal::Compression::none;
    exsal::write_expression(tmp.file("plain.csv.gz"), m, w);
    CHECK_FALSE(is_gzip_file(tmp.file("plain.csv.gz")));
    // Without groups: "sample,GENES..." and no cluster column; both files hold the same text.
    const std::string text = read_bytes(tmp.file("plain.csv.gz"));
    CHECK(text.rfind("sample,A,B\nc1,", 0) == 0);
    CHECK(gunzip_file(tmp.file("forced_gzip.csv")) == text);
    const auto back = exsal::read_expression(tmp.file("forced_gzip.csv"));
    CHECK(back.groups.empty());
    CHECK(same_bits(back.values, m.values));
    m.groups = {"x", "y", "x"};
    exsal::write_expression(tmp.file("groups.csv"), m);
    CHECK(read_bytes(tmp.file("groups.csv")).rfind("sample,cluster,A,B\nc1,x,", 0) == 0);
    // Custom header names read back with the same options.
    w = {};
    w.id_column = "cell";
    w.group_column = "type";
    w.separator = '\t';
    exsal::write_expression(tmp.file("custom.tsv"), m, w);
    ExpressionReadOptions r;
    r.id_column = "cell";
    r.group_column = "type";
    const auto back2 = exsal::read_expression(tmp.file("custom.tsv"), r);
    CHECK(back2.groups == m.groups);
    CHECK(back2.cells == m.cells);
}

TEST_CASE("write_expression rejects what it could not write or read back, and leaves no file") {
    TempDir tmp("writer_errors");
    ExpressionMatrix m;
    m.values = exsal::MatrixF::Ones(2, 2);
    m.genes = {"A", "B"};
    m.cells = {"c1", "c2"};
    const std::string path = tmp.file("out.csv");
    auto expect_argument_error = [&](const ExpressionMatrix& bad, const ExpressionWriteOptions& w, const std::string& words) {
        try {
            exsal::write_expression(path, bad, w);
            FAIL("no ArgumentError");
        } catch (const exsal::ArgumentError& e) {
            const std::string what = e.what();
            INFO(what);
            CHECK(what.rfind("write_expression: ", 0) == 0);
            CHECK(what.find(words) != std::string::npos);
        }
        CHECK_FALSE(fs::exists(path));
    };
    ExpressionMatrix bad = m;
    bad.values(1, 0) = std::numeric_limits<float>::quiet_NaN();
    expect_argument_error(bad, {}, "not finite");
    bad = m;
    bad.genes.pop_back();
    expect_argument_error(bad, {}, "gene names");
    bad = m;
    bad.cells[1] = "two\nlines";
    expect_argument_error(bad, {}, "line break");
    bad = m;
    bad.genes[0] = "";
    expect_argument_error(bad, {}, "empty");
    bad = m;
    bad.values.resize(2, 0);
    bad.cells.clear();
    expect_argument_error(bad, {}, "empty");
    ExpressionWriteOptions w;
    w.separator = '"';
    expect_argument_error(m, w, "separator");
    w = {};
    w.gzip_level = 12;
    expect_argument_error(m, w, "gzip_level");
}

// ---------------------------------------------------------------------------------------------
// Valid input variants
// ---------------------------------------------------------------------------------------------

TEST_CASE("read_expression: CRLF, UTF-8 BOM, blank lines and a missing final newline read like plain LF text") {
    TempDir tmp("variants");
    const std::string lf = "sample,cluster,G1,G2\nc1,a,1,2.5\nc2,b,0,3e2\n";
    const auto ref = read_text(tmp.file("lf.csv"), lf);
    REQUIRE(ref.n_cells() == 2);
    REQUIRE(ref.n_genes() == 2);
    CHECK(ref.values(0, 0) == 1.0f);
    CHECK(ref.values(1, 0) == 2.5f);
    CHECK(ref.values(0, 1) == 0.0f);
    CHECK(ref.values(1, 1) == 300.0f);
    CHECK(ref.groups == std::vector<std::string>{"a", "b"});
    const std::vector<std::string> variants = {
        "sample,cluster,G1,G2\r\nc1,a,1,2.5\r\nc2,b,0,3e2\r\n",
        "\xEF\xBB\xBFsample,cluster,G1,G2\nc1,a,1,2.5\nc2,b,0,3e2\n",
        "\xEF\xBB\xBFsample,cluster,G1,G2\r\nc1,a,1,2.5\r\n\r\nc2,b,0,3e2",
        "\n\nsample,cluster,G1,G2\nc1,a,1,2.5\n\nc2,b,0,3e2\n\n\n",
        " sample , cluster ,G1, G2\nc1 , a,1 , 2.5\nc2,b, 0,3e2 \n",
    };
    for (std::size_t v = 0; v < variants.size(); ++v) {
        CAPTURE(v);
        const auto m = read_text(tmp.file("v" + std::to_string(v) + ".csv"), variants[v]);
        CHECK(same_bits(m.values, ref.values));
        CHECK(m.genes == ref.genes);
        CHECK(m.cells == ref.cells);
        CHECK(m.groups == ref.groups);
        // The same text gzip-compressed reads the same (BOM and CRLF inside the gzip too).
        const std::string gz = tmp.file("v" + std::to_string(v) + ".gz");
        write_bytes(gz, gzip_member(variants[v]));
        const auto mz = exsal::read_expression(gz);
        CHECK(same_bits(mz.values, ref.values));
        CHECK(mz.cells == ref.cells);
    }
}

TEST_CASE("read_expression: quoted fields with separators and doubled quotes, in headers, ids, labels and numbers") {
    TempDir tmp("quoted");
    const auto m = read_text(tmp.file("q.csv"),
                             "\"sample\",\"cluster\",\"GENE,1\",\"GE\"\"NE2\"\n"
                             "\"c,1\",\"a \"\"b\"\"\",\"1.5\",2\n"
                             "\"\"\"c2\"\"\", \"\" ,  \"3\" ,\"4e1\"\n");
    CHECK(m.genes == std::vector<std::string>{"GENE,1", "GE\"NE2"});
    CHECK(m.cells == std::vector<std::string>{"c,1", "\"c2\""});
    CHECK(m.groups == std::vector<std::string>{"a \"b\"", ""});
    CHECK(m.values(0, 0) == 1.5f);
    CHECK(m.values(1, 0) == 2.0f);
    CHECK(m.values(0, 1) == 3.0f);
    CHECK(m.values(1, 1) == 40.0f);
    // Tabs inside quotes in a TSV.
    const auto t = read_text(tmp.file("q.tsv"), "sample\tG\n\"a\tb\"\t7\n");
    CHECK(t.cells == std::vector<std::string>{"a\tb"});
    CHECK(t.values(0, 0) == 7.0f);
}

TEST_CASE("read_expression: id and group columns by name, anywhere, optional group column, separators") {
    TempDir tmp("columns");
    // No group column: groups stay empty.
    const auto a = read_text(tmp.file("a.csv"), "sample,G1,G2\nc1,1,2\n");
    CHECK(a.groups.empty());
    CHECK(a.genes == std::vector<std::string>{"G1", "G2"});
    // Custom names in other positions.
    ExpressionReadOptions opt;
    opt.id_column = "cell_id";
    opt.group_column = "type";
    const auto b = read_text(tmp.file("b.csv"), "G1,cell_id,G2,type\n1,c1,2,T\n3,c2,4,B\n", opt);
    CHECK(b.cells == std::vector<std::string>{"c1", "c2"});
    CHECK(b.groups == std::vector<std::string>{"T", "B"});
    CHECK(b.genes == std::vector<std::string>{"G1", "G2"});
    CHECK(b.values(0, 1) == 3.0f);
    CHECK(b.values(1, 1) == 4.0f);
    // group_column "" ignores a "cluster" column... which then is a gene column.
    opt = {};
    opt.group_column = "";
    const auto c = read_text(tmp.file("c.csv"), "sample,cluster,G1\nc1,5,6\n", opt);
    CHECK(c.genes == std::vector<std::string>{"CLUSTER", "G1"});
    CHECK(c.groups.empty());
    // Tab detected from the header; a forced ';'.
    const auto d = read_text(tmp.file("d.tsv"), "sample\tcluster\tG1\tG2\nc1\tx,y\t1\t2\n");
    CHECK(d.groups == std::vector<std::string>{"x,y"});
    CHECK(d.values(1, 0) == 2.0f);
    opt = {};
    opt.separator = ';';
    const auto e = read_text(tmp.file("e.txt"), "sample;cluster;G1\nc1;x,y;1.25\n", opt);
    CHECK(e.groups == std::vector<std::string>{"x,y"});
    CHECK(e.values(0, 0) == 1.25f);
}

TEST_CASE("read_expression: genes as rows, with and without the header's corner field") {
    TempDir tmp("genes_in_rows");
    ExpressionReadOptions opt;
    opt.genes_in_rows = true;
    const auto a = read_text(tmp.file("a.csv"), "gene,c1,c2,c3\nGapdh,1,2,3\nActb,4,5,6\n", opt);
    CHECK(a.genes == std::vector<std::string>{"GAPDH", "ACTB"});
    CHECK(a.cells == std::vector<std::string>{"c1", "c2", "c3"});
    CHECK(a.groups.empty());
    REQUIRE(a.n_genes() == 2);
    REQUIRE(a.n_cells() == 3);
    for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 3; ++j) CHECK(a.values(i, j) == static_cast<float>(1 + 3 * i + j));
    // R's write.table: the header lacks the gene column's name.
    const auto b = read_text(tmp.file("b.tsv"), "c1\tc2\tc3\nGapdh\t1\t2\t3\nActb\t4\t5\t6\n", opt);
    CHECK(b.cells == a.cells);
    CHECK(b.genes == a.genes);
    CHECK(same_bits(b.values, a.values));
    // A larger genes x cells table transposes correctly (more than one 64 x 64 tile).
    std::string text = "gene";
    for (int j = 0; j < 70; ++j) text += ",c" + std::to_string(j);
    text += "\n";
    for (int i = 0; i < 130; ++i) {
        text += "g" + std::to_string(i);
        for (int j = 0; j < 70; ++j) text += "," + std::to_string(i * 1000 + j);
        text += "\n";
    }
    const auto c = read_text(tmp.file("c.csv"), text, opt);
    REQUIRE(c.n_genes() == 130);
    REQUIRE(c.n_cells() == 70);
    bool all = true;
    for (Index i = 0; i < 130; ++i)
        for (Index j = 0; j < 70; ++j) all = all && c.values(i, j) == static_cast<float>(i * 1000 + j);
    CHECK(all);
}

TEST_CASE("read_expression: numbers agree with strtof in every format, including the fast decimal path") {
    TempDir tmp("numbers");
    exsal::Rng rng(7);
    const char* formats[] = {"%.0f", "%.1f", "%.3f", "%.6f", "%.9g", "%g", "%e", "%.2E", "%.10f"};
    const std::uint64_t n_formats = sizeof formats / sizeof formats[0];
    std::string text = "sample";
    const int n_genes = 60, n_cells = 150;
    for (int i = 0; i < n_genes; ++i) text += ",G" + std::to_string(i);
    text += "\n";
    std::vector<float> expected;
    char buf[64];
    for (int j = 0; j < n_cells; ++j) {
        text += "c" + std::to_string(j);
        for (int i = 0; i < n_genes; ++i) {
            const double scale = std::pow(10.0, static_cast<double>(rng.below(16)) - 6.0);
            const double v = rng.uniform() * scale;
            std::snprintf(buf, sizeof buf, formats[rng.below(n_formats)], v);
            std::string s = buf;
            if (rng.below(10) == 0) s = "+" + s;
            text += "," + s;
            expected.push_back(std::strtof(s.c_str(), nullptr));
        }
        text += "\n";
    }
    const auto m = read_text(tmp.file("n.csv"), text);
    REQUIRE(m.n_cells() == n_cells);
    std::size_t mismatches = 0;
    for (int j = 0; j < n_cells; ++j)
        for (int i = 0; i < n_genes; ++i)
            if (std::memcmp(&m.values(i, j), &expected[static_cast<std::size_t>(j * n_genes + i)], sizeof(float)) != 0)
                ++mismatches;
    CHECK(mismatches == 0);
    // Special spellings: ints, decimals without a leading or trailing digit, exponents, -0,
    // underflow to 0, negative values when allowed.
    ExpressionReadOptions opt;
    opt.allow_negative = true;
    const auto s = read_text(tmp.file("s.csv"), "sample,A,B,C,D,E,F,G,H\nc,42,.5,5.,1E3,2.5e-2,-0,1e-50,-7.25\n", opt);
    const float want[] = {42.0f, 0.5f, 5.0f, 1000.0f, 0.025f, 0.0f, 0.0f, -7.25f};
    for (int i = 0; i < 8; ++i) CHECK(s.values(i, 0) == want[i]);
    CHECK(std::signbit(s.values(5, 0)));
}

TEST_CASE("read_expression: upper-casing, keeping case, and summing duplicate symbols") {
    TempDir tmp("symbols");
    const std::string text = "sample,Gapdh,actb,GAPDH\nc1,1,2,3\nc2,4,5,6\n";
    ExpressionReadOptions opt;
    opt.upper_case_genes = false;
    const auto keep = read_text(tmp.file("k.csv"), text, opt);
    CHECK(keep.genes == std::vector<std::string>{"Gapdh", "actb", "GAPDH"});
    opt = {};
    opt.sum_duplicates = true;
    const auto sum = read_text(tmp.file("s.csv"), text, opt);
    CHECK(sum.genes == std::vector<std::string>{"GAPDH", "ACTB"});
    CHECK(sum.values(0, 0) == 4.0f);
    CHECK(sum.values(1, 0) == 2.0f);
    CHECK(sum.values(0, 1) == 10.0f);
    CHECK(sum.values(1, 1) == 5.0f);
    opt.genes_in_rows = true;
    const auto rows = read_text(tmp.file("r.csv"), "gene,c1,c2\nGapdh,1,4\nactb,2,5\nGAPDH,3,6\n", opt);
    CHECK(rows.genes == sum.genes);
    CHECK(same_bits(rows.values, sum.values));
}

// ---------------------------------------------------------------------------------------------
// Errors of read_expression
// ---------------------------------------------------------------------------------------------

TEST_CASE("read_expression errors: opening, empty file, header only, separator, options") {
    TempDir tmp("errors_open");
    const std::string missing = tmp.file("missing.csv");
    expect_file_error([&] { exsal::read_expression(missing); }, missing, 0, 0, {"cannot open", "No such file"});
    expect_file_error([&] { exsal::read_expression(tmp.dir.string()); }, tmp.dir.string(), 0, 0, {"directory"});
    const std::string empty = tmp.file("empty.csv");
    write_bytes(empty, "");
    expect_file_error([&] { exsal::read_expression(empty); }, empty, 0, 0, {"empty file"});
    const std::string blank = tmp.file("blank.csv");
    write_bytes(blank, "\n\r\n\n");
    expect_file_error([&] { exsal::read_expression(blank); }, blank, 0, 0, {"empty file"});
    const std::string empty_gz = tmp.file("empty.csv.gz");
    write_bytes(empty_gz, gzip_member(""));
    expect_file_error([&] { exsal::read_expression(empty_gz); }, empty_gz, 0, 0, {"empty file"});
    const std::string header = tmp.file("header.csv");
    write_bytes(header, "sample,cluster,G1\n\n");
    expect_file_error([&] { exsal::read_expression(header); }, header, 1, 0, {"no data rows", "header only"});
    ExpressionReadOptions rows;
    rows.genes_in_rows = true;
    expect_file_error([&] { exsal::read_expression(header, rows); }, header, 1, 0, {"header only"});
    const std::string nosep = tmp.file("nosep.csv");
    write_bytes(nosep, "sample cluster G1\nc1 a 1\n");
    expect_file_error([&] { exsal::read_expression(nosep); }, nosep, 1, 0, {"cannot detect the separator"});
    const std::string noid = tmp.file("noid.csv");
    write_bytes(noid, "cell,cluster,G1\nc1,a,1\n");
    expect_file_error([&] { exsal::read_expression(noid); }, noid, 1, 0, {"no cell id column", "\"sample\"", "id_column"});
    const std::string nogenes = tmp.file("nogenes.csv");
    write_bytes(nogenes, "sample,cluster\nc1,a\n");
    expect_file_error([&] { exsal::read_expression(nogenes); }, nogenes, 1, 0, {"no gene columns"});
    ExpressionReadOptions bad;
    bad.separator = '"';
    CHECK_THROWS_AS(exsal::read_expression(header, bad), exsal::ArgumentError);
    bad = {};
    bad.group_column = "sample";
    CHECK_THROWS_WITH_AS(exsal::read_expression(header, bad), doctest::Contains("read_expression"), exsal::ArgumentError);
}

TEST_CASE("read_expression errors: field counts, numbers, NaN, infinity, overflow, negatives, empty fields") {
    TempDir tmp("errors_fields");
    const std::string path = tmp.file("t.csv");
    const std::string head = "sample,cluster,G1,G2\nc1,a,1,2\n";
    auto expect = [&](const std::string& bad_row, std::size_t column, std::initializer_list<std::string> words,
                      const ExpressionReadOptions& opt = {}) {
        write_bytes(path, head + bad_row + "\nc9,z,1,1\n");
        expect_file_error([&] { exsal::read_expression(path, opt); }, path, 3, column, words);
    };
    expect("c2,b,1", 0, {"expected 4 fields", "found 3"});
    expect("c2,b,1,2,3", 5, {"expected 4 fields", "found 5"});
    expect("c2,b,1,2,3,4,", 5, {"expected 4 fields", "found 7"});
    expect("c2,b,abc,2", 3, {"\"abc\" is not a number", "gene \"G1\""});
    expect("c2,b,1,2x", 4, {"\"2x\" is not a number", "gene \"G2\""});
    expect("c2,b,1,0x10", 4, {"\"0x10\" is not a number"});
    expect("c2,b,,2", 3, {"empty field", "number"});
    expect("c2,b,1,\"\"", 4, {"empty field"});
    expect("c2,b,NaN,2", 3, {"\"NaN\" is not a finite number"});
    expect("c2,b,1,inf", 4, {"\"inf\" is not a finite number"});
    expect("c2,b,-Infinity,1", 3, {"not a finite number"});
    expect("c2,b,1e39,1", 3, {"\"1e39\"", "out of the range", "overflow"});
    expect("c2,b,1,-1e400", 4, {"\"-1e400\"", "overflow"});
    expect("c2,b,1,-1.5", 4, {"\"-1.5\" is negative", "allow_negative"});
    expect("c2,b,+-1,1", 3, {"\"+-1\" is not a number"});
    expect(",b,1,1", 1, {"empty cell id"});
    expect("c1,b,1,1", 1, {"duplicate cell id \"c1\"", "lines 2 and 3"}); // every output table is keyed by it
    expect("c2,\"b,1,1", 2, {"unterminated quoted field"});
    expect("c2,\"b\"x,1,1", 2, {"unexpected text", "after a closing quote"});
    // The offending text is quoted and cut to about 40 characters.
    const std::string longtext(200, 'z');
    write_bytes(path, head + "c2,b," + longtext + ",1\n");
    try {
        exsal::read_expression(path);
        FAIL("no error");
    } catch (const FileError& e) {
        const std::string what = e.what();
        CHECK(what.find("\"" + std::string(40, 'z') + "...\"") != std::string::npos);
        CHECK(what.find(std::string(41, 'z')) == std::string::npos);
    }
    // Negative values are fine when allowed.
    ExpressionReadOptions neg;
    neg.allow_negative = true;
    write_bytes(path, head + "c2,b,-1.5,-2\n");
    CHECK(exsal::read_expression(path, neg).values(0, 1) == -1.5f);
    // Genes as rows: the same checks, naming gene and cell.
    ExpressionReadOptions rows;
    rows.genes_in_rows = true;
    write_bytes(path, "gene,c1,c2\nA,1,2\nB,1,oops\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 3, 3,
                      {"\"oops\" is not a number", "gene \"B\"", "cell \"c2\""});
    write_bytes(path, "gene,c1,c2\nA,1,2\nB,1\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 3, 0, {"expected 3 fields", "found 2"});
    write_bytes(path, "gene,c1,c2\nA,1,2\nB,1,2,3,4\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 3, 4, {"expected 3 fields", "found 5"});
    write_bytes(path, "gene,c1,c2\nA,1,2\n,1,2\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 3, 1, {"empty gene symbol"});
    write_bytes(path, "gene,c1,,c3\nA,1,2,3\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 1, 3, {"empty cell id"});
}

TEST_CASE("read_expression errors: duplicate gene symbols name both columns or lines") {
    TempDir tmp("errors_dup");
    const std::string path = tmp.file("d.csv");
    write_bytes(path, "sample,cluster,Gapdh,ACTB,GAPDH\nc1,a,1,2,3\n");
    expect_file_error([&] { exsal::read_expression(path); }, path, 1, 5,
                      {"duplicate gene symbol \"GAPDH\"", "fields 3 and 5", "upper-casing", "sum_duplicates"});
    ExpressionReadOptions keep;
    keep.upper_case_genes = false;
    CHECK(exsal::read_expression(path, keep).n_genes() == 3); // distinct without upper-casing
    write_bytes(path, "sample,G1,,G2\nc1,1,2,3\n");
    expect_file_error([&] { exsal::read_expression(path); }, path, 1, 3, {"empty gene symbol"});
    ExpressionReadOptions rows;
    rows.genes_in_rows = true;
    write_bytes(path, "gene,c1\nA,1\nB,2\n\na,3\n");
    expect_file_error([&] { exsal::read_expression(path, rows); }, path, 5, 1,
                      {"duplicate gene symbol \"A\"", "lines 2 and 5"});
    // Summed duplicates whose values each fit in a float but whose sum does not (found by
    // fuzz_expression_reader): an error at the value that overflows, not an infinite count.
    ExpressionReadOptions sum;
    sum.sum_duplicates = true;
    write_bytes(path, "sample,A,B,a\nc1,1,2,3\nc2,3e38,1,2e38\n");
    expect_file_error([&] { exsal::read_expression(path, sum); }, path, 3, 4,
                      {"sum_duplicates", "range of a 32-bit float", "gene \"A\""});
    sum.genes_in_rows = true;
    write_bytes(path, "gene,c1,c2\nA,1,3e38\nB,2,1\na,3,2e38\n");
    expect_file_error([&] { exsal::read_expression(path, sum); }, path, 4, 3,
                      {"sum_duplicates", "range of a 32-bit float", "gene \"A\" of line 2", "cell \"c2\""});
    write_bytes(path, "gene,c1,c2\nA,1,3e38\nB,2,1\na,3,-2e38\n"); // negative allowed: a sum back in range
    sum.allow_negative = true;
    CHECK(exsal::read_expression(path, sum).values(0, 1) == 3e38f + -2e38f);
}

TEST_CASE("read_expression errors: binary content, UTF-16, over-long lines") {
    TempDir tmp("errors_binary");
    const std::string nul = tmp.file("nul.csv");
    write_bytes(nul, std::string("sample,G1\nc1,1\0\0\0\n", 19));
    expect_file_error([&] { exsal::read_expression(nul); }, nul, 2, 5, {"binary file, not a text table", "NUL byte"});
    // Past the first 64 KiB only NUL bytes are looked for; the message gives their offset.
    std::string late = "sample,G1\n";
    while (late.size() < 100000) late += "c,1\n";
    const std::size_t nul_offset = late.size();
    late += std::string("c,\0\n", 5);
    write_bytes(nul, late);
    expect_file_error([&] { exsal::read_expression(nul); }, nul, 0, 0,
                      {"binary file, not a text table", "NUL byte at text offset " + std::to_string(nul_offset + 2)});
    const std::string ctrl = tmp.file("ctrl.csv");
    write_bytes(ctrl, "sample,G1\nc1,\x01\x02\n");
    expect_file_error([&] { exsal::read_expression(ctrl); }, ctrl, 2, 4, {"binary file, not a text table", "0x01"});
    // A binary file compressed with gzip is still binary once inflated.
    const std::string gzbin = tmp.file("bin.gz");
    write_bytes(gzbin, gzip_member(std::string("\x89HDF\r\n\x1a\n\0\0\0\0", 12)));
    expect_file_error([&] { exsal::read_expression(gzbin); }, gzbin, 2, 1, {"binary file", "0x1a"});
    const std::string utf16 = tmp.file("utf16.csv");
    write_bytes(utf16, std::string("\xff\xfes\0a\0m\0", 8));
    expect_file_error([&] { exsal::read_expression(utf16); }, utf16, 1, 1, {"UTF-16"});
    // io::LineReader's line-length limit (2^24-1) becomes a FileError with path and line.
    const std::string longline = tmp.file("long.csv");
    write_bytes(longline, "sample,G1\nc1," + std::string((1 << 24) + 10, '1') + "\n");
    expect_file_error([&] { exsal::read_expression(longline); }, longline, 2, 0, {"longer than 16 MiB"});
}

TEST_CASE("read_expression errors: truncated, fake and corrupt gzip") {
    TempDir tmp("errors_gzip");
    // A real gzip of a real-sized table, then cut.
    std::string text = "sample,cluster";
    for (int i = 0; i < 200; ++i) text += ",G" + std::to_string(i);
    text += "\n";
    exsal::Rng rng(3);
    for (int j = 0; j < 300; ++j) {
        text += "c" + std::to_string(j) + ",g";
        for (int i = 0; i < 200; ++i) text += "," + std::to_string(rng.poisson(3.0));
        text += "\n";
    }
    const std::string gz = gzip_member(text);
    const std::string whole = tmp.file("whole.csv.gz");
    write_bytes(whole, gz);
    REQUIRE(exsal::read_expression(whole).n_cells() == 300);
    for (std::size_t keep : {gz.size() / 2, gz.size() - 4, std::size_t(12), std::size_t(2)}) {
        CAPTURE(keep);
        const std::string cut = tmp.file("cut.csv.gz");
        write_bytes(cut, gz.substr(0, keep));
        expect_file_error([&] { exsal::read_expression(cut); }, cut, 0, 0, {"truncated gzip stream"});
    }
    const std::string fake = tmp.file("fake.csv.gz");
    write_bytes(fake, std::string("\x1f\x8b") + "this is not deflate data at all, just text");
    expect_file_error([&] { exsal::read_expression(fake); }, fake, 0, 0, {"corrupt gzip data"});
    std::string bad_crc = gz;
    bad_crc[bad_crc.size() - 6] = static_cast<char>(bad_crc[bad_crc.size() - 6] ^ 0x5a);
    const std::string crc = tmp.file("crc.csv.gz");
    write_bytes(crc, bad_crc);
    expect_file_error([&] { exsal::read_expression(crc); }, crc, 0, 0, {"corrupt gzip data", "check"});
    const std::string trailing = tmp.file("trailing.csv.gz");
    write_bytes(trailing, gz + "garbage");
    expect_file_error([&] { exsal::read_expression(trailing); }, trailing, 0, 0, {"corrupt gzip data", "not another gzip member"});
    // Detection is by magic, not by name: a gzip named .csv is inflated, a text named .gz is text.
    const std::string named_csv = tmp.file("gzip_named.csv");
    write_bytes(named_csv, gz);
    CHECK(exsal::read_expression(named_csv).n_cells() == 300);
    const std::string named_gz = tmp.file("text_named.csv.gz");
    write_bytes(named_gz, text);
    CHECK(exsal::read_expression(named_gz).n_cells() == 300);
}

// ---------------------------------------------------------------------------------------------
// Byte source and line reader
// ---------------------------------------------------------------------------------------------

TEST_CASE("FileByteSource fills every request, plain and gzip, and inflates concatenated members") {
    TempDir tmp("source");
    std::string text;
    for (int i = 0; i < 5000; ++i) text += "line " + std::to_string(i * 7919 % 10007) + "\n";
    const std::string plain = tmp.file("plain.txt"), gz = tmp.file("two_members.gz");
    write_bytes(plain, text);
    write_bytes(gz, gzip_member(text.substr(0, 12345)) + gzip_member(text.substr(12345), 9));
    for (const auto& path : {plain, gz}) {
        CAPTURE(path);
        exsal::FileByteSource src(path);
        CHECK(src.is_gzip() == (path == gz));
        std::string got;
        char buf[777];
        for (int size : {1, 7, 777, 100, 3}) { // odd sizes: every read but the last must be full
            const int n = src.read(buf, size);
            CHECK(n == size);
            got.append(buf, static_cast<std::size_t>(n));
        }
        for (;;) {
            const int n = src.read(buf, 777);
            if (n == 0) break;
            got.append(buf, static_cast<std::size_t>(n));
            if (n < 777) CHECK(src.read(buf, 777) == 0);
        }
        CHECK(got == text);
    }
    // The table reader gets every row of both members.
    std::string table = "sample,G\n";
    for (int j = 0; j < 1000; ++j) table += "c" + std::to_string(j) + "," + std::to_string(j) + "\n";
    const std::string tgz = tmp.file("table.csv.gz");
    write_bytes(tgz, gzip_member(table.substr(0, 5000)) + gzip_member(table.substr(5000)));
    const auto m = exsal::read_expression(tgz);
    REQUIRE(m.n_cells() == 1000);
    CHECK(m.values(0, 999) == 999.0f);
}

TEST_CASE("TextLineReader beyond io::LineReader's first 32 MiB: lines are exact and errors of the reading thread propagate") {
    // io::LineReader reads the first 32 MiB itself and the rest in a worker thread, which stores
    // exceptions and rethrows them in next_line(): a truncated gzip must surface there as FileError.
    TempDir tmp("async");
    std::string text;
    text.reserve(std::size_t(40) << 20);
    std::size_t n_lines = 0;
    const std::string pad(90, 'x');
    while (text.size() < (std::size_t(40) << 20)) {
        text += std::to_string(n_lines++);
        text += pad;
        text += '\n';
    }
    const std::string gz = gzip_member(text, 1);
    const std::string whole = tmp.file("big.gz");
    write_bytes(whole, gz);
    {
        exsal::TextLineReader in(whole);
        std::size_t lines = 0;
        bool exact = true;
        while (char* line = in.next_line()) {
            exact = exact && std::strtoull(line, nullptr, 10) == lines && std::strlen(line) == std::to_string(lines).size() + 90;
            ++lines;
        }
        CHECK(exact);
        CHECK(lines == n_lines);
    }
    const std::string cut = tmp.file("cut.gz");
    write_bytes(cut, gz.substr(0, gz.size() * 9 / 10)); // ends past the first 32 MiB of text
    std::size_t lines = 0;
    try {
        exsal::TextLineReader in(cut);
        while (in.next_line()) ++lines;
        FAIL("no error");
    } catch (const FileError& e) {
        CHECK(e.path() == cut);
        CHECK(std::string(e.what()).find("truncated gzip stream") != std::string::npos);
    }
    // The constructor's synchronous read of the first 32 MiB succeeded and lines were delivered:
    // the error came from the reading thread, when the reader moved past the first 16 MiB block.
    CHECK(lines * (pad.size() + 7) > (std::size_t(15) << 20));
}

// ---------------------------------------------------------------------------------------------
// GMT
// ---------------------------------------------------------------------------------------------

TEST_CASE("read_gmt: CRLF, blank lines, upper-casing, duplicate and empty gene fields, prefix filter") {
    TempDir tmp("gmt");
    const std::string path = tmp.file("sets.gmt");
    write_bytes(path,
                "HALLMARK_A\thttp://a\tgapdh\tACTB\tGAPDH\t\tTp53 \t\r\n"
                "\r\n"
                "OTHER_B\tdesc b\tX1\tx2\r\n"
                "  \t \r\n"
                "HALLMARK_C\t\tZZ\n");
    const auto all = exsal::read_gmt(path);
    REQUIRE(all.size() == 3);
    CHECK(all[0].name == "HALLMARK_A");
    CHECK(all[0].description == "http://a");
    CHECK(all[0].genes == std::vector<std::string>{"GAPDH", "ACTB", "TP53"});
    CHECK(all[1].genes == std::vector<std::string>{"X1", "X2"});
    CHECK(all[2].description.empty());
    CHECK(all[2].genes == std::vector<std::string>{"ZZ"});
    exsal::GmtReadOptions opt;
    opt.name_prefix = "HALLMARK_";
    const auto hallmark = exsal::read_gmt(path, opt);
    REQUIRE(hallmark.size() == 2);
    CHECK(hallmark[0].name == "HALLMARK_A");
    CHECK(hallmark[1].name == "HALLMARK_C");
    opt = {};
    opt.upper_case_genes = false;
    CHECK(exsal::read_gmt(path, opt)[0].genes == std::vector<std::string>{"gapdh", "ACTB", "GAPDH", "Tp53"});
    // gzip works the same.
    const std::string gz = tmp.file("sets.gmt.gz");
    write_bytes(gz, gzip_member(read_bytes(path)));
    const auto z = exsal::read_gmt(gz);
    REQUIRE(z.size() == 3);
    CHECK(z[0].genes == all[0].genes);
}

TEST_CASE("write_gmt then read_gmt gives the same collection; write_gmt rejects what read_gmt would not read") {
    TempDir tmp("gmt_write");
    exsal::GeneSetCollection sets = {{"SET_ONE", "first set", {"A", "B", "C"}},
                                     {"SET_TWO", "", {"D"}},
                                     {"SET_THREE", "with spaces in it", {"E", "F"}}};
    const std::string path = tmp.file("out.gmt");
    exsal::write_gmt(path, sets);
    const auto back = exsal::read_gmt(path);
    REQUIRE(back.size() == sets.size());
    for (std::size_t s = 0; s < sets.size(); ++s) {
        CHECK(back[s].name == sets[s].name);
        CHECK(back[s].description == sets[s].description);
        CHECK(back[s].genes == sets[s].genes);
    }
    auto bad = sets;
    bad[1].name = "SET_ONE";
    CHECK_THROWS_WITH_AS(exsal::write_gmt(tmp.file("bad.gmt"), bad), doctest::Contains("write_gmt: duplicate"), exsal::ArgumentError);
    bad = sets;
    bad[0].genes.push_back("G\tH");
    CHECK_THROWS_AS(exsal::write_gmt(tmp.file("bad.gmt"), bad), exsal::ArgumentError);
    bad = sets;
    bad[2].genes.clear();
    CHECK_THROWS_AS(exsal::write_gmt(tmp.file("bad.gmt"), bad), exsal::ArgumentError);
    bad = sets;
    bad[0].name = "";
    CHECK_THROWS_AS(exsal::write_gmt(tmp.file("bad.gmt"), bad), exsal::ArgumentError);
    CHECK_FALSE(fs::exists(tmp.file("bad.gmt")));
}

TEST_CASE("read_gmt errors name the path, the line and the problem") {
    TempDir tmp("gmt_errors");
    const std::string path = tmp.file("e.gmt");
    const std::string missing = tmp.file("missing.gmt");
    expect_file_error([&] { exsal::read_gmt(missing); }, missing, 0, 0, {"cannot open"});
    write_bytes(path, "");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 0, 0, {"empty file"});
    write_bytes(path, "\n\n \t\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 0, 0, {"no gene sets"});
    write_bytes(path, std::string("S\td\tA\0B\n", 9));
    expect_file_error([&] { exsal::read_gmt(path); }, path, 1, 6, {"binary file", "NUL byte"});
    write_bytes(path, "S1\td\tA\nS2 d A B\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 2, 0, {"at least 3 tab-separated fields", "found 1"});
    write_bytes(path, "S1\td\tA\n\nS2\td\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 3, 0, {"at least 3", "found 2"});
    write_bytes(path, "S1\td\tA\nS2\td\tB\nS1\tagain\tC\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 3, 1, {"duplicate gene set name \"S1\"", "lines 1 and 3"});
    write_bytes(path, "S1\td\t\t \t\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 1, 0, {"\"S1\" lists no genes"});
    write_bytes(path, "\td\tA\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, 1, 1, {"empty gene set name"});
    write_bytes(path, "KEGG_A\td\tA\nREACTOME_B\td\tB\n");
    exsal::GmtReadOptions opt;
    opt.name_prefix = "HALLMARK_";
    expect_file_error([&] { exsal::read_gmt(path, opt); }, path, 0, 0, {"no usable gene set", "\"HALLMARK_\"", "2 set"});
}

TEST_CASE("gene_set_coverage: rows of each set's genes in set order, first occurrence, agreeing with brute force") {
    const exsal::GeneSetCollection sets = {{"S1", "", {"C", "A", "Z", "B"}}, {"S2", "", {"Y"}}, {"S3", "", {"B", "B", "A"}}};
    const std::vector<std::string> genes = {"A", "B", "C", "D", "B"};
    const auto cov = exsal::gene_set_coverage(sets, genes);
    REQUIRE(cov.size() == 3);
    CHECK(cov[0].name == "S1");
    CHECK(cov[0].genes_in_set == 4);
    CHECK(cov[0].genes_found == 3);
    CHECK(cov[0].rows == std::vector<Index>{2, 0, 1});
    CHECK(cov[1].genes_found == 0);
    CHECK(cov[1].rows.empty());
    CHECK(cov[2].genes_in_set == 2); // B listed twice counts once
    CHECK(cov[2].rows == std::vector<Index>{1, 0});
    // Random collections against a linear search.
    exsal::Rng rng(5);
    std::vector<std::string> universe;
    for (int i = 0; i < 400; ++i) universe.push_back("G" + std::to_string(i));
    std::vector<std::string> list;
    for (int i = 0; i < 250; ++i) list.push_back(universe[rng.below(universe.size())]);
    exsal::GeneSetCollection random_sets(30);
    for (std::size_t s = 0; s < random_sets.size(); ++s) {
        random_sets[s].name = "R" + std::to_string(s);
        std::vector<std::string> pool = universe;
        rng.shuffle(pool);
        random_sets[s].genes.assign(pool.begin(), pool.begin() + static_cast<long>(1 + rng.below(60)));
    }
    const auto rc = exsal::gene_set_coverage(random_sets, list);
    bool agree = true;
    for (std::size_t s = 0; s < random_sets.size(); ++s) {
        std::vector<Index> want;
        for (const auto& g : random_sets[s].genes) {
            const auto it = std::find(list.begin(), list.end(), g);
            if (it != list.end()) want.push_back(it - list.begin());
        }
        agree = agree && rc[s].rows == want && rc[s].genes_found == static_cast<Index>(want.size()) &&
                rc[s].genes_in_set == static_cast<Index>(random_sets[s].genes.size());
    }
    CHECK(agree);
}

TEST_CASE("duplicate cell ids in a genes-in-rows header are refused naming both fields") {
    TempDir tmp("dup_cells");
    const std::string path = tmp.file("g.csv");
    write_bytes(path, "gene,c1,c2,c1\nG1,1,2,3\n");
    ExpressionReadOptions o;
    o.genes_in_rows = true;
    expect_file_error([&] { exsal::read_expression(path, o); }, path, 1, 4, {"duplicate cell id \"c1\"", "fields 2 and 4"});
}
