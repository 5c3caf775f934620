// The single-cell formats: every layout of tests/fixtures/formats (made by
// scripts/make-format-fixtures.py: one 37-cell x 29-gene count matrix written as CSV, h5ad of
// anndata >= 0.8 / 0.7 / <= 0.6 in CSR, CSC and dense with several value and index types, 10x MTX
// and 10x HDF5) reads to the same cells, genes, values and groups as the CSV; each bad file gives
// an error naming the file and the object inside it; the pipeline (the velten_pipeline program)
// gives the same representation.csv, bit for bit, from every format; results.h5ad reads back
// (with Python's anndata where it is installed); scanpy's own pbmc68k_reduced.h5ad reads like its
// CSV export.

#include <doctest/doctest.h>

#include "exsal/io/cell_groups.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/formats.hpp"
#include "exsal/io/h5ad.hpp"
#include "exsal/io/mtx.hpp"
#include "exsal/io/tenx_h5.hpp"
#include "exsal/io/hdf5.hpp"

#include "test_files.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace fs = std::filesystem;
using namespace exsal;

namespace {

const std::string fixtures = std::string(EXSAL_SOURCE_DIR) + "/tests/fixtures/formats/";

std::string fixture(const std::string& name) { return fixtures + name; }

const std::string pipeline = std::string(EXSAL_BINARY_DIR) + "/examples/velten_pipeline";

bool have_pipeline() {
    if (fs::exists(pipeline)) return true;
    MESSAGE("skipped: " << pipeline << " is not built (configure with EXSAL_BUILD_EXAMPLES=ON)");
    return false;
}

// The reference: the CSV (cells in rows, "sample" and "cluster" columns).
const ExpressionMatrix& reference() {
    static const ExpressionMatrix m = read_expression(fixture("expression.csv"));
    return m;
}

void check_same_as_reference(const SparseExpression& s, bool with_groups) {
    REQUIRE_NOTHROW(s.check_consistent("test"));
    const ExpressionMatrix& ref = reference();
    const ExpressionMatrix d = s.to_dense();
    REQUIRE(d.genes == ref.genes);
    REQUIRE(d.cells == ref.cells);
    CHECK((d.values.array() == ref.values.array()).all());
    if (with_groups) CHECK(d.groups == ref.groups);
    for (Index c = 0; c < s.n_cells(); ++c) // genes ascending and distinct within each cell
        for (auto k = s.indptr[static_cast<std::size_t>(c)] + 1; k < s.indptr[static_cast<std::size_t>(c) + 1]; ++k)
            REQUIRE(s.indices[static_cast<std::size_t>(k - 1)] < s.indices[static_cast<std::size_t>(k)]);
}

SparseExpression h5ad(const std::string& name, const std::string& layer = "", const std::string& group = "cluster") {
    H5adReadOptions o;
    o.layer = layer;
    o.group_column = group;
    o.group_column_required = !group.empty();
    return read_h5ad(fixture(name), o).data;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST_CASE("every h5ad layout, storage and value type reads to the CSV's cells, genes, values and groups") {
    for (const char* name : {"anndata08_csr_f32.h5ad", "anndata08_csr_f64_i64.h5ad", "anndata08_csr_i32.h5ad",
                             "anndata08_csr_unsorted_indices.h5ad", "anndata08_csc_f32.h5ad",
                             "anndata08_dense_f32_gzip.h5ad", "anndata08_dense_i64.h5ad", "anndata07_csr_f32.h5ad"}) {
        CAPTURE(name);
        CHECK(detect_expression_format(fixture(name)) == ExpressionFormat::h5ad);
        check_same_as_reference(h5ad(name), true);
    }
    const H5adData r = read_h5ad(fixture("anndata08_csc_f32.h5ad"));
    CHECK(r.summary.layout == "anndata >= 0.8");
    CHECK(r.summary.storage == "csc");
    CHECK(read_h5ad(fixture("anndata07_csr_f32.h5ad")).summary.layout == "anndata 0.7");
    CHECK(read_h5ad(fixture("anndata08_dense_i64.h5ad")).summary.value_type == "int64");
}

TEST_CASE("layers: --layer counts and raw read the counts; X of scaled data is refused with the raw hint") {
    check_same_as_reference(h5ad("anndata08_layers_counts.h5ad", "counts"), true);
    const SparseExpression lognorm = h5ad("anndata08_layers_counts.h5ad");
    CHECK(lognorm.to_dense().values != reference().values);
    check_same_as_reference(h5ad("anndata08_raw.h5ad", "raw"), true);
    check_same_as_reference(h5ad("anndata06_legacy.h5ad", "raw"), true);
    CHECK(read_h5ad(fixture("anndata06_legacy.h5ad"), [] { H5adReadOptions o; o.layer = "raw"; return o; }())
              .summary.layout == "anndata <= 0.6");
    for (const char* name : {"anndata08_raw.h5ad", "anndata06_legacy.h5ad"}) {
        const std::string e = error_of([&] { h5ad(name); });
        CAPTURE(e);
        CHECK(e.find(name) != std::string::npos);
        CHECK(e.find("/X: value -") != std::string::npos);
        CHECK(e.find("is negative") != std::string::npos);
        CHECK(e.find("set H5adReadOptions::layer to raw") != std::string::npos);
    }
    const std::string missing = error_of([] { h5ad("anndata08_layers_counts.h5ad", "spliced"); });
    CHECK(missing.find("has no layer 'spliced' (layers: counts)") != std::string::npos);
    const std::string no_raw = error_of([] { h5ad("anndata08_csr_f32.h5ad", "raw"); });
    CHECK(no_raw.find("has no layer 'raw' (layers: none)") != std::string::npos);
}

TEST_CASE("obs columns: categorical, integer, string, nullable; a missing column lists the ones there are") {
    const SparseExpression byid = h5ad("anndata08_csr_f32.h5ad", "", "cluster_id");
    REQUIRE(byid.groups.size() == 37);
    CHECK(std::all_of(byid.groups.begin(), byid.groups.end(), [](const std::string& g) {
        return g == "-1" || (!g.empty() && std::all_of(g.begin(), g.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
    }));
    const SparseExpression hashtag = h5ad("anndata08_csr_f32.h5ad", "", "hashtag"); // nullable integer
    CHECK(std::count(hashtag.groups.begin(), hashtag.groups.end(), std::string()) > 0);
    const SparseExpression qc = h5ad("anndata08_csr_f32.h5ad", "", "qc_pass"); // nullable boolean
    CHECK(std::all_of(qc.groups.begin(), qc.groups.end(),
                      [](const std::string& g) { return g.empty() || g == "True" || g == "False"; }));
    CHECK(std::count(qc.groups.begin(), qc.groups.end(), "True") > 0);
    const SparseExpression donor = h5ad("anndata08_csr_f32.h5ad", "", "donor");
    CHECK(std::find(donor.groups.begin(), donor.groups.end(), "D1 Zürich") != donor.groups.end());
    const std::string e = error_of([] { h5ad("anndata08_csr_f32.h5ad", "", "celltype"); });
    CHECK(e.find("/obs: has no column 'celltype' (columns: ") != std::string::npos);
    CHECK(e.find("cluster") != std::string::npos);
    CHECK(e.find("donor") != std::string::npos);
    // Not required: no groups and a flag for the caller's message.
    H5adReadOptions o;
    o.group_column = "celltype";
    const H5adData r = read_h5ad(fixture("anndata08_csr_f32.h5ad"), o);
    CHECK(r.summary.group_column_missing);
    CHECK(r.data.groups.empty());
    const SparseExpression legacy_phase = h5ad("anndata06_legacy.h5ad", "raw", "phase");
    CHECK(legacy_phase.groups.size() == 37);
}

TEST_CASE("10x MTX (Cell Ranger 3 and 2) and 10x HDF5 (Cell Ranger 3 and 2) read to the CSV's counts") {
    for (const char* name : {"10x_mtx_v3", "10x_mtx_v2"}) {
        CAPTURE(name);
        CHECK(detect_expression_format(fixture(name)) == ExpressionFormat::tenx_mtx);
        TenxReadSummary s;
        check_same_as_reference(read_10x_mtx(fixture(name), {}, &s), false);
    }
    CHECK(detect_expression_format(fixture("10x_mtx_v3/matrix.mtx.gz")) == ExpressionFormat::tenx_mtx);
    for (const char* name : {"filtered_feature_bc_matrix.h5", "feature_bc_matrix_uint32.h5", "filtered_gene_bc_matrices_h5.h5"}) {
        CAPTURE(name);
        CHECK(detect_expression_format(fixture(name)) == ExpressionFormat::tenx_h5);
        TenxReadSummary s;
        check_same_as_reference(read_10x_h5(fixture(name), {}, &s), false);
        if (std::string(name) != "filtered_gene_bc_matrices_h5.h5") CHECK(s.features_dropped == 2);
    }
    // Read by runs of cells of any length (big files: ~4 M entries; here 1 to 50): the same matrix.
    SparseExpression s = read_10x_h5(fixture("filtered_feature_bc_matrix.h5"));
    {
        const h5::Node root = h5::open_file(fixture("filtered_feature_bc_matrix.h5"));
        const h5::Node g = root.open("matrix");
        const std::vector<std::int64_t> ptr = g.open("indptr").read_all<std::int64_t>();
        const std::vector<std::string> types = g.open("features").open("feature_type").read_strings();
        std::vector<std::int32_t> new_row(types.size(), -1);
        std::int32_t next = 0;
        for (std::size_t i = 0; i < types.size(); ++i)
            if (types[i] == "Gene Expression") new_row[i] = next++;
        for (std::int64_t chunk : {1, 3, 50}) {
            CAPTURE(chunk);
            SparseExpression by_runs;
            detail::tenx_h5::build_csr(g, ptr, new_row, by_runs, {0, -1}, chunk);
            CHECK(by_runs.indptr == s.indptr);
            CHECK(by_runs.indices == s.indices);
            CHECK(by_runs.values == s.values);
        }
    }
    // The groups of the CSV from the cell-groups table (which lists all cells but the two without one).
    CellGroupsSummary g = assign_cell_groups(s, fixture("groups.csv"));
    CHECK(s.groups == reference().groups);
    CHECK(g.cells_not_listed == 2);
    CHECK(detect_expression_format(fixture("expression.csv")) == ExpressionFormat::table);
}

// A process's share of the cells (ReadShare): the ids and groups of every cell, the values of
// the share's cells only (exactly the whole read's), nothing stored for the others, and a
// gather of a cell outside the share refused.
void check_share(const SparseExpression& part, const SparseExpression& whole, ReadShare share, bool with_groups) {
    REQUIRE_NOTHROW(part.check_consistent("test"));
    const CellRange r = even_share(whole.n_cells(), share.part, share.parts);
    CHECK(part.held.first == r.first);
    CHECK(part.held.count == r.count);
    CHECK(part.cells == whole.cells);
    if (with_groups) CHECK(part.groups == whole.groups);
    CHECK(part.genes == whole.genes);
    REQUIRE(part.indptr.size() == whole.indptr.size());
    for (Index c = 0; c < whole.n_cells(); ++c) {
        const auto b = static_cast<std::size_t>(part.indptr[static_cast<std::size_t>(c)]);
        const auto e = static_cast<std::size_t>(part.indptr[static_cast<std::size_t>(c) + 1]);
        if (!part.holds(c)) {
            CHECK(b == e);
            continue;
        }
        const auto wb = static_cast<std::size_t>(whole.indptr[static_cast<std::size_t>(c)]);
        const auto we = static_cast<std::size_t>(whole.indptr[static_cast<std::size_t>(c) + 1]);
        std::vector<std::pair<std::int32_t, float>> a, w; // zeros may be stored by one reader and not the other
        for (auto k = b; k < e; ++k)
            if (part.values[k] != 0.0f) a.emplace_back(part.indices[k], part.values[k]);
        for (auto k = wb; k < we; ++k)
            if (whole.values[k] != 0.0f) w.emplace_back(whole.indices[k], whole.values[k]);
        CAPTURE(c);
        CHECK(a == w);
    }
    std::vector<Index> rows(static_cast<std::size_t>(whole.n_genes()));
    std::iota(rows.begin(), rows.end(), Index(0));
    const CellGather<SparseExpression> gather(part, rows);
    MatrixF out(whole.n_genes(), 1);
    for (Index c : {Index(0), whole.n_cells() - 1}) {
        if (part.holds(c)) CHECK_NOTHROW(gather.gather(&c, 1, out));
        else CHECK(error_of([&] { gather.gather(&c, 1, out); }).find("not among the cells this process holds") != std::string::npos);
    }
}

TEST_CASE("read by share: every format gives each process its cells' values and every cell's ids and groups") {
    for (int parts : {2, 3}) {
        for (int part = 0; part < parts; ++part) {
            const ReadShare share{part, parts};
            CAPTURE(parts);
            CAPTURE(part);
            for (const char* name : {"anndata08_csr_f32.h5ad", "anndata08_csr_unsorted_indices.h5ad", "anndata08_csc_f32.h5ad",
                                     "anndata08_dense_i64.h5ad", "anndata07_csr_f32.h5ad", "anndata06_legacy.h5ad"}) {
                CAPTURE(name);
                H5adReadOptions o;
                if (std::string(name) == "anndata06_legacy.h5ad") o.layer = "raw"; // its X is scaled
                const SparseExpression whole = read_h5ad(fixture(name), o).data;
                o.share = share;
                check_share(read_h5ad(fixture(name), o).data, whole, share, true);
            }
            TenxReadOptions t;
            t.share = share;
            check_share(read_10x_mtx(fixture("10x_mtx_v3"), t), read_10x_mtx(fixture("10x_mtx_v3")), share, false);
            check_share(read_10x_h5(fixture("filtered_feature_bc_matrix.h5"), t),
                        read_10x_h5(fixture("filtered_feature_bc_matrix.h5")), share, false);
            ExpressionReadOptions csv;
            const ExpressionMatrix dense = read_expression(fixture("expression.csv"), csv);
            const SparseExpression whole = sparse_cells(dense, {0, dense.n_cells()});
            check_share(read_expression_share(fixture("expression.csv"), csv, share), whole, share, true);
            // genes in rows: the same table transposed
            exsal_test::TempDir dir("share");
            std::ofstream f(dir.file("t.csv"));
            f.precision(9); // 16777215 exactly
            f << "gene";
            for (const auto& c : dense.cells) f << "," << c;
            f << "\n";
            for (Index g = 0; g < dense.n_genes(); ++g) {
                f << dense.genes[static_cast<std::size_t>(g)];
                for (Index c = 0; c < dense.n_cells(); ++c) f << "," << dense.values(g, c);
                f << "\n";
            }
            f.close();
            ExpressionReadOptions by_gene;
            by_gene.genes_in_rows = true;
            SparseExpression whole_t = whole;
            whole_t.groups.clear();
            check_share(read_expression_share(dir.file("t.csv"), by_gene, share), whole_t, share, false);
        }
    }
    // A bad value in another process's rows is that process's to report; in its own rows, this one's.
    exsal_test::TempDir dir("bad_share");
    {
        std::ofstream f(dir.file("bad.csv"));
        f << "sample,cluster,A,B\nc1,x,1,2\nc2,x,1,oops\nc3,y,0,1\nc4,y,3,0\n";
    }
    CHECK_NOTHROW(read_expression_share(dir.file("bad.csv"), {}, ReadShare{1, 2}));
    CHECK(error_of([&] { read_expression_share(dir.file("bad.csv"), {}, ReadShare{0, 2}); }).find("bad.csv:3:4") != std::string::npos);
}

TEST_CASE("bad h5ad and 10x files: an error naming the file and the object inside it") {
    struct Case {
        const char* file;
        const char* says;
    };
    const Case cases[] = {
        {"not_hdf5.h5ad", "is not an HDF5 file"},
        {"truncated.h5ad", "HDF5"},
        {"no_x.h5ad", "has no expression matrix 'X'"},
        {"shape_disagrees_with_indptr.h5ad", "/X/indptr: has "},
        {"indptr_not_monotone.h5ad", "/X/indptr: decreases at entry"},
        {"indptr_end_not_nnz.h5ad", "/X/indptr: ends at"},
        {"indptr_end_short_of_nnz.h5ad", "/X/indptr: ends at"},
        {"index_out_of_range.h5ad", "/X/indices: index"},
        {"index_negative.h5ad", "/X/indices: index -"},
        {"unsorted_duplicate_indices.h5ad", "appears twice in cell"},
        {"obs_count_mismatch.h5ad", "/obs: names "},
        {"var_count_mismatch.h5ad", "/var: names "},
        {"negative_value.h5ad", "is negative"},
        {"nan_value.h5ad", "is not finite"},
        {"lzf_compressed.h5ad", "cannot read"},
    };
    for (const Case& c : cases) {
        const std::string path = fixture(std::string("bad/") + c.file);
        const std::string e = error_of([&] { read_h5ad(path); });
        CAPTURE(e);
        CHECK(e.rfind(path, 0) == 0); // starts with the file
        CHECK(e.find(c.says) != std::string::npos);
    }
    const std::string path = fixture("bad/10x_no_indptr.h5");
    const std::string e = error_of([&] { read_10x_h5(path); });
    CHECK(e.rfind(path, 0) == 0);
    CHECK(e.find("/matrix: has no 'indptr'") != std::string::npos);
}

TEST_CASE("the HDF5 layer reads a file image from memory, and refuses bytes that are not one") {
    std::ifstream in(fixture("anndata08_csr_f32.h5ad"), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const H5adData r = read_h5ad(h5::open_image(bytes.data(), bytes.size(), "image.h5ad"));
    check_same_as_reference(r.data, true);
    CHECK_THROWS_AS(h5::open_image("not hdf5", 8, "x.h5ad"), FileError);
    CHECK_THROWS_AS(h5::open_image(bytes.data(), bytes.size() / 3, "half.h5ad"), FileError);
}

namespace {

// A GMT over the fixture's genes and a run of the pipeline on `expression`: its representation.csv.
std::string representation_of(const exsal_test::TempDir& dir, const std::string& expression, const std::string& tag,
                              const std::string& cell_groups = "") {
    const std::string gmt = (dir.dir / "sets.gmt").string();
    if (!fs::exists(gmt)) {
        std::ofstream g(gmt);
        const auto& genes = reference().genes;
        for (int s = 0; s < 3; ++s) {
            g << "SET_" << s << "\tfixture";
            for (std::size_t i = static_cast<std::size_t>(s) * 9; i < genes.size() && i < static_cast<std::size_t>(s) * 9 + 12; ++i)
                g << "\t" << genes[i];
            g << "\n";
        }
    }
    // The velten_pipeline program (tests/test_pipeline.cpp runs it the same way): compiling the
    // pipeline into this test as well would add minutes to every build of the suite.
    const std::string out = (dir.dir / tag).string(), log = (dir.dir / (tag + ".log")).string();
    std::string command = "'" + pipeline + "' --expression '" + expression + "' --gene-sets '" + gmt + "'";
    if (!cell_groups.empty()) command += " --cell-groups '" + cell_groups + "'";
    command += " --out '" + out + "' --epochs 3 --hidden 8 --units 4 --min-gene-max 0 --min-genes 3"
               " --label-permutations 19 --threads 1 --quiet > '" + log + "' 2>&1";
    const int status = std::system(command.c_str());
    REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), command << "\n" << exsal_test::read_bytes(log));
    return exsal_test::read_bytes((dir.dir / tag / "representation.csv").string());
}

} // namespace

TEST_CASE("the pipeline gives the same representation.csv, bit for bit, from CSV, MTX, h5ad and 10x HDF5") {
    if (!have_pipeline()) return;
    exsal_test::TempDir dir("formats_pipeline");
    const std::string csv = representation_of(dir, fixture("expression.csv"), "csv");
    CHECK(csv.find("ungrouped") != std::string::npos); // the two cells without a label
    CHECK(representation_of(dir, fixture("anndata08_csr_f32.h5ad"), "csr") == csv);
    CHECK(representation_of(dir, fixture("anndata08_csc_f32.h5ad"), "csc") == csv);
    CHECK(representation_of(dir, fixture("anndata08_dense_i64.h5ad"), "dense") == csv);
    CHECK(representation_of(dir, fixture("10x_mtx_v3"), "mtx", fixture("groups.csv")) == csv);
    CHECK(representation_of(dir, fixture("filtered_feature_bc_matrix.h5"), "tenx_h5", fixture("groups.csv")) == csv);
}

TEST_CASE("results.h5ad holds the cells, their groups, the representation and programme scores; anndata reads it") {
    if (!have_pipeline()) return;
    exsal_test::TempDir dir("formats_results");
    representation_of(dir, fixture("anndata08_csr_f32.h5ad"), "run");
    const std::string path = (dir.dir / "run" / "results.h5ad").string();
    const h5::Node root = h5::open_file(path);
    CHECK(root.attribute_string("encoding-type") == "anndata");
    const std::vector<hsize_t> shape = root.open("obsm").open("X_exsal").shape();
    REQUIRE(shape.size() == 2);
    CHECK(shape[0] == 37);
    CHECK(shape[1] == 4);
    CHECK(root.open("obs").open("_index").read_strings() == reference().cells);
    CHECK(root.open("obsm").open("exsal_programme_scores").attribute_string("encoding-type") == "dataframe");
    if (std::system("/usr/bin/python3 -c 'import anndata' >/dev/null 2>&1") != 0) {
        MESSAGE("skipped the anndata read-back: /usr/bin/python3 with anndata is not installed (Debian python3-anndata)");
        return;
    }
    const std::string script = (dir.dir / "check.py").string();
    std::ofstream(script) << "import sys, anndata, numpy as np, pandas as pd\n"
                             "a = anndata.read_h5ad(sys.argv[1])\n"
                             "r = pd.read_csv(sys.argv[2])\n"
                             "assert a.shape[0] == 37, a.shape\n"
                             "assert list(a.obs_names) == list(r['cell']), 'cells'\n"
                             "assert list(a.obs['group'].astype(str)) == list(r['group']), 'groups'\n"
                             "assert a.obsm['X_exsal'].dtype == np.float32\n"
                             "assert np.allclose(a.obsm['X_exsal'], r.iloc[:, 2:].to_numpy(), rtol=1e-6, atol=1e-7)\n"
                             "assert a.uns['exsal']['parameters']['units'] == 4\n"
                             "s = a.obsm['exsal_programme_scores']\n"
                             "assert isinstance(s, pd.DataFrame) and s.shape[0] == 37 and s.shape[1] > 0, type(s)\n"
                             "assert list(s.index) == list(a.obs_names)\n"
                             "none = (r['group'] == 'ungrouped').to_numpy()\n"
                             "assert none.sum() == 2 and s[none].isna().all().all(), 'cells without a group have no score'\n"
                             "assert np.isfinite(s[~none].to_numpy()).all(), 'grouped cells have scores'\n";
    const std::string cmd = "/usr/bin/python3 " + script + " " + path + " " + (dir.dir / "run" / "representation.csv").string();
    CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("scanpy's pbmc68k_reduced.h5ad: raw.X and its obs labels equal the CSV exported from it") {
    const std::string dir = EXSAL_SHARED_DATA_DIR;
    const std::string h5 = dir + "/pbmc68k_reduced.h5ad", csv = dir + "/pbmc68k_reduced_700cells_765genes_lognorm.csv.gz";
    if (!fs::exists(h5) || !fs::exists(csv)) {
        MESSAGE("skipped: " << h5 << " or its CSV export is absent");
        return;
    }
    H5adReadOptions o;
    o.layer = "raw";
    o.group_column = "bulk_labels";
    const H5adData r = read_h5ad(h5, o);
    CHECK(r.summary.layout == "anndata <= 0.6");
    CHECK(r.summary.matrix == "/raw.X");
    const ExpressionMatrix ref = read_expression(csv);
    const ExpressionMatrix d = r.data.to_dense();
    REQUIRE(d.genes == ref.genes);
    REQUIRE(d.cells == ref.cells);
    CHECK((d.values.array() == ref.values.array()).all());
    REQUIRE(d.groups.size() == ref.groups.size());
    for (std::size_t i = 0; i < d.groups.size(); ++i) { // the CSV wrote spaces as underscores
        std::string g = d.groups[i];
        std::replace(g.begin(), g.end(), ' ', '_');
        CHECK(g == ref.groups[i]);
    }
    // X holds scaled values: refused, pointing at the raw matrix.
    const std::string e = error_of([&] { read_h5ad(h5); });
    CHECK(e.find("set H5adReadOptions::layer to raw") != std::string::npos);
}
