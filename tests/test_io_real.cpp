// The readers on real public files (HSMM, Trapnell et al. 2014; MSigDB Hallmark and GO sets; the
// blood transcription modules of Li et al. 2014), found in ../shared/data beside the repository:
// dimensions, labels and values against an independent parse (zlib gzgets + strtof), gene-set
// counts and coverage against the counts written down here. Every test skips with a message when
// the folder is absent.

#include <doctest/doctest.h>

#include "exsal/io/expression_reader.hpp"
#include "exsal/io/expression_writer.hpp"
#include "exsal/io/gmt.hpp"

#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using exsal::ExpressionMatrix;
using exsal::Index;

namespace {

const std::string data_dir = EXSAL_SHARED_DATA_DIR;

bool have_data() {
    if (fs::is_directory(data_dir)) return true;
    MESSAGE("skipped: shared data folder " << data_dir << " does not exist");
    return false;
}

std::string data(const std::string& name) { return data_dir + "/" + name; }

// The reference parse: gzgets lines (plain files too), split at commas, strtof.
struct OracleTable {
    std::vector<std::string> genes;
    std::vector<std::string> cells;
    std::vector<std::string> groups;
    std::vector<float> values; // cells x genes, row-major = genes x cells column-major
};

OracleTable oracle_read(const std::string& path) {
    OracleTable t;
    gzFile f = gzopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    std::vector<char> buf(std::size_t(1) << 22);
    bool header = true;
    while (gzgets(f, buf.data(), static_cast<int>(buf.size())) != nullptr) {
        std::string line(buf.data());
        REQUIRE(!line.empty());
        REQUIRE(line.back() == '\n'); // the buffer held the whole line
        line.pop_back();
        std::vector<std::string> fields;
        std::size_t start = 0;
        for (;;) {
            const std::size_t c = line.find(',', start);
            fields.push_back(line.substr(start, c == std::string::npos ? std::string::npos : c - start));
            if (c == std::string::npos) break;
            start = c + 1;
        }
        REQUIRE(fields.size() >= 3);
        if (header) {
            REQUIRE(fields[0] == "sample");
            REQUIRE(fields[1] == "cluster");
            t.genes.assign(fields.begin() + 2, fields.end());
            for (auto& g : t.genes)
                for (auto& ch : g) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            header = false;
            continue;
        }
        REQUIRE(fields.size() == t.genes.size() + 2);
        t.cells.push_back(fields[0]);
        t.groups.push_back(fields[1]);
        for (std::size_t k = 2; k < fields.size(); ++k) t.values.push_back(std::strtof(fields[k].c_str(), nullptr));
    }
    gzclose(f);
    return t;
}

// The reader's matrix equals the reference parse, bit for bit.
void check_against_oracle(const ExpressionMatrix& m, const OracleTable& t) {
    REQUIRE(m.n_genes() == static_cast<Index>(t.genes.size()));
    REQUIRE(m.n_cells() == static_cast<Index>(t.cells.size()));
    CHECK(m.genes == t.genes); // upper-cased by both
    CHECK(m.cells == t.cells);
    CHECK(m.groups == t.groups);
    CHECK(std::memcmp(m.values.data(), t.values.data(), t.values.size() * sizeof(float)) == 0);
}

std::map<std::string, int> group_counts(const ExpressionMatrix& m) {
    std::map<std::string, int> c;
    for (const auto& g : m.groups) ++c[g];
    return c;
}

std::size_t distinct_genes(const exsal::GeneSetCollection& sets) {
    std::set<std::string> all;
    for (const auto& s : sets) all.insert(s.genes.begin(), s.genes.end());
    return all.size();
}

// Distinct set genes found in `genes`, and the number of sets with >= 10 genes found.
std::pair<std::size_t, int> coverage_summary(const exsal::GeneSetCollection& sets, const std::vector<std::string>& genes) {
    const auto cov = exsal::gene_set_coverage(sets, genes);
    std::set<Index> rows;
    int sets_10 = 0;
    for (const auto& c : cov) {
        rows.insert(c.rows.begin(), c.rows.end());
        if (c.genes_found >= 10) ++sets_10;
    }
    return {rows.size(), sets_10};
}

} // namespace

TEST_CASE("real: HSMM (Trapnell 2014) 271 cells x 14818 genes, four time points, equal to a reference parse") {
    if (!have_data()) return;
    const std::string path = data("hsmm_trapnell2014_fpkm.csv.gz");
    const ExpressionMatrix m = exsal::read_expression(path);
    CHECK(m.n_cells() == 271);
    CHECK(m.n_genes() == 14818);
    const auto groups = group_counts(m);
    CHECK(groups == std::map<std::string, int>{{"0h", 69}, {"24h", 74}, {"48h", 79}, {"72h", 49}});
    CHECK(m.values.minCoeff() >= 0.0f);
    check_against_oracle(m, oracle_read(path));
}

TEST_CASE("real: pbmc68k-reduced 700 x 765 and pbmc_small 80 x 230, equal to a reference parse") {
    if (!have_data()) return;
    const std::string p68 = data("pbmc68k_reduced_700cells_765genes_lognorm.csv.gz");
    const ExpressionMatrix a = exsal::read_expression(p68);
    CHECK(a.n_cells() == 700);
    CHECK(a.n_genes() == 765);
    const auto ga = group_counts(a);
    CHECK(ga.size() == 10);
    CHECK(ga.at("Dendritic") == 240);
    CHECK(ga.at("CD14+_Monocyte") == 129);
    CHECK(ga.at("CD34+") == 13);
    CHECK(ga.at("CD4+/CD45RA+/CD25-_Naive_T") + ga.at("CD4+/CD25_T_Reg") + ga.at("CD4+/CD45RO+_Memory") == 8 + 68 + 19);
    check_against_oracle(a, oracle_read(p68));

    const std::string psm = data("pbmc_small_seurat_80cells_counts.csv");
    const ExpressionMatrix b = exsal::read_expression(psm);
    CHECK(b.n_cells() == 80);
    CHECK(b.n_genes() == 230);
    const auto gb = group_counts(b);
    CHECK(gb.size() == 3);
    CHECK(gb.count("snn_res1_0") == 1);
    CHECK((b.values.array() == b.values.array().round()).all()); // raw UMI counts
    check_against_oracle(b, oracle_read(psm));
}

TEST_CASE("real: written in the other layout and gzip, the real matrices read back identical") {
    if (!have_data()) return;
    const fs::path dir = fs::temp_directory_path() / ("exsal_test_io_real_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const std::string name : {"pbmc68k_reduced_700cells_765genes_lognorm.csv.gz", "hsmm_trapnell2014_fpkm.csv.gz"}) {
        CAPTURE(name);
        const ExpressionMatrix m = exsal::read_expression(data(name));
        exsal::ExpressionWriteOptions w;
        w.genes_in_rows = true;
        w.separator = '\t';
        w.gzip_level = 1;
        const std::string out = (dir / "genes_x_cells.tsv.gz").string();
        exsal::write_expression(out, m, w);
        exsal::ExpressionReadOptions r;
        r.genes_in_rows = true;
        const ExpressionMatrix back = exsal::read_expression(out, r);
        CHECK(back.genes == m.genes);
        CHECK(back.cells == m.cells);
        CHECK(back.values.rows() == m.values.rows());
        CHECK(back.values.cols() == m.values.cols());
        CHECK(std::memcmp(back.values.data(), m.values.data(), sizeof(float) * static_cast<std::size_t>(m.values.size())) == 0);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

TEST_CASE("real: an h5ad (HDF5) file is rejected as binary") {
    if (!have_data()) return;
    const std::string path = data("pbmc68k_reduced.h5ad");
    try {
        exsal::read_expression(path);
        FAIL("no error");
    } catch (const exsal::FileError& e) {
        CHECK(e.path() == path);
        CHECK(std::string(e.what()).find("binary file, not a text table") != std::string::npos);
    }
}

TEST_CASE("real: gene set collections have the sizes the data README states") {
    if (!have_data()) return;
    const auto h62 = exsal::read_gmt(data("h.all.v6.2.symbols.gmt"));
    CHECK(h62.size() == 50);
    CHECK(distinct_genes(h62) == 4386);
    const auto h70 = exsal::read_gmt(data("h.all.v7.0.symbols.gmt"));
    CHECK(h70.size() == 50);
    CHECK(distinct_genes(h70) == 4384);
    std::size_t memberships = 0;
    for (const auto& s : h70) memberships += s.genes.size();
    CHECK(memberships == 7322);
    // v6.2 spells the ROS set "OXIGEN" (sic), v7.0 "OXYGEN".
    CHECK(std::any_of(h62.begin(), h62.end(), [](const exsal::GeneSet& s) { return s.name == "HALLMARK_REACTIVE_OXIGEN_SPECIES_PATHWAY"; }));
    CHECK(std::any_of(h70.begin(), h70.end(), [](const exsal::GeneSet& s) { return s.name == "HALLMARK_REACTIVE_OXYGEN_SPECIES_PATHWAY"; }));
    exsal::GmtReadOptions hallmark;
    hallmark.name_prefix = "HALLMARK_";
    CHECK(exsal::read_gmt(data("h.all.v6.2.symbols.gmt"), hallmark).size() == 50);
    const auto go = exsal::read_gmt(data("go_bp_human_15_500.gmt"));
    CHECK(go.size() == 5233);
    CHECK(distinct_genes(go) == 16018);
    CHECK(std::all_of(go.begin(), go.end(), [](const exsal::GeneSet& s) { return s.genes.size() >= 15 && s.genes.size() <= 500; }));
    CHECK_THROWS_WITH_AS(exsal::read_gmt(data("go_bp_human_15_500.gmt"), hallmark),
                         doctest::Contains("no usable gene set"), exsal::FileError);
    CHECK(exsal::read_gmt(data("btm_li2014_blood_modules.gmt")).size() == 347);
    CHECK(exsal::read_gmt(data("progeny_human_top100.gmt")).size() == 28);
    const auto cc = exsal::read_gmt(data("seurat_cell_cycle_tirosh2016.gmt"));
    REQUIRE(cc.size() == 2);
    CHECK(cc[0].genes.size() == 43);
    CHECK(cc[1].genes.size() == 54);
}

TEST_CASE("real: Hallmark coverage of the real matrices matches the data README") {
    if (!have_data()) return;
    const auto h62 = exsal::read_gmt(data("h.all.v6.2.symbols.gmt"));
    const auto h70 = exsal::read_gmt(data("h.all.v7.0.symbols.gmt"));
    const auto hsmm = exsal::read_expression(data("hsmm_trapnell2014_fpkm.csv.gz"));
    CHECK(coverage_summary(h62, hsmm.genes) == std::make_pair(std::size_t(3266), 50));
    CHECK(coverage_summary(h70, hsmm.genes).first == 3199);
    const auto small = exsal::read_expression(data("pbmc_small_seurat_80cells_counts.csv"));
    CHECK(coverage_summary(h62, small.genes) == std::make_pair(std::size_t(103), 6));
    CHECK(coverage_summary(h70, small.genes).first == 102);
    const auto p68 = exsal::read_expression(data("pbmc68k_reduced_700cells_765genes_lognorm.csv.gz"));
    CHECK(coverage_summary(h62, p68.genes) == std::make_pair(std::size_t(318), 26));
    CHECK(coverage_summary(h70, p68.genes).first == 311);
}
