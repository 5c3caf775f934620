#ifndef EXSAL_IO_TENX_H5_HPP
#define EXSAL_IO_TENX_H5_HPP

// Reads Cell Ranger's HDF5 matrices (filtered_feature_bc_matrix.h5) into SparseExpression.
//   Cell Ranger >= 3: group /matrix with barcodes, data, indices, indptr, shape (features,
//     barcodes) and features/{id, name, feature_type}; the matrix is compressed by barcode
//     (indptr over barcodes, indices = feature rows), i.e. already CSR by cell.
//   Cell Ranger 2: one group per genome (/GRCh38, ...) with barcodes, data, indices, indptr,
//     shape, genes (ids) and gene_names; every feature is a gene. A file with several genomes is
//     refused (name the genome to read is not offered).
// Genes are the `name`s of the features of options.feature_type, upper-cased and made unique as
// read_10x_mtx does (TenxReadOptions, TenxReadSummary are shared with it).

#include "exsal/core/error.hpp"
#include "exsal/io/hdf5.hpp"
#include "exsal/io/mtx.hpp" // TenxReadOptions, TenxReadSummary, detail::tenx::make_names_unique
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

namespace exsal {

namespace detail::tenx_h5 {

// The group holding the matrix: /matrix (v3) or the only genome group (v2).
inline h5::Node matrix_group(const h5::Node& root, bool& v3) {
    if (root.child_kind("matrix") == h5::Kind::group) {
        v3 = true;
        return root.open("matrix");
    }
    v3 = false;
    std::vector<std::string> genomes;
    for (const std::string& c : root.children())
        if (root.child_kind(c) == h5::Kind::group && root.open(c).has("gene_names")) genomes.push_back(c);
    if (genomes.empty())
        root.fail("is neither a Cell Ranger HDF5 matrix (no 'matrix' group, no genome group with 'gene_names') nor an "
                  "AnnData file (no 'X')" + root.listing());
    if (genomes.size() > 1)
        root.fail("holds " + std::to_string(genomes.size()) + " genomes (" + genomes[0] + ", " + genomes[1] +
                  ", ...); this reader reads files with one");
    return root.open(genomes[0]);
}

// Keeps the entries of kept features (old row -> new row, -1 = dropped), cell by cell, sorting each
// cell's genes; refuses an index out of range or twice in one cell. 'indices' and 'data' are read
// by runs of whole cells of about 4 M entries, so the file's int64 indices and (as double) values
// are never held whole next to the result: a 10x file of 200 M counts would need 3.2 GB for them.
// Only the barcodes `share` are read (the others get no values) when given.
inline void build_csr(const h5::Node& g, const std::vector<std::int64_t>& ptr, const std::vector<std::int32_t>& new_row,
                      SparseExpression& out, CellRange share = {0, -1}, std::int64_t chunk_entries = std::int64_t(1) << 22) {
    const h5::Node indices = g.open("indices"), values = g.open("data");
    if (share.count < 0) share = {0, static_cast<std::int64_t>(ptr.size()) - 1};
    out.indptr.assign(static_cast<std::size_t>(share.first) + 1, 0);
    const std::int64_t entries = ptr[static_cast<std::size_t>(share.first + share.count)] - ptr[static_cast<std::size_t>(share.first)];
    out.indices.reserve(static_cast<std::size_t>(entries));
    out.values.reserve(static_cast<std::size_t>(entries));
    std::vector<std::pair<std::int32_t, float>> cell;
    const auto cells = static_cast<std::size_t>(share.first + share.count);
    for (std::size_t c0 = static_cast<std::size_t>(share.first); c0 < cells;) {
        std::size_t c1 = c0 + 1; // cells [c0, c1): at least one, else up to chunk_entries entries
        while (c1 < cells && ptr[c1 + 1] - ptr[c0] <= chunk_entries) ++c1;
        const std::int64_t first = ptr[c0];
        const auto count = static_cast<hsize_t>(ptr[c1] - first);
        const std::vector<std::int64_t> rows = indices.read_rows<std::int64_t>(static_cast<hsize_t>(first), count);
        const std::vector<double> data = values.read_rows<double>(static_cast<hsize_t>(first), count);
        for (std::size_t c = c0; c < c1; ++c) {
            cell.clear();
            for (std::int64_t k = ptr[c]; k < ptr[c + 1]; ++k) {
                const auto i = static_cast<std::size_t>(k - first), at = static_cast<std::size_t>(k);
                if (rows[i] < 0 || rows[i] >= static_cast<std::int64_t>(new_row.size()))
                    indices.fail("feature index " + std::to_string(rows[i]) + " at position " + std::to_string(at) +
                                 " is out of range (0 to " + std::to_string(new_row.size()) + " - 1)");
                const double v = data[i];
                const bool too_large = std::isfinite(v) && v > static_cast<double>(std::numeric_limits<float>::max());
                if (!std::isfinite(v) || v < 0.0 || too_large) // beyond float: cast to single precision it would be inf
                    values.fail("value " + std::to_string(v) + " at position " + std::to_string(at) + " (barcode " +
                                std::to_string(c) + ") is " +
                                (v < 0.0 ? "negative" : too_large ? "beyond single precision" : "not finite") +
                                "; Cell Ranger writes counts");
                const std::int32_t r = new_row[static_cast<std::size_t>(rows[i])];
                if (r >= 0) cell.emplace_back(r, static_cast<float>(v) + 0.0f); // "-0" is stored as +0, as read_10x_mtx does
            }
            std::sort(cell.begin(), cell.end(), [](auto& a, auto& b) { return a.first < b.first; });
            for (std::size_t k = 0; k < cell.size(); ++k) {
                if (k > 0 && cell[k].first == cell[k - 1].first)
                    indices.fail("a feature appears twice for barcode " + std::to_string(c));
                out.indices.push_back(cell[k].first);
                out.values.push_back(cell[k].second);
            }
            out.indptr.push_back(static_cast<std::int64_t>(out.indices.size()));
        }
        c0 = c1;
    }
    out.indptr.resize(ptr.size(), static_cast<std::int64_t>(out.indices.size()));
}

inline std::vector<std::int64_t> read_indptr(const h5::Node& g, std::size_t barcodes, std::size_t nnz) {
    const h5::Node p = g.open("indptr");
    if (p.length() != barcodes + 1)
        p.fail("has " + std::to_string(p.length()) + " entries for " + std::to_string(barcodes) + " barcodes (needs " +
               std::to_string(barcodes + 1) + ")");
    std::vector<std::int64_t> ptr = p.read_all<std::int64_t>();
    if (ptr[0] != 0) p.fail("starts at " + std::to_string(ptr[0]) + ", not 0");
    for (std::size_t i = 1; i < ptr.size(); ++i)
        if (ptr[i] < ptr[i - 1]) p.fail("decreases at entry " + std::to_string(i));
    if (static_cast<std::size_t>(ptr.back()) != nnz)
        p.fail("ends at " + std::to_string(ptr.back()) + " but 'data' holds " + std::to_string(nnz) + " values");
    return ptr;
}

} // namespace detail::tenx_h5

// Reads a Cell Ranger HDF5 matrix already open (see the header comment).
inline SparseExpression read_10x_h5(const h5::Node& root, const TenxReadOptions& o = {}, TenxReadSummary* summary = nullptr) {
    bool v3 = false;
    const h5::Node g = detail::tenx_h5::matrix_group(root, v3);
    for (const char* part : {"barcodes", "data", "indices", "indptr", "shape"})
        if (!g.has(part)) g.fail(std::string("has no '") + part + "'" + g.listing());
    const std::vector<std::int64_t> shape = g.open("shape").read_all<std::int64_t>();
    if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0) g.open("shape").fail("is not (features, barcodes)");
    SparseExpression out;
    out.cells = g.open("barcodes").read_strings();
    if (out.cells.size() != static_cast<std::size_t>(shape[1]))
        g.open("barcodes").fail("holds " + std::to_string(out.cells.size()) + " barcodes, but shape says " +
                                std::to_string(shape[1]));
    std::vector<std::string> names, types;
    if (v3) {
        if (!g.has("features")) g.fail("has no 'features' group" + g.listing());
        const h5::Node f = g.open("features");
        names = f.open("name").read_strings();
        if (f.has("feature_type")) types = f.open("feature_type").read_strings();
        if (!types.empty() && types.size() != names.size()) f.fail("'feature_type' and 'name' differ in length");
    } else {
        names = g.open("gene_names").read_strings();
    }
    if (names.size() != static_cast<std::size_t>(shape[0]))
        g.fail("names " + std::to_string(names.size()) + " features, but shape says " + std::to_string(shape[0]));
    std::vector<std::int32_t> new_row(names.size(), -1);
    for (std::size_t i = 0; i < names.size(); ++i)
        if (types.empty() || o.feature_type.empty() || types[i] == o.feature_type) {
            new_row[i] = static_cast<std::int32_t>(out.genes.size());
            out.genes.push_back(names[i]);
        }
    if (out.genes.empty()) g.fail("has no feature of type '" + o.feature_type + "'");
    if (o.upper_case_genes)
        for (auto& s : out.genes) detail::upper_case_ascii(s);
    const Index renamed = detail::tenx::make_names_unique(out.genes);
    const std::size_t nnz = g.open("data").length();
    if (g.open("indices").length() != nnz) g.open("indices").fail("differs in length from 'data'");
    const std::vector<std::int64_t> ptr = detail::tenx_h5::read_indptr(g, out.cells.size(), nnz);
    out.genes_count = static_cast<Index>(out.genes.size());
    const CellRange share = o.share.of(static_cast<std::int64_t>(out.cells.size()));
    detail::tenx_h5::build_csr(g, ptr, new_row, out, share);
    if (!o.share.all()) out.held = share;
    std::unordered_set<std::string> seen;
    for (std::size_t i = 0; i < out.cells.size(); ++i)
        if (!seen.insert(out.cells[i]).second) g.open("barcodes").fail("barcode \"" + out.cells[i] + "\" appears twice");
    if (summary) {
        summary->matrix_path = root.file_path() + ":" + g.path();
        summary->features_v3 = v3;
        summary->features_in_file = static_cast<Index>(names.size());
        summary->features_dropped = static_cast<Index>(names.size()) - out.genes_count;
        summary->genes_renamed = renamed;
        summary->entries_in_file = static_cast<std::int64_t>(nnz);
        // of the entries read (the share's cells when o.share is set)
        summary->entries_dropped = ptr[static_cast<std::size_t>(share.first + share.count)] -
                                   ptr[static_cast<std::size_t>(share.first)] - out.nnz();
    }
    return out;
}

inline SparseExpression read_10x_h5(const std::string& path, const TenxReadOptions& o = {}, TenxReadSummary* summary = nullptr) {
    return read_10x_h5(h5::open_file(path), o, summary);
}

} // namespace exsal

#endif // EXSAL_IO_TENX_H5_HPP
