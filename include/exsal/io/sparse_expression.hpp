#ifndef EXSAL_IO_SPARSE_EXPRESSION_HPP
#define EXSAL_IO_SPARSE_EXPRESSION_HPP

// Expression data as single-cell files hold it: mostly zeros, stored by cell. SparseExpression is
// compressed sparse rows with one row per cell (the layout of an AnnData CSR matrix and of a 10x
// matrix read by barcode): indptr[c]..indptr[c+1] index the stored genes and values of cell c,
// genes ascending and distinct within a cell. The readers of h5ad, 10x MTX and 10x HDF5 files
// return it; preprocessing and projection read blocks of it without ever holding the whole matrix
// dense (gather_block below).

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/expression_matrix.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace exsal {

struct SparseExpression {
    Index genes_count = 0;                 // columns of the CSR matrix
    std::vector<std::int64_t> indptr{0};   // n_cells + 1 offsets into indices/values
    std::vector<std::int32_t> indices;     // gene of each stored value, ascending within a cell
    std::vector<float> values;             // stored values (zeros may be stored, they are still zeros)
    std::vector<std::string> genes;        // one symbol per gene
    std::vector<std::string> cells;        // one id per cell
    std::vector<std::string> groups;       // one label per cell, or empty; "" = no group for that cell

    Index n_genes() const noexcept { return genes_count; }
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

// Largest value of each gene over all cells (implicit zeros included), for the gene filter.
inline VectorF gene_maxima(const SparseExpression& m) {
    VectorF out = VectorF::Constant(m.n_genes(), -std::numeric_limits<float>::infinity());
    std::vector<std::int64_t> stored(static_cast<std::size_t>(m.n_genes()), 0);
    for (std::size_t k = 0; k < m.indices.size(); ++k) {
        const auto g = static_cast<std::size_t>(m.indices[k]);
        out(static_cast<Index>(g)) = std::max(out(static_cast<Index>(g)), m.values[k]);
        ++stored[g];
    }
    for (Index g = 0; g < m.n_genes(); ++g)
        if (stored[static_cast<std::size_t>(g)] < m.n_cells()) out(g) = std::max(out(g), 0.0f);
    return out;
}

inline VectorF gene_maxima(const ExpressionMatrix& m) {
    if (m.n_cells() == 0) return VectorF::Constant(m.n_genes(), -std::numeric_limits<float>::infinity());
    return m.values.rowwise().maxCoeff();
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
