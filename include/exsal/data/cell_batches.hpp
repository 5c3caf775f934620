#ifndef EXSAL_DATA_CELL_BATCHES_HPP
#define EXSAL_DATA_CELL_BATCHES_HPP

// Training batches made from the data on the fly. A single-cell matrix is mostly zeros and far
// larger dense than sparse (100,000 cells x 4,400 model genes are 1.7 GB as floats, twice over for
// the network input and the loss target), so the trainer asks for each batch and GatheredCells
// builds it: the batch's cells are gathered from the dense or sparse data for the model's genes
// (the Poisson targets, raw), then transformed column by column with the fitted Preprocessor (the
// network input). Every transformed value goes through Preprocessor::transform_column, so training
// on GatheredCells equals training on the prepared matrices of prepare() bit for bit.
//
//   PreparedCells prepared = prepare_cells(data, sets, options);
//   GatheredCells<SparseExpression> train(data, prepared.rows, prepared.split.train, prepared.preprocessor);
//   GatheredCells<SparseExpression> validation(data, prepared.rows, prepared.split.validation, prepared.preprocessor);
//   train<float>(model, train, &validation, train_options);

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/io/sparse_expression.hpp"
#include "exsal/nn/trainer.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace exsal {

template <class Expression>
class GatheredCells final : public TrainingCells<float> {
public:
    // The cells `columns` of `data` (all must outlive this), genes `rows` of the data in model
    // order (PreparedCells::rows), transformed by `preprocessor`. Throws ArgumentError when the
    // row count differs from the preprocessor's genes or an index is out of range.
    GatheredCells(const Expression& data, const std::vector<Index>& rows, std::vector<Index> columns,
                  const Preprocessor& preprocessor)
        : m_gather(data, rows), m_columns(std::move(columns)), m_preprocessor(preprocessor) {
        const char* where = "exsal::GatheredCells";
        if (static_cast<Index>(rows.size()) != preprocessor.n_genes())
            throw ArgumentError(where, std::to_string(rows.size()) + " data rows for a preprocessor of " +
                                           std::to_string(preprocessor.n_genes()) + " genes");
        for (Index r : rows)
            if (r < 0 || r >= data.n_genes())
                throw ArgumentError(where, "row " + std::to_string(r) + " is outside the data's " +
                                               std::to_string(data.n_genes()) + " genes");
        for (Index c : m_columns)
            if (c < 0 || c >= data.n_cells())
                throw ArgumentError(where, "cell " + std::to_string(c) + " is outside the data's " +
                                               std::to_string(data.n_cells()) + " cells");
    }

    // Batches whose share of non-zero values is at most this go through the sparse first layer
    // (0: never). The default is where the sparse products measured faster than the dense ones
    // on this project's shapes (benchmarks/README.md, "Sparse first layer").
    static constexpr double default_sparse_density = 0.10;
    void set_sparse_density(double d) { m_sparse_density = d; }

    Index genes() const override { return m_gather.rows(); }
    Index cells() const override { return static_cast<Index>(m_columns.size()); }

    void gather(const std::int64_t* cells, Index n, MatrixF& input, MatrixF& target) const override {
        m_selected.resize(static_cast<std::size_t>(n));
        for (Index j = 0; j < n; ++j) m_selected[static_cast<std::size_t>(j)] = m_columns[static_cast<std::size_t>(cells[j])];
        m_gather.gather(m_selected.data(), n, target);
        for_columns(n, [&](Index j) { m_preprocessor.transform_column(target.col(j).data(), input.col(j).data()); });
    }

    // The batch's raw values as the target; when few of them are non-zero, the input as S + offset
    // with offset = the transformed zero of each gene (minus the centre) and S the rest. Both ways
    // run over the batch's cells in parallel (the serial version of the sparse one took 9 % of a
    // training step at 2,000 genes, with the other thread waiting); S is the same for any thread
    // count: each cell's entries, in gene order, at the offset its column's count gives.
    bool gather_batch(const std::int64_t* cells, Index n, MatrixF& input, SparseBatch<float>& sparse,
                      MatrixF& target) const override {
        m_selected.resize(static_cast<std::size_t>(n));
        for (Index j = 0; j < n; ++j) m_selected[static_cast<std::size_t>(j)] = m_columns[static_cast<std::size_t>(cells[j])];
        m_gather.gather(m_selected.data(), n, target);
        const Index G = genes();
        m_counts.resize(static_cast<std::size_t>(n));
        for_columns(n, [&](Index j) { m_counts[static_cast<std::size_t>(j)] = (target.col(j).array() != 0.0f).count(); });
        std::int64_t nonzero = 0;
        for (Index j = 0; j < n; ++j) nonzero += m_counts[static_cast<std::size_t>(j)];
        if (!(static_cast<double>(nonzero) <= m_sparse_density * static_cast<double>(G) * static_cast<double>(n))) {
            for_columns(n, [&](Index j) { m_preprocessor.transform_column(target.col(j).data(), input.col(j).data()); });
            return false;
        }
        if (m_offset.size() != G) {
            m_offset = VectorF::Zero(G);
            m_preprocessor.transform_column(m_offset.data(), m_offset.data()); // a cell with no counts
        }
        sparse.clear(G);
        sparse.offset = m_offset;
        sparse.start.resize(static_cast<std::size_t>(n) + 1);
        for (Index j = 0; j < n; ++j)
            sparse.start[static_cast<std::size_t>(j) + 1] = sparse.start[static_cast<std::size_t>(j)] + m_counts[static_cast<std::size_t>(j)];
        sparse.row.resize(static_cast<std::size_t>(nonzero));
        sparse.value.resize(static_cast<std::size_t>(nonzero));
#pragma omp parallel if (n * G >= (Index(1) << 15))
        {
            std::vector<std::int32_t> at(static_cast<std::size_t>(G)); // a cell's genes with a count
#pragma omp for schedule(static)
            for (Index j = 0; j < n; ++j) {
                const float* raw = target.col(j).data();
                float* x = input.col(j).data(); // scratch: the cell's dense input
                m_preprocessor.transform_column(raw, x);
                Index k = 0; // the genes with a count, in order, without a branch per gene
                for (Index g = 0; g < G; ++g) {
                    at[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(g);
                    k += raw[g] != 0.0f;
                }
                const auto first = static_cast<std::size_t>(sparse.start[static_cast<std::size_t>(j)]);
                for (Index i = 0; i < k; ++i) {
                    const std::int32_t g = at[static_cast<std::size_t>(i)];
                    sparse.row[first + static_cast<std::size_t>(i)] = g;
                    sparse.value[first + static_cast<std::size_t>(i)] = x[g] - m_offset(g);
                }
            }
        }
        return true;
    }

private:
    // f(j) for the batch's cells j < n, over the OpenMP threads when the batch is large.
    template <class F>
    void for_columns(Index n, F&& f) const {
#pragma omp parallel for schedule(static) if (n * genes() >= (Index(1) << 15))
        for (Index j = 0; j < n; ++j) f(j);
    }

    CellGather<Expression> m_gather;
    std::vector<Index> m_columns;         // cell i of this set = column m_columns[i] of the data
    const Preprocessor& m_preprocessor;
    mutable std::vector<Index> m_selected; // the data columns of the batch being gathered
    mutable std::vector<Index> m_counts;   // per cell of the batch: its non-zero values
    mutable VectorF m_offset;              // the input of a zero count per gene (made at the first sparse batch)
    double m_sparse_density = default_sparse_density;
};

} // namespace exsal

#endif // EXSAL_DATA_CELL_BATCHES_HPP
