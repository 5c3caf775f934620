// Malformed-input catalogue at library level (issue 7), beyond what test_io, test_nn and test_data
// already check: regression tests of the fuzzing findings, exhaustive truncation and bit flips
// of model files and compressed tables, checksum-valid model files with impossible contents,
// foreign and random bytes fed to every reader, atomic writes under failure, and the data edge
// cases a pipeline meets (all-zero cells and genes, nothing left after a step, no shared genes).
// The promise checked everywhere: a bad input ends in an exsal::Error that names the file (and
// the line where there is one), never in another exception, a crash, a hang or a partial file.

#include <doctest/doctest.h>

#include "test_files.hpp"

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/serialize.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/expression_writer.hpp"
#include "exsal/io/gmt.hpp"
#include "exsal/nn/model_file.hpp"

#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using exsal::ExpressionMatrix;
using exsal::FileError;
using exsal::Index;

namespace {

using exsal_test::gzip_member;
using exsal_test::read_bytes;
using exsal_test::TempDir;
using exsal_test::write_bytes;

// What one call did: "ok", "file:<path>:<line>" for a FileError, or the other exception's text.
struct Outcome {
    bool ok = false;
    bool file_error = false;
    std::string path;
    std::size_t line = 0;
    std::string what;
};

Outcome run(const std::function<void()>& f) {
    Outcome o;
    try {
        f();
        o.ok = true;
    } catch (const FileError& e) {
        o.file_error = true;
        o.path = e.path();
        o.line = e.line();
        o.what = e.what();
    } catch (const std::exception& e) {
        o.what = std::string("other exception: ") + e.what();
    } catch (...) {
        o.what = "unknown exception";
    }
    return o;
}

// f must throw a FileError for `path` whose message holds every one of `words`.
void expect_file_error(const std::function<void()>& f, const std::string& path, std::initializer_list<std::string> words) {
    const Outcome o = run(f);
    INFO("outcome: " << (o.ok ? std::string("no error") : o.what));
    REQUIRE(o.file_error);
    CHECK(o.path == path);
    CHECK(o.what.rfind(path + ":", 0) == 0);
    for (const auto& w : words) CHECK_MESSAGE(o.what.find(w) != std::string::npos, "missing words: " << w);
}

// Runs f on another thread and gives up the whole test program if it has not returned after
// `seconds`: a hang must fail the suite, not stall it.
void without_hanging(int seconds, const std::function<void()>& f) {
    auto done = std::async(std::launch::async, f);
    if (done.wait_for(std::chrono::seconds(seconds)) == std::future_status::timeout) {
        std::fprintf(stderr, "test_reliability: the call did not return within %d s (hang)\n", seconds);
        std::fflush(stderr);
        std::_Exit(3);
    }
    done.get();
}

// Model files: the payload of the current format, and a whole file around a payload.
struct ModelPayload {
    std::int64_t n_genes = 4;
    std::vector<std::int64_t> hidden{3, 2, 3};
    std::int64_t representation = 1;
    std::vector<std::pair<std::uint32_t, double>> activations{{0, 0.0}, {0, 0.0}, {0, 0.0}, {0, 0.0}};
    std::vector<double> params = std::vector<double>(3 * 5 + 2 * 4 + 3 * 3 + 4 * 4, 0.125);
    std::string preprocessing;
    std::uint64_t hidden_count_override = 0; // != 0: written instead of hidden.size()

    std::string bytes() const {
        exsal::detail::ByteWriter p;
        p.str(EXSAL_VERSION_STRING);
        p.i64(n_genes);
        p.u64(hidden_count_override ? hidden_count_override : hidden.size());
        for (auto h : hidden) p.i64(h);
        p.i64(representation);
        p.u64(activations.size());
        for (const auto& a : activations) {
            p.u32(a.first);
            p.f64(a.second);
        }
        p.f64s(params);
        p.str(preprocessing);
        return p.take();
    }
};

std::string model_file(const std::string& payload, std::uint32_t version = exsal::model_file_version) {
    exsal::detail::ByteWriter f;
    for (int i = 0; i < 8; ++i) f.u8(static_cast<std::uint8_t>(exsal::model_file_magic[i]));
    f.u32(version);
    f.u64(payload.size());
    std::string bytes = f.take() + payload;
    exsal::detail::ByteWriter tail;
    tail.u64(exsal::detail::fnv1a64(payload));
    return bytes + tail.bytes();
}

ExpressionMatrix small_counts(Index genes, Index cells, std::uint64_t seed) {
    exsal::Rng rng(seed);
    ExpressionMatrix m;
    m.values.resize(genes, cells);
    for (Index c = 0; c < cells; ++c)
        for (Index g = 0; g < genes; ++g) m.values(g, c) = static_cast<float>(rng.poisson(3.0));
    for (Index g = 0; g < genes; ++g) m.genes.push_back("G" + std::to_string(g));
    for (Index c = 0; c < cells; ++c) m.cells.push_back("c" + std::to_string(c));
    return m;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Regression tests of fuzzing findings
// ---------------------------------------------------------------------------------------------

TEST_CASE("fuzz finding: a table over 48 MiB whose last line lacks its newline reads completely, without hanging") {
    // io::LineReader tests the byte after the data to end a last line without a newline. Past
    // 48 MiB that byte is stale text of an earlier block; a '\n' there (here: file byte S - 16 MiB)
    // made next_line() run past the data and then wait forever for its finished reading thread.
    constexpr std::size_t block = std::size_t(1) << 24;
    TempDir tmp("big");
    std::string text = "sample,G\n";
    text.reserve(3 * block + 4096);
    char row[32];
    for (std::size_t i = 0; text.size() < 3 * block + 1000; ++i) {
        std::snprintf(row, sizeof row, "c%07zu,%06zu\n", i, i % 1000); // 16 bytes per row
        text += row;
    }
    // The cut: a complete last row without its '\n', with a '\n' at S - block.
    std::size_t s = text.size() - 1;
    while (!(text[s] == '\n' && text[s - block] == '\n')) --s;
    text.resize(s);
    const std::size_t rows = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); // header + all but the last row
    const std::string path = tmp.file("big.csv");
    write_bytes(path, text);
    without_hanging(600, [&] {
        const ExpressionMatrix m = exsal::read_expression(path);
        CHECK(static_cast<std::size_t>(m.n_cells()) == rows);
        char last[16];
        std::snprintf(last, sizeof last, "c%07zu", rows - 1);
        CHECK(m.cells.back() == last);
        CHECK(m.values(0, m.n_cells() - 1) == static_cast<float>((rows - 1) % 1000));
        std::size_t lines = 0;
        exsal::TextLineReader in(path);
        while (in.next_line()) ++lines;
        CHECK(lines == rows + 1);
    });
}

TEST_CASE("fuzz finding: checksum-valid model files with impossible contents are refused before anything is allocated") {
    TempDir tmp("model_payload");
    const std::string path = tmp.file("m.exsal");
    const auto expect = [&](const ModelPayload& p, std::initializer_list<std::string> words) {
        write_bytes(path, model_file(p.bytes()));
        expect_file_error([&] { exsal::load_model<float>(path); }, path, words);
    };
    ModelPayload good;
    write_bytes(path, model_file(good.bytes()));
    REQUIRE(exsal::load_model<float>(path).model.parameters().size() == static_cast<Index>(good.params.size()));

    ModelPayload p = good;
    p.n_genes = std::int64_t(1) << 40; // would be 2^42 floats: refused by the count, not by bad_alloc
    p.hidden = {1, 1, 1};
    expect(p, {"holds 48 parameters", "architecture needs " + std::to_string((std::int64_t(3) << 40) + 5)});
    p.n_genes = std::int64_t(1) << 62; // (in + 1) * out overflows 64 bits
    p.hidden = {std::int64_t(1) << 62, 2, 3};
    expect(p, {"more than 2^64"});
    p = good;
    p.params.pop_back();
    expect(p, {"holds 47 parameters", "needs 48"});
    p = good;
    p.n_genes = 0;
    expect(p, {"invalid architecture", "n_genes"});
    p = good;
    p.hidden = {3, -2, 3};
    expect(p, {"invalid architecture", "widths"});
    p = good;
    p.representation = 3;
    expect(p, {"invalid architecture", "representation"});
    p = good;
    p.hidden_count_override = std::uint64_t(1) << 40;
    expect(p, {"implausible layer count"});
    p = good;
    p.activations[2].first = 9;
    expect(p, {"unknown activation code 9"});
    p = good;
    p.activations[0].second = std::numeric_limits<double>::infinity();
    expect(p, {"not finite"});
    p = good;
    p.activations[0].second = std::numeric_limits<double>::quiet_NaN();
    expect(p, {"softplus beta"});
    p = good;
    p.activations.pop_back();
    expect(p, {"needs 4 activations"});
    // Non-finite parameters, and finite doubles beyond the float range (load as double only).
    p = good;
    p.params[7] = std::numeric_limits<double>::quiet_NaN();
    expect(p, {"parameter 7", "not a finite float"});
    p.params[7] = -std::numeric_limits<double>::infinity();
    expect(p, {"parameter 7"});
    p.params[7] = 1e300;
    expect(p, {"parameter 7", "not a finite float"});
    CHECK(exsal::load_model<double>(path).model.parameters()[7] == 1e300);
    // Stored preprocessing state that is not one: the model loads, the state names the file.
    p = good;
    p.preprocessing = "EXSALPRE but nothing else";
    write_bytes(path, model_file(p.bytes()));
    const auto loaded = exsal::load_model<float>(path);
    expect_file_error([&] { exsal::Preprocessor::deserialize(loaded.preprocessing, path); }, path, {"preprocessor state"});
    // Another format version, and bytes after the checksum.
    write_bytes(path, model_file(good.bytes(), 2));
    expect_file_error([&] { exsal::load_model<float>(path); }, path, {"version 2 is not supported"});
    write_bytes(path, model_file(good.bytes()) + "x");
    expect_file_error([&] { exsal::load_model<float>(path); }, path, {"trailing bytes"});
}

TEST_CASE("fuzz finding: save_model refuses non-finite parameters and leaves the existing file alone") {
    TempDir tmp("save_nan");
    exsal::AutoencoderConfig cfg;
    cfg.n_genes = 5;
    cfg.hidden = {4, 2, 4};
    exsal::Autoencoder<float> net(cfg);
    net.initialize(1);
    const std::string path = tmp.file("model.exsal");
    exsal::save_model(path, net);
    const std::string before = read_bytes(path);
    net.parameters()[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(exsal::save_model(path, net), doctest::Contains("non-finite"), exsal::NumericError);
    CHECK(read_bytes(path) == before);
    CHECK(tmp.entries() == std::vector<std::string>{"model.exsal"}); // no temporary left behind
    const std::string fresh = tmp.file("fresh.exsal");
    CHECK_THROWS_AS(exsal::save_model(fresh, net), exsal::NumericError);
    CHECK_FALSE(fs::exists(fresh));
}

TEST_CASE("fuzz finding: a first field that begins with a byte order mark is refused by the writers, not written unreadable") {
    // The GMT target read "     \xfe\xff...\t\tGA" as a set named "\xfe\xff..." (the blanks are
    // trimmed); write_gmt put that name first in the file, and read_gmt then took the file for
    // UTF-16 text. A leading UTF-8 byte order mark would be dropped on reading instead.
    TempDir tmp("bom_first");
    const std::string fuzz_input = tmp.file("fuzz.gmt");
    write_bytes(fuzz_input, "     \xfe\xff\xff\xff\xff\xff\xff\xff   \t\tGA");
    const exsal::GeneSetCollection from_fuzz = exsal::read_gmt(fuzz_input);
    REQUIRE(from_fuzz.size() == 1);
    CHECK(from_fuzz[0].name == std::string(8, '\xff').replace(0, 1, "\xfe"));
    const std::string out = tmp.file("out.gmt");
    CHECK_THROWS_WITH_AS(exsal::write_gmt(out, from_fuzz), doctest::Contains("UTF-16 byte order mark (FE FF)"),
                         exsal::ArgumentError);
    CHECK_FALSE(fs::exists(out));
    for (const std::string& mark : {std::string("\xef\xbb\xbf"), std::string("\xff\xfe"), std::string("\xfe\xff")}) {
        CAPTURE(mark.size());
        exsal::GeneSetCollection sets(2);
        sets[0].name = mark + "FIRST";
        sets[0].genes = {"A"};
        sets[1].name = "SECOND";
        sets[1].genes = {"B"};
        CHECK_THROWS_WITH_AS(exsal::write_gmt(out, sets), doctest::Contains("byte order mark"), exsal::ArgumentError);
        CHECK_FALSE(fs::exists(out));
        std::swap(sets[0], sets[1]); // not first in the file: written and read back as it is
        exsal::write_gmt(out, sets);
        const exsal::GeneSetCollection back = exsal::read_gmt(out, {});
        REQUIRE(back.size() == 2);
        CHECK(back[1].name == mark + "FIRST");
        fs::remove(out);

        ExpressionMatrix m;
        m.genes = {mark + "G1", "G2"};
        m.cells = {mark + "C1"};
        m.values = exsal::MatrixF::Ones(2, 1);
        const std::string table = tmp.file("t.csv");
        exsal::ExpressionWriteOptions w;
        w.id_column = mark + "cell";
        CHECK_THROWS_WITH_AS(exsal::write_expression(table, m, w), doctest::Contains("id_column"), exsal::ArgumentError);
        w.genes_in_rows = true;
        w.gene_column = mark + "gene";
        CHECK_THROWS_WITH_AS(exsal::write_expression(table, m, w), doctest::Contains("gene_column"), exsal::ArgumentError);
        CHECK_FALSE(fs::exists(table));
        // Names elsewhere in the header are fine, in both layouts.
        for (bool rows : {false, true}) {
            exsal::ExpressionWriteOptions ok;
            ok.genes_in_rows = rows;
            exsal::write_expression(table, m, ok);
            exsal::ExpressionReadOptions r;
            r.genes_in_rows = rows;
            const ExpressionMatrix again = exsal::read_expression(table, r);
            CHECK(again.genes == m.genes);
            CHECK(again.cells == m.cells);
        }
        fs::remove(table);
    }
}

// ---------------------------------------------------------------------------------------------
// Model files: every truncation, every bit flip
// ---------------------------------------------------------------------------------------------

TEST_CASE("model file: every truncation and every single-bit flip is refused with a FileError naming the file") {
    TempDir tmp("model_flips");
    exsal::AutoencoderConfig cfg;
    cfg.n_genes = 4;
    cfg.hidden = {3, 2, 3};
    exsal::Autoencoder<float> net(cfg);
    net.initialize(7);
    ExpressionMatrix train = small_counts(4, 6, 2);
    const std::string state = exsal::Preprocessor::fit(train, exsal::InputTransform::log1p).serialize();
    const std::string path = tmp.file("m.exsal");
    exsal::save_model(path, net, state);
    const std::string bytes = read_bytes(path);
    REQUIRE(exsal::load_model<float>(path).model.parameters() == net.parameters());

    const std::string bad = tmp.file("bad.exsal");
    std::size_t refused = 0, total = 0;
    std::string first_problem;
    const auto attempt = [&](const std::string& content) {
        write_bytes(bad, content);
        const Outcome o = run([&] { exsal::load_model<float>(bad); });
        ++total;
        if (o.file_error && o.path == bad && o.what.rfind(bad + ": ", 0) == 0)
            ++refused;
        else if (first_problem.empty())
            first_problem = o.ok ? "accepted" : o.what;
    };
    for (std::size_t n = 0; n < bytes.size(); ++n) attempt(bytes.substr(0, n));
    for (std::size_t i = 0; i < bytes.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            std::string b = bytes;
            b[i] = static_cast<char>(b[i] ^ (1 << bit));
            attempt(b);
        }
    INFO("first problem: " << first_problem);
    CHECK(total == bytes.size() * 9);
    CHECK(refused == total);
}

// ---------------------------------------------------------------------------------------------
// Expression tables: truncation, bit flips, foreign bytes
// ---------------------------------------------------------------------------------------------

TEST_CASE("expression table cut at every byte: read as its complete rows or refused at a line of the file") {
    TempDir tmp("cut");
    const std::string text = "sample,cluster,G1,G2,G3\r\nc1,a,1,2.5,0\r\n\"c,2\",b,10,0,3e2\r\nc3,,0,0,7\r\n";
    const std::string path = tmp.file("t.csv");
    write_bytes(path, text);
    const ExpressionMatrix full = exsal::read_expression(path);
    REQUIRE(full.n_cells() == 3);
    for (std::size_t n = 0; n < text.size(); ++n) {
        CAPTURE(n);
        const std::string cut = text.substr(0, n);
        write_bytes(path, cut);
        ExpressionMatrix m;
        const Outcome o = run([&] { m = exsal::read_expression(path); });
        if (o.ok) {
            // Only cuts at a row end (or after the number of a last field) may read; the cells
            // read are a prefix of the full table's cells.
            REQUIRE(m.n_cells() >= 1);
            REQUIRE(m.n_cells() <= full.n_cells());
            CHECK(m.genes == full.genes);
            for (Index c = 0; c + 1 < m.n_cells(); ++c) CHECK(m.values.col(c) == full.values.col(c));
            CHECK(m.cells.back() == full.cells[static_cast<std::size_t>(m.n_cells() - 1)]);
        } else {
            INFO(o.what);
            REQUIRE(o.file_error);
            CHECK(o.path == path);
            const auto lines = static_cast<std::size_t>(std::count(cut.begin(), cut.end(), '\n')) + 1;
            CHECK(o.line <= lines);
        }
    }
}

TEST_CASE("gzip table: every truncation is refused; every bit flip is refused or reads the same table") {
    TempDir tmp("gzip_flips");
    std::string text = "sample,cluster,G1,G2\n";
    for (int c = 0; c < 12; ++c) text += "cell" + std::to_string(c) + ",g" + std::to_string(c % 3) + "," + std::to_string(c) + ",1\n";
    const std::string gz = gzip_member(text);
    const std::string path = tmp.file("t.csv.gz");
    write_bytes(path, gz);
    const ExpressionMatrix full = exsal::read_expression(path);
    REQUIRE(full.n_cells() == 12);
    std::size_t refused = 0, same = 0, total = 0;
    std::string problem;
    for (std::size_t n = 2; n < gz.size(); ++n) { // from the magic bytes on (shorter is plain text)
        write_bytes(path, gz.substr(0, n));
        const Outcome o = run([&] { exsal::read_expression(path); });
        ++total;
        if (o.file_error && o.path == path) ++refused;
        else if (problem.empty()) problem = "cut at " + std::to_string(n) + ": " + (o.ok ? "accepted" : o.what);
    }
    CHECK(refused == total);
    refused = total = 0;
    for (std::size_t i = 0; i < gz.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            std::string b = gz;
            b[i] = static_cast<char>(b[i] ^ (1 << bit));
            write_bytes(path, b);
            ExpressionMatrix m;
            const Outcome o = run([&] { m = exsal::read_expression(path); });
            ++total;
            if (o.file_error && o.path == path) ++refused;
            else if (o.ok && m.cells == full.cells && m.genes == full.genes && m.values == full.values) ++same; // header fields (time, OS)
            else if (problem.empty()) problem = "flip at " + std::to_string(i) + ": " + (o.ok ? "a different table" : o.what);
        }
    INFO("first problem: " << problem);
    CHECK(refused + same == total);
    CHECK(refused > total / 2);
}

TEST_CASE("foreign and random bytes: every reader refuses them with a FileError naming the file") {
    TempDir tmp("foreign");
    exsal::AutoencoderConfig cfg;
    cfg.n_genes = 3;
    cfg.hidden = {2, 1, 2};
    exsal::Autoencoder<float> net(cfg);
    net.initialize(1);
    exsal::save_model(tmp.file("model.exsal"), net);
    std::vector<std::pair<std::string, std::string>> inputs = {
        {"png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)},
        {"elf", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", 16)},
        {"zip", std::string("PK\x03\x04\x14\0\0\0\x08\0", 10)},
        {"hdf5", std::string("\x89HDF\r\n\x1a\n", 8)},
        {"model", read_bytes(tmp.file("model.exsal"))},
        {"gzip_of_binary", gzip_member(std::string("\x01\x02\x03\0\xff", 5))},
        {"gzip_magic_only", "\x1f\x8b"},
        {"gzip_empty_then_garbage", gzip_member("") + "garbage"},
        {"utf16be", std::string("\xfe\xff\0s\0a", 6)},
    };
    exsal::Rng rng(11);
    for (int k = 0; k < 40; ++k) { // random bytes of random lengths
        std::string b(1 + rng.below(600), '\0');
        for (char& ch : b) ch = static_cast<char>(rng.below(256));
        inputs.emplace_back("random" + std::to_string(k), b);
    }
    exsal::ExpressionReadOptions rows;
    rows.genes_in_rows = true;
    const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> readers = {
        {"read_expression", [](const std::string& p) { exsal::read_expression(p); }},
        {"read_expression genes_in_rows", [&](const std::string& p) { exsal::read_expression(p, rows); }},
        {"read_gmt", [](const std::string& p) { exsal::read_gmt(p); }},
        {"load_model", [](const std::string& p) { exsal::load_model<float>(p); }},
        {"Preprocessor::deserialize", [](const std::string& p) { exsal::Preprocessor::deserialize(read_bytes(p), p); }},
    };
    for (const auto& name_bytes : inputs) {
        const auto& name = name_bytes.first;
        const auto& bytes = name_bytes.second;
        const std::string path = tmp.file(name);
        write_bytes(path, bytes);
        for (const auto& reader_f : readers) {
            const auto& reader = reader_f.first;
            const auto& f = reader_f.second;
            if (name == "model" && reader == "load_model") continue;
            CAPTURE(name);
            CAPTURE(reader);
            const Outcome o = run([&] { f(path); });
            INFO(o.what);
            CHECK(o.file_error);
            CHECK(o.path == path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GMT files
// ---------------------------------------------------------------------------------------------

TEST_CASE("GMT: BOM and CRLF read; gzip cut or corrupt, binary and header-like junk refused with the line") {
    TempDir tmp("gmt");
    const std::string path = tmp.file("s.gmt");
    write_bytes(path, "\xef\xbb\xbfHALLMARK_A\tdesc\tg1\tG2\r\nHALLMARK_B\t\tX\r\n");
    const auto sets = exsal::read_gmt(path);
    REQUIRE(sets.size() == 2);
    CHECK(sets[0].name == "HALLMARK_A"); // the BOM is not part of the first name
    CHECK(sets[0].genes == std::vector<std::string>{"G1", "G2"});
    CHECK(sets[1].genes == std::vector<std::string>{"X"});
    // gzip: whole reads, cut is refused.
    const std::string gz = gzip_member("HALLMARK_A\tdesc\tg1\tG2\nHALLMARK_B\t\tX\n");
    write_bytes(path, gz);
    CHECK(exsal::read_gmt(path).size() == 2);
    write_bytes(path, gz.substr(0, gz.size() - 5));
    expect_file_error([&] { exsal::read_gmt(path); }, path, {"truncated gzip stream"});
    // A CSV expression table given as gene sets: one field per line.
    write_bytes(path, "sample,cluster,G1\nc1,a,1\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, {"expected at least 3 tab-separated fields"});
    const Outcome o = run([&] { exsal::read_gmt(path); });
    CHECK(o.line == 1);
    // Spaces instead of tabs (a copy-paste from a web page).
    write_bytes(path, "HALLMARK_A desc G1 G2\n");
    expect_file_error([&] { exsal::read_gmt(path); }, path, {"found 1"});
    // Binary content past the first line.
    write_bytes(path, std::string("HALLMARK_A\td\tG1\nHALLMARK_B\td\t\0\0\n", 32));
    expect_file_error([&] { exsal::read_gmt(path); }, path, {"binary file"});
}

// ---------------------------------------------------------------------------------------------
// Writes: atomic under failure
// ---------------------------------------------------------------------------------------------

TEST_CASE("write_file_atomically: a failing writer leaves the old file intact and no temporary; a missing folder is a FileError") {
    TempDir tmp("atomic");
    const std::string path = tmp.file("table.csv");
    exsal::write_file_atomically(path, std::string("old content\n"));
    CHECK_THROWS_WITH(exsal::write_file_atomically(path,
                                                   [](std::ostream& out) {
                                                       out << "half of the new";
                                                       throw exsal::NumericError("stopped half way");
                                                   }),
                      "stopped half way");
    CHECK(read_bytes(path) == "old content\n");
    CHECK(tmp.entries() == std::vector<std::string>{"table.csv"});
    const std::string nowhere = tmp.file("no/such/folder/x.csv");
    expect_file_error([&] { exsal::write_file_atomically(nowhere, std::string("x")); }, nowhere, {"cannot create file"});
    // A directory in the way of the final name: the rename fails, nothing is left behind.
    fs::create_directories(tmp.file("taken"));
    fs::create_directories(tmp.file("taken/sub"));
    const std::string taken = tmp.file("taken");
    expect_file_error([&] { exsal::write_file_atomically(taken, std::string("x")); }, taken, {"cannot rename"});
    CHECK(fs::is_directory(taken));
    std::vector<std::string> names = tmp.entries();
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"table.csv", "taken"});
}

// ---------------------------------------------------------------------------------------------
// Data edge cases: zeros, nothing left, no shared genes, too few cells
// ---------------------------------------------------------------------------------------------

TEST_CASE("all-zero cells and genes: filtered or mapped to finite inputs by every transform") {
    ExpressionMatrix m = small_counts(6, 10, 5);
    m.values.row(2).setZero();                    // a gene never expressed
    m.values.col(4).setZero();                    // a cell with no counts
    m.values.row(5).setConstant(3.0f);            // a constant gene (minmax range 0)
    m.values.row(0).setZero();
    m.values(0, 1) = 9.0f;                        // a gene expressed in one cell only
    exsal::PreprocessOptions opt;
    opt.validation_fraction = 0.2;
    for (auto t : {exsal::InputTransform::none, exsal::InputTransform::log1p, exsal::InputTransform::minmax,
                   exsal::InputTransform::cpm_log1p}) {
        CAPTURE(exsal::input_transform_name(t));
        opt.transform = t;
        const exsal::PreparedData d = exsal::prepare(m, opt);
        CHECK(std::find(d.train.genes.begin(), d.train.genes.end(), "G2") == d.train.genes.end()); // max 0 <= 2
        CHECK(d.report.genes_removed_by_filter >= 1);
        CHECK(d.train_input.allFinite());
        CHECK(d.validation_input.allFinite());
        // The zero cell maps to zeros (log1p, cpm_log1p) or to the training minimum's image.
        const exsal::MatrixF zero = exsal::MatrixF::Zero(d.preprocessor.n_genes(), 1);
        const exsal::MatrixF z = d.preprocessor.transform(zero);
        CHECK(z.allFinite());
        if (t != exsal::InputTransform::minmax) CHECK(z.isZero(0.0f));
    }
}

TEST_CASE("nothing left after a step, no shared genes, too few cells: each step says which and why") {
    ExpressionMatrix zeros = small_counts(4, 40, 1);
    zeros.values.setZero();
    CHECK_THROWS_WITH_AS(exsal::prepare(zeros), doctest::Contains("filter_genes_by_max: no gene has a value > 2"),
                         exsal::ArgumentError);
    ExpressionMatrix low = small_counts(4, 40, 1);
    low.values.setConstant(1.0f); // counts of 1 only: nothing above the reference threshold
    CHECK_THROWS_WITH_AS(exsal::prepare(low), doctest::Contains("lower the threshold"), exsal::ArgumentError);

    const ExpressionMatrix m = small_counts(5, 20, 2);
    const exsal::GeneSetCollection mouse = {{"HALLMARK_X", "", {"Gapdh", "Actb"}}, {"HALLMARK_Y", "", {"Tp53"}}};
    CHECK_THROWS_WITH_AS(exsal::prepare(m, mouse),
                         doctest::Contains("restrict_to_gene_sets: none of the"),
                         exsal::ArgumentError);
    CHECK_THROWS_WITH_AS(exsal::prepare(m, exsal::GeneSetCollection{}), doctest::Contains("collection is empty"),
                         exsal::ArgumentError);

    ExpressionMatrix one = small_counts(5, 1, 3);
    one.values.setConstant(5.0f);
    CHECK_THROWS_WITH_AS(exsal::prepare(one), doctest::Contains("split_train_validation"), exsal::ArgumentError);
    exsal::PreprocessOptions no_validation;
    no_validation.validation_fraction = 0.0;
    CHECK(exsal::prepare(one, no_validation).train.n_cells() == 1);
    ExpressionMatrix none = small_counts(5, 0, 3);
    CHECK_THROWS_WITH_AS(exsal::prepare(none), doctest::Contains("need at least one cell"), exsal::ArgumentError);
}

TEST_CASE("a model whose genes do not match the data: no shared gene is an error naming both sides; case does not matter") {
    ExpressionMatrix train = small_counts(4, 6, 9);
    train.genes = {"GAPDH", "ACTB", "TP53", "MYC"};
    const exsal::Preprocessor p = exsal::Preprocessor::fit(train, exsal::InputTransform::log1p);
    ExpressionMatrix mouse = small_counts(3, 2, 10);
    mouse.genes = {"Xist", "Hba-a1", "Ptprc"};
    CHECK_THROWS_WITH_AS(p.align(mouse), doctest::Contains("none of the model's 4 genes"), exsal::ArgumentError);
    CHECK_THROWS_WITH_AS(p.align(mouse), doctest::Contains("GAPDH"), exsal::ArgumentError);
    CHECK_THROWS_WITH_AS(p.align(mouse), doctest::Contains("Xist"), exsal::ArgumentError);
    ExpressionMatrix lower = small_counts(2, 2, 11);
    lower.genes = {"myc", "gapdh"};
    const auto a = p.align(lower);
    CHECK(a.genes_missing == 2);
    CHECK(a.values.row(0) == lower.values.row(1)); // GAPDH <- gapdh
    CHECK(a.values.row(3) == lower.values.row(0)); // MYC <- myc
    ExpressionMatrix twice = small_counts(2, 2, 12);
    twice.genes = {"Myc", "MYC"};
    CHECK_THROWS_WITH_AS(p.align(twice), doctest::Contains("same symbol after upper-casing"), exsal::ArgumentError);
    // The model's own shape: a transform of the wrong number of genes names the function.
    CHECK_THROWS_WITH_AS(p.transform(exsal::MatrixF::Zero(3, 1)), doctest::Contains("Preprocessor::transform"),
                         exsal::ArgumentError);
}
