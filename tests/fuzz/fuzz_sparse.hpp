#ifndef EXSAL_TESTS_FUZZ_SPARSE_HPP
#define EXSAL_TESTS_FUZZ_SPARSE_HPP

// The CSR promises every sparse reader makes (h5ad, 10x MTX, 10x HDF5), checked once for all
// fuzz targets: offsets that do not decrease, genes in range, ascending and distinct within a
// cell, finite values, and non-negative ones (no -0.0 either) unless negatives were allowed.

#include "exsal/io/sparse_expression.hpp"

#include "fuzz_common.hpp"

#include <cmath>
#include <cstddef>

namespace exsal_fuzz {

inline void check_csr_rows(const exsal::SparseExpression& m, bool allow_negative) {
    for (exsal::Index c = 0; c < m.n_cells(); ++c) {
        const auto b = m.indptr[static_cast<std::size_t>(c)], e = m.indptr[static_cast<std::size_t>(c) + 1];
        fuzz_check(b <= e);
        for (auto k = b; k < e; ++k) {
            const auto g = m.indices[static_cast<std::size_t>(k)];
            fuzz_check(g >= 0 && g < m.n_genes());
            if (k > b) fuzz_check(m.indices[static_cast<std::size_t>(k) - 1] < g);
            const float v = m.values[static_cast<std::size_t>(k)];
            fuzz_check(std::isfinite(v));
            if (!allow_negative) fuzz_check(v >= 0.0f && !std::signbit(v));
        }
    }
}

} // namespace exsal_fuzz

#endif // EXSAL_TESTS_FUZZ_SPARSE_HPP
