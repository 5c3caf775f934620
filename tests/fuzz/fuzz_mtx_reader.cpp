// libFuzzer target: read_10x_mtx on arbitrary bytes (plain or gzip), then, when it succeeds, the
// promises of SparseExpression and of the summary.
// Input: byte 0 selects the mode, the rest is the matrix file, or with bit 0 all three files:
//   bit 0 the rest is "features <0x1e> barcodes <0x1e> matrix" (else fixed features and barcodes:
//         5 features, one an antibody, one name twice; 3 barcodes),
//   bit 1 genes.tsv (Cell Ranger 2) instead of features.tsv, bit 2 keep every feature type,
//   bit 3 keep the symbols' case, bit 4 pass the matrix file instead of the folder.

#include "fuzz_common.hpp"
#include "fuzz_sparse.hpp"
#include "line_buffer_cache.hpp"

#include "exsal/io/mtx.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>

namespace {

namespace fs = std::filesystem;

// A scratch folder "<dir>/exsal-fuzz-mtx-<pid>/" (dir as for ScratchFile), removed at exit.
struct ScratchFolder {
    std::string path;
    ScratchFolder() {
        {
            const exsal_fuzz::ScratchFile name("mtx"); // for its path only; its destructor removes that path
            path = name.path;
        }
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ScratchFolder(const ScratchFolder&) = delete;
    ScratchFolder& operator=(const ScratchFolder&) = delete;
    ~ScratchFolder() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

const std::string fixed_features = "ENSG1\tGeneA\tGene Expression\n"
                                   "AB1\tCD3_TotalSeqB\tAntibody Capture\n"
                                   "ENSG2\tGeneB\tGene Expression\n"
                                   "ENSG3\tGeneA\tGene Expression\n"
                                   "ENSG4\tgenec\tGene Expression\n";
const std::string fixed_barcodes = "AAAC-1\nAAAG-1\nAAAT-1\n";

void write_text(const std::string& path, std::string_view text) {
    exsal_fuzz::write_scratch(path, reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

void check_names(const std::vector<std::string>& names, bool upper) {
    std::unordered_set<std::string> seen;
    for (const auto& s : names) {
        fuzz_check(!s.empty());
        fuzz_check(seen.insert(s).second);
        if (upper)
            for (const char c : s) fuzz_check(!(c >= 'a' && c <= 'z'));
    }
}

void check_result(const exsal::SparseExpression& m, const exsal::TenxReadSummary& s, const exsal::TenxReadOptions& opt) {
    m.check_consistent("fuzz"); // throws (a finding: not caught) when arrays and names disagree
    fuzz_check(m.n_genes() >= 1 && m.n_cells() >= 1);
    fuzz_check(!m.has_groups());
    exsal_fuzz::check_csr_rows(m, false);
    check_names(m.genes, opt.upper_case_genes);
    check_names(m.cells, false);
    fuzz_check(s.features_in_file == s.features_dropped + m.n_genes());
    fuzz_check(s.entries_in_file - s.entries_dropped == m.nnz());
    fuzz_check(s.genes_renamed >= 0 && s.genes_renamed < m.n_genes());
    if (opt.feature_type.empty() || !s.features_v3) fuzz_check(s.features_dropped == 0 && s.entries_dropped == 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size < 1) return 0;
    static ScratchFolder folder;
    const unsigned char mode = data[0];
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string_view features = fixed_features, barcodes = fixed_barcodes, matrix = rest;
    if (mode & 1) {
        const std::size_t a = rest.find('\x1e');
        const std::size_t b = a == std::string_view::npos ? a : rest.find('\x1e', a + 1);
        if (b == std::string_view::npos) return 0;
        features = rest.substr(0, a);
        barcodes = rest.substr(a + 1, b - a - 1);
        matrix = rest.substr(b + 1);
    }
    const bool v2 = mode & 2;
    std::error_code ec;
    fs::remove(folder.file(v2 ? "features.tsv" : "genes.tsv"), ec);
    write_text(folder.file(v2 ? "genes.tsv" : "features.tsv"), features);
    write_text(folder.file("barcodes.tsv"), barcodes);
    write_text(folder.file("matrix.mtx"), matrix);

    exsal::TenxReadOptions opt;
    if (mode & 4) opt.feature_type.clear();
    opt.upper_case_genes = !(mode & 8);
    exsal::TenxReadSummary summary;
    exsal::SparseExpression m;
    try {
        m = exsal::read_10x_mtx((mode & 16) ? folder.file("matrix.mtx") : folder.path, opt, &summary);
    } catch (const exsal::FileError& e) {
        fuzz_check(e.path().rfind(folder.path, 0) == 0); // every complaint names the folder or one of its files
        return 0;
    }
    fuzz_check(summary.features_v3 == !v2);
    check_result(m, summary, opt);
    return 0;
}
