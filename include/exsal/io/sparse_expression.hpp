#ifndef EXSAL_IO_SPARSE_EXPRESSION_HPP
#define EXSAL_IO_SPARSE_EXPRESSION_HPP

// Expression data as single-cell files hold it: mostly zeros, stored by cell. SparseExpression is
// compressed sparse rows with one row per cell (the layout of an AnnData CSR matrix and of a 10x
// matrix read by barcode): indptr[c]..indptr[c+1] index the stored genes and values of cell c,
// genes ascending and distinct within a cell. The readers of h5ad, 10x MTX and 10x HDF5 files
// return it; preprocessing and projection read blocks of it without ever holding the whole matrix
// dense (gather_block below).
//
// A process of a data-parallel run may hold the values of its share of the cells only
// (SparseExpression::held, set by the readers' `share` option or restrict_to_cells): the ids and
// groups of every cell are there, the other cells have no stored values, and gathering one of
// them throws instead of reading it as all zeros.

#include "exsal/core/error.hpp"
#include "exsal/core/process_group.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/expression_matrix.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace exsal {

// Which cells a reader keeps the values of: share `part` of `parts` (exsal::even_share of the
// file's cells, in file order). The default keeps all. The ids and groups of every cell are read
// either way.
struct ReadShare {
    int part = 0;
    int parts = 1;
    bool all() const noexcept { return parts <= 1; }
    CellRange of(std::int64_t cells) const { return all() ? CellRange{0, cells} : even_share(cells, part, parts); }
};

struct SparseExpression {
    Index genes_count = 0;                 // columns of the CSR matrix
    std::vector<std::int64_t> indptr{0};   // n_cells + 1 offsets into indices/values
    std::vector<std::int32_t> indices;     // gene of each stored value, ascending within a cell
    std::vector<float> values;             // stored values (zeros may be stored, they are still zeros)
    std::vector<std::string> genes;        // one symbol per gene
    std::vector<std::string> cells;        // one id per cell
    std::vector<std::string> groups;       // one label per cell, or empty; "" = no group for that cell
    // The cells whose values are held (count -1: all). The others store nothing and must not be
    // read (CellGather throws): their values are on other processes.
    CellRange held{0, -1};

    Index n_genes() const noexcept { return genes_count; }
    CellRange held_cells() const noexcept { return held.count < 0 ? CellRange{0, n_cells()} : held; }
    bool holds_all() const noexcept { return held.count < 0 || (held.first == 0 && held.count == n_cells()); }
    bool holds(Index cell) const noexcept {
        const CellRange h = held_cells();
        return cell >= h.first && cell < h.first + h.count;
    }
    Index n_cells() const noexcept { return static_cast<Index>(indptr.size()) - 1; }
    std::int64_t nnz() const noexcept { return indptr.back(); }
    bool has_groups() const noexcept { return !groups.empty(); }
    // Bytes of the three CSR arrays (what the memory figures compare with).
    double csr_bytes() const noexcept {
        return static_cast<double>(indptr.size()) * sizeof(std::int64_t) +
               static_cast<double>(indices.size()) * sizeof(std::int32_t) + static_cast<double>(values.size()) * sizeof(float);
    }

    // Throws ArgumentError(where, ...) when the arrays or names disagree with each other.
    void check_consistent(const std::string& where) const {
        if (indptr.empty() || indptr.front() != 0)
            throw ArgumentError(where, "indptr must start at 0");
        if (indices.size() != values.size() || static_cast<std::int64_t>(indices.size()) != indptr.back())
            throw ArgumentError(where, std::to_string(indices.size()) + " indices and " + std::to_string(values.size()) +
                                           " values for indptr ending at " + std::to_string(indptr.back()));
        if (static_cast<Index>(genes.size()) != genes_count)
            throw ArgumentError(where, std::to_string(genes.size()) + " gene names for " + std::to_string(genes_count) +
                                           " genes");
        if (static_cast<Index>(cells.size()) != n_cells())
            throw ArgumentError(where, std::to_string(cells.size()) + " cell ids for " + std::to_string(n_cells()) + " cells");
        if (!groups.empty() && static_cast<Index>(groups.size()) != n_cells())
            throw ArgumentError(where, std::to_string(groups.size()) + " group labels for " + std::to_string(n_cells()) +
                                           " cells");
        const CellRange h = held_cells();
        if (h.first < 0 || h.count < 0 || h.first + h.count > n_cells())
            throw ArgumentError(where, "held cells " + std::to_string(h.first) + "+" + std::to_string(h.count) +
                                           " beyond the " + std::to_string(n_cells()) + " cells");
        if (indptr[static_cast<std::size_t>(h.first)] != 0 ||
            indptr[static_cast<std::size_t>(h.first + h.count)] != indptr.back())
            throw ArgumentError(where, "values stored outside the held cells " + std::to_string(h.first) + "+" +
                                           std::to_string(h.count));
    }

    // The same cells dense (genes x cells). Costs n_genes x n_cells floats: for small data and tests.
    ExpressionMatrix to_dense() const {
        ExpressionMatrix m;
        m.values = MatrixF::Zero(genes_count, n_cells());
        for (Index c = 0; c < n_cells(); ++c)
            for (std::int64_t k = indptr[static_cast<std::size_t>(c)]; k < indptr[static_cast<std::size_t>(c) + 1]; ++k)
                m.values(indices[static_cast<std::size_t>(k)], c) = values[static_cast<std::size_t>(k)];
        m.genes = genes;
        m.cells = cells;
        m.groups = groups;
        return m;
    }
};

// Largest value of each gene over the cells `cells` (implicit zeros included), for the gene
// filter; -inf for every gene when there are none. The cells must be held.
inline VectorF gene_maxima(const SparseExpression& m, CellRange cells) {
    if (cells.count > 0 && (!m.holds(static_cast<Index>(cells.first)) || !m.holds(static_cast<Index>(cells.first + cells.count - 1))))
        throw Error("exsal::gene_maxima: cells " + std::to_string(cells.first) + "+" + std::to_string(cells.count) +
                    " are not all held by this process");
    VectorF out = VectorF::Constant(m.n_genes(), -std::numeric_limits<float>::infinity());
    std::vector<std::int64_t> stored(static_cast<std::size_t>(m.n_genes()), 0);
    const auto b = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(cells.first)]);
    const auto e = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(cells.first + cells.count)]);
    for (std::size_t k = b; k < e; ++k) {
        const auto g = static_cast<std::size_t>(m.indices[k]);
        out(static_cast<Index>(g)) = std::max(out(static_cast<Index>(g)), m.values[k]);
        ++stored[g];
    }
    for (Index g = 0; g < m.n_genes(); ++g)
        if (stored[static_cast<std::size_t>(g)] < cells.count) out(g) = std::max(out(g), 0.0f);
    return out;
}

// The same over all held cells.
inline VectorF gene_maxima(const SparseExpression& m) { return gene_maxima(m, m.held_cells()); }

// The same over the cells `cells` (columns) of dense data; all cells by default.
inline VectorF gene_maxima(const ExpressionMatrix& m, CellRange cells = {0, -1}) {
    if (cells.count < 0) cells = {0, m.n_cells()};
    if (cells.count == 0) return VectorF::Constant(m.n_genes(), -std::numeric_limits<float>::infinity());
    return m.values.middleCols(cells.first, cells.count).rowwise().maxCoeff();
}

// Keeps the values of the cells `cells` only (ids and groups of all cells stay): what a process
// of a data-parallel run holds when its reader could not read its share alone. Frees the rest.
inline void restrict_to_cells(SparseExpression& m, CellRange cells) {
    if (cells.first < 0 || cells.count < 0 || cells.first + cells.count > m.n_cells())
        throw ArgumentError("restrict_to_cells", "cells " + std::to_string(cells.first) + "+" + std::to_string(cells.count) +
                                                     " beyond the " + std::to_string(m.n_cells()) + " cells");
    const auto b = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(cells.first)]);
    const auto e = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(cells.first + cells.count)]);
    std::vector<std::int32_t>(m.indices.begin() + static_cast<std::ptrdiff_t>(b), m.indices.begin() + static_cast<std::ptrdiff_t>(e)).swap(m.indices);
    std::vector<float>(m.values.begin() + static_cast<std::ptrdiff_t>(b), m.values.begin() + static_cast<std::ptrdiff_t>(e)).swap(m.values);
    for (std::size_t c = 0; c < m.indptr.size(); ++c) {
        const auto at = static_cast<std::int64_t>(c);
        m.indptr[c] = at <= cells.first ? 0
                    : at >= cells.first + cells.count ? static_cast<std::int64_t>(e - b)
                                                       : m.indptr[c] - static_cast<std::int64_t>(b);
    }
    m.held = cells;
}

// Dense data as SparseExpression holding the cells `cells` only (zeros are not stored).
inline SparseExpression sparse_cells(const ExpressionMatrix& m, CellRange cells) {
    SparseExpression s;
    s.genes_count = m.n_genes();
    s.genes = m.genes;
    s.cells = m.cells;
    s.groups = m.groups;
    s.indptr.assign(static_cast<std::size_t>(m.n_cells()) + 1, 0);
    for (Index c = cells.first; c < cells.first + cells.count; ++c) {
        for (Index g = 0; g < m.n_genes(); ++g)
            if (m.values(g, c) != 0.0f) {
                s.indices.push_back(static_cast<std::int32_t>(g));
                s.values.push_back(m.values(g, c));
            }
        s.indptr[static_cast<std::size_t>(c) + 1] = static_cast<std::int64_t>(s.indices.size());
    }
    for (Index c = cells.first + cells.count; c < m.n_cells(); ++c)
        s.indptr[static_cast<std::size_t>(c) + 1] = static_cast<std::int64_t>(s.indices.size());
    s.held = cells;
    return s;
}

// Gathers cells of a fixed list of genes again and again (training batches, blocks of cells to
// project or explain) from dense or sparse data, with the gene -> row map built once, so that only
// the block is ever dense. out.col(j) = data(rows[i], columns[j]) for i < rows.size(), 0 for a row
// of -1 (a gene the data lacks). The data must outlive the gatherer; indices are checked by the caller.
template <class Expression> class CellGather;

template <> class CellGather<ExpressionMatrix> {
public:
    CellGather(const ExpressionMatrix& m, std::vector<Index> rows) : m_data(&m), m_rows(std::move(rows)) {}
    Index rows() const noexcept { return static_cast<Index>(m_rows.size()); }
    const ExpressionMatrix& data() const noexcept { return *m_data; }
    // The first n columns of `out` (rows() rows) get the cells columns[0..n).
    void gather(const Index* columns, Index n, Eigen::Ref<MatrixF> out) const {
        const Index n_rows = rows();
#pragma omp parallel for schedule(static) if (n * n_rows >= (Index(1) << 15))
        for (Index j = 0; j < n; ++j) {
            const float* src = m_data->values.col(columns[j]).data();
            float* dst = out.col(j).data();
            for (Index i = 0; i < n_rows; ++i) {
                const Index r = m_rows[static_cast<std::size_t>(i)];
                dst[i] = r < 0 ? 0.0f : src[r];
            }
        }
    }

private:
    const ExpressionMatrix* m_data;
    std::vector<Index> m_rows;
};

template <> class CellGather<SparseExpression> {
public:
    CellGather(const SparseExpression& m, std::vector<Index> rows)
        : m_data(&m), m_rows(std::move(rows)), m_position(static_cast<std::size_t>(m.n_genes()), -1) {
        for (std::size_t i = 0; i < m_rows.size(); ++i)
            if (m_rows[i] >= 0) m_position[static_cast<std::size_t>(m_rows[i])] = static_cast<Index>(i);
    }
    Index rows() const noexcept { return static_cast<Index>(m_rows.size()); }
    const SparseExpression& data() const noexcept { return *m_data; }
    void gather(const Index* columns, Index n, Eigen::Ref<MatrixF> out) const {
        const Index n_rows = rows();
        const SparseExpression& m = *m_data;
        if (!m.holds_all())
            for (Index j = 0; j < n; ++j)
                if (!m.holds(columns[j]))
                    throw Error("exsal::CellGather: cell " + std::to_string(columns[j]) + " (" +
                                m.cells[static_cast<std::size_t>(columns[j])] +
                                ") is not among the cells this process holds (" + std::to_string(m.held.first) + "+" +
                                std::to_string(m.held.count) + ")");
#pragma omp parallel for schedule(static) if (n * n_rows >= (Index(1) << 15))
        for (Index j = 0; j < n; ++j) {
            const auto c = static_cast<std::size_t>(columns[j]);
            float* dst = out.col(j).data();
            std::fill(dst, dst + n_rows, 0.0f);
            for (std::int64_t k = m.indptr[c]; k < m.indptr[c + 1]; ++k) {
                const Index i = m_position[static_cast<std::size_t>(m.indices[static_cast<std::size_t>(k)])];
                if (i >= 0) dst[i] = m.values[static_cast<std::size_t>(k)];
            }
        }
    }

private:
    const SparseExpression* m_data;
    std::vector<Index> m_rows;
    std::vector<Index> m_position; // gene of the data -> row of the block, -1: not gathered
};

// out(i, j) = m(rows[i], columns[j]) for genes `rows` (distinct; -1 = a gene the data lacks, 0)
// and cells `columns`. `out` is resized to rows x columns.
template <class Expression>
void gather_block(const Expression& m, const std::vector<Index>& rows, const std::vector<Index>& columns, MatrixF& out) {
    out.resize(static_cast<Index>(rows.size()), static_cast<Index>(columns.size()));
    CellGather<Expression>(m, rows).gather(columns.data(), static_cast<Index>(columns.size()), out);
}

} // namespace exsal

#endif // EXSAL_IO_SPARSE_EXPRESSION_HPP
