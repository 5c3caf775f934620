#ifndef EXSAL_NN_SPARSE_BATCH_HPP
#define EXSAL_NN_SPARSE_BATCH_HPP

// A batch of network input given as X = S + offset 1^T: S sparse (in x n), offset one value per
// input row. Single-cell counts are mostly zeros (90-95 % in 10x data), and the input transform and
// centring map every zero of a gene to the same value (offset(g) = transform(0) - centre(g)), so a
// batch is exactly that. The first layer then costs the stored entries instead of in x n:
//   Z  = W X + b 1^T = W S + (W offset + b) 1^T
//   dW = dZ X^T     = dZ S^T + (dZ 1) offset^T        (dZ 1 = db)
// and its input gradient is never needed. The two products are below, each with a reference.

#include "exsal/core/types.hpp"
#include "exsal/nn/kernels.hpp"

#include <cstdint>
#include <vector>

namespace exsal {

template <typename Scalar>
struct SparseBatch {
    Index rows = 0;                     // input width (genes)
    std::vector<std::int64_t> start{0}; // column j's entries are [start[j], start[j + 1])
    std::vector<std::int32_t> row;      // their rows, ascending within a column
    std::vector<Scalar> value;          // their values (X - offset at that entry)
    Vector<Scalar> offset;              // rows: the value of every entry not stored

    Index cols() const noexcept { return static_cast<Index>(start.size()) - 1; }
    Index stored() const noexcept { return static_cast<Index>(row.size()); }
    void clear(Index genes) {
        rows = genes;
        start.assign(1, 0);
        row.clear();
        value.clear();
    }
    // X as a dense matrix (tests, references).
    Matrix<Scalar> dense() const {
        Matrix<Scalar> x = offset.replicate(1, cols());
        for (Index j = 0; j < cols(); ++j)
            for (std::int64_t k = start[static_cast<std::size_t>(j)]; k < start[static_cast<std::size_t>(j) + 1]; ++k)
                x(row[static_cast<std::size_t>(k)], j) += value[static_cast<std::size_t>(k)];
        return x;
    }
};

namespace kernels {

// z.leftCols(n) = W S (the stored part only): z.col(j) = sum over column j's entries of
// value * W.col(row). Columns split over the OpenMP threads; each column sums in entry order, so
// the result does not depend on the thread count.
template <typename Scalar, typename Dst, typename W>
void sparse_product(Dst&& z, const W& w, const SparseBatch<Scalar>& s) {
    const Index n = s.cols(), out = w.rows();
    auto columns = [&](Index c0, Index nc) {
        for (Index j = c0; j < c0 + nc; ++j) {
            auto zj = z.col(j);
            zj.setZero();
            for (std::int64_t k = s.start[static_cast<std::size_t>(j)]; k < s.start[static_cast<std::size_t>(j) + 1]; ++k)
                zj.noalias() += s.value[static_cast<std::size_t>(k)] * w.col(s.row[static_cast<std::size_t>(k)]);
        }
    };
    if (!parallel_worthwhile(out * s.stored()) || n < 2) {
        columns(0, n);
        return;
    }
    detail::thread_ranges(n, 1, detail::max_threads(), columns);
}

// dw = dz S^T (the stored part only): dw.col(row) += value * dz.col(j) over every entry, in
// column order. dw's rows are split over the OpenMP threads (each thread owns a slice of every
// column, so no two threads write the same entry), on multiples of 16 rows.
template <typename Scalar, typename Dw, typename Dz>
void sparse_transposed_product(Dw&& dw, const Dz& dz, const SparseBatch<Scalar>& s) {
    const Index n = s.cols(), out = dw.rows();
    auto rows = [&](Index r0, Index nr) {
        dw.middleRows(r0, nr).setZero();
        for (Index j = 0; j < n; ++j) {
            const auto dzj = dz.col(j).segment(r0, nr);
            for (std::int64_t k = s.start[static_cast<std::size_t>(j)]; k < s.start[static_cast<std::size_t>(j) + 1]; ++k)
                dw.col(s.row[static_cast<std::size_t>(k)]).segment(r0, nr).noalias() += s.value[static_cast<std::size_t>(k)] * dzj;
        }
    };
    if (!parallel_worthwhile(out * s.stored()) || out < 32) {
        rows(0, out);
        return;
    }
    detail::thread_ranges(out, 16, detail::max_threads(), rows);
}

} // namespace kernels
} // namespace exsal

#endif // EXSAL_NN_SPARSE_BATCH_HPP
