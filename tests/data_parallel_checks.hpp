#ifndef EXSAL_TESTS_DATA_PARALLEL_CHECKS_HPP
#define EXSAL_TESTS_DATA_PARALLEL_CHECKS_HPP

// Checks of data-parallel training against the one-process run with the same global batches, run
// by every process of a ProcessGroup alike (collectively): by MPI ranks in tests/mpi/test_mpi.cpp
// and by threads standing in for processes in tests/test_data_parallel.cpp. Each process trains
// the one-process reference itself on all cells (small problems), then its share.
//
// Tolerances. The combined gradient of a batch differs from the one-process gradient only in the
// order of its float sums (each process sums its own cells, then the processes are added). The
// largest gradient entries are sums of ~64 cells' terms of similar size; float keeps 24 bits, so
// a different order moves an entry by a few units of 2^-24 of the sum of magnitudes, and entries
// that nearly cancel move by that much of their terms: 1e-5 of the largest entry bounds both with
// a margin (measured with 2 to 4 processes: 1.5e-7 to 2e-7 of it). Adam's first step is
// lr g / (|g| + eps) = ~ lr sign(g) per entry, so the parameters after it move by lr in each entry
// whatever the gradient's rounding, except where |g| is as small as eps (1e-8): there the step
// changes by lr |dg| / eps, so the parameters agree to lr x 1e-2 (measured: 3e-5 to 6e-4 x lr),
// against a step of lr. SGD's first
// step is lr g, so its parameters agree to lr x the gradient tolerance. After 20 epochs of Adam
// the differences have grown through the steps (chaotically in principle) but the losses agree to
// 1 %.

#include <doctest/doctest.h>

#include "exsal/core/process_group.hpp"
#include "exsal/nn/nn.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace exsal_test {

using namespace exsal;

// Non-negative low-rank counts-like data, genes x cells (as in test_nn.cpp).
inline MatrixF parallel_test_data(Index genes, Index cells, std::uint64_t seed) {
    Rng rng(seed);
    MatrixD a(genes, 3), b(3, cells);
    for (Index j = 0; j < 3; ++j)
        for (Index i = 0; i < genes; ++i) a(i, j) = rng.gamma(0.5, 1.0);
    for (Index j = 0; j < cells; ++j)
        for (Index i = 0; i < 3; ++i) b(i, j) = rng.gamma(0.5, 1.0);
    return (a * b).cast<float>();
}

inline AutoencoderConfig parallel_test_config(Index genes) {
    AutoencoderConfig cfg;
    cfg.n_genes = genes;
    cfg.hidden = {32, 12, 32};
    return cfg;
}

inline TrainOptions parallel_test_options(int epochs) {
    TrainOptions o;
    o.max_epochs = epochs;
    o.batch_size = 64;
    o.validate_every = 2;
    o.patience = 3;
    o.seed = 11;
    o.loss.loss = LossKind::poisson;
    o.loss.lambda = 1.0; // counted once across processes, or the gradients would differ
    o.adam.lr = 2e-3;
    return o;
}

// What a training run ends with, and the gradient and parameters right after its first step.
struct ParallelRun {
    TrainHistory history;
    Vector<float> parameters, first_gradient, first_parameters;
};

// Trains on the cells `range` of `train` (and of `validation`, `validation_range`) with the
// processes of `group` (null: one process). Every process initialises its model with a different
// seed: training must start from process 0's.
inline ParallelRun parallel_train(ProcessGroup* group, const MatrixF& train_data, CellRange range,
                                  const MatrixF& validation_data, CellRange validation_range, TrainOptions o) {
    Autoencoder<float> net(parallel_test_config(train_data.rows()));
    net.initialize(group ? 5 + 1000 * static_cast<std::uint64_t>(group->rank()) : 5);
    ParallelRun run;
    o.on_batch = [&](const BatchInfo& b) {
        if (b.epoch == 0 && b.batch == 0) {
            run.first_gradient = net.gradient();
            run.first_parameters = net.parameters();
        }
    };
    const auto x = train_data.middleCols(range.first, range.count);
    const auto v = validation_data.middleCols(validation_range.first, validation_range.count);
    const MatrixCells<float> cells(x, x), validation(v, v);
    run.history = group ? train<float>(net, cells, &validation, o, *group) : train<float>(net, cells, &validation, o);
    run.parameters = net.parameters();
    return run;
}

// A ProcessGroup that counts the calls it passes on.
class CountingGroup final : public ProcessGroup {
public:
    explicit CountingGroup(ProcessGroup& group) : m_group(group) {}
    int rank() const override { return m_group.rank(); }
    int size() const override { return m_group.size(); }
    void sum(float* data, Index n) override {
        ++sums;
        m_group.sum(data, n);
    }
    void sum(double* data, Index n) override {
        ++sums;
        m_group.sum(data, n);
    }
    void sum(std::int64_t* data, Index n) override {
        ++sums;
        m_group.sum(data, n);
    }
    void broadcast(float* data, Index n, int root) override {
        ++broadcasts;
        m_group.broadcast(data, n, root);
    }
    void broadcast(double* data, Index n, int root) override {
        ++broadcasts;
        m_group.broadcast(data, n, root);
    }
    long sums = 0, broadcasts = 0;

private:
    ProcessGroup& m_group;
};

inline double max_abs_difference(const Vector<float>& a, const Vector<float>& b) {
    return static_cast<double>((a - b).cwiseAbs().maxCoeff());
}

// Whether a and b hold the same bits (NaN where NaN).
inline bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// True on every process when `v` has the same bits as process 0's.
inline bool same_on_every_process(ProcessGroup& group, std::vector<double> v) {
    std::vector<double> root = v;
    group.broadcast(root.data(), static_cast<Index>(root.size()), 0);
    double differs = same_bits(root, v) ? 0.0 : 1.0;
    group.sum(&differs, 1);
    return differs == 0.0;
}
inline bool same_on_every_process(ProcessGroup& group, const Vector<float>& v) {
    return same_on_every_process(group, std::vector<double>(v.data(), v.data() + v.size()));
}
inline std::vector<double> history_values(const TrainHistory& h) {
    std::vector<double> v = h.train_loss;
    v.insert(v.end(), h.validation_loss.begin(), h.validation_loss.end());
    v.insert(v.end(), h.orthogonality_error.begin(), h.orthogonality_error.end());
    v.push_back(h.best_epoch);
    v.push_back(h.epochs_run);
    v.push_back(h.stopped_early);
    return v;
}

// The first step: the summed gradient (with the orthogonality penalty once) and the parameters
// after it agree with the one-process run; with SGD and with Adam.
inline void check_first_step(ProcessGroup& group) {
    const MatrixF all = parallel_test_data(80, 690, 3), data = all.leftCols(600), validation = all.rightCols(90);
    const CellRange share = even_share(data.cols(), group.rank(), group.size());
    const CellRange validation_share = even_share(validation.cols(), group.rank(), group.size());
    for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adam}) {
        TrainOptions o = parallel_test_options(1);
        o.optimizer = kind;
        o.sgd.lr = 1e-2;
        const ParallelRun one = parallel_train(nullptr, data, {0, data.cols()}, validation, {0, validation.cols()}, o);
        const ParallelRun many = parallel_train(&group, data, share, validation, validation_share, o);
        const double g_max = static_cast<double>(one.first_gradient.cwiseAbs().maxCoeff());
        const double dg = max_abs_difference(one.first_gradient, many.first_gradient);
        const double dp = max_abs_difference(one.first_parameters, many.first_parameters);
        const double lr = o.learning_rate();
        MESSAGE(group.size() << " processes, " << std::string(kind == OptimizerKind::adam ? "Adam" : "SGD")
                              << ": first gradient differs by " << dg << " (largest entry " << g_max
                              << "), parameters after the first step by " << dp << " (learning rate " << lr << ")");
        CHECK(dg <= 1e-5 * g_max);
        if (kind == OptimizerKind::sgd)
            CHECK(dp <= lr * 1e-5 * g_max + 1e-6);
        else
            CHECK(dp <= lr * 1e-2);
        CHECK(same_on_every_process(group, many.first_parameters));
    }
}

// 20 epochs: the loss curves within 1 % of the one-process run; every process holds the same
// parameters and history; a second run repeats the first bit for bit.
inline void check_loss_curves_and_repeats(ProcessGroup& group) {
    const MatrixF all = parallel_test_data(80, 690, 3), data = all.leftCols(600), validation = all.rightCols(90);
    const CellRange share = even_share(data.cols(), group.rank(), group.size());
    const CellRange validation_share = even_share(validation.cols(), group.rank(), group.size());
    TrainOptions o = parallel_test_options(20);
    o.patience = 0; // all 20 epochs
    const ParallelRun one = parallel_train(nullptr, data, {0, data.cols()}, validation, {0, validation.cols()}, o);
    const ParallelRun many = parallel_train(&group, data, share, validation, validation_share, o);
    CountingGroup counted(group);
    const ParallelRun again = parallel_train(&counted, data, share, validation, validation_share, o);
    CHECK(many.history.epochs_run == 20);
    // One sum per step, one per validation, one of the cell counts first; one broadcast (the weights).
    const long validations = static_cast<long>(std::count_if(many.history.validation_loss.begin(),
                                                             many.history.validation_loss.end(),
                                                             [](double v) { return !std::isnan(v); }));
    CHECK(counted.sums == many.history.batches + validations + 1);
    CHECK(counted.broadcasts == 1);
    double worst = 0.0, worst_validation = 0.0;
    for (std::size_t e = 0; e < one.history.train_loss.size() && e < many.history.train_loss.size(); ++e) {
        worst = std::max(worst, std::abs(many.history.train_loss[e] / one.history.train_loss[e] - 1.0));
        if (!std::isnan(one.history.validation_loss[e]))
            worst_validation = std::max(
                worst_validation, std::abs(many.history.validation_loss[e] / one.history.validation_loss[e] - 1.0));
    }
    MESSAGE(group.size() << " processes, 20 epochs: training losses " << one.history.train_loss.front() << " -> "
                          << one.history.train_loss.back() << " in one process; largest relative difference "
                          << worst << " (validation " << worst_validation << ")");
    CHECK(one.history.train_loss.back() < 0.8 * one.history.train_loss.front()); // it does learn
    CHECK(worst <= 0.01);
    CHECK(worst_validation <= 0.01);
    CHECK(same_on_every_process(group, many.parameters));
    CHECK(same_on_every_process(group, history_values(many.history)));
    CHECK(again.parameters == many.parameters);
    CHECK(same_bits(history_values(again.history), history_values(many.history)));
}

// Early stopping decides alike on every process.
inline void check_early_stopping(ProcessGroup& group) {
    const MatrixF all = parallel_test_data(40, 360, 5), data = all.leftCols(300), validation = all.rightCols(60);
    TrainOptions o = parallel_test_options(300);
    o.validate_every = 1;
    o.patience = 3;
    o.adam.lr = 0.05; // noisy, so validation stops improving early
    const ParallelRun many = parallel_train(&group, data, even_share(data.cols(), group.rank(), group.size()),
                                            validation, even_share(validation.cols(), group.rank(), group.size()), o);
    CHECK(many.history.stopped_early);
    CHECK(many.history.best_epoch >= 0);
    CHECK(same_on_every_process(group, history_values(many.history)));
    CHECK(same_on_every_process(group, many.parameters));
}

// Uneven shares: the last process holds no cells at all (its zero gradient adds nothing: the run
// equals one process bit for bit), or process 0 holds only 7 cells (most batches have none of
// them; the run agrees with one process to rounding).
inline void check_uneven_shares(ProcessGroup& group) {
    const MatrixF all = parallel_test_data(80, 690, 3), data = all.leftCols(600), validation = all.rightCols(90);
    TrainOptions o = parallel_test_options(3);
    o.patience = 0;
    const ParallelRun one = parallel_train(nullptr, data, {0, data.cols()}, validation, {0, validation.cols()}, o);
    const int last = group.size() - 1;
    // All cells on processes 0..last-1 (process `last` none).
    CellRange share, validation_share;
    if (last == 0) {
        share = {0, data.cols()};
        validation_share = {0, validation.cols()};
    } else if (group.rank() == last) {
        share = {data.cols(), 0};
        validation_share = {validation.cols(), 0};
    } else {
        share = even_share(data.cols(), group.rank(), last);
        validation_share = even_share(validation.cols(), group.rank(), last);
    }
    const ParallelRun empty = parallel_train(&group, data, share, validation, validation_share, o);
    if (group.size() <= 2) { // one process does all the work: the same sums in the same order
        CHECK(empty.parameters == one.parameters);
        CHECK(empty.history.train_loss.back() == doctest::Approx(one.history.train_loss.back()).epsilon(1e-6));
    }
    // Process 0 holds 7 cells, the others share the rest.
    const std::int64_t few = 7;
    if (group.rank() == 0)
        share = {0, few};
    else {
        const CellRange rest = even_share(data.cols() - few, group.rank() - 1, group.size() - 1);
        share = {few + rest.first, rest.count};
    }
    validation_share = even_share(validation.cols(), group.rank(), group.size());
    const ParallelRun skewed = parallel_train(&group, data, share, validation, validation_share, o);
    for (std::size_t e = 0; e < one.history.train_loss.size(); ++e)
        CHECK(std::abs(skewed.history.train_loss[e] / one.history.train_loss[e] - 1.0) <= 0.01);
    CHECK(same_on_every_process(group, skewed.parameters));
}

// Cells that fail on one process only: a gather that throws in the third batch (a bad row of a
// file, say), or a NaN among its counts.
class FailingCells final : public TrainingCells<float> {
public:
    FailingCells(const MatrixF& x, bool fail, Index fail_at) : m_cells(x, x), m_fail(fail), m_fail_at(fail_at) {}
    Index genes() const override { return m_cells.genes(); }
    Index cells() const override { return m_cells.cells(); }
    bool target_is_input() const override { return true; }
    void gather(const std::int64_t* c, Index n, MatrixF& input, MatrixF& target) const override {
        if (m_fail && ++m_calls == m_fail_at) throw FileError("share.csv", 17, 3, "not a number: 'x1'");
        m_cells.gather(c, n, input, target);
    }

private:
    MatrixCells<float> m_cells;
    bool m_fail;
    Index m_fail_at;
    mutable Index m_calls = 0;
};

// An error on one process ends train() on every process (no process waits forever): the failing
// one with its own error, the others with an Error saying that another process failed.
inline void check_failures(ProcessGroup& group) {
    const MatrixF data = parallel_test_data(30, 400, 8);
    const CellRange share = even_share(data.cols(), group.rank(), group.size());
    const bool failing = group.rank() == group.size() - 1;
    const MatrixF mine = data.middleCols(share.first, share.count);
    TrainOptions o = parallel_test_options(3);
    Autoencoder<float> net(parallel_test_config(data.rows()));
    net.initialize(1);

    const FailingCells throws_in_batch(mine, failing, 3);
    try {
        train<float>(net, throws_in_batch, nullptr, o, group);
        FAIL("a throwing gather on one process must end training on all of them");
    } catch (const FileError& e) {
        CHECK(failing);
        CHECK(std::string(e.what()) == "share.csv:17:3: not a number: 'x1'");
    } catch (const Error& e) {
        CHECK_FALSE(failing);
        const std::string m = e.what();
        MESSAGE("process " << group.rank() << ": " << m);
        CHECK(m.find("epoch 1, batch 3") != std::string::npos); // the failing process's third batch
        CHECK(m.find("1 of " + std::to_string(group.size()) + " processes failed") != std::string::npos);
    }

    // Wrong gene count on one process: caught before the first step.
    const MatrixF wrong = failing ? MatrixF(mine.topRows(29)) : mine;
    const MatrixCells<float> wrong_cells(wrong, wrong);
    try {
        train<float>(net, wrong_cells, nullptr, o, group);
        FAIL("a process with the wrong genes must end training on all of them");
    } catch (const ArgumentError& e) {
        CHECK(failing);
        CHECK(std::string(e.what()).find("29 genes") != std::string::npos);
    } catch (const Error& e) {
        CHECK_FALSE(failing);
        CHECK(std::string(e.what()).find("checking each process's cells") != std::string::npos);
    }

    // A model of another size on one process: refused before the broadcast of the weights.
    AutoencoderConfig other = parallel_test_config(data.rows());
    if (failing) other.hidden = {32, 10, 32};
    Autoencoder<float> other_net(other);
    other_net.initialize(1);
    const MatrixCells<float> cells(mine, mine);
    try {
        train<float>(other_net, cells, nullptr, o, group);
        FAIL("models of different sizes must be refused on every process");
    } catch (const ArgumentError& e) {
        CHECK(std::string(e.what()).find("the processes' models differ") != std::string::npos);
    }

    // A NaN on one process: every process sees the non-finite summed loss and stops alike.
    MatrixF with_nan = mine;
    if (failing) with_nan(0, 0) = std::nanf("");
    const MatrixCells<float> nan_cells(with_nan, with_nan);
    try {
        train<float>(net, nan_cells, nullptr, o, group);
        FAIL("a NaN on one process must end training on all of them");
    } catch (const NumericError& e) {
        CHECK(std::string(e.what()).find("training diverged at epoch 1") != std::string::npos);
    }
}

} // namespace exsal_test

#endif // EXSAL_TESTS_DATA_PARALLEL_CHECKS_HPP
