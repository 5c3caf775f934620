// The first layer on sparse batches against dense ones: one full training step (forward, loss,
// backward, orthogonality penalty) of the default model (G -> 128 -> 64 -> 128 -> G), batch 128,
// on batches of the same cells given dense (X) or as S + offset (sparse_batch.hpp), for a range
// of densities (share of non-zero counts). The pipeline chooses the sparse step when a batch's
// density is at most GatheredCells::default_sparse_density; this bench is where that figure comes
// from. One JSON line per (genes, density): median milliseconds per step of each, and their ratio.
//
//   build/benchmarks/bench_sparse_layer [--genes 2000,4000,20000] [--batch 128] [--steps 30] [--threads 2]

#include "bench_common.hpp"

#include "exsal/core/threads.hpp"
#include "exsal/nn/nn.hpp"

#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace exsal;

int main(int argc, char** argv) {
    try {
        const exsal_bench::Args args(argc, argv, {"genes", "batch", "steps", "threads"});
        std::vector<Index> gene_counts;
        {
            std::stringstream list(args.text("genes", "2000,4000,20000"));
            for (std::string g; std::getline(list, g, ',');) gene_counts.push_back(std::stoll(g));
        }
        const Index B = args.integer("batch", 128);
        const int steps = static_cast<int>(args.integer("steps", 30));
        set_threads(static_cast<int>(args.integer("threads", 2)));
        const LossOptions lo{LossKind::poisson, 1.0, OrthogonalityForm::frobenius};
        for (const Index G : gene_counts)
            for (double density : {0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.60}) {
                std::mt19937_64 gen(7);
                std::uniform_real_distribution<double> u(0.0, 1.0);
                SparseBatch<float> s;
                s.clear(G);
                s.offset = VectorF::Constant(G, -0.05f); // minmax of a zero minus the centre
                MatrixF target = MatrixF::Zero(G, B);
                for (Index j = 0; j < B; ++j) {
                    for (Index g = 0; g < G; ++g)
                        if (u(gen) < density) {
                            const float count = 1.0f + static_cast<float>(gen() % 5);
                            target(g, j) = count;
                            s.row.push_back(static_cast<std::int32_t>(g));
                            s.value.push_back(count / 5.0f);
                        }
                    s.start.push_back(static_cast<std::int64_t>(s.row.size()));
                }
                const MatrixF x = s.dense();
                AutoencoderConfig cfg;
                cfg.n_genes = G;
                Autoencoder<float> net(cfg);
                net.initialize(3);
                net.reserve(B);
                std::vector<double> dense_ms, sparse_ms;
                for (int k = 0; k < steps + 3; ++k) { // 3 warm-up steps of each
                    double t0 = exsal_bench::now_s();
                    net.loss_and_gradient(x, target, lo);
                    const double d = exsal_bench::now_s() - t0;
                    t0 = exsal_bench::now_s();
                    net.loss_and_gradient(s, target, lo);
                    const double sp = exsal_bench::now_s() - t0;
                    if (k >= 3) {
                        dense_ms.push_back(1e3 * d);
                        sparse_ms.push_back(1e3 * sp);
                    }
                }
                const double dm = exsal_bench::median(dense_ms), sm = exsal_bench::median(sparse_ms);
                std::printf("{\"genes\": %lld, \"batch\": %lld, \"density\": %.2f, \"threads\": %d, \"dense_step_ms\": %.3f, "
                            "\"sparse_step_ms\": %.3f, \"dense_over_sparse\": %.2f}\n",
                            static_cast<long long>(G), static_cast<long long>(B), density, threads(), dm, sm, dm / sm);
                std::fflush(stdout);
            }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_sparse_layer: %s\n", e.what());
        return 1;
    }
}
