#ifndef EXSAL_NN_DENSE_HPP
#define EXSAL_NN_DENSE_HPP

// Fully connected layer y = f(W x + b), W out x in (like nn.Linear), on a batch of columns.
// Parameters and their gradients are views (Eigen::Map) into flat vectors owned by the model.
// Training buffers are sized once for the largest batch; a batch of n columns uses their first n.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/activations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace exsal {

namespace detail {
// Column ranges for elementwise work split over OpenMP threads: large blocks only.
inline bool parallel_worthwhile(Index elements) { return elements >= (Index(1) << 15); }

// dst = lhs * rhs (no aliasing) with the output split over the OpenMP threads along its longer
// side: each thread runs one single-threaded Eigen product on its slice (Eigen does not thread a
// product inside a parallel region), so the threads meet once per product. Eigen's own threaded
// GEMM synchronises its threads many times per product by spinning, which costs little on idle
// cores but collapses when the machine has more runnable threads than cores. Small products, and
// calls from inside a parallel region, run as one product on the calling thread. The split only
// depends on the shapes and the thread count, so results are reproducible for a thread count.
template <typename Dst, typename Lhs, typename Rhs>
void split_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
    const Index m = dst.rows(), n = dst.cols(), k = lhs.cols();
#ifdef _OPENMP
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    const int nt = 1;
#endif
    constexpr Index min_work = Index(1) << 20; // multiply-adds
    const bool by_rows = m >= n;
    const Index side = by_rows ? m : n, quantum = by_rows ? 16 : 4; // rows: whole packets; cols: the kernel's nr
    if (nt < 2 || m * n * k < min_work || side < 2 * quantum) {
        dst.noalias() = lhs * rhs;
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const Index t = omp_get_thread_num(), T = omp_get_num_threads();
#else
        const Index t = 0, T = 1;
#endif
        const Index units = (side + quantum - 1) / quantum;
        const Index a = std::min(side, quantum * (units * t / T)), b = std::min(side, quantum * (units * (t + 1) / T));
        if (b > a) {
            if (by_rows)
                dst.middleRows(a, b - a).noalias() = lhs.middleRows(a, b - a) * rhs;
            else
                dst.middleCols(a, b - a).noalias() = lhs * rhs.middleCols(a, b - a);
        }
    }
}

// Softplus on SIMD packets. Eigen 3.4 evaluates select() one scalar at a time (libm exp and
// log1p per element), so the Softplus layer runs these kernels instead where the scalar type has
// packet exp and log1p (float). Same formulas as Softplus::value and Softplus::derivative:
//   y = (b z > 20) ? z : max(z, 0) + log1p(exp(-|b z|)) / b ;  y' = (b z > 20) ? 1 : 1 / (1 + exp(-b z))
// A tail shorter than a packet is padded into one packet, so every element is computed by the
// same instructions wherever it sits (forward, apply and derivative agree bit for bit).
template <typename Scalar>
struct SoftplusPackets {
    using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
    static constexpr bool enabled = Eigen::internal::packet_traits<Scalar>::Vectorizable &&
                                    Eigen::internal::packet_traits<Scalar>::HasExp &&
                                    Eigen::internal::packet_traits<Scalar>::HasLog1p &&
                                    Eigen::internal::unpacket_traits<Packet>::size > 1;
    static constexpr Index width = Eigen::internal::unpacket_traits<Packet>::size;

    Packet b, inv_b, threshold, value_floor, slope_floor, one, zero;
    explicit SoftplusPackets(double beta)
        : b(Eigen::internal::pset1<Packet>(static_cast<Scalar>(beta))),
          inv_b(Eigen::internal::pset1<Packet>(static_cast<Scalar>(1.0 / beta))),
          threshold(Eigen::internal::pset1<Packet>(static_cast<Scalar>(Softplus::threshold))),
          value_floor(Eigen::internal::pset1<Packet>(
              static_cast<Scalar>(std::log(static_cast<double>(std::numeric_limits<Scalar>::min())) +
                                  std::log(std::max(beta, 1.0)) + 1.0))),
          slope_floor(Eigen::internal::pset1<Packet>(
              static_cast<Scalar>(std::log(static_cast<double>(std::numeric_limits<Scalar>::min())) + 1.0))),
          one(Eigen::internal::pset1<Packet>(Scalar(1))), zero(Eigen::internal::pzero(one)) {}

    // Terms that would fall below the smallest normal number are taken as 0 (libm's exp underflows
    // to 0 as well), and the arguments of exp are clamped so that no lane ever computes a
    // subnormal: subnormal intermediates make the packet exp and log several times slower.
    //   log1p(exp(-|b z|)) / b < e min_normal  <=>  -|b z| < log(min_normal) + log(b) + 1  (value_floor)
    //   sigmoid(b z) < e min_normal             <=>   b z   < log(min_normal) + 1           (slope_floor)
    EIGEN_STRONG_INLINE Packet value(const Packet& z) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet neg = pnegate(pabs(bz));
        const Packet tail = pmul(plog1p(pexp(pmax(neg, value_floor))), inv_b);
        const Packet smooth = padd(pmax(z, zero), pselect(pcmp_lt(neg, value_floor), zero, tail));
        return pselect(pcmp_lt(threshold, bz), z, smooth);
    }
    EIGEN_STRONG_INLINE Packet derivative(const Packet& z) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet sig = pdiv(one, padd(one, pexp(pnegate(pmin(pmax(bz, slope_floor), threshold)))));
        return pselect(pcmp_lt(threshold, bz), one, pselect(pcmp_lt(bz, slope_floor), zero, sig));
    }

    // One column of `rows` entries: z += bias (when given), y = f(z).
    void forward_column(Scalar* z, Scalar* y, const Scalar* bias, Index rows) const {
        using namespace Eigen::internal;
        Index i = 0;
        for (; i + width <= rows; i += width) {
            Packet zp = ploadu<Packet>(z + i);
            if (bias) zp = padd(zp, ploadu<Packet>(bias + i));
            pstoreu(z + i, zp);
            pstoreu(y + i, value(zp));
        }
        if (i == rows) return;
        alignas(64) Scalar zt[width] = {}, yt[width];
        for (Index k = i; k < rows; ++k) zt[k - i] = bias ? z[k] + bias[k] : z[k];
        pstoreu(yt, value(ploadu<Packet>(zt)));
        for (Index k = i; k < rows; ++k) {
            z[k] = zt[k - i];
            y[k] = yt[k - i];
        }
    }
    // One column: d = dy * f'(z), or f'(z) when dy is null.
    void derivative_column(const Scalar* z, const Scalar* dy, Scalar* d, Index rows) const {
        using namespace Eigen::internal;
        Index i = 0;
        for (; i + width <= rows; i += width) {
            const Packet f = derivative(ploadu<Packet>(z + i));
            pstoreu(d + i, dy ? pmul(ploadu<Packet>(dy + i), f) : f);
        }
        if (i == rows) return;
        alignas(64) Scalar zt[width] = {}, dt[width] = {}, ft[width];
        for (Index k = i; k < rows; ++k) {
            zt[k - i] = z[k];
            if (dy) dt[k - i] = dy[k];
        }
        const Packet f = derivative(ploadu<Packet>(zt));
        pstoreu(ft, dy ? pmul(ploadu<Packet>(dt), f) : f);
        for (Index k = i; k < rows; ++k) d[k] = ft[k - i];
    }
};
} // namespace detail

// The layer interface the model holds: one virtual call per layer per batch.
template <typename Scalar>
class Layer {
public:
    using Mat = Matrix<Scalar>;
    using ConstRef = ConstMatrixRef<Scalar>;

    virtual ~Layer() = default;

    Index in_size() const noexcept { return m_in; }
    Index out_size() const noexcept { return m_out; }
    Index parameter_count() const noexcept { return m_out * m_in + m_out; }
    virtual ActivationSpec activation() const = 0;

    // Points the layer's W (out x in, column-major) and b (out) at params[offset...] and their
    // gradients at grads[offset...].
    void bind(Scalar* params, Scalar* grads) {
        new (&m_w) MatrixMap<Scalar>(params, m_out, m_in);
        new (&m_b) VectorMap<Scalar>(params + m_out * m_in, m_out);
        new (&m_dw) MatrixMap<Scalar>(grads, m_out, m_in);
        new (&m_db) VectorMap<Scalar>(grads + m_out * m_in, m_out);
    }
    // Sizes the training buffers for batches of up to `max_batch` columns (allocates).
    void reserve(Index max_batch) {
        if (m_z.cols() >= max_batch) return;
        m_z.resize(m_out, max_batch);
        m_y.resize(m_out, max_batch);
        m_dz.resize(m_out, max_batch);
    }
    Index capacity() const noexcept { return m_z.cols(); }

    const MatrixMap<Scalar>& weights() const noexcept { return m_w; }
    const VectorMap<Scalar>& bias() const noexcept { return m_b; }
    MatrixMap<Scalar>& weights() noexcept { return m_w; }
    VectorMap<Scalar>& bias() noexcept { return m_b; }
    const MatrixMap<Scalar>& weight_gradient() const noexcept { return m_dw; }
    MatrixMap<Scalar>& weight_gradient() noexcept { return m_dw; }

    // Training pass, caching what backward needs. x: in x n, n <= capacity().
    //   Z = W X + b ; Y = f(Z)
    virtual void forward(const ConstRef& x) = 0;
    // dL/dZ = dL/dY * f'(Z) from dL/dY (out x n); stored for the two gradient steps below.
    virtual void backward(const ConstRef& dy) = 0;
    // dL/dX = W^T dL/dZ (in x n). Saliency needs only this chain.
    void input_gradient(Eigen::Ref<Mat> dx) const { detail::split_product(dx, m_w.transpose(), m_dz.leftCols(m_n)); }
    // dL/dW = dL/dZ X^T, dL/db = rowsum(dL/dZ), written into the model's gradient vector.
    void parameter_gradient(const ConstRef& x) {
        detail::split_product(m_dw, m_dz.leftCols(m_n), x.transpose());
        // dL/db: each row summed over the columns in column order (the same for any thread count);
        // rows split over threads when the block is large.
        const Index n = m_n;
        auto rows = [&](Index r0, Index nr) {
            auto db = m_db.segment(r0, nr);
            if (n == 0) {
                db.setZero();
                return;
            }
            db = m_dz.col(0).segment(r0, nr);
            for (Index c = 1; c < n; ++c) db += m_dz.col(c).segment(r0, nr);
        };
        if (!detail::parallel_worthwhile(m_out * n) || m_out < 64) {
            rows(0, m_out);
            return;
        }
#pragma omp parallel
        {
#ifdef _OPENMP
            const Index t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            const Index t = 0, nt = 1;
#endif
            // Row ranges on multiples of 16 so every thread's block stays packet-aligned.
            const Index blocks = (m_out + 15) / 16;
            const Index r0 = std::min(m_out, 16 * (blocks * t / nt)), r1 = std::min(m_out, 16 * (blocks * (t + 1) / nt));
            if (r1 > r0) rows(r0, r1 - r0);
        }
    }

    // Cached results of the last forward pass (out x n).
    auto output() const { return m_y.leftCols(m_n); }
    auto pre_activation() const { return m_z.leftCols(m_n); }
    Index batch_size() const noexcept { return m_n; }

    // Stateless evaluation for inference and saliency (thread-safe; z, y resized as needed):
    //   z = W x + b ; y = f(z)
    virtual void apply(const ConstRef& x, Mat& z, Mat& y) const = 0;
    // d = f'(z) elementwise, given z and y = f(z).
    virtual void derivative(const ConstRef& z, const ConstRef& y, Eigen::Ref<Mat> d) const = 0;

protected:
    Layer(Index in, Index out) : m_in(in), m_out(out) {}

    Index m_in, m_out;
    MatrixMap<Scalar> m_w{nullptr, 0, 0};  // out x in
    VectorMap<Scalar> m_b{nullptr, 0};     // out
    MatrixMap<Scalar> m_dw{nullptr, 0, 0}; // out x in, dL/dW
    VectorMap<Scalar> m_db{nullptr, 0};    // out, dL/db
    Mat m_z;  // out x capacity, Z = W X + b
    Mat m_y;  // out x capacity, Y = f(Z)
    Mat m_dz; // out x capacity, dL/dZ
    Index m_n = 0; // columns of the current batch
};

template <typename Scalar, typename Activation>
class Dense final : public Layer<Scalar> {
    static_assert(std::is_floating_point<Scalar>::value,
                  "exsal::Dense needs a floating-point scalar type (float or double).");
    using Base = Layer<Scalar>;
    using typename Base::ConstRef;
    using typename Base::Mat;

public:
    Dense(Index in, Index out, Activation act = Activation{}) : Base(in, out), m_act(act) {}

    ActivationSpec activation() const override {
        ActivationSpec s;
        s.kind = Activation::kind;
        if constexpr (std::is_same<Activation, Softplus>::value) s.beta = m_act.beta;
        return s;
    }

    void forward(const ConstRef& x) override {
        const Index n = x.cols();
        this->m_n = n;
        detail::split_product(this->m_z.leftCols(n), this->m_w, x); // Z = W X
        elementwise_columns(n, [&](Index c0, Index nc) { add_bias_activate(this->m_z, this->m_y, c0, nc); });
    }

    void backward(const ConstRef& dy) override {
        const Index n = this->m_n;
        elementwise_columns(n, [&](Index c0, Index nc) {
            if constexpr (fast_softplus) {
                // dL/dZ = dL/dY * f'(Z), column by column (dy may have an outer stride).
                const detail::SoftplusPackets<Scalar> k(m_act.beta);
                for (Index c = c0; c < c0 + nc; ++c)
                    k.derivative_column(this->m_z.col(c).data(), dy.col(c).data(), this->m_dz.col(c).data(),
                                        this->m_out);
            } else {
                this->m_dz.middleCols(c0, nc).array() =
                    dy.middleCols(c0, nc).array() *
                    m_act.derivative(this->m_z.middleCols(c0, nc).array(), this->m_y.middleCols(c0, nc).array());
            }
        });
    }

    void apply(const ConstRef& x, Mat& z, Mat& y) const override {
        z.resize(this->m_out, x.cols());
        y.resize(this->m_out, x.cols());
        detail::split_product(z, this->m_w, x);
        add_bias_activate(z, y, 0, x.cols());
    }

    void derivative(const ConstRef& z, const ConstRef& y, Eigen::Ref<Mat> d) const override {
        if constexpr (fast_softplus) {
            const detail::SoftplusPackets<Scalar> k(m_act.beta);
            for (Index c = 0; c < z.cols(); ++c) k.derivative_column(z.col(c).data(), nullptr, d.col(c).data(), z.rows());
        } else {
            d.array() = m_act.derivative(z.array(), y.array());
        }
    }

    const Activation& activation_policy() const noexcept { return m_act; }

private:
    static constexpr bool fast_softplus =
        std::is_same<Activation, Softplus>::value && detail::SoftplusPackets<Scalar>::enabled;

    // Columns [c0, c0 + nc) of z (out x n, holding W X): Z += b ; Y = f(Z), in one pass.
    void add_bias_activate(Mat& z, Mat& y, Index c0, Index nc) const {
        if constexpr (fast_softplus) {
            const detail::SoftplusPackets<Scalar> k(m_act.beta);
            for (Index c = c0; c < c0 + nc; ++c)
                k.forward_column(z.col(c).data(), y.col(c).data(), this->m_b.data(), this->m_out);
        } else {
            z.middleCols(c0, nc).colwise() += this->m_b;
            y.middleCols(c0, nc).array() = m_act.value(z.middleCols(c0, nc).array());
        }
    }

    // Runs f(c0, count) over column ranges, in parallel when the block is large.
    template <typename F>
    void elementwise_columns(Index n, F&& f) const {
        if (!detail::parallel_worthwhile(this->m_out * n) || n < 2) {
            f(0, n);
            return;
        }
#pragma omp parallel
        {
#ifdef _OPENMP
            const Index t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            const Index t = 0, nt = 1;
#endif
            const Index c0 = n * t / nt, c1 = n * (t + 1) / nt;
            if (c1 > c0) f(c0, c1 - c0);
        }
    }

    Activation m_act;
};

// Creates a Dense layer with the activation named by `spec` (softplus beta 0 -> the width `out`).
template <typename Scalar>
std::unique_ptr<Layer<Scalar>> make_dense(Index in, Index out, ActivationSpec spec) {
    switch (spec.kind) {
    case ActivationKind::softplus: {
        const double beta = spec.beta > 0 ? spec.beta : static_cast<double>(out);
        return std::make_unique<Dense<Scalar, Softplus>>(in, out, Softplus{beta});
    }
    case ActivationKind::relu: return std::make_unique<Dense<Scalar, Relu>>(in, out);
    case ActivationKind::sigmoid: return std::make_unique<Dense<Scalar, Sigmoid>>(in, out);
    case ActivationKind::tanh: return std::make_unique<Dense<Scalar, Tanh>>(in, out);
    case ActivationKind::identity: return std::make_unique<Dense<Scalar, Identity>>(in, out);
    }
    throw ArgumentError("exsal::make_dense", "unknown activation kind");
}

} // namespace exsal

#endif // EXSAL_NN_DENSE_HPP
