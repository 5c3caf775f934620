#ifndef EXSAL_NN_OPTIMIZERS_HPP
#define EXSAL_NN_OPTIMIZERS_HPP

// Optimisers over the model's one flat parameter vector: one vectorised update per step.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <cmath>
#include <string>

namespace exsal {

enum class OptimizerKind { adam, sgd };

inline const char* to_string(OptimizerKind k) { return k == OptimizerKind::adam ? "adam" : "sgd"; }
inline OptimizerKind optimizer_from_string(const std::string& s) {
    if (s == "adam") return OptimizerKind::adam;
    if (s == "sgd") return OptimizerKind::sgd;
    throw ArgumentError("exsal::optimizer_from_string", "unknown optimizer '" + s + "' (adam, sgd)");
}

struct AdamOptions {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

struct SgdOptions {
    double lr = 1e-3, momentum = 0.9;
    bool nesterov = true;
};

// Adam (Kingma and Ba), bias-corrected, with one step counter for all parameters, arranged as
// PyTorch does:  m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2 ;
//                p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
template <typename Scalar>
class Adam {
public:
    using Options = AdamOptions;
    Adam(Index n, Options o) : m_o(o), m_m(Vector<Scalar>::Zero(n)), m_v(Vector<Scalar>::Zero(n)) {
        if (!(o.lr > 0) || !(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1) || !(o.eps > 0))
            throw ArgumentError("exsal::Adam", "needs lr > 0, 0 <= beta1, beta2 < 1 and eps > 0");
    }

    void step(Eigen::Ref<Vector<Scalar>> params, const ConstVectorRef<Scalar>& grads) {
        ++m_t;
        const double bc1 = 1.0 - std::pow(m_o.beta1, static_cast<double>(m_t));
        const double bc2 = 1.0 - std::pow(m_o.beta2, static_cast<double>(m_t));
        const Scalar b1 = static_cast<Scalar>(m_o.beta1), b2 = static_cast<Scalar>(m_o.beta2);
        const Scalar step = static_cast<Scalar>(m_o.lr / bc1), inv_sqrt_bc2 = static_cast<Scalar>(1.0 / std::sqrt(bc2));
        const Scalar eps = static_cast<Scalar>(m_o.eps);
        m_m.array() = b1 * m_m.array() + (Scalar(1) - b1) * grads.array();
        m_v.array() = b2 * m_v.array() + (Scalar(1) - b2) * grads.array().square();
        params.array() -= step * m_m.array() / (m_v.array().sqrt() * inv_sqrt_bc2 + eps);
    }
    long long steps() const noexcept { return m_t; }
    const Options& options() const noexcept { return m_o; }

private:
    Options m_o;
    Vector<Scalar> m_m; // first moment
    Vector<Scalar> m_v; // second moment
    long long m_t = 0;  // step counter, one per update
};

// SGD with (optionally Nesterov) momentum, as PyTorch's SGD with dampening 0:
//   buf = mu buf + g (buf = g on the first step) ; p -= lr (g + mu buf)  [Nesterov]  or  lr buf
template <typename Scalar>
class Sgd {
public:
    using Options = SgdOptions;
    Sgd(Index n, Options o) : m_o(o), m_buf(Vector<Scalar>::Zero(n)) {
        if (!(o.lr > 0) || !(o.momentum >= 0))
            throw ArgumentError("exsal::Sgd", "needs lr > 0 and momentum >= 0");
    }

    void step(Eigen::Ref<Vector<Scalar>> params, const ConstVectorRef<Scalar>& grads) {
        const Scalar mu = static_cast<Scalar>(m_o.momentum), lr = static_cast<Scalar>(m_o.lr);
        if (m_t == 0) m_buf = grads;
        else m_buf.array() = mu * m_buf.array() + grads.array();
        ++m_t;
        if (m_o.nesterov) params.array() -= lr * (grads.array() + mu * m_buf.array());
        else params.array() -= lr * m_buf.array();
    }
    long long steps() const noexcept { return m_t; }

private:
    Options m_o;
    Vector<Scalar> m_buf; // momentum buffer
    long long m_t = 0;
};

} // namespace exsal

#endif // EXSAL_NN_OPTIMIZERS_HPP
