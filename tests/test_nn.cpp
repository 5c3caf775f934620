// Core engine: activations, losses, penalty and network gradients against finite differences,
// optimiser steps against hand-computed values, training behaviour, allocation-free steps,
// determinism and the model file.
// Eigen's allocation check is an eigen_assert: keep asserts on in this file even in Release.
#undef NDEBUG
#define EIGEN_RUNTIME_NO_MALLOC
#include "test_numeric.hpp"

#include <doctest/doctest.h>

#include "exsal/core/threads.hpp"
#include "exsal/nn/nn.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

using namespace exsal;
namespace fs = std::filesystem;

using exsal_test::ks_uniform;
using exsal_test::relative_error;

namespace {

MatrixD random_matrix(Index r, Index c, std::uint64_t seed, double lo = -1, double hi = 1) {
    Rng rng(seed);
    MatrixD m(r, c);
    for (Index j = 0; j < c; ++j)
        for (Index i = 0; i < r; ++i) m(i, j) = rng.uniform(lo, hi);
    return m;
}

// Non-negative low-rank counts-like data, genes x cells.
MatrixD low_rank_data(Index genes, Index cells, Index rank, std::uint64_t seed) {
    Rng rng(seed);
    MatrixD a(genes, rank), b(rank, cells);
    for (Index j = 0; j < rank; ++j)
        for (Index i = 0; i < genes; ++i) a(i, j) = rng.gamma(0.5, 1.0);
    for (Index j = 0; j < cells; ++j)
        for (Index i = 0; i < rank; ++i) b(i, j) = rng.gamma(0.5, 1.0);
    return a * b;
}

// A float autoencoder of `genes` genes and the given hidden widths, initialised from `seed`, with
// training buffers for batches of up to `batch` cells.
Autoencoder<float> float_net(Index genes, std::vector<Index> hidden, std::uint64_t seed, Index batch) {
    AutoencoderConfig cfg;
    cfg.n_genes = genes;
    cfg.hidden = std::move(hidden);
    Autoencoder<float> net(cfg);
    net.initialize(seed);
    net.reserve(batch);
    return net;
}

template <typename Act>
void check_activation(const Act& act, double lo, double hi, std::uint64_t seed) {
    Eigen::ArrayXXd z = random_matrix(40, 3, seed, lo, hi).array();
    const double h = 1e-6;
    Eigen::ArrayXXd y = act.value(z);
    Eigen::ArrayXXd d = act.derivative(z, y);
    Eigen::ArrayXXd zp = z + h, zm = z - h;
    Eigen::ArrayXXd num = (act.value(zp) - act.value(zm)) / (2 * h);
    VectorD a = Eigen::Map<VectorD>(d.data(), d.size()), b = Eigen::Map<VectorD>(num.data(), num.size());
    CHECK(relative_error(a, b) < 1e-6);
}

} // namespace

TEST_CASE("activation derivatives equal finite differences (double)") {
    check_activation(Softplus{64.0}, -0.25, 0.25, 1);   // around the kink, away from beta z > 20
    check_activation(Softplus{1.0}, -5.0, 5.0, 2);
    check_activation(Softplus{128.0}, 0.2, 1.0, 3);      // linear region
    check_activation(Sigmoid{}, -4.0, 4.0, 4);
    check_activation(Tanh{}, -3.0, 3.0, 5);
    check_activation(Identity{}, -3.0, 3.0, 6);
    check_activation(Relu{}, 0.1, 3.0, 7);
    check_activation(Relu{}, -3.0, -0.1, 8);
}

TEST_CASE("softplus is stable and matches its definition") {
    Softplus sp{64.0};
    Eigen::ArrayXd z(6);
    z << -1000.0, -1.0, -0.01, 0.0, 0.01, 1000.0;
    Eigen::ArrayXd y = sp.value(z);
    CHECK(y.allFinite());
    CHECK(y.minCoeff() >= 0.0);
    for (Index i = 1; i < 5; ++i) CHECK(y[i] == doctest::Approx(std::log1p(std::exp(64.0 * z[i])) / 64.0).epsilon(1e-12));
    CHECK(y[5] == 1000.0); // linear above beta z > 20
    CHECK(y[0] == doctest::Approx(0.0));
}

TEST_CASE("loss gradients equal finite differences (double)") {
    const MatrixD x = random_matrix(9, 5, 11, 0.0, 4.0).array().floor(); // counts
    MatrixD yhat = random_matrix(9, 5, 12, 0.2, 3.0);
    auto check = [&](auto loss) {
        MatrixD g(9, 5);
        loss.template gradient<double>(yhat, x, g);
        MatrixD num(9, 5);
        const double h = 1e-6;
        for (Index k = 0; k < yhat.size(); ++k) {
            MatrixD p = yhat, m = yhat;
            p.data()[k] += h;
            m.data()[k] -= h;
            num.data()[k] = (loss.template value<double>(p, x) - loss.template value<double>(m, x)) / (2 * h);
        }
        VectorD a = Eigen::Map<VectorD>(g.data(), g.size()), b = Eigen::Map<VectorD>(num.data(), num.size());
        CHECK(relative_error(a, b) < 1e-6);
    };
    check(PoissonLoss{});
    check(MseLoss{});
}

TEST_CASE("poisson loss matches its formula") {
    MatrixD x(2, 1), y(2, 1);
    x << 3, 0;
    y << 2, 0.5;
    const double expected = ((2 - 3 * std::log(2 + 1e-8)) + (0.5 - 0)) / 2;
    CHECK(PoissonLoss{}.value<double>(y, x) == doctest::Approx(expected).epsilon(1e-14));
}

TEST_CASE("orthogonality penalty gradient equals finite differences, both forms") {
    const MatrixD w = random_matrix(4, 7, 21);
    for (auto form : {OrthogonalityForm::frobenius, OrthogonalityForm::squared}) {
        MatrixD gram(4, 4), g = MatrixD::Zero(4, 7);
        const double lambda = 0.7;
        const double value = add_orthogonality_penalty<double>(w, lambda, form, gram, g);
        const double e = orthogonality_error<double>(w);
        CHECK(value == doctest::Approx(form == OrthogonalityForm::frobenius ? lambda * e : lambda * e * e));
        MatrixD num(4, 7);
        const double h = 1e-6;
        for (Index k = 0; k < w.size(); ++k) {
            MatrixD p = w, m = w, scratch(4, 4), dummy = MatrixD::Zero(4, 7);
            p.data()[k] += h;
            m.data()[k] -= h;
            num.data()[k] = (add_orthogonality_penalty<double>(p, lambda, form, scratch, dummy) -
                             add_orthogonality_penalty<double>(m, lambda, form, scratch, dummy)) / (2 * h);
        }
        VectorD a = Eigen::Map<VectorD>(g.data(), g.size()), b = Eigen::Map<VectorD>(num.data(), num.size());
        CHECK(relative_error(a, b) < 1e-6);
    }
    SUBCASE("zero norm is guarded") {
        MatrixD w0 = MatrixD::Identity(3, 5), gram(3, 3), g = MatrixD::Zero(3, 5);
        CHECK(add_orthogonality_penalty<double>(w0, 1.0, OrthogonalityForm::frobenius, gram, g) == 0.0);
        CHECK(g.allFinite());
        CHECK(g.norm() == 0.0);
    }
}

TEST_CASE("the whole network's gradient equals finite differences for every parameter (double)") {
    struct Case {
        std::vector<ActivationSpec> acts;
        LossKind loss;
        OrthogonalityForm form;
    };
    const std::vector<Case> cases{
        {{}, LossKind::poisson, OrthogonalityForm::frobenius},
        {{{ActivationKind::tanh, 0}, {ActivationKind::sigmoid, 0}, {ActivationKind::identity, 0}, {ActivationKind::softplus, 2.0}},
         LossKind::mse, OrthogonalityForm::squared},
        {{{ActivationKind::softplus, 3.0}, {ActivationKind::softplus, 1.0}, {ActivationKind::tanh, 0}, {ActivationKind::softplus, 0}},
         LossKind::poisson, OrthogonalityForm::squared},
    };
    for (const Case& c : cases) {
        AutoencoderConfig cfg;
        cfg.n_genes = 7;
        cfg.hidden = {6, 4, 5};
        cfg.activations = c.acts;
        Autoencoder<double> net(cfg);
        net.initialize(5);
        Rng rng(9);
        for (Index i = 0; i < net.parameters().size(); ++i) net.parameters()[i] += 0.1 * rng.normal(); // non-zero biases
        const MatrixD x = random_matrix(7, 4, 31, 0.0, 3.0).array().floor();
        const LossOptions lo{c.loss, 0.3, c.form};
        net.reserve(4);
        net.loss_and_gradient(x, x, lo);
        const VectorD g = net.gradient();
        VectorD num(g.size());
        const double h = 1e-6;
        for (Index k = 0; k < g.size(); ++k) {
            const double keep = net.parameters()[k];
            net.parameters()[k] = keep + h;
            net.forward(x);
            const double fp = net.loss(x, lo).total();
            net.parameters()[k] = keep - h;
            net.forward(x);
            const double fm = net.loss(x, lo).total();
            net.parameters()[k] = keep;
            num[k] = (fp - fm) / (2 * h);
        }
        CHECK(relative_error(g, num) < 1e-6);
    }
}

TEST_CASE("Adam's first three steps equal hand-computed values") {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    Adam<double> adam(2, {lr, b1, b2, eps});
    VectorD p(2);
    p << 1.0, -2.0;
    const std::vector<std::array<double, 2>> grads{{0.5, -1.0}, {0.1, 0.3}, {-0.2, 0.05}};
    // Hand computation, written out independently of the class.
    double m[2] = {0, 0}, v[2] = {0, 0}, q[2] = {1.0, -2.0};
    for (int t = 1; t <= 3; ++t) {
        VectorD g(2);
        g << grads[t - 1][0], grads[t - 1][1];
        adam.step(p, g);
        for (int i = 0; i < 2; ++i) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            const double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
            q[i] -= lr * mhat / (std::sqrt(vhat) + eps);
            CHECK(p[i] == doctest::Approx(q[i]).epsilon(1e-12));
        }
    }
    CHECK(adam.steps() == 3);
    // After the first step each parameter moved by lr * sign(g) (bias correction makes mhat = g).
    Adam<double> fresh(1, {lr, b1, b2, eps});
    VectorD one(1), g1(1);
    one << 0.0;
    g1 << 123.0;
    fresh.step(one, g1);
    CHECK(one[0] == doctest::Approx(-lr).epsilon(1e-9));
}

TEST_CASE("the trainer's chunked optimiser equals one Adam over the vector and checks the gradient chunk by chunk") {
    // Three full chunks and a partial one, so that chunks run on both threads and the tail is short.
    using Chunked = detail::AnyOptimizer<float>;
    const Index n = 3 * Chunked::chunk + 100;
    const MatrixD init = random_matrix(n, 1, 311);
    TrainOptions o;
    o.adam.lr = 0.01;
    VectorF p_chunked = init.col(0).cast<float>(), p_whole = p_chunked;
    Chunked chunked(n, o);
    Adam<float> whole(n, o.adam);
    for (int threads : {1, 2}) {
        set_threads(threads);
        for (int s = 0; s < 3; ++s) {
            const VectorF g = random_matrix(n, 1, 400 + static_cast<std::uint64_t>(10 * threads + s)).col(0).cast<float>();
            CHECK(chunked.step(p_chunked, g));
            whole.step(p_whole, g);
            CHECK(p_chunked == p_whole); // bit for bit
        }
    }
    // A NaN in chunk 1 and an infinity in the tail: those two chunks stay as they were, the
    // others take their step, and step() says the gradient was not finite.
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        VectorF g = random_matrix(n, 1, 500).col(0).cast<float>();
        g[Chunked::chunk + 7] = bad;
        g[n - 1] = -bad;
        const VectorF before = p_chunked;
        CHECK_FALSE(chunked.step(p_chunked, g));
        CHECK(p_chunked.segment(Chunked::chunk, Chunked::chunk) == before.segment(Chunked::chunk, Chunked::chunk));
        CHECK(p_chunked.tail(100) == before.tail(100));
        CHECK((p_chunked.head(Chunked::chunk).array() != before.head(Chunked::chunk).array()).any());
        CHECK((p_chunked.segment(2 * Chunked::chunk, Chunked::chunk).array() !=
               before.segment(2 * Chunked::chunk, Chunked::chunk).array()).any());
        CHECK(p_chunked.allFinite());
    }
    set_threads(1);
}

TEST_CASE("SGD with Nesterov momentum: first three steps equal hand-computed values") {
    const double lr = 0.1, mu = 0.9;
    Sgd<double> sgd(1, {lr, mu, true});
    VectorD p(1);
    p << 2.0;
    const double g[3] = {1.0, -0.5, 0.25};
    // buf1 = g1; p1 = 2 - lr (g1 + mu buf1)
    double buf = g[0], q = 2.0 - lr * (g[0] + mu * buf);
    VectorD gv(1);
    gv << g[0];
    sgd.step(p, gv);
    CHECK(p[0] == doctest::Approx(q).epsilon(1e-14));
    CHECK(p[0] == doctest::Approx(2.0 - 0.1 * 1.9).epsilon(1e-14));
    for (int t = 1; t < 3; ++t) {
        buf = mu * buf + g[t];
        q -= lr * (g[t] + mu * buf);
        gv << g[t];
        sgd.step(p, gv);
        CHECK(p[0] == doctest::Approx(q).epsilon(1e-14));
    }
}

namespace {
TrainHistory train_small(double lambda, Autoencoder<float>& net, const MatrixF& data, int epochs, LossKind loss,
                         std::uint64_t seed = 3) {
    TrainOptions o;
    o.max_epochs = epochs;
    o.batch_size = 32;
    o.seed = seed;
    o.loss.lambda = lambda;
    o.loss.loss = loss;
    o.adam.lr = 3e-3;
    o.patience = 0;
    net.initialize(seed);
    return train<float>(net, data, data, o);
}
} // namespace

TEST_CASE("the orthogonality penalty acts on training (the reference code's defect)") {
    set_threads(2);
    const MatrixF data = low_rank_data(60, 256, 4, 41).cast<float>();
    AutoencoderConfig cfg;
    cfg.n_genes = 60;
    cfg.hidden = {32, 16, 32};
    Autoencoder<float> with(cfg), without(cfg);
    const TrainHistory hw = train_small(1.0, with, data, 30, LossKind::poisson);
    const TrainHistory ho = train_small(0.0, without, data, 30, LossKind::poisson);
    MESSAGE("orthogonality error after 30 epochs: lambda=1 " << hw.orthogonality_error.back() << ", lambda=0 "
                                                            << ho.orthogonality_error.back());
    CHECK(hw.orthogonality_error.back() < 0.5 * ho.orthogonality_error.back());
    CHECK(hw.orthogonality_error.back() < hw.orthogonality_error.front());
}

TEST_CASE("a small synthetic problem trains: validation loss falls") {
    set_threads(2);
    const MatrixF all = low_rank_data(50, 400, 3, 51).cast<float>();
    const MatrixF train_x = all.leftCols(320), val_x = all.rightCols(80);
    AutoencoderConfig cfg;
    cfg.n_genes = 50;
    cfg.hidden = {32, 8, 32};
    Autoencoder<float> net(cfg);
    net.initialize(7);
    TrainOptions o;
    o.max_epochs = 60;
    o.batch_size = 32;
    o.validate_every = 5;
    o.patience = 0;
    o.loss.loss = LossKind::mse;
    o.loss.lambda = 0.05;
    o.adam.lr = 3e-3;
    const double before = evaluate_loss<float>(net, val_x, val_x, o.loss, 64).reconstruction;
    const TrainHistory h = train<float>(net, train_x, train_x, val_x, val_x, o);
    const double after = evaluate_loss<float>(net, val_x, val_x, o.loss, 64).reconstruction;
    MESSAGE("validation MSE before " << before << ", after " << after);
    CHECK(after < before / 5.0);
    CHECK(h.best_epoch >= 0);
    CHECK(h.validation_loss.size() == 60u);
}

TEST_CASE("early stopping restores the best parameters") {
    const MatrixF all = low_rank_data(30, 200, 3, 61).cast<float>();
    AutoencoderConfig cfg;
    cfg.n_genes = 30;
    cfg.hidden = {16, 4, 16};
    Autoencoder<float> net(cfg);
    net.initialize(1);
    TrainOptions o;
    o.max_epochs = 400;
    o.batch_size = 16;
    o.validate_every = 1;
    o.patience = 3;
    o.adam.lr = 0.05; // noisy, so validation stops improving early
    std::vector<Vector<float>> snapshots;
    o.on_epoch = [&](const EpochInfo&) { snapshots.push_back(net.parameters()); };
    const MatrixF tr = all.leftCols(150), va = all.rightCols(50);
    const TrainHistory h = train<float>(net, tr, tr, va, va, o);
    REQUIRE(h.best_epoch >= 0);
    CHECK(h.stopped_early);
    CHECK(h.epochs_run == h.best_epoch + 1 + o.patience);
    CHECK(net.parameters() == snapshots[static_cast<std::size_t>(h.best_epoch)]);
}

TEST_CASE("a diverging run stops with an error naming the epoch and batch") {
    const MatrixF data = low_rank_data(20, 64, 2, 71).cast<float>() * 100.0f;
    AutoencoderConfig cfg;
    cfg.n_genes = 20;
    cfg.hidden = {8, 4, 8};
    Autoencoder<float> net(cfg);
    net.initialize(2);
    TrainOptions o;
    o.max_epochs = 50;
    o.batch_size = 16;
    o.loss.loss = LossKind::mse;
    o.optimizer = OptimizerKind::sgd;
    o.sgd.lr = 1e6;
    try {
        train<float>(net, data, data, o);
        FAIL("training should have diverged");
    } catch (const NumericError& e) {
        const std::string m = e.what();
        CHECK(m.find("epoch") != std::string::npos);
        CHECK(m.find("batch") != std::string::npos);
        CHECK(m.find("learning rate") != std::string::npos);
    }
}

TEST_CASE("forward and loss_and_gradient flush subnormals on the calling thread and give its mode back") {
    if (!detail::denormals::supported) {
        MESSAGE("this CPU has no flush-to-zero control exsal knows: skipped");
        return;
    }
    // One thread: every product and activation runs on the calling thread, as in a host program's
    // own training loop. The output layer's weights scaled by 1e-36 make the gradient that flows
    // back through them about 1e-39: subnormal in IEEE arithmetic, 0 when flushed.
    set_threads(1);
    const MatrixF data = low_rank_data(30, 16, 2, 91).cast<float>();
    Autoencoder<float> net = float_net(30, {8, 4, 8}, 5, 16);
    net.layer(net.layer_count() - 1).weights() *= 1e-36f;
    LossOptions lo;
    lo.lambda = 0.0; // no penalty gradient of normal size on top
    const auto subnormal = [](const float* v, Index n) { // count of the n values that are subnormal
        Index k = 0;
        for (Index i = 0; i < n; ++i) k += (v[i] != 0.0f && std::abs(v[i]) < std::numeric_limits<float>::min()) ? 1 : 0;
        return k;
    };
    const auto subnormal_gradients = [&] { return subnormal(net.gradient().data(), net.gradient().size()); };
    REQUIRE_FALSE(denormals_flushed_here());
    set_flush_denormals(false);
    net.loss_and_gradient(data, data, lo);
    const Index ieee = subnormal_gradients();
    set_flush_denormals(true);
    net.loss_and_gradient(data, data, lo);
    const Index flushed = subnormal_gradients();
    MESSAGE(ieee << " of " << net.gradient().size() << " gradient entries subnormal in IEEE mode");
    CHECK(ieee > 0); // the case exercises what it tests
    CHECK(flushed == 0);
    CHECK_FALSE(denormals_flushed_here()); // the thread's own mode back
    // forward(): the hidden layers' pre-activations of inputs scaled by 1e-37 are subnormal in IEEE
    // mode (the first layer's weights are about 0.3), 0 when flushed.
    const MatrixF tiny = data * 1e-37f;
    const auto subnormal_z = [&] {
        const auto z = net.layer(0).pre_activation();
        return subnormal(z.data(), z.size());
    };
    set_flush_denormals(false);
    net.forward(tiny);
    const Index ieee_z = subnormal_z();
    set_flush_denormals(true);
    net.forward(tiny);
    CHECK(ieee_z > 0);
    CHECK(subnormal_z() == 0);
    CHECK_FALSE(denormals_flushed_here());
}

TEST_CASE("no heap allocation inside a steady-state training step") {
    set_threads(1);
    const MatrixF data = low_rank_data(40, 64, 3, 81).cast<float>();
    Autoencoder<float> net = float_net(40, {16, 8, 16}, 4, 16);
    Adam<float> adam(net.parameters().size(), {});
    MatrixF batch(40, 16);
    std::vector<std::int64_t> idx(16);
    for (int i = 0; i < 16; ++i) idx[static_cast<std::size_t>(i)] = 3 * i;
    const LossOptions lo{LossKind::poisson, 1.0, OrthogonalityForm::frobenius};
    auto step = [&](Index n) {
        detail::gather_columns<float>(data, idx.data(), n, batch);
        net.loss_and_gradient(batch.leftCols(n), batch.leftCols(n), lo);
        adam.step(net.parameters(), net.gradient());
    };
    step(16); // warm-up
    Eigen::internal::set_is_malloc_allowed(false);
    step(16);
    step(11); // a short last batch uses the same buffers
    Eigen::internal::set_is_malloc_allowed(true);
    CHECK(net.parameters().allFinite());
    set_threads(2);
}

TEST_CASE("same seed and thread count give bit-identical parameters") {
    set_threads(2);
    const MatrixF data = low_rank_data(80, 300, 4, 91).cast<float>();
    AutoencoderConfig cfg;
    cfg.n_genes = 80;
    Autoencoder<float> a(cfg), b(cfg), c(cfg);
    train_small(1.0, a, data, 3, LossKind::poisson, 5);
    train_small(1.0, b, data, 3, LossKind::poisson, 5);
    train_small(1.0, c, data, 3, LossKind::poisson, 6);
    CHECK(a.parameters() == b.parameters());
    CHECK(a.parameters() != c.parameters());
}

TEST_CASE("encode and reconstruct equal the training forward pass") {
    const MatrixF data = low_rank_data(30, 300, 3, 95).cast<float>();
    AutoencoderConfig cfg;
    cfg.n_genes = 30;
    cfg.hidden = {16, 6, 16};
    Autoencoder<float> net(cfg);
    net.initialize(8);
    net.reserve(300);
    net.forward(data);
    const MatrixF r = net.encode(data), y = net.reconstruct(data);
    CHECK(r.rows() == 6);
    CHECK((r - MatrixF(net.representation())).cwiseAbs().maxCoeff() < 1e-6f);
    CHECK((y - MatrixF(net.reconstruction())).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("model file: save, load, identical outputs; corrupt files are rejected") {
    const fs::path dir = fs::temp_directory_path() / ("exsal_test_nn_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / "m.exsal").string();
    AutoencoderConfig cfg;
    cfg.n_genes = 25;
    cfg.hidden = {12, 5, 12};
    cfg.activations = {{ActivationKind::softplus, 0}, {ActivationKind::tanh, 0}, {ActivationKind::relu, 0}, {ActivationKind::softplus, 3.5}};
    Autoencoder<float> net(cfg);
    net.initialize(3);
    save_model(path, net, std::string("preprocessing-state\0bytes", 25));
    CHECK(fs::directory_iterator(dir) != fs::directory_iterator{});
    for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename() == "m.exsal"); // no temporary left
    const LoadedModel<float> loaded = load_model<float>(path);
    CHECK(loaded.preprocessing == std::string("preprocessing-state\0bytes", 25));
    CHECK(loaded.model.parameters() == net.parameters());
    CHECK(loaded.model.config().activations[1].kind == ActivationKind::tanh);
    CHECK(loaded.model.config().activations[3].beta == 3.5);
    const MatrixF x = low_rank_data(25, 10, 2, 5).cast<float>();
    CHECK(loaded.model.encode(x) == net.encode(x));
    CHECK(loaded.model.reconstruct(x) == net.reconstruct(x));

    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto write = [&](const std::string& name, const std::string& content) {
        const std::string p = (dir / name).string();
        std::ofstream(p, std::ios::binary) << content;
        return p;
    };
    auto expect_error = [&](const std::string& p, const std::string& words) {
        try {
            load_model<float>(p);
            FAIL("load should fail: " << p);
        } catch (const FileError& e) {
            const std::string m = e.what();
            CHECK(m.find(p) != std::string::npos);
            CHECK_MESSAGE(m.find(words) != std::string::npos, m);
        }
    };
    expect_error(write("truncated.exsal", bytes.substr(0, bytes.size() / 2)), "truncated");
    expect_error(write("short.exsal", bytes.substr(0, 12)), "truncated");
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x10;
    expect_error(write("flipped.exsal", flipped), "checksum");
    expect_error(write("foreign.exsal", "PK\x03\x04 this is a zip file, not a model"), "not an exsal model file");
    expect_error(write("empty.exsal", ""), "not an exsal model file");
    expect_error((dir / "missing.exsal").string(), "cannot open");
    fs::remove_all(dir);
}

TEST_CASE("the sparse first layer gives the dense gradient, which equals finite differences (double)") {
    // X = S + offset 1^T with S mostly zeros and a non-zero offset (a transform and centring).
    AutoencoderConfig cfg;
    cfg.n_genes = 9;
    cfg.hidden = {6, 4, 6};
    Autoencoder<double> net(cfg);
    net.initialize(11);
    Rng rng(13);
    for (Index i = 0; i < net.parameters().size(); ++i) net.parameters()[i] += 0.1 * rng.normal();
    SparseBatch<double> s;
    s.clear(9);
    s.offset = random_matrix(9, 1, 17, -0.5, 0.5);
    for (Index j = 0; j < 5; ++j) {
        for (Index g = 0; g < 9; ++g)
            if ((g * 7 + j * 3) % 4 == 0) { // about a quarter stored; column 4 has none in some rows
                s.row.push_back(static_cast<std::int32_t>(g));
                s.value.push_back(0.5 + 0.25 * static_cast<double>((g + j) % 5));
            }
        s.start.push_back(static_cast<std::int64_t>(s.row.size()));
    }
    REQUIRE(s.stored() < 9 * 5 / 2);
    const MatrixD x = s.dense();
    const MatrixD target = random_matrix(9, 5, 19, 0.0, 3.0).array().floor();
    const LossOptions lo{LossKind::poisson, 0.3, OrthogonalityForm::frobenius};
    net.reserve(5);
    const double dense_loss = net.loss_and_gradient(x, target, lo).total();
    const VectorD dense_gradient = net.gradient();
    const double sparse_loss = net.loss_and_gradient(s, target, lo).total();
    CHECK(sparse_loss == doctest::Approx(dense_loss).epsilon(1e-13));
    CHECK(relative_error(net.gradient(), dense_gradient) < 1e-12);
    // ... and the dense gradient is the finite-difference one (the network test above), here too.
    VectorD num(dense_gradient.size());
    const double h = 1e-6;
    for (Index k = 0; k < num.size(); ++k) {
        const double keep = net.parameters()[k];
        net.parameters()[k] = keep + h;
        net.forward(x);
        const double fp = net.loss(target, lo).total();
        net.parameters()[k] = keep - h;
        net.forward(x);
        const double fm = net.loss(target, lo).total();
        net.parameters()[k] = keep;
        num[k] = (fp - fm) / (2 * h);
    }
    CHECK(relative_error(net.gradient(), num) < 1e-6);

    // The two products against plain dense ones, in float, split over threads or not.
    const MatrixF w = random_matrix(40, 9, 23).cast<float>();
    SparseBatch<float> sf;
    sf.clear(9);
    sf.offset = s.offset.cast<float>();
    sf.start = s.start;
    sf.row = s.row;
    for (double v : s.value) sf.value.push_back(static_cast<float>(v));
    MatrixF z(40, 5);
    kernels::sparse_product(z, w, sf);
    const MatrixF stored = sf.dense() - sf.offset.replicate(1, 5);
    CHECK((z - w * stored).cwiseAbs().maxCoeff() < 1e-5f);
    const MatrixF dz = random_matrix(40, 5, 29).cast<float>();
    MatrixF dw(40, 9);
    kernels::sparse_transposed_product(dw, dz, sf);
    CHECK((dw - dz * stored.transpose()).cwiseAbs().maxCoeff() < 1e-5f);

    // Large enough to be split over the threads: the same values for 1 and 2 threads.
    SparseBatch<float> big;
    big.clear(300);
    big.offset = VectorF::Zero(300);
    std::mt19937 gen(5);
    for (Index j = 0; j < 50; ++j) {
        for (Index g = 0; g < 300; ++g)
            if (gen() % 10 < 3) {
                big.row.push_back(static_cast<std::int32_t>(g));
                big.value.push_back(static_cast<float>(gen() % 100) / 10.0f);
            }
        big.start.push_back(static_cast<std::int64_t>(big.row.size()));
    }
    const MatrixF wb = random_matrix(64, 300, 31).cast<float>(), dzb = random_matrix(64, 50, 37).cast<float>();
    MatrixF z1(64, 50), z2(64, 50), dw1(64, 300), dw2(64, 300);
    const int before = threads();
    set_threads(1);
    kernels::sparse_product(z1, wb, big);
    kernels::sparse_transposed_product(dw1, dzb, big);
    set_threads(2);
    kernels::sparse_product(z2, wb, big);
    kernels::sparse_transposed_product(dw2, dzb, big);
    set_threads(before);
    CHECK(z1 == z2);
    CHECK(dw1 == dw2);
    CHECK((z1 - wb * big.dense()).cwiseAbs().maxCoeff() < 1e-3f);
    CHECK((dw1 - dzb * big.dense().transpose()).cwiseAbs().maxCoeff() < 1e-3f);
}
