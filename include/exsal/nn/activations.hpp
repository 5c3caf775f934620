#ifndef EXSAL_NN_ACTIVATIONS_HPP
#define EXSAL_NN_ACTIVATIONS_HPP

// Activations as small policy structs. Each gives, on Eigen arrays of pre-activations Z:
//   value(Z)        Y = f(Z)
//   derivative(Z,Y) f'(Z), elementwise (all offered activations are non-decreasing: f' >= 0)
// The Jacobian-vector product of the layer is dL/dZ = dL/dY * f'(Z); the guided variant used by
// saliency clamps it at zero: max(dL/dY * f'(Z), 0).

#include "exsal/core/error.hpp"

#include <Eigen/Core>
#include <string>

namespace exsal {

enum class ActivationKind { softplus, relu, sigmoid, tanh, identity };

inline const char* to_string(ActivationKind k) {
    switch (k) {
    case ActivationKind::softplus: return "softplus";
    case ActivationKind::relu: return "relu";
    case ActivationKind::sigmoid: return "sigmoid";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::identity: return "identity";
    }
    return "?";
}

inline ActivationKind activation_from_string(const std::string& s) {
    for (ActivationKind k : {ActivationKind::softplus, ActivationKind::relu, ActivationKind::sigmoid,
                             ActivationKind::tanh, ActivationKind::identity})
        if (s == to_string(k)) return k;
    throw ArgumentError("exsal::activation_from_string",
                        "unknown activation '" + s + "' (softplus, relu, sigmoid, tanh, identity)");
}

// Which activation a layer uses; beta only matters for softplus (0 = the layer's width).
struct ActivationSpec {
    ActivationKind kind = ActivationKind::softplus;
    double beta = 0.0;
};

// Softplus with sharpness beta: f(z) = log(1 + exp(beta z)) / beta, computed stably as
// max(z, 0) + log1p(exp(-|beta z|)) / beta, and linear (f = z) where beta z > 20, like PyTorch.
// f'(z) = sigmoid(beta z), and 1 in the linear region.
struct Softplus {
    static constexpr ActivationKind kind = ActivationKind::softplus;
    static constexpr double threshold = 20.0;
    double beta = 1.0;

    template <typename Z>
    auto value(const Eigen::ArrayBase<Z>& z) const {
        using S = typename Z::Scalar;
        const S b = static_cast<S>(beta), inv_b = static_cast<S>(1.0 / beta);
        return (z * b > S(threshold))
            .select(z, z.max(S(0)) + (-(z * b).abs()).exp().log1p() * inv_b);
    }
    template <typename Z, typename Y>
    auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<Y>&) const {
        using S = typename Z::Scalar;
        const S b = static_cast<S>(beta);
        return (z * b > S(threshold)).select(Z::Constant(z.rows(), z.cols(), S(1)),
                                             S(1) / (S(1) + (-(z * b)).exp()));
    }
};

// max(z, 0); f'(0) is taken as 0.
struct Relu {
    static constexpr ActivationKind kind = ActivationKind::relu;
    template <typename Z>
    auto value(const Eigen::ArrayBase<Z>& z) const {
        return z.max(typename Z::Scalar(0));
    }
    template <typename Z, typename Y>
    auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<Y>&) const {
        using S = typename Z::Scalar;
        return (z > S(0)).template cast<S>();
    }
};

// 1 / (1 + exp(-z)); f' = y (1 - y).
struct Sigmoid {
    static constexpr ActivationKind kind = ActivationKind::sigmoid;
    template <typename Z>
    auto value(const Eigen::ArrayBase<Z>& z) const {
        using S = typename Z::Scalar;
        return S(1) / (S(1) + (-z).exp());
    }
    template <typename Z, typename Y>
    auto derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<Y>& y) const {
        using S = typename Z::Scalar;
        return y * (S(1) - y);
    }
};

// tanh(z); f' = 1 - y^2.
struct Tanh {
    static constexpr ActivationKind kind = ActivationKind::tanh;
    template <typename Z>
    auto value(const Eigen::ArrayBase<Z>& z) const {
        return z.tanh();
    }
    template <typename Z, typename Y>
    auto derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<Y>& y) const {
        using S = typename Z::Scalar;
        return S(1) - y.square();
    }
};

// f(z) = z; f' = 1.
struct Identity {
    static constexpr ActivationKind kind = ActivationKind::identity;
    template <typename Z>
    auto value(const Eigen::ArrayBase<Z>& z) const {
        return z.derived();
    }
    template <typename Z, typename Y>
    auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<Y>&) const {
        using S = typename Z::Scalar;
        return Z::Constant(z.rows(), z.cols(), S(1));
    }
};

} // namespace exsal

#endif // EXSAL_NN_ACTIVATIONS_HPP
