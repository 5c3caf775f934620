#ifndef EXSAL_NN_AUTOENCODER_HPP
#define EXSAL_NN_AUTOENCODER_HPP

// The autoencoder G -> h_0 -> ... -> h_{L-2} -> G (default G -> 128 -> 64 -> 128 -> G) with a
// named representation layer (default the middle, 64 units). One flat parameter vector and one
// gradient vector; layers are views into their slices.

#include "exsal/core/denormals.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/dense.hpp"
#include "exsal/nn/losses.hpp"
#include "exsal/nn/orthogonality.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace exsal {

struct AutoencoderConfig {
    Index n_genes = 0;                        // input and output width G
    std::vector<Index> hidden{128, 64, 128};  // widths of the hidden layers
    Index representation = 1;                 // index into `hidden` of the representation layer
    std::vector<ActivationSpec> activations;  // one per layer (hidden.size() + 1); empty = softplus, beta = width

    // Throws ArgumentError naming the field when the configuration is unusable.
    void validate(const std::string& where = "exsal::AutoencoderConfig") const {
        if (n_genes < 1) throw ArgumentError(where, "n_genes must be >= 1, got " + std::to_string(n_genes));
        if (hidden.empty()) throw ArgumentError(where, "needs at least one hidden layer");
        for (Index h : hidden)
            if (h < 1) throw ArgumentError(where, "hidden layer widths must be >= 1, got " + std::to_string(h));
        if (representation < 0 || representation >= static_cast<Index>(hidden.size()))
            throw ArgumentError(where, "representation layer index " + std::to_string(representation) +
                                           " is outside the " + std::to_string(hidden.size()) + " hidden layers");
        if (!activations.empty() && activations.size() != hidden.size() + 1)
            throw ArgumentError(where, "needs " + std::to_string(hidden.size() + 1) + " activations, got " +
                                           std::to_string(activations.size()));
        for (const auto& a : activations)
            if (a.kind == ActivationKind::softplus && !(a.beta >= 0) )
                throw ArgumentError(where, "softplus beta must be > 0 (or 0 for the layer width)");
    }
    Index layer_count() const { return static_cast<Index>(hidden.size()) + 1; }
    Index units() const { return hidden[static_cast<std::size_t>(representation)]; }
};

// What one loss evaluation returns; total = reconstruction + orthogonality.
struct LossParts {
    double reconstruction = 0.0;
    double orthogonality = 0.0; // lambda * penalty
    double total() const { return reconstruction + orthogonality; }
};

struct LossOptions {
    LossKind loss = LossKind::poisson;
    double lambda = 1.0; // weight of the orthogonality penalty
    OrthogonalityForm form = OrthogonalityForm::frobenius;
};

template <typename Scalar>
class Autoencoder {
    static_assert(std::is_floating_point<Scalar>::value,
                  "exsal::Autoencoder needs a floating-point scalar type (float or double).");

public:
    using Mat = Matrix<Scalar>;
    using Vec = Vector<Scalar>;
    using ConstRef = ConstMatrixRef<Scalar>;

    explicit Autoencoder(AutoencoderConfig config) : m_config(std::move(config)) {
        m_config.validate("exsal::Autoencoder");
        if (m_config.activations.empty()) m_config.activations.assign(m_config.hidden.size() + 1, ActivationSpec{});
        std::vector<Index> widths{m_config.n_genes};
        widths.insert(widths.end(), m_config.hidden.begin(), m_config.hidden.end());
        widths.push_back(m_config.n_genes);
        Index total = 0;
        for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
            ActivationSpec spec = m_config.activations[l];
            if (spec.kind == ActivationKind::softplus && spec.beta == 0.0) spec.beta = static_cast<double>(widths[l + 1]);
            m_config.activations[l] = spec;
            m_layers.push_back(make_dense<Scalar>(widths[l], widths[l + 1], spec));
            total += m_layers.back()->parameter_count();
        }
        m_params = Vec::Zero(total);
        m_grads = Vec::Zero(total);
        bind();
    }
    Autoencoder(const Autoencoder& other) : Autoencoder(other.m_config) { m_params = other.m_params; }
    Autoencoder& operator=(const Autoencoder& other) {
        if (this != &other) {
            Autoencoder copy(other);
            *this = std::move(copy);
        }
        return *this;
    }
    Autoencoder(Autoencoder&& other) noexcept = default;
    Autoencoder& operator=(Autoencoder&& other) noexcept = default;

    // Xavier-normal weights (sd = sqrt(2 / (in + out))), zero biases; deterministic from the seed.
    void initialize(std::uint64_t seed) {
        Rng rng(seed);
        for (auto& layer : m_layers) {
            const double sd = std::sqrt(2.0 / static_cast<double>(layer->in_size() + layer->out_size()));
            auto& w = layer->weights();
            for (Index j = 0; j < w.cols(); ++j)
                for (Index i = 0; i < w.rows(); ++i) w(i, j) = static_cast<Scalar>(rng.normal() * sd);
            layer->bias().setZero();
        }
    }

    const AutoencoderConfig& config() const noexcept { return m_config; }
    Index n_genes() const noexcept { return m_config.n_genes; }
    Index units() const noexcept { return m_config.units(); }
    Index layer_count() const noexcept { return static_cast<Index>(m_layers.size()); }
    // The representation is the output of layer representation_layer().
    Index representation_layer() const noexcept { return m_config.representation; }
    Layer<Scalar>& layer(Index l) { return *m_layers[static_cast<std::size_t>(l)]; }
    const Layer<Scalar>& layer(Index l) const { return *m_layers[static_cast<std::size_t>(l)]; }
    // W of the layer feeding the representation units (units x previous width).
    const MatrixMap<Scalar>& representation_weights() const { return layer(representation_layer()).weights(); }

    Vec& parameters() noexcept { return m_params; }
    const Vec& parameters() const noexcept { return m_params; }
    const Vec& gradient() const noexcept { return m_grads; }
    // Writable, for data-parallel training, which replaces it by its sum over the processes.
    Vec& gradient() noexcept { return m_grads; }
    // Replaces all parameters (size must match).
    void set_parameters(const ConstVectorRef<Scalar>& p) {
        if (p.size() != m_params.size())
            throw ArgumentError("exsal::Autoencoder::set_parameters", "expected " + std::to_string(m_params.size()) +
                                                                          " parameters, got " + std::to_string(p.size()));
        m_params = p;
    }

    // Sizes every training buffer for batches of up to max_batch cells. Call once before training.
    // Buffers only grow: a smaller request (e.g. a validation set smaller than the training batch)
    // keeps the larger capacity the layers already have.
    void reserve(Index max_batch) {
        for (auto& l : m_layers) l->reserve(max_batch);
        const Index capacity = m_layers[0]->capacity();
        Index widest = m_config.n_genes;
        for (Index h : m_config.hidden) widest = std::max(widest, h);
        if (m_dy_a.cols() < capacity) {
            m_dy_a.resize(widest, capacity);
            m_dy_b.resize(widest, capacity);
            m_column_loss.resize(static_cast<std::size_t>(capacity));
        }
        m_gram.resize(units(), units());
    }

    // Training forward pass over a batch (genes x n), caching activations. Like the other training
    // calls it flushes subnormals on the calling thread for its duration (core/denormals.hpp): the
    // products that stay on this thread (all of them with one thread) run at full speed.
    void forward(const ConstRef& x) {
        check_batch(x, "exsal::Autoencoder::forward");
        const FlushDenormals flush;
        m_layers[0]->forward(x);
        for (std::size_t l = 1; l < m_layers.size(); ++l) m_layers[l]->forward(m_layers[l - 1]->output());
    }
    // Results of the last forward pass.
    auto reconstruction() const { return m_layers.back()->output(); }
    auto representation() const { return layer(representation_layer()).output(); }

    // Loss of the last forward pass against `target` (genes x n, untransformed), without gradient.
    LossParts loss(const ConstRef& target, const LossOptions& o) const {
        LossParts parts;
        parts.reconstruction = o.loss == LossKind::poisson
                                   ? PoissonLoss{}.value<Scalar>(reconstruction(), target)
                                   : MseLoss{}.value<Scalar>(reconstruction(), target);
        parts.orthogonality = penalty_value(o);
        return parts;
    }

    // Forward, loss and the full gradient (into gradient()) for one batch: input is what the
    // network sees (transformed), target what the loss compares with. No allocation once
    // reserve() has sized the buffers for this batch width.
    LossParts loss_and_gradient(const ConstRef& input, const ConstRef& target, const LossOptions& o) {
        check_batch(input, "exsal::Autoencoder::forward");
        return loss_and_gradient_of(input, input.cols(), target, o);
    }
    // The same for a batch X = S + offset 1^T (sparse_batch.hpp): the first layer multiplies the
    // stored entries only; equal to the dense call on S.dense() up to float rounding.
    LossParts loss_and_gradient(const SparseBatch<Scalar>& input, const ConstRef& target, const LossOptions& o) {
        if (input.rows != m_config.n_genes || input.offset.size() != m_config.n_genes)
            throw ArgumentError("exsal::Autoencoder::loss_and_gradient",
                                "sparse input has " + std::to_string(input.rows) + " genes, the model " +
                                    std::to_string(m_config.n_genes));
        if (input.cols() > m_layers[0]->capacity())
            throw ArgumentError("exsal::Autoencoder::loss_and_gradient", "batch of " + std::to_string(input.cols()) +
                                                                             " cells exceeds the reserved capacity");
        return loss_and_gradient_of(input, input.cols(), target, o);
    }

    // The orthogonality penalty (lambda ||I - W W^T||_F, or its square) of the current weights.
    double orthogonality_penalty(const LossOptions& o) const { return penalty_value(o); }
    // Adds the penalty's gradient to gradient() and returns the penalty: the last step of
    // loss_and_gradient. A data-parallel run computes the reconstruction part with lambda = 0 on
    // every process, sums it across processes and then adds the penalty once.
    double add_orthogonality_gradient(const LossOptions& o) {
        auto& rep = layer(representation_layer());
        return add_orthogonality_penalty<Scalar>(rep.weights(), o.lambda, o.form, m_gram, rep.weight_gradient());
    }

    Mat encode(const ConstRef& x) const { return run_through(x, representation_layer() + 1); }
    // Reconstruction (genes x n) of cells.
    Mat reconstruct(const ConstRef& x) const { return run_through(x, layer_count()); }

private:
    // Forward, loss, backward through every layer and the orthogonality penalty; In is a dense
    // batch (ConstRef) or a SparseBatch, which only the first layer sees.
    template <class In>
    LossParts loss_and_gradient_of(const In& input, Index n, const ConstRef& target, const LossOptions& o) {
        const FlushDenormals flush; // as forward()
        m_layers[0]->forward(input);
        for (std::size_t l = 1; l < m_layers.size(); ++l) m_layers[l]->forward(m_layers[l - 1]->output());
        LossParts parts;
        auto dy = m_dy_a.topLeftCorner(m_config.n_genes, n);
        // The output layer's dL/dZ is taken column by column inside the loss's pass, while the
        // column of dL/dY just written is in cache (one pass over the genes x n block fewer).
        Layer<Scalar>& last = *m_layers.back();
        const ConstRef dy_all(dy);
        eigen_assert(dy_all.data() == dy.data()); // a view of dy, filled by the loss (never a copy)
        auto output_backward = [&](Index c) { last.backward_columns(dy_all, c, 1); };
        if (o.loss == LossKind::poisson)
            parts.reconstruction = PoissonLoss{}.value_and_gradient<Scalar>(reconstruction(), target, dy,
                                                                            m_column_loss.data(), output_backward);
        else
            parts.reconstruction = MseLoss{}.value_and_gradient<Scalar>(reconstruction(), target, dy,
                                                                        m_column_loss.data(), output_backward);
        Mat* upstream = &m_dy_a;
        Mat* downstream = &m_dy_b;
        for (Index l = layer_count() - 1; l >= 0; --l) {
            Layer<Scalar>& cur = layer(l);
            if (l < layer_count() - 1) cur.backward(upstream->topRows(cur.out_size()).leftCols(n));
            if (l == 0) {
                cur.parameter_gradient(input);
            } else {
                cur.parameter_gradient(ConstRef(layer(l - 1).output()));
                cur.input_gradient(downstream->topRows(cur.in_size()).leftCols(n));
                std::swap(upstream, downstream);
            }
        }
        parts.orthogonality = add_orthogonality_gradient(o);
        return parts;
    }

    void bind() {
        Index offset = 0;
        for (auto& l : m_layers) {
            l->bind(m_params.data() + offset, m_grads.data() + offset);
            offset += l->parameter_count();
        }
    }
    double penalty_value(const LossOptions& o) const {
        if (o.lambda == 0.0) return 0.0;
        const double e = orthogonality_error<Scalar>(representation_weights());
        return o.form == OrthogonalityForm::frobenius ? o.lambda * e : o.lambda * e * e;
    }
    void check_batch(const ConstRef& x, const char* where) const {
        if (x.rows() != m_config.n_genes)
            throw ArgumentError(where, "input has " + std::to_string(x.rows()) + " genes, the model " +
                                           std::to_string(m_config.n_genes));
        if (x.cols() > m_layers[0]->capacity())
            throw ArgumentError(where, "batch of " + std::to_string(x.cols()) + " cells exceeds the reserved " +
                                           std::to_string(m_layers[0]->capacity()) + "; call reserve() first");
    }
    Mat run_through(const ConstRef& x, Index layers) const {
        if (x.rows() != m_config.n_genes)
            throw ArgumentError("exsal::Autoencoder::encode", "input has " + std::to_string(x.rows()) +
                                                                  " genes, the model " + std::to_string(m_config.n_genes));
        const Index out_rows = layer(layers - 1).out_size();
        Mat out(out_rows, x.cols());
        const Index block = 256;
        const Index n_blocks = (x.cols() + block - 1) / block;
#pragma omp parallel
        {
            const FlushDenormals flush;
            Mat z, y, h;
#pragma omp for schedule(static)
            for (Index b = 0; b < n_blocks; ++b) {
                const Index c0 = b * block, nc = std::min(block, x.cols() - c0);
                h = x.middleCols(c0, nc);
                for (Index l = 0; l < layers; ++l) {
                    layer(l).apply(h, z, y);
                    h.swap(y);
                }
                out.middleCols(c0, nc) = h;
            }
        }
        return out;
    }

    AutoencoderConfig m_config;
    std::vector<std::unique_ptr<Layer<Scalar>>> m_layers;
    Vec m_params; // all W and b, layer by layer (W column-major, then b)
    Vec m_grads;  // dL/d(params), same layout
    Mat m_dy_a, m_dy_b; // widest layer x capacity, ping-pong buffers for dL/dY between layers
    Mat m_gram;         // U x U, W W^T - I of the representation weights
    std::vector<double> m_column_loss; // capacity, per-cell reconstruction loss sums of the last batch
};

} // namespace exsal

#endif // EXSAL_NN_AUTOENCODER_HPP
