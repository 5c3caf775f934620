// Times exsal's autoencoder training (and guided saliency when the library has it) on the
// synthetic counts of the PyTorch reference implementation (torch_reference.py, which compare.py runs
// beside it), with the same options and JSON keys.
//
//   bench_autoencoder --cells 2000 --genes 4000 --epochs 3 --batch 128 --threads 2 --seed 1
//                     [--lambda-orth 1] [--mode all|train|roofline|phases|parts|saliency] [--reps 30]
//                     [--block-cells B] [--no-saliency] [--double] [--keep-denormals]
//
// --keep-denormals: IEEE subnormals instead of exsal's default flush to zero
// (exsal/core/denormals.hpp), to measure what the flush is worth.
//
// Modes (one JSON line each run):
//   all       training + roofline (+ saliency): the keys of the reference plus step, GEMM and roofline keys
//   train     training only (+ saliency)
//   roofline  only the matrix products of one training step on the same shapes, repeated --reps times
//   phases    one step split into forward, loss+backward and optimiser, repeated --reps times
//   parts     training (--epochs), then one step cut finer, each part timed alone --reps times
//             (part_*_ms keys, parts_step_ms their sum, the roofline against that sum)
//   saliency  saliency only, on the initialised (untrained) model: the same cost as after training
//   agreement (double) writes what benchmarks/same_model.py needs to check that the PyTorch
//             reference computes the same model: --out DIR gets params.bin (the initial parameters
//             with random biases, the library's layout: per layer W out x in column-major, then b),
//             data.bin (counts, genes x cells), grad.bin (loss gradient on the first batch) and
//             losses.bin (reconstruction and orthogonality loss of --steps Adam steps on
//             consecutive batches, before each step); all little-endian float64
// Keys: train_s, train_cells_per_s, saliency_s, final_loss as the reference (saliency_s: guided
// saliency of all units for every cell, summing |g| like the reference; mean_abs_saliency_s: the
// library's mean |saliency| reduction over the same cells); step_ms (median of the
// full-size steps inside training), gemm_step_ms (median over --reps of the products alone, the
// faster of plain Eigen products, gemm_eigen_ms, and the engine's split products, gemm_split_ms),
// roofline_fraction = gemm_step_ms / step_ms, gemm_gflops, peak_rss_mib; *_cpu_* are CPU times.

#include "bench_common.hpp"

#include "exsal/core/cpu.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/nn/nn.hpp"

#include "exsal/interpret/saliency.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

using exsal::Index;
using exsal_bench::median;
using exsal_bench::now_s;

struct Config {
    Index cells = 2000, genes = 4000, batch = 128;
    int epochs = 5, threads = 2, reps = 30;
    std::uint64_t seed = 1;
    double lambda = 1.0;
    std::string mode = "all";
    std::string out;       // agreement: output folder
    int steps = 10;        // agreement: Adam steps
    bool saliency = true;
    Index block_cells = 0; // saliency cells per block (0: the library's default)
};

// Adds `"key": value` to a JSON object being built.
class Json {
public:
    template <typename T>
    Json& add(const std::string& key, const T& v) {
        m_s << (m_first ? "{" : ", ") << '"' << key << "\": " << v;
        m_first = false;
        return *this;
    }
    Json& add_text(const std::string& key, const std::string& v) {
        m_s << (m_first ? "{" : ", ") << '"' << key << "\": \"" << v << '"';
        m_first = false;
        return *this;
    }
    std::string str() const { return m_s.str() + "}"; }

private:
    std::ostringstream m_s;
    bool m_first = true;
};

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// Median wall and CPU seconds of one step's products.
struct GemmTiming {
    double eigen_wall = 0, eigen_cpu = 0; // plain Eigen products (Eigen threads each product itself)
    double split_wall = 0, split_cpu = 0; // the engine's exsal::kernels::split_product
    double flops = 0;
    double best_wall() const { return std::min(eigen_wall, split_wall); }
    double best_cpu() const { return split_wall <= eigen_wall ? split_cpu : eigen_cpu; }
};

// The matrix products of one training step of `model` on a batch of n cells, with noalias
// destinations sized once: per layer l (W_l out x in, X_l in x n)
//   forward   Z_l = W_l X_l
//   backward  dW_l = dZ_l X_l^T ; dX_l = W_l^T dZ_l (l > 0)
//   penalty   G = W W^T ; dW += c G W   (representation weights)
// timed two ways, alternating, `reps` times each after one warm-up: as plain Eigen products and
// through the engine's split_product (the penalty's two small products are plain in both, as in
// the engine). The roofline is the faster of the two.
template <typename Scalar>
GemmTiming time_step_gemms(const exsal::Autoencoder<Scalar>& model, Index n, int reps, std::uint64_t seed) {
    using Mat = exsal::Matrix<Scalar>;
    const Index L = model.layer_count();
    std::vector<Mat> w, x, z, dz, dw, dx;
    exsal::Rng rng(seed);
    auto fill = [&](Mat& m, Index r, Index c) {
        m.resize(r, c);
        for (Index j = 0; j < m.size(); ++j) m.data()[j] = static_cast<Scalar>(0.1 * rng.normal());
    };
    GemmTiming g;
    for (Index l = 0; l < L; ++l) {
        const Index in = model.layer(l).in_size(), out = model.layer(l).out_size();
        w.emplace_back(); fill(w.back(), out, in);
        x.emplace_back(); fill(x.back(), in, n);
        z.emplace_back(); fill(z.back(), out, n);
        dz.emplace_back(); fill(dz.back(), out, n);
        dw.emplace_back(); fill(dw.back(), out, in);
        dx.emplace_back(); fill(dx.back(), in, n);
        g.flops += 2.0 * out * in * n * (l > 0 ? 3 : 2);
    }
    const Index r = model.representation_layer();
    const Index u = model.layer(r).out_size(), h = model.layer(r).in_size();
    Mat gram(u, u);
    g.flops += 2.0 * u * u * h * 2;
    auto eigen_step = [&]() {
        for (Index l = 0; l < L; ++l) z[l].noalias() = w[l] * x[l];
        for (Index l = L - 1; l >= 0; --l) {
            dw[l].noalias() = dz[l] * x[l].transpose();
            if (l > 0) dx[l].noalias() = w[l].transpose() * dz[l];
        }
        gram.noalias() = w[r] * w[r].transpose();
        dw[r].noalias() += Scalar(1e-3) * (gram * w[r]);
    };
    auto split_step = [&]() {
        for (Index l = 0; l < L; ++l) exsal::kernels::split_product(z[l], w[l], x[l]);
        for (Index l = L - 1; l >= 0; --l) {
            exsal::kernels::split_product(dw[l], dz[l], x[l].transpose());
            if (l > 0) exsal::kernels::split_product(dx[l], w[l].transpose(), dz[l]);
        }
        gram.noalias() = w[r] * w[r].transpose();
        dw[r].noalias() += Scalar(1e-3) * (gram * w[r]);
    };
    eigen_step();
    split_step();
    std::vector<double> ew, ec, sw, sc;
    for (int i = 0; i < reps; ++i) {
        double t0 = now_s(), c0 = exsal_bench::cpu_s();
        eigen_step();
        ew.push_back(now_s() - t0);
        ec.push_back(exsal_bench::cpu_s() - c0);
        t0 = now_s();
        c0 = exsal_bench::cpu_s();
        split_step();
        sw.push_back(now_s() - t0);
        sc.push_back(exsal_bench::cpu_s() - c0);
    }
    g.eigen_wall = median(ew);
    g.eigen_cpu = median(ec);
    g.split_wall = median(sw);
    g.split_cpu = median(sc);
    return g;
}

// Adds the roofline keys to the JSON line.
void add_gemm_keys(Json& j, const GemmTiming& g) {
    j.add("gemm_step_ms", fixed(1e3 * g.best_wall(), 3))
        .add("gemm_eigen_ms", fixed(1e3 * g.eigen_wall, 3))
        .add("gemm_split_ms", fixed(1e3 * g.split_wall, 3))
        .add("gemm_step_cpu_ms", fixed(1e3 * g.best_cpu(), 3))
        .add("gemm_gflops", fixed(g.flops / g.best_wall() * 1e-9, 2));
}

// One training step timed in parts, repeated: forward; forward + loss + backward; Adam.
template <typename Scalar>
void time_phases(exsal::Autoencoder<Scalar>& model, const exsal::Matrix<Scalar>& data, const Config& c, Json& j) {
    const Index n = std::min(c.batch, data.cols());
    model.reserve(n);
    exsal::Matrix<Scalar> xb = data.leftCols(n);
    exsal::LossOptions lo;
    lo.lambda = c.lambda;
    // The trainer's optimiser (Adam by fixed chunks of the parameters, in parallel), as a step runs it.
    exsal::detail::AnyOptimizer<Scalar> adam(model.parameters().size(), exsal::TrainOptions{});
    // Wall and CPU time of each part; with one thread the CPU times are robust to other load.
    std::vector<double> tf, tb, ta, cf, cb, ca;
    for (int i = 0; i <= c.reps; ++i) {
        const double t0 = now_s(), c0 = exsal_bench::cpu_s();
        model.forward(xb);
        const double t1 = now_s(), c1 = exsal_bench::cpu_s();
        model.loss_and_gradient(xb, xb, lo);
        const double t2 = now_s(), c2 = exsal_bench::cpu_s();
        if (!adam.step(model.parameters(), model.gradient())) throw exsal::NumericError("bench_autoencoder: the gradient is not finite");
        const double t3 = now_s(), c3 = exsal_bench::cpu_s();
        if (i == 0) continue;
        tf.push_back(t1 - t0);
        tb.push_back((t2 - t1) - (t1 - t0));
        ta.push_back(t3 - t2);
        cf.push_back(c1 - c0);
        cb.push_back((c2 - c1) - (c1 - c0));
        ca.push_back(c3 - c2);
    }
    const GemmTiming g = time_step_gemms(model, n, c.reps, c.seed);
    j.add("forward_ms", fixed(1e3 * median(tf), 3))
        .add("loss_backward_ms", fixed(1e3 * median(tb), 3))
        .add("adam_ms", fixed(1e3 * median(ta), 3))
        .add("step_ms", fixed(1e3 * (median(tf) + median(tb) + median(ta)), 3))
        .add("forward_cpu_ms", fixed(1e3 * median(cf), 3))
        .add("loss_backward_cpu_ms", fixed(1e3 * median(cb), 3))
        .add("adam_cpu_ms", fixed(1e3 * median(ca), 3))
        .add("step_cpu_ms", fixed(1e3 * (median(cf) + median(cb) + median(ca)), 3))
        .add("roofline_fraction", fixed(g.best_wall() / (median(tf) + median(tb) + median(ta)), 3))
        .add("roofline_fraction_cpu", fixed(g.best_cpu() / (median(cf) + median(cb) + median(ca)), 3));
    add_gemm_keys(j, g);
}

// One step cut into the parts Autoencoder::loss_and_gradient and the trainer run, each timed alone
// (medians over --reps steps), on the model after --epochs of training (so that the activations are
// in the state a training step meets): gathering a batch of random cells, the forward pass, the
// Poisson loss with the output layer's f' in its pass (and the loss alone), the output layer's dW
// and dX, the middle layers' backward with the orthogonality penalty, the first layer's backward
// (dW), and the trainer's optimiser with its finiteness check.
template <typename Scalar>
void time_parts(exsal::Autoencoder<Scalar>& model, const exsal::Matrix<Scalar>& data, const Config& c, Json& j) {
    // As train() does on its calling thread: the layers' own calls below, unlike the model's
    // forward() and loss_and_gradient(), do not flush subnormals themselves.
    const exsal::FlushDenormals flush;
    using Mat = exsal::Matrix<Scalar>;
    using ConstRef = exsal::ConstMatrixRef<Scalar>;
    const Index n = std::min(c.batch, data.cols()), L = model.layer_count();
    model.reserve(n);
    exsal::LossOptions lo;
    lo.lambda = c.lambda;
    std::vector<std::int64_t> order(static_cast<std::size_t>(data.cols()));
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
    exsal::Rng rng(exsal::derive_seed(c.seed, 7));
    Mat xb(data.rows(), n), dy(data.rows(), n);
    std::vector<Mat> dx(static_cast<std::size_t>(L));
    for (Index l = 1; l < L; ++l) dx[static_cast<std::size_t>(l)].resize(model.layer(l).in_size(), n);
    std::vector<double> column_sums(static_cast<std::size_t>(n));
    exsal::detail::AnyOptimizer<Scalar> optimizer(model.parameters().size(), exsal::TrainOptions{});
    exsal::Vector<Scalar> params = model.parameters(); // the optimiser steps a copy: the model stays as trained
    const exsal::PoissonLoss loss;
    std::vector<double> t[9];
    for (int r = 0; r <= c.reps; ++r) {
        double a = now_s();
        if (r % (data.cols() / n) == 0) rng.shuffle(order);
        exsal::detail::gather_columns<Scalar>(ConstRef(data), order.data() + (r % (data.cols() / n)) * n, n, xb);
        double b = now_s();
        const double gather = b - a;
        model.forward(xb);
        const double forward = now_s() - b;
        exsal::Layer<Scalar>& last = model.layer(L - 1);
        const ConstRef dy_all(dy);
        a = now_s();
        loss.value_and_gradient<Scalar>(model.reconstruction(), xb, dy, column_sums.data(),
                                        [&](Index col) { last.backward_columns(dy_all, col, 1); });
        b = now_s();
        const double loss_fprime = b - a;
        last.parameter_gradient(ConstRef(model.layer(L - 2).output()));
        a = now_s();
        const double out_dw = a - b;
        last.input_gradient(dx[static_cast<std::size_t>(L - 1)]);
        b = now_s();
        const double out_dx = b - a;
        for (Index l = L - 2; l >= 1; --l) {
            exsal::Layer<Scalar>& cur = model.layer(l);
            cur.backward(dx[static_cast<std::size_t>(l + 1)]);
            cur.parameter_gradient(ConstRef(model.layer(l - 1).output()));
            cur.input_gradient(dx[static_cast<std::size_t>(l)]);
        }
        model.add_orthogonality_gradient(lo);
        a = now_s();
        const double middle = a - b;
        model.layer(0).backward(dx[1]);
        model.layer(0).parameter_gradient(xb);
        b = now_s();
        const double first = b - a;
        if (!optimizer.step(params, model.gradient())) throw exsal::NumericError("bench_autoencoder: the gradient is not finite");
        a = now_s();
        const double step = a - b;
        loss.value_and_gradient<Scalar>(model.reconstruction(), xb, dy, column_sums.data());
        const double loss_alone = now_s() - a;
        if (r == 0) continue; // warm-up
        const double parts[9] = {gather, forward, loss_fprime, loss_alone, out_dw, out_dx, middle, first, step};
        for (int i = 0; i < 9; ++i) t[i].push_back(parts[i]);
    }
    const char* keys[9] = {"part_gather_ms", "part_forward_ms", "part_loss_output_fprime_ms", "part_loss_alone_ms",
                           "part_output_dw_ms", "part_output_dx_ms", "part_middle_layers_penalty_ms",
                           "part_first_layer_backward_ms", "part_optimizer_ms"};
    double sum = 0.0;
    for (int i = 0; i < 9; ++i) {
        const double m = median(t[i]);
        if (i != 3) sum += m; // the loss alone is inside the loss pass
        j.add(keys[i], fixed(1e3 * m, 3));
    }
    const GemmTiming g = time_step_gemms(model, n, c.reps, c.seed);
    j.add("parts_step_ms", fixed(1e3 * sum, 3)).add("roofline_fraction", fixed(g.best_wall() / sum, 3));
    add_gemm_keys(j, g);
}

// Trains with exsal::train on `data` (input = target), timing the whole run and each step.
template <typename Scalar>
void train_model(exsal::Autoencoder<Scalar>& model, const exsal::Matrix<Scalar>& data, const Config& c, Json& j) {
    exsal::TrainOptions o;
    o.max_epochs = c.epochs;
    o.batch_size = c.batch;
    o.seed = c.seed;
    o.loss.lambda = c.lambda;
    o.validate_every = c.epochs + 1;
    double last_loss = 0.0, last_t = 0.0, last_cpu = 0.0;
    std::vector<double> steps, step_cpu;
    o.on_batch = [&](const exsal::BatchInfo& b) {
        const double t = now_s(), cpu = exsal_bench::cpu_s();
        // A full-size step not at an epoch start: the interval holds gather + step + Adam only.
        if (b.batch > 0 && (b.batch + 1) * c.batch <= c.cells) {
            steps.push_back(t - last_t);
            step_cpu.push_back(cpu - last_cpu);
        }
        last_t = t;
        last_cpu = cpu;
        last_loss = b.loss.total();
    };
    const double t0 = now_s(), cpu0 = exsal_bench::cpu_s();
    last_t = t0;
    last_cpu = cpu0;
    exsal::train<Scalar>(model, data, data, o);
    const double train_s = now_s() - t0, train_cpu_s = exsal_bench::cpu_s() - cpu0;
    const double step_s = median(steps);
    j.add("train_s", fixed(train_s, 4))
        .add("train_cells_per_s", fixed(static_cast<double>(c.cells) * c.epochs / train_s, 1))
        .add("train_cpu_s", fixed(train_cpu_s, 4))
        .add("step_ms", fixed(1e3 * step_s, 3))
        .add("step_cpu_ms", fixed(1e3 * median(step_cpu), 3))
        .add("final_loss", fixed(last_loss, 6));

    if (c.mode == "all") {
        const GemmTiming g = time_step_gemms(model, std::min(c.batch, c.cells), c.reps, c.seed);
        add_gemm_keys(j, g);
        j.add("step_gflops", fixed(g.flops / step_s * 1e-9, 2)).add("roofline_fraction", fixed(g.best_wall() / step_s, 3));
    }
}

void write_doubles(const std::string& path, const double* v, std::size_t n) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v), static_cast<std::streamsize>(n * sizeof(double)));
    if (!f) throw exsal::FileError(path, "cannot write");
}

// Mode agreement (see the top of the file).
int agreement(const Config& c) {
    if (c.out.empty()) throw exsal::ArgumentError("bench_autoencoder", "--mode agreement needs --out DIR");
    exsal::set_threads(c.threads);
    exsal::AutoencoderConfig ac;
    ac.n_genes = c.genes;
    exsal::Autoencoder<double> model(ac);
    model.initialize(c.seed);
    exsal::Rng rng(exsal::derive_seed(c.seed, 99)); // biases uniform in +-1/sqrt(in), as PyTorch's default
    for (Index l = 0; l < model.layer_count(); ++l) {
        const double bound = 1.0 / std::sqrt(static_cast<double>(model.layer(l).in_size()));
        for (Index i = 0; i < model.layer(l).bias().size(); ++i) model.layer(l).bias()(i) = (2.0 * rng.uniform() - 1.0) * bound;
    }
    const exsal::MatrixD data = exsal_bench::synthetic_counts<double>(c.cells, c.genes, c.seed);
    write_doubles(c.out + "/params.bin", model.parameters().data(), static_cast<std::size_t>(model.parameters().size()));
    write_doubles(c.out + "/data.bin", data.data(), static_cast<std::size_t>(data.size()));
    model.reserve(c.batch);
    exsal::LossOptions lo;
    lo.lambda = c.lambda;
    exsal::Adam<double> adam(model.parameters().size(), {});
    std::vector<double> losses;
    for (int s = 0; s < c.steps; ++s) {
        const Index first = (static_cast<Index>(s) * c.batch) % c.cells, n = std::min(c.batch, c.cells - first);
        const exsal::MatrixD batch = data.middleCols(first, n);
        const exsal::LossParts parts = model.loss_and_gradient(batch, batch, lo);
        if (s == 0) write_doubles(c.out + "/grad.bin", model.gradient().data(), static_cast<std::size_t>(model.gradient().size()));
        losses.push_back(parts.reconstruction);
        losses.push_back(parts.orthogonality);
        adam.step(model.parameters(), model.gradient());
    }
    write_doubles(c.out + "/losses.bin", losses.data(), losses.size());
    Json j;
    j.add_text("impl", "exsal").add_text("mode", "agreement").add("cells", c.cells).add("genes", c.genes)
        .add("batch", c.batch).add("steps", c.steps).add("lambda", c.lambda).add_text("out", c.out);
    std::cout << j.str() << std::endl;
    return 0;
}

template <typename Scalar>
int run(Config c) {
    exsal::set_threads(c.threads);
    if (c.mode == "saliency") c.epochs = 0; // saliency of the initialised model only
    Json j;
    j.add_text("impl", "exsal")
        .add_text("mode", c.mode)
        .add_text("scalar", sizeof(Scalar) == 4 ? "float" : "double")
        .add_text("simd", exsal_bench::simd_name())
        .add_text("matrix_products", exsal::gemm_backend())
        .add_text("denormals", exsal::denormals_mode())
        .add("threads", exsal::threads())
        .add("cells", c.cells)
        .add("genes", c.genes)
        .add("epochs", c.epochs)
        .add("batch", c.batch);

    exsal::AutoencoderConfig ac;
    ac.n_genes = c.genes;
    exsal::Autoencoder<Scalar> model(ac);
    model.initialize(c.seed);

    if (c.mode == "roofline") {
        add_gemm_keys(j, time_step_gemms(model, std::min(c.batch, c.cells), c.reps, c.seed));
        std::cout << j.str() << std::endl;
        return 0;
    }

    double t0 = now_s();
    const exsal::Matrix<Scalar> data = exsal_bench::synthetic_counts<Scalar>(c.cells, c.genes, c.seed);
    j.add("data_s", fixed(now_s() - t0, 3));

    if (c.mode == "phases") {
        time_phases(model, data, c, j);
        std::cout << j.str() << std::endl;
        return 0;
    }

    if (c.epochs > 0) train_model(model, data, c, j);
    if (c.mode == "parts") {
        time_parts(model, data, c, j);
        std::cout << j.str() << std::endl;
        return 0;
    }

    if (c.saliency) {
        // The reference's workload: guided saliency of all 64 units for every cell, summing |g|.
        // Per-thread partial sums, added in block order (independent of the thread count).
        exsal::SaliencyOptions so;
        so.kind = exsal::SaliencyKind::guided;
        if (c.block_cells > 0) so.block_cells = c.block_cells;
        std::vector<double> partial(static_cast<std::size_t>(exsal::threads()), 0.0);
        double total = 0.0;
        t0 = now_s();
        const double cpu0 = exsal_bench::cpu_s();
        exsal::for_each_saliency_block<Scalar>(
            model, data, so,
            [&](int t, Index, const exsal::ConstMatrixRef<Scalar>& block) {
                partial[static_cast<std::size_t>(t)] = static_cast<double>(block.cwiseAbs().sum());
            },
            [&](int t, Index, Index) { total += partial[static_cast<std::size_t>(t)]; });
        const double sal_s = now_s() - t0, sal_cpu_s = exsal_bench::cpu_s() - cpu0;
        // The library's own reduction (mean |saliency| per gene and unit), as the pipeline uses it.
        t0 = now_s();
        const exsal::MatrixD mean_abs = exsal::mean_abs_saliency<Scalar>(model, data, so);
        const double mean_abs_s = now_s() - t0;
        j.add("saliency_s", fixed(sal_s, 4))
            .add("saliency_cpu_s", fixed(sal_cpu_s, 4))
            .add("saliency_cells_per_s", fixed(static_cast<double>(c.cells) / sal_s, 1))
            .add("saliency_sum", fixed(total, 2))
            .add("mean_abs_saliency_s", fixed(mean_abs_s, 4))
            .add("mean_abs_saliency_check", fixed(mean_abs.sum() * static_cast<double>(c.cells) / total, 6))
            .add("saliency_block_cells", so.block_cells);
    }
    j.add("peak_rss_mib", fixed(exsal_bench::peak_rss_mib(), 1));
    std::cout << j.str() << std::endl;
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        const exsal_bench::Args a(argc, argv,
                                  {"cells", "genes", "epochs", "batch", "threads", "seed", "lambda-orth", "mode", "reps",
                                   "block-cells", "out", "steps"},
                                  {"double", "no-saliency", "keep-denormals"});
        exsal::set_flush_denormals(!a.flag("keep-denormals"));
        Config c;
        c.cells = a.integer("cells", c.cells);
        c.genes = a.integer("genes", c.genes);
        c.epochs = static_cast<int>(a.integer("epochs", c.epochs));
        c.batch = a.integer("batch", c.batch);
        c.threads = static_cast<int>(a.integer("threads", c.threads));
        c.seed = static_cast<std::uint64_t>(a.integer("seed", 1));
        c.lambda = a.real("lambda-orth", c.lambda);
        c.mode = a.text("mode", c.mode);
        c.reps = static_cast<int>(a.integer("reps", c.reps));
        c.saliency = !a.flag("no-saliency");
        c.block_cells = a.integer("block-cells", 0);
        c.out = a.text("out", "");
        c.steps = static_cast<int>(a.integer("steps", c.steps));
        if (c.mode != "all" && c.mode != "train" && c.mode != "roofline" && c.mode != "phases" && c.mode != "parts" &&
            c.mode != "saliency" && c.mode != "agreement")
            throw exsal::ArgumentError("bench_autoencoder", "--mode must be all, train, roofline, phases, parts, saliency or agreement");
        if (c.cells < 1 || c.genes < 1 || c.epochs < 1 || c.batch < 1 || c.threads < 1 || c.reps < 1 || c.steps < 1)
            throw exsal::ArgumentError("bench_autoencoder", "sizes, epochs, threads, reps and steps must be >= 1");
        if (c.mode == "agreement") return agreement(c);
        return a.flag("double") ? run<double>(c) : run<float>(c);
    } catch (const std::exception& e) {
        std::cerr << "bench_autoencoder: " << e.what() << "\n";
        return 1;
    }
}
