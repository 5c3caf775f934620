#ifndef EXSAL_NN_LOSSES_HPP
#define EXSAL_NN_LOSSES_HPP

// Reconstruction losses, as policy structs over a genes x n block:
//   value(Yhat, X)         the loss, a mean over genes and cells
//   gradient(Yhat, X, dY)  dY = dL/dYhat
// Sums are taken per column, then over columns in order, so the result does not depend on the
// thread count.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <string>

namespace exsal {

enum class LossKind { poisson, mse };

inline const char* to_string(LossKind k) { return k == LossKind::poisson ? "poisson" : "mse"; }
inline LossKind loss_from_string(const std::string& s) {
    if (s == "poisson") return LossKind::poisson;
    if (s == "mse") return LossKind::mse;
    throw ArgumentError("exsal::loss_from_string", "unknown loss '" + s + "' (poisson, mse)");
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
};

} // namespace exsal

#endif // EXSAL_NN_LOSSES_HPP
