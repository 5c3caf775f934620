#ifndef EXSAL_CORE_TYPES_HPP
#define EXSAL_CORE_TYPES_HPP

#include <Eigen/Core>
#include <cmath>
#include <cstdint>

namespace exsal {

using Index = Eigen::Index;

// Genes x cells, column-major: one column is one cell.
template <typename Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <typename Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
template <typename Scalar>
using MatrixMap = Eigen::Map<Matrix<Scalar>>;
template <typename Scalar>
using VectorMap = Eigen::Map<Vector<Scalar>>;
template <typename Scalar>
using ConstMatrixRef = Eigen::Ref<const Matrix<Scalar>>;
template <typename Scalar>
using ConstVectorRef = Eigen::Ref<const Vector<Scalar>>;

using MatrixF = Matrix<float>;
using MatrixD = Matrix<double>;
using VectorF = Vector<float>;
using VectorD = Vector<double>;

namespace detail {
// Whether every entry is finite: (v - v) is 0 for finite entries and NaN otherwise, and a sum
// with a NaN is NaN. The same test as Eigen's allFinite(), in one vectorised pass (allFinite's
// all() reads one coefficient at a time).
template <typename V>
bool all_finite(const V& v) {
    return !std::isnan((v - v).sum());
}
} // namespace detail

} // namespace exsal

#endif // EXSAL_CORE_TYPES_HPP
