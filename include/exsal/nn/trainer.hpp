#ifndef EXSAL_NN_TRAINER_HPP
#define EXSAL_NN_TRAINER_HPP

// Mini-batch training with a seeded permutation per epoch, validation every k epochs, early
// stopping that restores the best parameters, callbacks for progress, and a per-epoch history.
// In one process, or data-parallel over the processes of a ProcessGroup (e.g. MPI ranks).

#include "exsal/core/denormals.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/process_group.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/autoencoder.hpp"
#include "exsal/nn/kernels.hpp"
#include "exsal/nn/optimizers.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace exsal {

struct BatchInfo {
    int epoch = 0;           // 0-based
    Index batch = 0;         // 0-based within the epoch
    Index batches = 0;       // batches per epoch
    LossParts loss;          // of this batch
    Index cells = 0;         // cells in this batch
};

struct EpochInfo {
    int epoch = 0;                   // 0-based
    int max_epochs = 0;
    double train_loss = 0.0;         // mean total loss over the epoch's batches, weighted by cells
    double validation_loss = std::numeric_limits<double>::quiet_NaN(); // total, NaN when not evaluated
    double orthogonality_error = 0.0; // ||I - W W^T||_F at the end of the epoch
    double seconds = 0.0;             // since training started
};

struct TrainOptions {
    int max_epochs = 500;
    Index batch_size = 128;
    int validate_every = 10;  // epochs between validation checks
    int patience = 5;         // checks without improvement before stopping (0 = never stop early)
    // false: the validation loss is only recorded; training runs max_epochs and keeps the last
    // parameters (for validation sets too small to choose an epoch by).
    bool early_stopping = true;
    double min_improvement = 0.0; // improvement relative to |best loss| that counts (Poisson losses can be negative)
    std::uint64_t seed = 1;
    LossOptions loss;
    OptimizerKind optimizer = OptimizerKind::adam;
    AdamOptions adam;                                 // with optimizer adam
    SgdOptions sgd;                                   // with optimizer sgd
    std::function<void(const BatchInfo&)> on_batch;   // optional, after every batch
    std::function<void(const EpochInfo&)> on_epoch;   // optional, after every epoch

    void validate(const std::string& where = "exsal::train") const {
        if (max_epochs < 1) throw ArgumentError(where, "max_epochs must be >= 1, got " + std::to_string(max_epochs));
        if (batch_size < 1) throw ArgumentError(where, "batch_size must be >= 1, got " + std::to_string(batch_size));
        if (validate_every < 1) throw ArgumentError(where, "validate_every must be >= 1");
        if (patience < 0) throw ArgumentError(where, "patience must be >= 0");
        if (!(learning_rate() > 0) || !std::isfinite(learning_rate()))
            throw ArgumentError(where, "learning rate must be a positive finite number");
        if (!(loss.lambda >= 0) || !std::isfinite(loss.lambda))
            throw ArgumentError(where, "lambda (orthogonality weight) must be >= 0 and finite");
    }
    // The chosen optimiser's learning rate.
    double learning_rate() const noexcept { return optimizer == OptimizerKind::adam ? adam.lr : sgd.lr; }
};

struct TrainHistory {
    std::vector<double> train_loss;          // per epoch
    std::vector<double> validation_loss;     // per epoch, NaN where not evaluated
    std::vector<double> orthogonality_error; // per epoch
    int epochs_run = 0;
    std::int64_t batches = 0;                // training batches over all epochs
    std::int64_t sparse_batches = 0;         // of those, with a sparse first layer (TrainingCells::gather_batch)
    int best_epoch = -1;                     // epoch whose parameters the model holds (-1: last)
    double best_validation_loss = std::numeric_limits<double>::quiet_NaN();
    bool stopped_early = false;
    double seconds = 0.0;
};

// Cells to train on, gathered batch by batch: the network input and the loss target of any
// cells. MatrixCells holds both as matrices; GatheredCells (data/cell_batches.hpp) makes them from
// the data's dense or sparse cells on the fly, so neither is ever held whole.
template <typename Scalar>
class TrainingCells {
public:
    virtual ~TrainingCells() = default;
    virtual Index genes() const = 0;
    virtual Index cells() const = 0;
    // input.leftCols(n) and target.leftCols(n) := the cells cells[0..n) (indices below cells()),
    // both genes() x (>= n). With target_is_input(), `target` is left alone: the loss compares
    // with the input.
    virtual void gather(const std::int64_t* cells, Index n, Matrix<Scalar>& input, Matrix<Scalar>& target) const = 0;
    virtual bool target_is_input() const { return false; }
    // A training batch: the target as gather() makes it and the input either dense in `input`
    // (returns false) or as S + offset in `sparse` (returns true; the first layer then multiplies
    // only the stored entries). The choice must depend on the cells' values only, never on timing
    // or storage, so that runs repeat bit for bit. By default always dense.
    virtual bool gather_batch(const std::int64_t* cells, Index n, Matrix<Scalar>& input, SparseBatch<Scalar>& sparse,
                              Matrix<Scalar>& target) const {
        (void)sparse;
        gather(cells, n, input, target);
        return false;
    }
};

namespace detail {
// The optimiser chosen by TrainOptions, run as one instance per fixed chunk of the parameter
// vector. Adam and SGD are elementwise and every instance takes exactly one step per update (the
// same step counter and bias corrections everywhere), so this equals one optimiser over the whole
// vector bit for bit, for any thread count. The chunks run in parallel, and each chunk's moments,
// parameters and gradient (4 x 64 KiB in float) stay in cache across the optimiser's passes.
// step() also checks that the gradient is finite, chunk by chunk just before the chunk's update
// (the chunk's gradient is read into cache once for both): a chunk whose gradient holds a NaN or an
// infinity is left as it was, and step() returns false. The other chunks are still updated, so
// after a false the parameters are partly stepped and the chunks' step counters disagree: the
// trainer stops with an error, and the optimiser is not to be stepped again.
template <typename Scalar>
class AnyOptimizer {
public:
    static constexpr Index chunk = Index(1) << 14; // parameters per instance

    AnyOptimizer(Index n, const TrainOptions& o) : m_n(n) {
        const Index count = std::max<Index>(1, (n + chunk - 1) / chunk);
        m_opt.reserve(static_cast<std::size_t>(count));
        for (Index i = 0; i < count; ++i) {
            const Index len = std::min(chunk, n - i * chunk);
            if (o.optimizer == OptimizerKind::adam)
                m_opt.emplace_back(std::in_place_index<0>, len, o.adam);
            else
                m_opt.emplace_back(std::in_place_index<1>, len, o.sgd);
        }
    }
    // Returns whether every entry of g was finite (see above).
    [[nodiscard]] bool step(Vector<Scalar>& p, const Vector<Scalar>& g) {
        const auto count = static_cast<Index>(m_opt.size());
        // 1 when chunk i's gradient is finite and the chunk was stepped.
        auto run = [&](Index i) -> int {
            const Index off = i * chunk, len = std::min(chunk, m_n - off);
            const auto gi = g.segment(off, len);
            if (!all_finite(gi)) return 0;
            std::visit([&](auto& opt) { opt.step(p.segment(off, len), gi); }, m_opt[static_cast<std::size_t>(i)]);
            return 1;
        };
        Index stepped = 0;
        if (count > 1) {
#pragma omp parallel reduction(+ : stepped)
            {
                const FlushDenormals flush;
#pragma omp for schedule(static)
                for (Index i = 0; i < count; ++i) stepped += run(i);
            }
        } else {
            for (Index i = 0; i < count; ++i) stepped += run(i);
        }
        return stepped == count;
    }

private:
    Index m_n;
    std::vector<std::variant<Adam<Scalar>, Sgd<Scalar>>> m_opt; // chunk i: parameters [i chunk, (i+1) chunk)
};

// Copies the columns `cols` of `src` into the first cols.size() columns of `dst`.
template <typename Scalar>
void gather_columns(const ConstMatrixRef<Scalar>& src, const std::int64_t* cols, Index n, Matrix<Scalar>& dst) {
    if (kernels::parallel_worthwhile(src.rows() * n)) {
#pragma omp parallel for schedule(static)
        for (Index j = 0; j < n; ++j) dst.col(j) = src.col(cols[j]);
    } else {
        for (Index j = 0; j < n; ++j) dst.col(j) = src.col(cols[j]);
    }
}

} // namespace detail

// Training cells held as two genes x cells matrices (input, target), or one when they are the same.
template <typename Scalar>
class MatrixCells final : public TrainingCells<Scalar> {
public:
    MatrixCells(const ConstMatrixRef<Scalar>& input, const ConstMatrixRef<Scalar>& target)
        : m_input(input), m_target(target),
          m_same(input.data() == target.data() && input.outerStride() == target.outerStride() &&
                 input.rows() == target.rows() && input.cols() == target.cols()) {
        if (input.rows() != target.rows() || input.cols() != target.cols())
            throw ArgumentError("exsal::MatrixCells", "input is " + std::to_string(input.rows()) + " x " +
                                                          std::to_string(input.cols()) + ", target " +
                                                          std::to_string(target.rows()) + " x " +
                                                          std::to_string(target.cols()));
    }
    Index genes() const override { return m_input.rows(); }
    Index cells() const override { return m_input.cols(); }
    bool target_is_input() const override { return m_same; }
    void gather(const std::int64_t* cells, Index n, Matrix<Scalar>& input, Matrix<Scalar>& target) const override {
        detail::gather_columns<Scalar>(m_input, cells, n, input);
        if (!m_same) detail::gather_columns<Scalar>(m_target, cells, n, target);
    }

private:
    ConstMatrixRef<Scalar> m_input, m_target;
    bool m_same;
};

namespace detail {
// The loss of `model` on training cells in batches of consecutive cells (no gradient), with the
// reconstruction part summed over the cells (its mean times the cells) rather than averaged.
template <typename Scalar>
LossParts loss_sums(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& cells, const LossOptions& o,
                    Index batch_size) {
    const Index C = cells.cells();
    const Index batch = std::min<Index>(batch_size, std::max<Index>(C, 1));
    model.reserve(batch);
    Matrix<Scalar> x(cells.genes(), batch), t(cells.target_is_input() ? 0 : cells.genes(), batch);
    std::vector<std::int64_t> order(static_cast<std::size_t>(batch));
    LossParts sum;
    for (Index c0 = 0; c0 < C; c0 += batch) {
        const Index n = std::min(batch, C - c0);
        std::iota(order.begin(), order.begin() + n, static_cast<std::int64_t>(c0));
        cells.gather(order.data(), n, x, t);
        model.forward(x.leftCols(n));
        const LossParts p = model.loss(cells.target_is_input() ? x.leftCols(n) : t.leftCols(n), o);
        sum.reconstruction += p.reconstruction * static_cast<double>(n);
        sum.orthogonality = p.orthogonality;
    }
    return sum;
}
} // namespace detail

// Evaluates the loss of `model` on training cells in batches of consecutive cells (no gradient).
template <typename Scalar>
LossParts evaluate_loss(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& cells, const LossOptions& o,
                        Index batch_size) {
    LossParts sum = detail::loss_sums(model, cells, o, batch_size);
    if (cells.cells() > 0) sum.reconstruction /= static_cast<double>(cells.cells());
    return sum;
}

// Evaluates the loss of `model` on cells in batches (no gradient). Uses the model's buffers.
template <typename Scalar>
LossParts evaluate_loss(Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& input,
                        const ConstMatrixRef<Scalar>& target, const LossOptions& o, Index batch_size) {
    model.reserve(std::min<Index>(batch_size, std::max<Index>(input.cols(), 1)));
    LossParts sum;
    for (Index c0 = 0; c0 < input.cols(); c0 += batch_size) {
        const Index n = std::min(batch_size, input.cols() - c0);
        model.forward(input.middleCols(c0, n));
        const LossParts p = model.loss(target.middleCols(c0, n), o);
        sum.reconstruction += p.reconstruction * static_cast<double>(n);
        sum.orthogonality = p.orthogonality;
    }
    if (input.cols() > 0) sum.reconstruction /= static_cast<double>(input.cols());
    return sum;
}

namespace detail {

// need_cells: false for one process of a data-parallel run, which may hold none of the cells.
template <typename Scalar>
void check_training_data(const char* where, Index n_genes, const TrainingCells<Scalar>& train,
                         const TrainingCells<Scalar>* validation, bool need_cells = true) {
    if (train.genes() != n_genes)
        throw ArgumentError(where, "training data has " + std::to_string(train.genes()) + " genes, the model " +
                                       std::to_string(n_genes));
    if (need_cells && train.cells() < 1) throw ArgumentError(where, "no training cells");
    if (validation && validation->cells() > 0 && validation->genes() != n_genes)
        throw ArgumentError(where, "validation input and target do not match the model");
}

// Where one process's training cells sit among the cells of all processes of a data-parallel
// run: the processes hold consecutive ranges of the global cells, in rank order.
struct CellShare {
    std::int64_t first = 0; // global index of this process's first cell
    std::int64_t count = 0; // cells this process holds
    std::int64_t total = 0; // cells of all processes
};

// Throws, on every process alike, when any process failed (failures = how many, already summed):
// see rethrow_if_any_failed.
inline void throw_if_any_failed(std::int64_t failures, const std::exception_ptr& error, ProcessGroup& group,
                                const std::string& what) {
    if (failures != 0) rethrow_if_any_failed(group, error, "exsal::train: " + what, failures);
}

// One epoch after another of mini-batch steps: the cells in a new random order each epoch,
// gathered batch by batch into buffers sized once, an optimiser step per batch.
//
// Data-parallel (with a ProcessGroup): every process draws the same permutation of all processes'
// cells (same seed, same total), so batch b is the same global batch as in one process; each
// process computes the reconstruction loss and gradient of its own cells of that batch (none is
// fine), weighted by its share of the batch, and one sum across the processes per step combines
// gradient, loss and failures. Every process then adds the orthogonality penalty once (it depends
// on the weights only, which are the same everywhere) and takes the same optimiser step.
template <typename Scalar>
class EpochRunner {
public:
    EpochRunner(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& cells, Index batch, const TrainOptions& o,
                ProcessGroup* group = nullptr, CellShare share = {})
        : m_model(model), m_cells(cells), m_o(o), m_group(group),
          m_share(group ? share : CellShare{0, cells.cells(), cells.cells()}), m_batch(batch),
          m_batches((m_share.total + batch - 1) / batch), m_optimizer(model.parameters().size(), o),
          m_order(static_cast<std::size_t>(m_share.total)), m_rng(o.seed) {
        model.reserve(batch);
        m_x.resize(model.n_genes(), batch);
        if (!cells.target_is_input()) m_t.resize(model.n_genes(), batch);
        for (std::int64_t i = 0; i < m_share.total; ++i) m_order[static_cast<std::size_t>(i)] = i;
        if (m_group) {
            m_local.resize(static_cast<std::size_t>(batch));
            m_sum.resize(model.parameters().size() + 2);
        }
    }

    // Runs epoch `epoch` (0-based); returns its mean loss per cell. Throws NumericError when a
    // batch's loss or gradient is not finite.
    double run(int epoch) {
        m_rng.shuffle(m_order);
        const Index n_cells = m_share.total;
        double epoch_loss = 0.0;
        for (Index b = 0; b < m_batches; ++b) {
            const Index c0 = b * m_batch, n = std::min(m_batch, n_cells - c0);
            const LossParts parts =
                m_group ? combined_loss_and_gradient(c0, n, epoch, b) : loss_and_gradient(m_order.data() + c0, n, m_o.loss);
            if (!std::isfinite(parts.total())) throw_divergence(parts, epoch, b);
            // The gradient's finiteness is checked inside the step, while each chunk is in cache.
            if (!m_optimizer.step(m_model.parameters(), m_model.gradient())) throw_divergence(parts, epoch, b);
            if (epoch == 0 && b == 0) m_first_loss = parts.total();
            epoch_loss += parts.total() * static_cast<double>(n);
            if (m_o.on_batch) m_o.on_batch(BatchInfo{epoch, b, m_batches, parts, n});
        }
        return epoch_loss / static_cast<double>(n_cells);
    }

    double first_loss() const noexcept { return m_first_loss; }
    std::int64_t sparse_batches() const noexcept { return m_sparse_batches; }
    Index batches_per_epoch() const noexcept { return m_batches; }

private:
    // Loss and gradient of the n cells cells[0..n) (this process's indices).
    LossParts loss_and_gradient(const std::int64_t* cells, Index n, const LossOptions& loss) {
        if (m_cells.gather_batch(cells, n, m_x, m_sparse, m_t)) {
            ++m_sparse_batches;
            return m_model.loss_and_gradient(m_sparse, m_t.leftCols(n), loss);
        }
        const auto xb = m_x.leftCols(n);
        return m_cells.target_is_input() ? m_model.loss_and_gradient(xb, xb, loss)
                                         : m_model.loss_and_gradient(xb, m_t.leftCols(n), loss);
    }

    // Loss and gradient of the global batch at positions [c0, c0 + n) of the shared order, summed
    // across the processes (data-parallel runs).
    LossParts combined_loss_and_gradient(Index c0, Index n, int epoch, Index b) {
        Index local = 0; // this process's cells of the batch, in the batch's order
        for (Index i = c0; i < c0 + n; ++i) {
            const std::int64_t c = m_order[static_cast<std::size_t>(i)] - m_share.first;
            if (c >= 0 && c < m_share.count) m_local[static_cast<std::size_t>(local++)] = c;
        }
        LossOptions reconstruction_only = m_o.loss;
        reconstruction_only.lambda = 0.0; // the penalty is added once, after the sum
        double reconstruction = 0.0;
        std::exception_ptr error;
        try {
            if (local > 0) reconstruction = loss_and_gradient(m_local.data(), local, reconstruction_only).reconstruction;
        } catch (...) {
            error = std::current_exception();
        }
        // The batch's loss is a mean over its n cells: this process's mean counts local / n.
        auto& g = m_model.gradient();
        const Index p = g.size();
        const double weight = static_cast<double>(local) / static_cast<double>(n);
        if (local == 0 || error)
            m_sum.head(p).setZero();
        else
            m_sum.head(p) = g * static_cast<Scalar>(weight);
        m_sum(p) = error ? Scalar(0) : static_cast<Scalar>(reconstruction * weight);
        m_sum(p + 1) = error ? Scalar(1) : Scalar(0);
        m_group->sum(m_sum.data(), m_sum.size());
        if (m_sum(p + 1) != Scalar(0)) // (the message is made only then: no allocation in a step)
            throw_if_any_failed(static_cast<std::int64_t>(m_sum(p + 1)), error, *m_group,
                                "training stopped at epoch " + std::to_string(epoch + 1) + ", batch " +
                                    std::to_string(b + 1));
        g = m_sum.head(p);
        LossParts parts;
        parts.reconstruction = static_cast<double>(m_sum(p));
        parts.orthogonality = m_model.add_orthogonality_gradient(m_o.loss);
        return parts;
    }

    [[noreturn]] void throw_divergence(const LossParts& parts, int epoch, Index b) const {
        std::ostringstream msg;
        msg << "training diverged at epoch " << epoch + 1 << ", batch " << b + 1 << " of " << m_batches
            << ": the loss is " << parts.total() << " (reconstruction " << parts.reconstruction << ", orthogonality "
            << parts.orthogonality << "); try a lower learning rate than " << m_o.learning_rate();
        throw NumericError(msg.str());
    }

    Autoencoder<Scalar>& m_model;
    const TrainingCells<Scalar>& m_cells;   // network input and loss target, gathered per batch
    const TrainOptions& m_o;
    ProcessGroup* m_group;                  // null: one process
    CellShare m_share;                      // this process's cells among all (one process: all of them)
    Index m_batch;                          // cells per batch (the last one may have fewer)
    Index m_batches;                        // batches per epoch
    AnyOptimizer<Scalar> m_optimizer;
    std::vector<std::int64_t> m_order;      // all processes' cells in this epoch's order
    Rng m_rng;                              // draws the order
    Matrix<Scalar> m_x, m_t;                // genes x batch, the gathered input and target
    SparseBatch<Scalar> m_sparse;           // the input when the cells give it sparse
    std::vector<std::int64_t> m_local;      // data-parallel: this process's cells of the batch
    Vector<Scalar> m_sum;                   // data-parallel: gradient, loss and failures, summed across processes
    std::int64_t m_sparse_batches = 0;      // batches that went through the sparse first layer
    double m_first_loss = 0.0;              // loss of the first batch, before any step
};

// A loss far above where training started is a divergence even while it stays finite (with too
// high a rate the weights can run off to ~1e14 and stay there).
inline void check_loss_not_runaway(double train_loss, double first_loss, int epoch, const TrainOptions& o) {
    if (!(train_loss > first_loss + 100.0 * std::max(1.0, std::abs(first_loss)))) return;
    std::ostringstream msg;
    msg << "training diverged at epoch " << epoch + 1 << ": the training loss rose from " << first_loss
        << " (first batch) to " << train_loss << "; try a lower learning rate than " << o.learning_rate();
    throw NumericError(msg.str());
}

// The parameters of the best validation loss so far, and when to stop for lack of improvement.
template <typename Scalar>
struct BestParameters {
    Vector<Scalar> parameters;
    double loss = std::numeric_limits<double>::infinity();
    int epoch = -1;                     // -1: no validation loss recorded yet
    int checks_without_improvement = 0;

    // Records the validation loss of `epoch`; true when training should stop early.
    bool record(double validation_loss, int at_epoch, const Vector<Scalar>& current, const TrainOptions& o) {
        if (validation_loss < loss - o.min_improvement * std::abs(loss) || epoch < 0) {
            loss = validation_loss;
            parameters = current;
            epoch = at_epoch;
            checks_without_improvement = 0;
            return false;
        }
        return o.early_stopping && o.patience > 0 && ++checks_without_improvement >= o.patience;
    }
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The training and validation cells of every process of a data-parallel run, agreed in one sum;
// throws on every process when any of them failed its own checks (`error`) or the processes'
// models differ in size.
struct CellShares {
    CellShare train, validation;
};
inline CellShares agree_on_shares(ProcessGroup& group, Index train_cells, Index validation_cells, Index parameters,
                                  const std::exception_ptr& error) {
    const auto p = static_cast<std::size_t>(group.size()), r = static_cast<std::size_t>(group.rank());
    // Per process: training cells, validation cells, parameters; then the failures.
    std::vector<std::int64_t> counts(3 * p + 1, 0);
    counts[r] = train_cells;
    counts[p + r] = validation_cells;
    counts[2 * p + r] = parameters;
    counts[3 * p] = error ? 1 : 0;
    group.sum(counts.data(), static_cast<Index>(counts.size()));
    throw_if_any_failed(counts[3 * p], error, group, "checking each process's cells");
    for (std::size_t i = 1; i < p; ++i)
        if (counts[2 * p + i] != counts[2 * p])
            throw ArgumentError("exsal::train", "the processes' models differ: process 0 has " +
                                                    std::to_string(counts[2 * p]) + " parameters, process " +
                                                    std::to_string(i) + " " + std::to_string(counts[2 * p + i]));
    CellShares s;
    for (std::size_t i = 0; i < p; ++i) {
        if (i < r) {
            s.train.first += counts[i];
            s.validation.first += counts[p + i];
        }
        s.train.total += counts[i];
        s.validation.total += counts[p + i];
    }
    s.train.count = counts[r];
    s.validation.count = counts[p + r];
    return s;
}

// The validation loss over every process's validation cells (cells may be null on some).
template <typename Scalar>
double combined_validation_loss(Autoencoder<Scalar>& model, const TrainingCells<Scalar>* cells, const LossOptions& o,
                                Index batch, ProcessGroup& group, int epoch) {
    double sums[3] = {0.0, 0.0, 0.0}; // reconstruction loss summed over cells, cells, failures
    std::exception_ptr error;
    try {
        if (cells && cells->cells() > 0) {
            sums[0] = loss_sums(model, *cells, o, batch).reconstruction;
            sums[1] = static_cast<double>(cells->cells());
        }
    } catch (...) {
        error = std::current_exception();
        sums[0] = sums[1] = 0.0;
    }
    sums[2] = error ? 1.0 : 0.0;
    group.sum(sums, 3);
    throw_if_any_failed(static_cast<std::int64_t>(sums[2]), error, group,
                        "validation after epoch " + std::to_string(epoch + 1) + " stopped");
    return sums[0] / sums[1] + model.orthogonality_penalty(o);
}

// train() in one process (group null) or data-parallel.
template <typename Scalar>
TrainHistory train_on(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& train_cells,
                      const TrainingCells<Scalar>* validation_cells, const TrainOptions& o, ProcessGroup* group) {
    const FlushDenormals flush; // this thread; the parallel regions set their own (core/denormals.hpp)
    const char* where = "exsal::train";
    CellShare share{0, train_cells.cells(), train_cells.cells()};
    std::int64_t validation_total = validation_cells ? validation_cells->cells() : 0;
    if (!group) {
        o.validate(where);
        check_training_data<Scalar>(where, model.n_genes(), train_cells, validation_cells);
    } else {
        // A process whose own checks fail must still meet the others in the first sum, or they
        // would wait for it forever.
        std::exception_ptr error;
        try {
            o.validate(where);
            check_training_data<Scalar>(where, model.n_genes(), train_cells, validation_cells, false);
        } catch (...) {
            error = std::current_exception();
        }
        const CellShares shares = agree_on_shares(*group, train_cells.cells(),
                                                  validation_cells ? validation_cells->cells() : 0,
                                                  model.parameters().size(), error);
        share = shares.train;
        validation_total = shares.validation.total;
        if (share.total < 1)
            throw ArgumentError(where, "no training cells on any of the " + std::to_string(group->size()) + " processes");
        group->broadcast(model.parameters().data(), model.parameters().size(), 0); // process 0's initial weights
    }
    const Index batch = static_cast<Index>(std::min<std::int64_t>(o.batch_size, share.total));
    const bool validating = validation_total > 0;
    EpochRunner<Scalar> epochs(model, train_cells, batch, o, group, share);
    BestParameters<Scalar> best{model.parameters()};
    TrainHistory h;
    const auto t0 = std::chrono::steady_clock::now();

    for (int epoch = 0; epoch < o.max_epochs; ++epoch) {
        EpochInfo info;
        info.epoch = epoch;
        info.max_epochs = o.max_epochs;
        info.train_loss = epochs.run(epoch);
        check_loss_not_runaway(info.train_loss, epochs.first_loss(), epoch, o);
        info.orthogonality_error = orthogonality_error<Scalar>(model.representation_weights());
        bool stop = false;
        if (validating && ((epoch + 1) % o.validate_every == 0 || epoch + 1 == o.max_epochs)) {
            info.validation_loss = group ? combined_validation_loss(model, validation_cells, o.loss, batch, *group, epoch)
                                         : evaluate_loss(model, *validation_cells, o.loss, batch).total();
            if (!std::isfinite(info.validation_loss))
                throw NumericError("training diverged at epoch " + std::to_string(epoch + 1) +
                                   ": the validation loss is not finite; try a lower learning rate");
            stop = best.record(info.validation_loss, epoch, model.parameters(), o);
        }
        info.seconds = seconds_since(t0);
        h.train_loss.push_back(info.train_loss);
        h.validation_loss.push_back(info.validation_loss);
        h.orthogonality_error.push_back(info.orthogonality_error);
        h.epochs_run = epoch + 1;
        h.batches += epochs.batches_per_epoch();
        h.sparse_batches = epochs.sparse_batches();
        if (o.on_epoch) o.on_epoch(info);
        if (stop) {
            h.stopped_early = true;
            break;
        }
    }
    if (best.epoch >= 0) {
        h.best_validation_loss = best.loss;
        if (o.early_stopping) {
            model.set_parameters(best.parameters);
            h.best_epoch = best.epoch;
        } // else the model holds the last epoch's parameters: best_epoch stays -1
    }
    h.seconds = seconds_since(t0);
    return h;
}

} // namespace detail

// Trains `model` (initialised by the caller) on the training cells; validation cells may be null
// or empty (no early stopping then). Each cell gives the network input (transformed) and what the
// loss compares with (untransformed counts). Throws NumericError when the loss stops being
// finite, naming the epoch and batch.
template <typename Scalar>
TrainHistory train(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& train_cells,
                   const TrainingCells<Scalar>* validation_cells, const TrainOptions& o) {
    return detail::train_on<Scalar>(model, train_cells, validation_cells, o, nullptr);
}

// The same, data-parallel over the processes of `group` (e.g. exsal::mpi::Communicator), each
// holding its share of the training and validation cells: consecutive ranges of all cells in rank
// order (process 0 the first ones; a process may hold none). Every process calls it with the same
// options. Training starts from process 0's parameters (sent to all), batch b of every epoch is
// the same global batch as in one process over all cells, and every process ends with the same
// parameters and history. The one-process result is reached up to float rounding: each batch's
// gradient is summed in a different order. With the same seed, process count and thread count,
// runs repeat bit for bit. An error on one process (bad cells, a non-finite loss) ends the call on
// every process: the failing one throws its own error, the others an Error that says so.
// sparse_batches in the history counts this process's batches.
template <typename Scalar>
TrainHistory train(Autoencoder<Scalar>& model, const TrainingCells<Scalar>& train_cells,
                   const TrainingCells<Scalar>* validation_cells, const TrainOptions& o, ProcessGroup& group) {
    return detail::train_on<Scalar>(model, train_cells, validation_cells, o, &group);
}

// The same on matrices: input (network input) and target, both genes x cells, for the training
// and the validation cells (which may have no columns).
template <typename Scalar>
TrainHistory train(Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& train_input,
                   const ConstMatrixRef<Scalar>& train_target, const ConstMatrixRef<Scalar>& validation_input,
                   const ConstMatrixRef<Scalar>& validation_target, const TrainOptions& o) {
    const char* where = "exsal::train";
    if (train_input.cols() != train_target.cols() || train_input.rows() != train_target.rows())
        throw ArgumentError(where, "input and target have different cell counts");
    if (validation_input.cols() != validation_target.cols() ||
        (validation_input.cols() > 0 && validation_input.rows() != validation_target.rows()))
        throw ArgumentError(where, "validation input and target do not match the model");
    const MatrixCells<Scalar> train_cells(train_input, train_target);
    if (validation_input.cols() == 0) return train<Scalar>(model, train_cells, nullptr, o);
    const MatrixCells<Scalar> validation_cells(validation_input, validation_target);
    return train<Scalar>(model, train_cells, &validation_cells, o);
}

// Convenience: no validation cells.
template <typename Scalar>
TrainHistory train(Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& input, const ConstMatrixRef<Scalar>& target,
                   const TrainOptions& o) {
    const Matrix<Scalar> none(model.n_genes(), 0);
    return train<Scalar>(model, input, target, none, none, o);
}

} // namespace exsal

#endif // EXSAL_NN_TRAINER_HPP
