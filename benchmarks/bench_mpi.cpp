// Strong scaling of data-parallel training over MPI ranks: the same cells, model and global
// batches on 1 or more ranks (each with --threads OpenMP threads), and per step the time spent in
// the one MPI_Allreduce of gradient and loss against the rest of the step. Prints one JSON line
// (rank 0). Built with -DEXSAL_MPI=ON; benchmarks/README.md ("Several machines") has the runs.
//
//   mpirun -np R [--oversubscribe --bind-to none] bench_mpi --cells 20000 --genes 2000 --batch 128
//          --epochs 2 --threads 1 --seed 1 [--reps 50]
//
// The cells are synthetic counts (3 programmes, Poisson), made per global cell index, so every
// rank count trains on the same data; each rank makes only its share (even_share). With 1 rank
// the plain one-process train() runs (no group). Keys:
//   step_ms          wall time per training step (all epochs' steps; the slowest rank)
//   allreduce_ms     per step, time inside the step's sum across ranks (waiting for slower ranks
//                    included), averaged over ranks
//   compute_ms       step_ms - allreduce_ms
//   bare_allreduce_ms  median of --reps MPI_Allreduce calls of the same size after training, right
//                    after a barrier: the pure communication cost
//   bytes_per_step   (parameters + 2) x 4 bytes summed by each step's allreduce

#include "bench_common.hpp"

#include "exsal/core/threads.hpp"
#include "exsal/mpi/mpi.hpp"
#include "exsal/nn/nn.hpp"

#include <cstdio>
#include <memory>

namespace {

using exsal::Index;
using exsal::MatrixF;
using exsal_bench::median;
using exsal_bench::now_s;

// The ProcessGroup of a Communicator, timing its sums.
class TimedGroup final : public exsal::ProcessGroup {
public:
    explicit TimedGroup(exsal::mpi::Communicator& comm) : m_comm(comm) {}
    int rank() const override { return m_comm.rank(); }
    int size() const override { return m_comm.size(); }
    void sum(float* data, Index n) override { timed([&] { m_comm.sum(data, n); }); }
    void sum(double* data, Index n) override { timed([&] { m_comm.sum(data, n); }); }
    void sum(std::int64_t* data, Index n) override { timed([&] { m_comm.sum(data, n); }); }
    void broadcast(float* data, Index n, int root) override { m_comm.broadcast(data, n, root); }
    void broadcast(double* data, Index n, int root) override { m_comm.broadcast(data, n, root); }
    double seconds = 0.0;
    long calls = 0;

private:
    template <class F>
    void timed(F&& f) {
        const double t0 = now_s();
        f();
        seconds += now_s() - t0;
        ++calls;
    }
    exsal::mpi::Communicator& m_comm;
};

// Cells [first, first + count) of a synthetic data set: counts ~ Poisson(sum of 3 programmes),
// each cell from its own seed so that any split gives the same cells.
MatrixF synthetic_cells(Index genes, exsal::CellRange range, std::uint64_t seed) {
    exsal::Rng programme_rng(seed);
    MatrixF programmes(genes, 3);
    for (Index k = 0; k < 3; ++k)
        for (Index g = 0; g < genes; ++g) programmes(g, k) = static_cast<float>(programme_rng.gamma(0.3, 2.0));
    MatrixF x(genes, range.count);
    for (Index j = 0; j < range.count; ++j) {
        exsal::Rng rng(exsal::derive_seed(seed, static_cast<std::uint64_t>(range.first + j)));
        const float a = static_cast<float>(rng.gamma(1.0, 1.0)), b = static_cast<float>(rng.gamma(1.0, 1.0)),
                    c = static_cast<float>(rng.gamma(1.0, 1.0));
        for (Index g = 0; g < genes; ++g) {
            const double rate = a * programmes(g, 0) + b * programmes(g, 1) + c * programmes(g, 2);
            x(g, j) = static_cast<float>(rng.poisson(rate));
        }
    }
    return x;
}

int run(exsal::mpi::Communicator& comm, int argc, char** argv) {
    const exsal_bench::Args args(argc, argv, {"cells", "genes", "batch", "epochs", "threads", "seed", "reps"});
    const Index cells = args.integer("cells", 20000), genes = args.integer("genes", 2000);
    const int threads = static_cast<int>(args.integer("threads", 1)), reps = static_cast<int>(args.integer("reps", 50));
    const std::uint64_t seed = static_cast<std::uint64_t>(args.integer("seed", 1));
    exsal::set_threads(threads);

    const exsal::CellRange share = exsal::even_share(cells, comm.rank(), comm.size());
    const MatrixF x = synthetic_cells(genes, share, seed);
    const exsal::MatrixCells<float> train_cells(x, x);
    exsal::AutoencoderConfig cfg;
    cfg.n_genes = genes; // hidden 128-64-128, as the pipeline's default
    exsal::Autoencoder<float> net(cfg);
    net.initialize(seed);
    exsal::TrainOptions o;
    o.max_epochs = static_cast<int>(args.integer("epochs", 2));
    o.batch_size = args.integer("batch", 128);
    o.patience = 0;
    o.seed = seed;

    TimedGroup group(comm);
    comm.barrier();
    const double t0 = now_s();
    const exsal::TrainHistory h = comm.size() == 1 ? exsal::train<float>(net, train_cells, nullptr, o)
                                                   : exsal::train<float>(net, train_cells, nullptr, o, group);
    double seconds = now_s() - t0;
    const double steps = static_cast<double>(h.batches);
    // The slowest rank's time, and the ranks' mean time in the sums.
    double in_sums = group.seconds;
    MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm.get());
    comm.sum(&in_sums, 1);
    in_sums /= comm.size(); // (includes train()'s one sum of the cell counts before the first step)

    // The bare allreduce of one step's buffer, repeated.
    const Index n = net.parameters().size() + 2;
    std::vector<float> buffer(static_cast<std::size_t>(n), 1.0f);
    std::vector<double> bare;
    for (int r = 0; r < reps; ++r) {
        comm.barrier();
        const double b0 = now_s();
        comm.sum(buffer.data(), n);
        bare.push_back(now_s() - b0);
    }
    double bare_ms = median(bare) * 1e3;
    MPI_Allreduce(MPI_IN_PLACE, &bare_ms, 1, MPI_DOUBLE, MPI_MAX, comm.get());

    if (comm.rank() == 0) {
        const double step_ms = seconds / steps * 1e3, allreduce_ms = in_sums / steps * 1e3;
        std::printf("{\"ranks\": %d, \"threads\": %d, \"cells\": %lld, \"genes\": %lld, \"batch\": %lld, "
                    "\"epochs\": %d, \"parameters\": %lld, \"bytes_per_step\": %lld, \"steps\": %.0f, "
                    "\"train_s\": %.3f, \"step_ms\": %.3f, \"allreduce_ms\": %.3f, \"compute_ms\": %.3f, "
                    "\"bare_allreduce_ms\": %.3f, \"cells_per_s\": %.0f, \"final_loss\": %.6g}\n",
                    comm.size(), threads, static_cast<long long>(cells), static_cast<long long>(genes),
                    static_cast<long long>(o.batch_size), h.epochs_run, static_cast<long long>(n - 2),
                    static_cast<long long>(n * 4), steps, seconds, step_ms, allreduce_ms, step_ms - allreduce_ms,
                    bare_ms, static_cast<double>(cells) * h.epochs_run / seconds, h.train_loss.back());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    exsal::mpi::Environment environment(argc, argv);
    exsal::mpi::Communicator comm;
    return exsal::mpi::run_or_abort(comm, [&] { return run(comm, argc, argv); });
}
