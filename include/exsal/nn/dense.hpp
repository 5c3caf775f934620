#ifndef EXSAL_NN_DENSE_HPP
#define EXSAL_NN_DENSE_HPP

// Fully connected layer y = f(W x + b), W out x in (like nn.Linear), on a batch of columns.
// Parameters and their gradients are views (Eigen::Map) into flat vectors owned by the model.
// Training buffers are sized once for the largest batch; a batch of n columns uses their first n.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/activations.hpp"
#include "exsal/nn/kernels.hpp"
#include "exsal/nn/sparse_batch.hpp"

#include <memory>
#include <type_traits>

namespace exsal {

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
    // The same for a batch X = S + offset 1^T (see sparse_batch.hpp): Z = W S + (W offset + b) 1^T.
    void forward(const SparseBatch<Scalar>& x) {
        const Index n = x.cols();
        m_n = n;
        kernels::sparse_product(m_z.leftCols(n), m_w, x);
        m_w_offset.noalias() = m_w * x.offset;
        m_z.leftCols(n).colwise() += m_w_offset;
        activate(n);
    }
    // dL/dZ = dL/dY * f'(Z) from dL/dY (out x n); stored for the two gradient steps below.
    virtual void backward(const ConstRef& dy) = 0;
    // The same for the columns [c0, c0 + nc) only (dy: all n columns, of which these are read), on
    // the calling thread: for a caller that makes dL/dY a column at a time (the loss) and applies
    // f' while the column is in cache. backward() is this over all columns, split over threads.
    virtual void backward_columns(const ConstRef& dy, Index c0, Index nc) = 0;
    // dL/dX = W^T dL/dZ (in x n). Saliency needs only this chain.
    void input_gradient(Eigen::Ref<Mat> dx) const { kernels::split_product(dx, m_w.transpose(), m_dz.leftCols(m_n)); }
    // dL/dW = dL/dZ X^T, dL/db = rowsum(dL/dZ), written into the model's gradient vector.
    void parameter_gradient(const ConstRef& x) {
        kernels::split_product(m_dw, m_dz.leftCols(m_n), x.transpose());
        kernels::row_sums(m_dz, m_n, m_db);
    }
    // The same for X = S + offset 1^T: dW = dZ S^T + db offset^T.
    void parameter_gradient(const SparseBatch<Scalar>& x) {
        kernels::row_sums(m_dz, m_n, m_db);
        kernels::sparse_transposed_product(m_dw, m_dz.leftCols(m_n), x);
        m_dw.noalias() += m_db * x.offset.transpose();
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
    Layer(Index in, Index out) : m_in(in), m_out(out), m_w_offset(out) {}
    // Y = f(Z + b) on the first n columns of Z (Z holds W X).
    virtual void activate(Index n) = 0;

    Index m_in, m_out;
    MatrixMap<Scalar> m_w{nullptr, 0, 0};  // out x in
    VectorMap<Scalar> m_b{nullptr, 0};     // out
    MatrixMap<Scalar> m_dw{nullptr, 0, 0}; // out x in, dL/dW
    VectorMap<Scalar> m_db{nullptr, 0};    // out, dL/db
    Mat m_z;  // out x capacity, Z = W X + b
    Mat m_y;  // out x capacity, Y = f(Z)
    Mat m_dz; // out x capacity, dL/dZ
    Index m_n = 0; // columns of the current batch
    Vector<Scalar> m_w_offset; // out, W offset of the last sparse batch
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

    using Base::forward;
    void forward(const ConstRef& x) override {
        const Index n = x.cols();
        this->m_n = n;
        kernels::split_product(this->m_z.leftCols(n), this->m_w, x); // Z = W X
        activate(n);
    }

    void backward(const ConstRef& dy) override {
        kernels::split_columns(this->m_out, this->m_n, [&](Index c0, Index nc) { backward_columns(dy, c0, nc); });
    }
    void backward_columns(const ConstRef& dy, Index c0, Index nc) override {
        kernels::backprop_activation(m_act, dy, this->m_z, this->m_y, this->m_dz, c0, nc);
    }

    void apply(const ConstRef& x, Mat& z, Mat& y) const override {
        z.resize(this->m_out, x.cols());
        y.resize(this->m_out, x.cols());
        kernels::split_product(z, this->m_w, x);
        kernels::bias_activate(m_act, z, y, this->m_b, 0, x.cols());
    }

    void derivative(const ConstRef& z, const ConstRef& y, Eigen::Ref<Mat> d) const override {
        kernels::activation_derivative(m_act, z, y, d);
    }

    const Activation& activation_policy() const noexcept { return m_act; }

private:
    void activate(Index n) override {
        kernels::split_columns(this->m_out, n, [&](Index c0, Index nc) {
            kernels::bias_activate(m_act, this->m_z, this->m_y, this->m_b, c0, nc); // Z += b ; Y = f(Z)
        });
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
