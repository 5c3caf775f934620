#ifndef EXSAL_TESTS_TEST_NUMERIC_HPP
#define EXSAL_TESTS_TEST_NUMERIC_HPP

// Numeric helpers shared by the tests: the relative error of two gradients and the
// Kolmogorov-Smirnov distance of p-values from the uniform distribution.

#include "exsal/core/types.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace exsal_test {

// ||a - b|| / ||a + b|| (mlpack's CheckGradient measure); ||a - b|| when a + b = 0.
template <typename A, typename B>
double relative_error(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
    const double den = (a + b).norm();
    return den == 0.0 ? (a - b).norm() : (a - b).norm() / den;
}

// Kolmogorov-Smirnov distance of a sample from the uniform distribution on [0, 1].
inline double ks_uniform(std::vector<double> p) {
    std::sort(p.begin(), p.end());
    const double n = static_cast<double>(p.size());
    double d = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i)
        d = std::max({d, std::abs(static_cast<double>(i + 1) / n - p[i]), std::abs(p[i] - static_cast<double>(i) / n)});
    return d;
}

} // namespace exsal_test

#endif // EXSAL_TESTS_TEST_NUMERIC_HPP
