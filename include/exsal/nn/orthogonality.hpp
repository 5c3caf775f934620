#ifndef EXSAL_NN_ORTHOGONALITY_HPP
#define EXSAL_NN_ORTHOGONALITY_HPP

// The soft orthogonality penalty on W (units x inputs), the weights feeding the representation:
//   frobenius: P = lambda ||I - W W^T||_F      dP/dW = 2 lambda (W W^T - I) W / ||W W^T - I||_F
//   squared:   P = lambda ||I - W W^T||_F^2    dP/dW = 4 lambda (W W^T - I) W
// The gradient is two matrix products (closed form), and zero where the norm is zero.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <cmath>
#include <string>

namespace exsal {

enum class OrthogonalityForm { frobenius, squared };

inline const char* to_string(OrthogonalityForm f) { return f == OrthogonalityForm::frobenius ? "frobenius" : "squared"; }
inline OrthogonalityForm orthogonality_from_string(const std::string& s) {
    if (s == "frobenius") return OrthogonalityForm::frobenius;
    if (s == "squared") return OrthogonalityForm::squared;
    throw ArgumentError("exsal::orthogonality_from_string", "unknown penalty form '" + s + "' (frobenius, squared)");
}

// ||I - W W^T||_F, the orthogonality error reported in training histories.
template <typename Scalar>
double orthogonality_error(const ConstMatrixRef<Scalar>& w) {
    Matrix<Scalar> g = w * w.transpose();
    g.diagonal().array() -= Scalar(1);
    return static_cast<double>(g.norm());
}

// Computes the penalty and adds its gradient to dw (same shape as w). `gram` is a U x U scratch
// buffer sized by the caller (no allocation here). Returns the penalty value.
template <typename Scalar>
double add_orthogonality_penalty(const ConstMatrixRef<Scalar>& w, double lambda, OrthogonalityForm form,
                                 Matrix<Scalar>& gram, Eigen::Ref<Matrix<Scalar>> dw) {
    if (lambda == 0.0) return 0.0;
    gram.noalias() = w * w.transpose();      // U x U, W W^T
    gram.diagonal().array() -= Scalar(1);    // W W^T - I
    const double norm = static_cast<double>(gram.norm());
    if (form == OrthogonalityForm::frobenius) {
        if (norm > 0.0) dw.noalias() += static_cast<Scalar>(2.0 * lambda / norm) * (gram * w);
        return lambda * norm;
    }
    dw.noalias() += static_cast<Scalar>(4.0 * lambda) * (gram * w);
    return lambda * norm * norm;
}

} // namespace exsal

#endif // EXSAL_NN_ORTHOGONALITY_HPP
