#ifndef EXSAL_NN_LOSSES_HPP
#define EXSAL_NN_LOSSES_HPP

// Reconstruction losses, as policy structs over a genes x n block:
//   value(Yhat, X)         the loss, a mean over genes and cells
//   gradient(Yhat, X, dY)  dY = dL/dYhat
// Sums are taken per column, then over columns in order, so the result does not depend on the
// thread count.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace exsal {

enum class LossKind { poisson, mse };

namespace detail {
// The default per-column step of value_and_gradient: nothing.
struct NoColumnStep {
    void operator()(Index) const noexcept {}
};

// sums[c] = column(c) for c < n (OpenMP over columns when kernels::parallel_worthwhile(entries)),
// then the mean sum(sums) / entries with the columns added in order.
template <typename F>
double columns_in_parallel(Index n, Index entries, double* sums, F&& column) {
    if (kernels::parallel_worthwhile(entries) && n > 1) {
#pragma omp parallel
        {
            const FlushDenormals flush;
#pragma omp for schedule(static)
            for (Index c = 0; c < n; ++c) sums[c] = column(c);
        }
    } else {
        for (Index c = 0; c < n; ++c) sums[c] = column(c);
    }
    double total = 0.0;
    for (Index c = 0; c < n; ++c) total += sums[c];
    return total / static_cast<double>(entries);
}
} // namespace detail

inline const char* to_string(LossKind k) { return k == LossKind::poisson ? "poisson" : "mse"; }
inline LossKind loss_from_string(const std::string& s) {
    if (s == "poisson") return LossKind::poisson;
    if (s == "mse") return LossKind::mse;
    throw ArgumentError("exsal::loss_from_string", "unknown loss '" + s + "' (poisson, mse)");
}

// The largest target value with which every single-precision intermediate of the loss and its
// gradient for one cell of `n_genes` genes stays finite, with a factor 10 to spare.
//   Poisson: x / (rate + 1e-8) <= x * 1e8, and a cell's sum of x |log(rate + 1e-8)| <= n_genes x 88.7
//   (|log| of a float rate is at most ~88.7);  MSE: a cell's sum of (rate - x)^2 ~ n_genes x^2.
// Larger values (e.g. 1e35 in a table of counts) are refused before training instead of ending as
// an infinite loss that looks like a diverging optimiser.
inline double largest_safe_target(LossKind kind, Index n_genes) {
    const double fmax = static_cast<double>(std::numeric_limits<float>::max());
    const double g = static_cast<double>(std::max<Index>(1, n_genes));
    if (kind == LossKind::mse) return std::sqrt(fmax / g) / 10.0;
    return std::min(fmax * 1e-8, fmax / (88.7 * g)) / 10.0;
}

// Poisson negative log-likelihood with the rate as input (PyTorch's poisson_nll_loss with
// log_input=False, full=False): L = mean(yhat - x log(yhat + eps)); dL/dyhat = (1 - x/(yhat+eps)) / N.
struct PoissonLoss {
    static constexpr LossKind kind = LossKind::poisson;
    double eps = 1e-8;

    template <typename Scalar>
    double value(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x) const {
        const Scalar e = static_cast<Scalar>(eps);
        double total = 0.0;
        for (Index c = 0; c < yhat.cols(); ++c)
            total += static_cast<double>(
                (yhat.col(c).array() - x.col(c).array() * (yhat.col(c).array() + e).log()).sum());
        return total / static_cast<double>(yhat.size());
    }
    template <typename Scalar, typename Out>
    void gradient(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x, Out&& dy) const {
        const Scalar e = static_cast<Scalar>(eps), inv_n = Scalar(1) / static_cast<Scalar>(yhat.size());
        dy.array() = (Scalar(1) - x.array() / (yhat.array() + e)) * inv_n;
    }
    // value() and gradient() in one parallel pass over the columns (each column's data is read
    // once while in cache). column_sums: caller's scratch of yhat.cols() doubles (no allocation
    // here); the per-column sums are added in column order, so the value equals value() exactly.
    // then(c), when given, runs on the same thread right after column c of dy is written (the
    // autoencoder applies the output layer's f' to it there, while it is in cache).
    template <typename Scalar, typename Out, typename Then = detail::NoColumnStep>
    double value_and_gradient(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x, Out&& dy,
                              double* column_sums, Then&& then = Then{}) const {
        const Scalar e = static_cast<Scalar>(eps), inv_n = Scalar(1) / static_cast<Scalar>(yhat.size());
        return detail::columns_in_parallel(yhat.cols(), yhat.size(), column_sums, [&](Index c) {
            const auto yc = yhat.col(c).array();
            const auto xc = x.col(c).array();
            dy.col(c).array() = (Scalar(1) - xc / (yc + e)) * inv_n;
            then(c);
            return static_cast<double>((yc - xc * (yc + e).log()).sum());
        });
    }
};

// Mean squared error: L = mean((yhat - x)^2); dL/dyhat = 2 (yhat - x) / N.
struct MseLoss {
    static constexpr LossKind kind = LossKind::mse;

    template <typename Scalar>
    double value(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x) const {
        double total = 0.0;
        for (Index c = 0; c < yhat.cols(); ++c)
            total += static_cast<double>((yhat.col(c) - x.col(c)).squaredNorm());
        return total / static_cast<double>(yhat.size());
    }
    template <typename Scalar, typename Out>
    void gradient(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x, Out&& dy) const {
        const Scalar s = Scalar(2) / static_cast<Scalar>(yhat.size());
        dy.array() = (yhat.array() - x.array()) * s;
    }
    // value() and gradient() in one parallel pass over the columns; see PoissonLoss.
    template <typename Scalar, typename Out, typename Then = detail::NoColumnStep>
    double value_and_gradient(const ConstMatrixRef<Scalar>& yhat, const ConstMatrixRef<Scalar>& x, Out&& dy,
                              double* column_sums, Then&& then = Then{}) const {
        const Scalar s = Scalar(2) / static_cast<Scalar>(yhat.size());
        return detail::columns_in_parallel(yhat.cols(), yhat.size(), column_sums, [&](Index c) {
            dy.col(c).array() = (yhat.col(c).array() - x.col(c).array()) * s;
            then(c);
            return static_cast<double>((yhat.col(c) - x.col(c)).squaredNorm());
        });
    }
};

} // namespace exsal

#endif // EXSAL_NN_LOSSES_HPP
