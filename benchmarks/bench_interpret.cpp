// Interpretation against its saliency products, on the same shapes in one run (issue 16 part 2:
// interpretation within 1.5x the time of its products).
//
//   bench_interpret [--cells 20000] [--genes 4000] [--units 64] [--hidden 128] [--sets 50]
//                   [--groups 8] [--permutations 1000] [--bins 20] [--block 64] [--threads 0]
//                   [--seed 1] [--steps all|products|interpret] [--layout units|genes] [--keep-denormals]
//
// --layout: the layout of the products alone, units x genes (the one interpret() and
// group_programmes() use, the default) or genes x units (for_each_saliency_block's default).
//
// --keep-denormals: IEEE subnormals instead of exsal's default flush to zero (see
// exsal/core/denormals.hpp): the untrained model's saliency maps produce them, and each costs the
// CPU a microcode assist.
//
// The model is the pipeline's architecture (G -> hidden -> units -> hidden -> G, softplus),
// initialised but untrained: saliency costs the same after training. The input is the synthetic
// counts of bench_common.hpp, log1p-transformed and centred per gene as the pipeline does; the
// gene sets have Hallmark-like sizes (32..200 genes, overlapping), the cells `groups` labels.
// Timed, each once, in this order:
//   products_guided, products_vanilla  the two saliency passes with a visitor that does nothing,
//                                      whole blocks of --block cells at once (for_each_saliency_block)
//   products_*_chunked                 the same passes in the arrangement interpret() (guided:
//                                      8 cells at a time) and group_programmes() (vanilla: 8 cells
//                                      x 256 genes at a time) hand them to their statistics, which
//                                      keeps each piece in cache; the faster of the two
//                                      arrangements of each pass is the bound
//   interpret                          interpret(): guided pass + set impacts + exact
//                                      expression-matched null (the pipeline's defaults)
//   activity                           unit_activity of the representation
//   programmes                         group_programmes: vanilla pass + attributions + label
//                                      permutation tests of every group against the rest
// and prints one JSON object: seconds per step, interpretation = interpret + activity +
// programmes, products = the bound of the two passes, and their ratio (ratio_whole_blocks: against
// the whole-block passes, the measure of the tables before 2026-12-04).

#include "bench_common.hpp"
#include "exsal/interpret/interpret.hpp"
#include "exsal/interpret/programmes.hpp"
#include "exsal/nn/autoencoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

using exsal::Index;
using exsal::MatrixF;

struct Workload {
    exsal::Autoencoder<float> model;
    MatrixF input;          // genes x cells, log1p counts centred per gene
    MatrixF representation; // units x cells
    std::vector<std::string> genes, groups;
    exsal::GeneSetCollection sets;
};

Workload make_workload(const exsal_bench::Args& a) {
    const Index C = a.integer("cells", 20000), G = a.integer("genes", 4000), U = a.integer("units", 64),
                H = a.integer("hidden", 128), S = a.integer("sets", 50), K = a.integer("groups", 8);
    const std::uint64_t seed = static_cast<std::uint64_t>(a.integer("seed", 1));
    exsal::AutoencoderConfig cfg;
    cfg.n_genes = G;
    cfg.hidden = {H, U, H};
    Workload w{exsal::Autoencoder<float>(cfg), {}, {}, {}, {}, {}};
    w.model.initialize(seed);
    w.input = exsal_bench::synthetic_counts<float>(C, G, seed).unaryExpr([](float x) { return std::log1p(x); });
    const exsal::VectorF mean = w.input.rowwise().mean();
    w.input.colwise() -= mean;
    w.representation = w.model.encode(w.input);
    for (Index g = 0; g < G; ++g) w.genes.push_back("G" + std::to_string(g));
    exsal::Rng rng(exsal::derive_seed(seed, 99));
    for (Index c = 0; c < C; ++c) w.groups.push_back("type" + std::to_string(rng.below(static_cast<std::uint64_t>(K))));
    std::vector<Index> pool(static_cast<std::size_t>(G));
    std::iota(pool.begin(), pool.end(), Index(0));
    for (Index s = 0; s < S; ++s) {
        exsal::GeneSet set;
        set.name = "SET_" + std::to_string(s);
        const Index k = std::min<Index>(G, 32 + static_cast<Index>(rng.below(169)));
        for (Index i = 0; i < k; ++i) { // partial Fisher-Yates: k distinct genes
            std::swap(pool[static_cast<std::size_t>(i)], pool[static_cast<std::size_t>(i) + rng.below(static_cast<std::uint64_t>(G - i))]);
            set.genes.push_back(w.genes[static_cast<std::size_t>(pool[static_cast<std::size_t>(i)])]);
        }
        w.sets.push_back(std::move(set));
    }
    return w;
}

// Wall seconds of one saliency pass whose visitor only touches what it is handed: each block's
// saliency at once (chunk 0, as for_each_saliency_block hands it out), or `chunk` cells and, with
// tile > 0, `tile` genes at a time, as interpret() and group_programmes() take it.
double products_seconds(const Workload& w, exsal::SaliencyKind kind, Index block, exsal::SaliencyLayout layout,
                        Index chunk = 0, Index tile = 0) {
    exsal::SaliencyOptions so;
    so.kind = kind;
    so.block_cells = block;
    so.layout = layout;
    std::vector<double> sink(static_cast<std::size_t>(exsal::threads()), 0.0);
    auto visit = [&](int t, Index, const exsal::ConstMatrixRef<float>& b, const exsal::ConstMatrixRef<float>&,
                     const exsal::detail::CellSpan&) { sink[static_cast<std::size_t>(t)] += static_cast<double>(b(0, 0)); };
    const double t0 = exsal_bench::now_s();
    exsal::detail::saliency_blocks<float>(w.model, exsal::DenseCellBlocks<float>(w.input), so, visit,
                                          static_cast<exsal::detail::NoMerge*>(nullptr), chunk, tile);
    const double s = exsal_bench::now_s() - t0;
    if (std::accumulate(sink.begin(), sink.end(), 0.0) == 12345.678) std::puts(""); // keep the pass
    return s;
}

} // namespace

int main(int argc, char** argv) try {
    const exsal_bench::Args a(argc, argv,
                              {"cells", "genes", "units", "hidden", "sets", "groups", "permutations", "bins", "block",
                               "threads", "seed", "steps", "layout"},
                              {"keep-denormals"});
    exsal::set_flush_denormals(!a.flag("keep-denormals"));
    if (a.integer("threads", 0) > 0) exsal::set_threads(static_cast<int>(a.integer("threads", 0)));
    const std::string steps = a.text("steps", "all");
    const Index block = a.integer("block", 64);
    if (block < 1) throw std::runtime_error("--block: at least 1 cell, got " + std::to_string(block));
    const std::string layout_name = a.text("layout", "units");
    if (layout_name != "units" && layout_name != "genes") throw std::runtime_error("--layout: units or genes, got " + layout_name);
    const exsal::SaliencyLayout layout =
        layout_name == "units" ? exsal::SaliencyLayout::units_by_genes : exsal::SaliencyLayout::genes_by_units;
    const double t_setup = exsal_bench::now_s();
    const Workload w = make_workload(a);
    const double setup = exsal_bench::now_s() - t_setup;

    double guided = 0, vanilla = 0, guided_chunked = 0, vanilla_chunked = 0;
    double interp = 0, activity = 0, programmes = 0, checksum = 0;
    if (steps == "all" || steps == "products") {
        guided = products_seconds(w, exsal::SaliencyKind::guided, block, layout);
        vanilla = products_seconds(w, exsal::SaliencyKind::vanilla, block, layout);
        const Index chunk = exsal::detail::saliency_chunk_cells;
        const exsal::SaliencyLayout units = exsal::SaliencyLayout::units_by_genes;
        guided_chunked = products_seconds(w, exsal::SaliencyKind::guided, block, units, chunk, 0);
        vanilla_chunked = products_seconds(w, exsal::SaliencyKind::vanilla, block, units, chunk,
                                           std::min<Index>(w.input.rows(), exsal::detail::saliency_tile_genes));
    }
    if (steps == "all" || steps == "interpret") {
        exsal::InterpretOptions io;
        io.block_cells = block;
        io.expression_bins = a.integer("bins", 20);
        double t0 = exsal_bench::now_s();
        const exsal::Interpretation in = exsal::interpret<float>(w.model, w.input, w.genes, w.groups, w.sets, io);
        interp = exsal_bench::now_s() - t0;
        t0 = exsal_bench::now_s();
        const exsal::UnitActivity act = exsal::unit_activity(w.representation);
        activity = exsal_bench::now_s() - t0;
        exsal::ProgrammeOptions po;
        po.block_cells = block;
        po.permutations = a.integer("permutations", 1000);
        const exsal::UsableGeneSets usable = exsal::usable_gene_sets(w.sets, w.genes, io.min_genes);
        t0 = exsal_bench::now_s();
        const exsal::ProgrammeAnalysis pa =
            exsal::group_programmes<float>(w.model, w.input, w.representation, usable.rows, w.groups, act, po);
        programmes = exsal_bench::now_s() - t0;
        checksum = in.impact.sum() + in.p_value.sum() + in.set_score.sum();
        for (const auto& c : pa.comparisons) checksum += c.score.sum() + c.p_value.sum();
    }
    const double interpretation = interp + activity + programmes, whole_blocks = guided + vanilla;
    const double products = std::min(guided, guided_chunked) + std::min(vanilla, vanilla_chunked);
    std::printf("{\"cells\": %lld, \"genes\": %lld, \"units\": %lld, \"sets\": %lld, \"threads\": %d, \"simd\": \"%s\", \"denormals\": \"%s\",\n",
                static_cast<long long>(w.input.cols()), static_cast<long long>(w.input.rows()),
                static_cast<long long>(w.model.units()), static_cast<long long>(w.sets.size()), exsal::threads(),
                exsal_bench::simd_name().c_str(), exsal::denormals_mode());
    std::printf(" \"setup_s\": %.2f, \"products_guided_s\": %.2f, \"products_vanilla_s\": %.2f,"
                " \"products_guided_chunked_s\": %.2f, \"products_vanilla_chunked_s\": %.2f,\n",
                setup, guided, vanilla, guided_chunked, vanilla_chunked);
    std::printf(" \"interpret_s\": %.2f, \"activity_s\": %.3f, \"programmes_s\": %.2f, \"interpretation_s\": %.2f,"
                " \"products_s\": %.2f, \"ratio\": %.2f, \"ratio_whole_blocks\": %.2f,\n",
                interp, activity, programmes, interpretation, products, products > 0 ? interpretation / products : 0.0,
                whole_blocks > 0 ? interpretation / whole_blocks : 0.0);
    std::printf(" \"checksum\": %.17g, \"peak_rss_mib\": %.0f}\n", checksum, exsal_bench::peak_rss_mib());
    return 0;
} catch (const std::exception& e) {
    std::cerr << "bench_interpret: " << e.what() << "\n";
    return 1;
}
