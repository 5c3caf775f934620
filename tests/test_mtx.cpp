// Tests of the 10x Genomics MTX folder reader and of the cell groups table.
// Oracles: dense matrices written by hand or drawn at random (compared through
// SparseExpression::to_dense), scanpy's var_names_make_unique worked out by hand, zlib for gzip,
// and the committed format fixtures, whose 10x folders must give expression.csv.

#include <doctest/doctest.h>

#include "test_files.hpp"

#include "exsal/io/cell_groups.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/mtx.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using exsal::FileError;
using exsal::Index;
using exsal::SparseExpression;

namespace {

using exsal_test::gzip_member;
using exsal_test::TempDir;
using exsal_test::write_bytes;

// Five features, one of them an antibody, "GeneA" twice; three barcodes; entries in column
// order, but not in row order within column 3.
const std::string features_v3 = "ENSG1\tGeneA\tGene Expression\n"
                                "AB1\tCD3_TotalSeqB\tAntibody Capture\n"
                                "ENSG2\tGeneB\tGene Expression\n"
                                "ENSG3\tGeneA\tGene Expression\n"
                                "ENSG4\tGeneC\tGene Expression\n";
const std::string barcodes_3 = "AAAC-1\nAAAG-1\nAAAT-1\n";
const std::string matrix_5x3 = "%%MatrixMarket matrix coordinate integer general\n"
                               "%metadata_json: {\"software_version\": \"cellranger-7.1.0\"}\n"
                               "5 3 7\n"
                               "1 1 3\n"
                               "2 1 9\n"
                               "3 1 1\n"
                               "5 2 4\n"
                               "4 3 2\n"
                               "1 3 7\n"
                               "2 3 5\n";

// The three files of a 10x folder, written into a subfolder of a TempDir.
struct TenxFolder {
    std::string matrix = matrix_5x3;
    std::string features = features_v3;
    std::string barcodes = barcodes_3;
    bool gzip = false;
    bool v2 = false;         // genes.tsv instead of features.tsv
    std::string prefix;      // of every file name

    std::string write(const TempDir& tmp, const std::string& name) const {
        const fs::path dir = tmp.dir / name;
        fs::create_directories(dir);
        const auto put = [&](const std::string& base, const std::string& text) {
            write_bytes((dir / (prefix + base + (gzip ? ".gz" : ""))).string(), gzip ? gzip_member(text) : text);
        };
        put("matrix.mtx", matrix);
        put(v2 ? "genes.tsv" : "features.tsv", features);
        put("barcodes.tsv", barcodes);
        return dir.string();
    }
    std::string file(const TempDir& tmp, const std::string& name, const std::string& base) const {
        return (tmp.dir / name / (prefix + base + (gzip ? ".gz" : ""))).string();
    }
};

// genes x cells as the fixture's files describe them (features 2 dropped, 4 renamed).
exsal::MatrixF expected_5x3() {
    exsal::MatrixF e = exsal::MatrixF::Zero(4, 3);
    e(0, 0) = 3; // GENEA
    e(0, 2) = 7;
    e(1, 0) = 1; // GENEB
    e(2, 2) = 2; // GENEA-1
    e(3, 1) = 4; // GENEC
    return e;
}

void check_csr_invariants(const SparseExpression& m) {
    m.check_consistent("test");
    for (Index c = 0; c < m.n_cells(); ++c)
        for (auto k = m.indptr[static_cast<std::size_t>(c)] + 1; k < m.indptr[static_cast<std::size_t>(c) + 1]; ++k)
            CHECK(m.indices[static_cast<std::size_t>(k) - 1] < m.indices[static_cast<std::size_t>(k)]);
}

void check_fixture(const SparseExpression& m) {
    check_csr_invariants(m);
    CHECK(m.genes == std::vector<std::string>{"GENEA", "GENEB", "GENEA-1", "GENEC"});
    CHECK(m.cells == std::vector<std::string>{"AAAC-1", "AAAG-1", "AAAT-1"});
    CHECK(m.groups.empty());
    CHECK(m.nnz() == 5);
    CHECK(m.to_dense().values == expected_5x3());
}

// The message of the FileError that read_10x_mtx(path) throws; other exception types fail the test.
std::string mtx_error(const std::string& path) {
    try {
        (void)exsal::read_10x_mtx(path);
    } catch (const FileError& e) {
        return e.what();
    }
    return "(no error)";
}

// The error starts with `where` ("path:line:column: " or "path: ") and holds every part.
void check_error(const std::string& message, const std::string& where, std::initializer_list<std::string> parts) {
    INFO(message);
    CHECK(message.rfind(where, 0) == 0);
    for (const auto& p : parts) CHECK(message.find(p) != std::string::npos);
}

// The fixture with the matrix file replaced; returns the path of its matrix file.
std::string with_matrix(const TempDir& tmp, const std::string& name, const std::string& matrix, std::string& dir) {
    TenxFolder f;
    f.matrix = matrix;
    dir = f.write(tmp, name);
    return f.file(tmp, name, "matrix.mtx");
}

const std::string banner = "%%MatrixMarket matrix coordinate integer general\n";

} // namespace

TEST_CASE("read_10x_mtx: Cell Ranger 3 folder, plain and gzip, by folder and by matrix file") {
    TempDir tmp("mtx_v3");
    TenxFolder f;
    exsal::TenxReadSummary s;
    const std::string plain = f.write(tmp, "plain");
    check_fixture(exsal::read_10x_mtx(plain, {}, &s));
    CHECK(s.matrix_path == f.file(tmp, "plain", "matrix.mtx"));
    CHECK(s.features_path == f.file(tmp, "plain", "features.tsv"));
    CHECK(s.barcodes_path == f.file(tmp, "plain", "barcodes.tsv"));
    CHECK(s.features_v3);
    CHECK(s.features_in_file == 5);
    CHECK(s.features_dropped == 1);
    CHECK(s.genes_renamed == 1);
    CHECK(s.entries_in_file == 7);
    CHECK(s.entries_dropped == 2);
    check_fixture(exsal::read_10x_mtx(f.file(tmp, "plain", "matrix.mtx")));

    f.gzip = true;
    const std::string gz = f.write(tmp, "gzip");
    check_fixture(exsal::read_10x_mtx(gz, {}, &s));
    CHECK(s.matrix_path == f.file(tmp, "gzip", "matrix.mtx"));
    check_fixture(exsal::read_10x_mtx(f.file(tmp, "gzip", "matrix.mtx")));

    // GEO names every file of a sample with the same prefix.
    f.prefix = "GSM1_";
    f.write(tmp, "geo");
    check_fixture(exsal::read_10x_mtx(f.file(tmp, "geo", "matrix.mtx")));
}

TEST_CASE("read_10x_mtx: columns out of order, rows out of order, keeping all feature types and the case") {
    TempDir tmp("mtx_order");
    TenxFolder f;
    f.matrix = banner + "5 3 7\n4 3 2\n5 2 4\n1 1 3\n2 3 5\n3 1 1\n1 3 7\n2 1 9\n";
    check_fixture(exsal::read_10x_mtx(f.write(tmp, "shuffled")));

    exsal::TenxReadOptions all;
    all.feature_type = "";
    all.upper_case_genes = false;
    exsal::TenxReadSummary s;
    const SparseExpression m = exsal::read_10x_mtx(f.write(tmp, "all"), all, &s);
    check_csr_invariants(m);
    CHECK(m.genes == std::vector<std::string>{"GeneA", "CD3_TotalSeqB", "GeneB", "GeneA-1", "GeneC"});
    CHECK(s.features_dropped == 0);
    CHECK(s.entries_dropped == 0);
    const exsal::MatrixF d = m.to_dense().values;
    CHECK(d(1, 0) == 9);
    CHECK(d(1, 2) == 5);
    CHECK(d(3, 2) == 2);

    exsal::TenxReadOptions antibodies;
    antibodies.feature_type = "Antibody Capture";
    const SparseExpression a = exsal::read_10x_mtx(f.write(tmp, "antibodies"), antibodies);
    CHECK(a.genes == std::vector<std::string>{"CD3_TOTALSEQB"});
    CHECK(a.to_dense().values == (exsal::MatrixF(1, 3) << 9, 0, 5).finished());
}

TEST_CASE("read_10x_mtx: Cell Ranger 2 genes.tsv, real values, CRLF, comments and blank lines") {
    TempDir tmp("mtx_v2");
    TenxFolder f;
    f.v2 = true;
    f.features = "ENSG1\tA\r\nENSG2\tB\r\n\r\nENSG3\tC\tignored\r\n";
    f.barcodes = "c1\r\nc2\r\n";
    f.matrix = "%%MatrixMarket matrix coordinate real general\r\n% comment\r\n%\r\n\r\n3 2 4\r\n"
               "1 1 1.5\r\n\r\n3 1 2e-1\r\n  2\t2  0.25  \r\n% a comment among entries\r\n3 2 -0\r\n";
    for (const bool gzip : {false, true}) {
        f.gzip = gzip;
        exsal::TenxReadSummary s;
        const SparseExpression m = exsal::read_10x_mtx(f.write(tmp, gzip ? "gz" : "plain"), {}, &s);
        check_csr_invariants(m);
        CHECK_FALSE(s.features_v3);
        CHECK(m.genes == std::vector<std::string>{"A", "B", "C"});
        CHECK(m.cells == std::vector<std::string>{"c1", "c2"});
        exsal::MatrixF e = exsal::MatrixF::Zero(3, 2);
        e(0, 0) = 1.5f;
        e(2, 0) = 0.2f;
        e(1, 1) = 0.25f;
        CHECK(m.to_dense().values == e);
        CHECK(m.nnz() == 4); // the stored zero stays stored, as +0
        CHECK(!std::signbit(m.values.back()));
    }
}

TEST_CASE("read_10x_mtx: duplicate symbols are made unique as scanpy's var_names_make_unique does") {
    std::vector<std::string> names{"A", "B", "A", "A-1", "A", "B", "C"};
    CHECK(exsal::detail::tenx::make_names_unique(names) == 3);
    // The second "A" skips "A-1" (taken by the fourth name) and becomes "A-2"; the third gets "A-3".
    CHECK(names == std::vector<std::string>{"A", "B", "A-2", "A-1", "A-3", "B-1", "C"});
    std::vector<std::string> unique{"X", "Y"};
    CHECK(exsal::detail::tenx::make_names_unique(unique) == 0);

    TempDir tmp("mtx_unique");
    TenxFolder f;
    f.features = "e1\tActb\tGene Expression\ne2\tACTB\tGene Expression\ne3\tactb\tGene Expression\n"
                 "e4\tACTB-1\tGene Expression\ne5\tGapdh\tGene Expression\n";
    const std::string dir = f.write(tmp, "case");
    exsal::TenxReadSummary s;
    // Upper-cased first, then made unique: "ACTB", "ACTB" -> "ACTB-2", "ACTB" -> "ACTB-3", "ACTB-1".
    CHECK(exsal::read_10x_mtx(dir, {}, &s).genes == std::vector<std::string>{"ACTB", "ACTB-2", "ACTB-3", "ACTB-1", "GAPDH"});
    CHECK(s.genes_renamed == 2);
    exsal::TenxReadOptions keep_case;
    keep_case.upper_case_genes = false;
    CHECK(exsal::read_10x_mtx(dir, keep_case, &s).genes == std::vector<std::string>{"Actb", "ACTB", "actb", "ACTB-1", "Gapdh"});
    CHECK(s.genes_renamed == 0);
}

TEST_CASE("read_10x_mtx: random matrices in column order and shuffled agree with the dense oracle") {
    TempDir tmp("mtx_random");
    std::mt19937 rng(20261201);
    for (int trial = 0; trial < 6; ++trial) {
        const int rows = 1 + static_cast<int>(rng() % 40), cols = 1 + static_cast<int>(rng() % 30);
        exsal::MatrixF dense = exsal::MatrixF::Zero(rows, cols);
        std::vector<std::string> entries; // in column-major order
        for (int c = 0; c < cols; ++c)
            for (int r = 0; r < rows; ++r)
                if (rng() % 5 == 0) {
                    dense(r, c) = static_cast<float>(rng() % 1000);
                    entries.push_back(std::to_string(r + 1) + " " + std::to_string(c + 1) + " " +
                                      std::to_string(static_cast<int>(dense(r, c))) + "\n");
                }
        if (trial % 2 == 1) std::shuffle(entries.begin(), entries.end(), rng);
        TenxFolder f;
        f.gzip = trial % 3 == 0;
        f.matrix = banner + std::to_string(rows) + " " + std::to_string(cols) + " " + std::to_string(entries.size()) + "\n";
        for (const auto& e : entries) f.matrix += e;
        f.features.clear();
        for (int r = 0; r < rows; ++r) f.features += "id" + std::to_string(r) + "\tg" + std::to_string(r) + "\tGene Expression\n";
        f.barcodes.clear();
        for (int c = 0; c < cols; ++c) f.barcodes += "cell" + std::to_string(c) + "\n";
        const SparseExpression m = exsal::read_10x_mtx(f.write(tmp, "t" + std::to_string(trial)));
        INFO("trial " << trial << ": " << rows << " x " << cols);
        check_csr_invariants(m);
        CHECK(m.nnz() == static_cast<std::int64_t>(entries.size()));
        CHECK(m.to_dense().values == dense);
    }
}

TEST_CASE("read_10x_mtx errors: missing, ambiguous and misnamed files") {
    TempDir tmp("mtx_files");
    const std::string none = (tmp.dir / "nowhere").string();
    check_error(mtx_error(none), none + ": ", {"no such file or folder"});

    const fs::path no_matrix = tmp.dir / "no_matrix";
    fs::create_directories(no_matrix);
    write_bytes((no_matrix / "features.tsv").string(), features_v3);
    write_bytes((no_matrix / "barcodes.tsv.gz").string(), gzip_member(barcodes_3));
    check_error(mtx_error(no_matrix.string()), no_matrix.string() + ": ",
                {"no matrix.mtx or matrix.mtx.gz", "\"barcodes.tsv.gz\", \"features.tsv\""});

    TenxFolder f;
    const std::string dir = f.write(tmp, "complete");
    fs::remove(fs::path(dir) / "barcodes.tsv");
    check_error(mtx_error(dir), dir + ": ", {"no barcodes.tsv[.gz]", "\"features.tsv\", \"matrix.mtx\""});
    write_bytes((fs::path(dir) / "barcodes.tsv").string(), barcodes_3);
    fs::rename(fs::path(dir) / "features.tsv", fs::path(dir) / "other.tsv");
    check_error(mtx_error(dir), dir + ": ", {"no features.tsv[.gz] (Cell Ranger >= 3) or genes.tsv[.gz]", "\"other.tsv\""});
    fs::rename(fs::path(dir) / "other.tsv", fs::path(dir) / "features.tsv");
    write_bytes((fs::path(dir) / "genes.tsv").string(), "e1\tA\n");
    check_error(mtx_error(dir), dir + ": ", {"both features.tsv and genes.tsv"});
    fs::remove(fs::path(dir) / "genes.tsv");
    write_bytes((fs::path(dir) / "matrix.mtx.gz").string(), gzip_member(matrix_5x3));
    check_error(mtx_error(dir), dir + ": ", {"both matrix.mtx and matrix.mtx.gz"});

    const std::string misnamed = (tmp.dir / "counts.txt").string();
    write_bytes(misnamed, matrix_5x3);
    check_error(mtx_error(misnamed), misnamed + ": ", {"should end in matrix.mtx"});
}

TEST_CASE("read_10x_mtx errors: header and size line") {
    TempDir tmp("mtx_header");
    std::string dir;
    struct Case {
        std::string text, where, part;
    };
    const std::vector<Case> cases{
        {"", ": ", "empty file"},
        {"%%MatrixMarkt matrix coordinate integer general\n1 1 0\n", ":1:1: ", "not a Matrix Market file"},
        {"5 3 7\n1 1 1\n", ":1:1: ", "not a Matrix Market file"},
        {"%%MatrixMarket matrix coordinate integer\n5 3 0\n", ":1: ", "4 words, not 5"},
        {"%%MatrixMarket vector coordinate integer general\n5 3 0\n", ":1:16: ", "object \"vector\""},
        {"%%MatrixMarket matrix array integer general\n5 3\n", ":1:23: ", "dense (\"array\")"},
        {"%%MatrixMarket matrix coordinate pattern general\n5 3 1\n1 1\n", ":1:34: ", "\"pattern\" matrices"},
        {"%%MatrixMarket matrix coordinate complex general\n5 3 1\n1 1 1 0\n", ":1:34: ", "complex values"},
        {"%%MatrixMarket matrix coordinate double general\n5 3 0\n", ":1:34: ", "unknown value type \"double\""},
        {"%%MatrixMarket matrix coordinate integer symmetric\n5 3 0\n", ":1:42: ", "\"symmetric\" matrices"},
        {"%%MatrixMarket matrix coordinate real skew-symmetric\n5 3 0\n", ":1:39: ", "\"skew-symmetric\" matrices"},
        {banner + "% only comments\n", ":2: ", "no size line"},
        {banner + "5 3\n", ":2: ", "the size line holds rows, columns and entries; found 2 words"},
        {banner + "5 3 7 1\n", ":2: ", "found 4 words"},
        {banner + "5 x 7\n", ":2:3: ", "\"x\" is not a non-negative integer"},
        {banner + "5 3 -7\n", ":2:5: ", "\"-7\" is not a non-negative integer"},
        {banner + "0 3 0\n", ":2: ", "the matrix is empty"},
        {banner + "5 3 16\n", ":2:5: ", "16 entries is more than rows x columns = 15"},
        {banner + "5 2147483648 0\n", ":2:3: ", "columns above 2^31-1"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const std::string matrix = with_matrix(tmp, "h" + std::to_string(i), cases[i].text, dir);
        check_error(mtx_error(dir), matrix + cases[i].where, {cases[i].part});
    }
}

TEST_CASE("read_10x_mtx errors: entries (indices, values, counts, duplicates)") {
    TempDir tmp("mtx_entries");
    std::string dir;
    const std::string real = "%%MatrixMarket matrix coordinate real general\n";
    struct Case {
        std::string text, where, part;
    };
    const std::vector<Case> cases{
        {banner + "5 3 1\n6 1 1\n", ":3:1: ", "row index \"6\" is out of range 1..5 (the size line, line 2)"},
        {banner + "5 3 1\n1 0 1\n", ":3:3: ", "column index \"0\" is out of range 1..3"},
        {banner + "5 3 1\n1 4 1\n", ":3:3: ", "column index \"4\" is out of range 1..3"},
        {banner + "5 3 1\n1 99999999999999999999 1\n", ":3:3: ", "out of range 1..3"},
        {banner + "5 3 1\n1 -1 1\n", ":3:3: ", "\"-1\" is not a positive integer (the column index)"},
        {banner + "5 3 1\nx 1 1\n", ":3:1: ", "\"x\" is not a positive integer (the row index)"},
        {banner + "5 3 1\n1\n", ":3:2: ", "missing column index"},
        {banner + "5 3 1\n1 1\n", ":3:4: ", "missing value"},
        {banner + "5 3 1\n1 1 1 1\n", ":3:7: ", "unexpected \"1\" after the value"},
        {banner + "5 3 1\n1 1 -2\n", ":3:5: ", "\"-2\" is negative"},
        {banner + "5 3 1\n1 1 1.5\n", ":3:5: ", "\"1.5\" is not an integer (the header declares integer values)"},
        {banner + "5 3 1\n1 1 abc\n", ":3:5: ", "\"abc\" is not an integer"},
        {real + "5 3 1\n1 1 abc\n", ":3:5: ", "\"abc\" is not a number"},
        {real + "5 3 1\n1 1 nan\n", ":3:5: ", "\"nan\" is not a finite number"},
        {real + "5 3 1\n1 1 inf\n", ":3:5: ", "\"inf\" is not a finite number"},
        {real + "5 3 1\n1 1 1e39\n", ":3:5: ", "out of the range of a 32-bit float"},
        {real + "5 3 1\n1 1 -0.5\n", ":3:5: ", "is negative"},
        {banner + "5 3 1\n1 1 1\n2 2 2\n", ":4:1: ", "more entries than the size line (line 2) says (1)"},
        {banner + "5 3 3\n1 1 1\n2 2 2\n", ":4: ", "the file ends after 2 entries, but the size line (line 2) says 3"},
        {banner + "5 3 2\n% no entries\n", ":3: ", "the file ends after 0 entries, but the size line (line 2) says 2"},
        {banner + "5 3 4\n1 1 1\n2 3 1\n% c\n4 2 1\n2 3 5\n", ":7: ",
         "duplicate entry: row 2, column 3 (barcode \"AAAT-1\") is stored on lines 4 and 7"},
        {banner + "5 3 3\n3 3 1\n2 1 5\n3 3 1\n", ":5: ", "row 3, column 3 (barcode \"AAAT-1\") is stored on lines 3 and 5"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const std::string matrix = with_matrix(tmp, "e" + std::to_string(i), cases[i].text, dir);
        check_error(mtx_error(dir), matrix + cases[i].where, {cases[i].part});
    }
}

TEST_CASE("read_10x_mtx errors: features and barcodes against the matrix") {
    TempDir tmp("mtx_tsv");
    const auto error_with = [&](const std::string& name, const std::string& features, const std::string& barcodes,
                                bool v2 = false) {
        TenxFolder f;
        f.features = features;
        f.barcodes = barcodes;
        f.v2 = v2;
        f.gzip = name.find("gz") != std::string::npos;
        return std::make_pair(mtx_error(f.write(tmp, name)), f);
    };
    {
        const auto [msg, f] = error_with("four", features_v3.substr(0, features_v3.rfind("ENSG4")), barcodes_3);
        check_error(msg, f.file(tmp, "four", "features.tsv") + ": ",
                    {"4 features (non-blank lines)", f.file(tmp, "four", "matrix.mtx") + " has 5 rows (its size line, line 3)"});
    }
    {
        const auto [msg, f] = error_with("two_gz", features_v3, "AAAC-1\nAAAG-1\n");
        check_error(msg, f.file(tmp, "two_gz", "barcodes.tsv") + ": ",
                    {"2 barcodes", f.file(tmp, "two_gz", "matrix.mtx") + " has 3 columns"});
    }
    {
        const auto [msg, f] = error_with("short", "e1\tA\tGene Expression\ne2\tB\n", barcodes_3);
        check_error(msg, f.file(tmp, "short", "features.tsv") + ":2: ",
                    {"expected 3 tab-separated fields (id, name, feature type), found 2", "Cell Ranger 2 layout"});
    }
    {
        const auto [msg, f] = error_with("short_v2", "e1\tA\ne2\n", barcodes_3, true);
        check_error(msg, f.file(tmp, "short_v2", "genes.tsv") + ":2: ", {"expected 2 tab-separated fields (id, name), found 1"});
    }
    {
        const auto [msg, f] = error_with("empty_name", "e1\t\tGene Expression\n", barcodes_3);
        check_error(msg, f.file(tmp, "empty_name", "features.tsv") + ":1:4: ", {"empty feature name"});
    }
    {
        const auto [msg, f] = error_with("dup_gz", features_v3, "AAAC-1\nAAAG-1\n\nAAAC-1\n");
        check_error(msg, f.file(tmp, "dup_gz", "barcodes.tsv") + ":4:1: ", {"duplicate barcode \"AAAC-1\" on lines 1 and 4"});
    }
    {
        const auto [msg, f] = error_with("empty_bc", features_v3, "AAAC-1\n\tx\nAAAT-1\n");
        check_error(msg, f.file(tmp, "empty_bc", "barcodes.tsv") + ":2:1: ", {"empty barcode"});
    }
    {
        std::string antibodies;
        for (int i = 0; i < 5; ++i) antibodies += "ab" + std::to_string(i) + "\tCD" + std::to_string(i) + "\tAntibody Capture\n";
        const auto [msg, f] = error_with("no_genes", antibodies, barcodes_3);
        check_error(msg, f.file(tmp, "no_genes", "features.tsv") + ": ",
                    {"none of the 5 features has the type \"Gene Expression\" (types found: \"Antibody Capture\")"});
    }
}

TEST_CASE("read_10x_mtx errors: binary and corrupt gzip matrix files name the file") {
    TempDir tmp("mtx_binary");
    std::string dir;
    const std::string matrix = with_matrix(tmp, "binary", std::string("%%MatrixMarket\0\1", 16), dir);
    check_error(mtx_error(dir), matrix + ":", {"binary file"});
    write_bytes(matrix, gzip_member(matrix_5x3).substr(0, 20));
    check_error(mtx_error(dir), matrix + ": ", {"gzip"});
}

// ---- cell groups ----

TEST_CASE("read_cell_groups: CSV and TSV, default and named columns, unlisted cells and unknown ids") {
    TempDir tmp("groups");
    const std::vector<std::string> cells{"c1", "c2", "c3", "c4"};
    const std::string csv = tmp.file("groups.csv");
    write_bytes(csv, "barcode,cluster\r\nc3,B\r\n\r\n\"c1\", A \r\nx9,C\r\nc4,\r\n");
    exsal::CellGroupsSummary s;
    CHECK(exsal::read_cell_groups(cells, csv, {}, &s) == std::vector<std::string>{"A", "", "B", ""});
    CHECK(s.path == csv);
    CHECK(s.cells_in_file == 4);
    CHECK(s.cells_grouped == 3);
    CHECK(s.cells_not_listed == 1);
    CHECK(s.first_not_listed == std::vector<std::string>{"c2"});
    CHECK(s.ids_not_in_data == 1);
    CHECK(s.first_not_in_data == std::vector<std::string>{"x9"});

    const std::string tsv = tmp.file("meta.tsv.gz");
    write_bytes(tsv, gzip_member("n\ttime\tcell\tcluster\n1\t0h\tc2\tk1\n2\t6h\tc1\tk2\n"));
    exsal::CellGroupsOptions named;
    named.id_column = "cell";
    named.group_column = "time";
    CHECK(exsal::read_cell_groups(cells, tsv, named) == std::vector<std::string>{"6h", "0h", "", ""});
    named.group_column.clear(); // the first column that is not the id column
    CHECK(exsal::read_cell_groups(cells, tsv, named) == std::vector<std::string>{"2", "1", "", ""});
    exsal::CellGroupsOptions by_group;
    by_group.group_column = "n"; // the id is then the first other column, "time": no match
    CHECK_THROWS_WITH_AS(exsal::read_cell_groups(cells, tsv, by_group), doctest::Contains("none of its 2 cell ids"),
                         FileError);

    // SparseExpression and ExpressionMatrix get their groups set.
    SparseExpression sparse;
    sparse.cells = cells;
    sparse.indptr.assign(5, 0);
    const exsal::CellGroupsSummary ss = exsal::assign_cell_groups(sparse, csv);
    CHECK(sparse.groups == std::vector<std::string>{"A", "", "B", ""});
    CHECK(ss.cells_grouped == 3);
    sparse.check_consistent("test");
    exsal::ExpressionMatrix dense;
    dense.values = exsal::MatrixF::Zero(1, 4);
    dense.cells = cells;
    exsal::assign_cell_groups(dense, tsv, named);
    CHECK(dense.groups == std::vector<std::string>{"2", "1", "", ""});
}

TEST_CASE("read_cell_groups errors name the file and the line") {
    TempDir tmp("groups_errors");
    const std::vector<std::string> cells{"c1", "c2"};
    const auto error_of = [&](const std::string& name, const std::string& text, const exsal::CellGroupsOptions& opt = {}) {
        const std::string path = tmp.file(name);
        write_bytes(path, text);
        try {
            (void)exsal::read_cell_groups(cells, path, opt);
        } catch (const FileError& e) {
            return std::make_pair(std::string(e.what()), path);
        }
        return std::make_pair(std::string("(no error)"), path);
    };
    {
        const auto [msg, path] = error_of("dup.csv", "id,group\nc1,A\nc2,B\nc1,C\n");
        check_error(msg, path + ":4:1: ", {"duplicate cell id \"c1\" on lines 2 and 4"});
    }
    {
        const auto [msg, path] = error_of("ragged.csv", "id,group\nc1,A\nc2,B,extra\n");
        check_error(msg, path + ":3:3: ", {"expected 2 fields as in the header, found 3"});
    }
    {
        const auto [msg, path] = error_of("short.tsv", "id\tgroup\nc1\n");
        check_error(msg, path + ":2: ", {"expected 2 fields as in the header, found 1"});
    }
    {
        const auto [msg, path] = error_of("empty_id.csv", "id,group\n,A\n");
        check_error(msg, path + ":2:1: ", {"empty cell id"});
    }
    {
        const auto [msg, path] = error_of("quote.csv", "id,group\n\"c1,A\n");
        check_error(msg, path + ":2:1: ", {"unterminated quoted field"});
    }
    {
        const auto [msg, path] = error_of("one.csv", "id\nc1\n");
        check_error(msg, path + ":1: ", {"neither commas nor tabs"});
    }
    {
        const auto [msg, path] = error_of("empty.csv", "\n\n");
        check_error(msg, path + ": ", {"empty file"});
    }
    {
        const auto [msg, path] = error_of("header_only.csv", "id,group\n");
        check_error(msg, path + ":1: ", {"no data rows"});
    }
    {
        exsal::CellGroupsOptions opt;
        opt.group_column = "cluster";
        const auto [msg, path] = error_of("named.csv", "id,group\nc1,A\n", opt);
        check_error(msg, path + ":1: ", {"no group column \"cluster\" in the header (its fields: \"id\", \"group\")"});
    }
    {
        exsal::CellGroupsOptions opt;
        opt.id_column = "group";
        opt.group_column = "group";
        const auto [msg, path] = error_of("same.csv", "id,group\nc1,A\n", opt);
        check_error(msg, path + ":1:2: ", {"the same column"});
    }
    {
        const auto [msg, path] = error_of("other.csv", "id,group\nAAAC,A\nAAAG,B\n");
        check_error(msg, path + ": ", {"none of its 2 cell ids is a cell of the data", "\"AAAC\", \"AAAG\"", "\"c1\", \"c2\""});
    }
}

// ---- the committed format fixtures (tests/fixtures/formats, scripts/make-format-fixtures.py) ----

namespace {

std::string fixture(const std::string& name) { return std::string(EXSAL_SOURCE_DIR) + "/tests/fixtures/formats/" + name; }

} // namespace

TEST_CASE("read_10x_mtx: the fixture folders of Cell Ranger 2 and 3 give expression.csv, and groups.csv its groups") {
    const exsal::ExpressionMatrix reference = exsal::read_expression(fixture("expression.csv"));
    REQUIRE(reference.n_cells() == 37);
    REQUIRE(reference.n_genes() == 29);
    for (const char* folder : {"10x_mtx_v3", "10x_mtx_v2"}) {
        INFO(folder);
        exsal::TenxReadSummary s;
        SparseExpression m = exsal::read_10x_mtx(fixture(folder), {}, &s);
        check_csr_invariants(m);
        CHECK(s.features_v3 == (std::string(folder) == "10x_mtx_v3"));
        CHECK(s.features_dropped == (s.features_v3 ? 2 : 0));
        CHECK(s.genes_renamed == 0);
        const exsal::CellGroupsSummary g = exsal::assign_cell_groups(m, fixture("groups.csv"));
        CHECK(g.cells_in_file == 35);
        CHECK(g.cells_grouped == 35);
        CHECK(g.cells_not_listed == 2);
        CHECK(g.ids_not_in_data == 0);
        const exsal::ExpressionMatrix d = m.to_dense();
        CHECK(d.genes == reference.genes);
        CHECK(d.cells == reference.cells);
        CHECK(d.groups == reference.groups);
        CHECK(d.values == reference.values);
    }
    // The two antibodies alone, and every feature: the genes' rows are those of the dataset.
    exsal::TenxReadOptions antibodies;
    antibodies.feature_type = "Antibody Capture";
    CHECK(exsal::read_10x_mtx(fixture("10x_mtx_v3"), antibodies).genes ==
          std::vector<std::string>{"CD3_TOTALSEQB", "CD19_TOTALSEQB"});
    exsal::TenxReadOptions all;
    all.feature_type.clear();
    const exsal::ExpressionMatrix every = exsal::read_10x_mtx(fixture("10x_mtx_v3/matrix.mtx.gz"), all).to_dense();
    REQUIRE(every.n_genes() == 31);
    for (Index g = 0, r = 0; g < every.n_genes(); ++g) {
        if (every.genes[static_cast<std::size_t>(g)].find("TOTALSEQB") != std::string::npos) continue;
        CHECK(every.values.row(g) == reference.values.row(r++));
    }
}

TEST_CASE("read_10x_mtx: the fixture with a symbol twice renames the second, and the bad fixtures are refused") {
    exsal::TenxReadSummary s;
    const SparseExpression m = exsal::read_10x_mtx(fixture("mtx_duplicate_symbols"), {}, &s);
    CHECK(m.genes == std::vector<std::string>{"TBCE", "CD3E", "TBCE-1", "MS4A1"});
    CHECK(s.genes_renamed == 1);
    CHECK(m.to_dense().values == (exsal::MatrixF(4, 3) << 1, 0, 2, 0, 3, 0, 4, 5, 0, 0, 0, 6).finished());

    const std::string bad = fixture("bad/");
    check_error(mtx_error(bad + "mtx_not_coordinate"), bad + "mtx_not_coordinate/matrix.mtx:1:23: ", {"dense (\"array\")"});
    check_error(mtx_error(bad + "mtx_too_many_entries"), bad + "mtx_too_many_entries/matrix.mtx:17:1: ",
                {"more entries than the size line (line 3) says (13)"});
    check_error(mtx_error(bad + "mtx_too_few_entries"), bad + "mtx_too_few_entries/matrix.mtx:15: ",
                {"the file ends after 12 entries, but the size line (line 3) says 13"});
    check_error(mtx_error(bad + "mtx_index_out_of_range"), bad + "mtx_index_out_of_range/matrix.mtx:5:1: ",
                {"row index \"6\" is out of range 1..5"});
}
