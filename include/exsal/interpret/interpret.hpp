#ifndef EXSAL_INTERPRET_INTERPRET_HPP
#define EXSAL_INTERPRET_INTERPRET_HPP

// Umbrella header of the interpretation and its entry point, interpret(): saliency of every
// representation unit for every cell (streamed in blocks), gene-set impacts over all cells and
// per group, the significance of each set for each unit against random size-matched gene sets,
// and Benjamini-Hochberg q-values per unit (over the sets of one unit).
//
//   usable sets    usable_gene_sets(sets, genes, min_genes)                (gene_set_impact.hpp)
//   impacts        gene_set_impact(model, input, rows, groups, ...)       (one streaming pass)
//   significance   gene_set_significance(gene_saliency, rows, ...)        (statistics.hpp), random
//                  sets matched in size and in expression (bins of the mean input over the cells)
//   q-values       benjamini_hochberg_per_column(p): one family per unit
//   pairs          impact_in_group of the two named groups

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/annotate.hpp"
#include "exsal/interpret/gene_set_impact.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/interpret/saliency.hpp"
#include "exsal/interpret/statistics.hpp"
#include "exsal/io/gene_set.hpp"
#include "exsal/nn/autoencoder.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace exsal {

namespace detail {

inline void check_compare_pairs(const std::vector<std::pair<std::string, std::string>>& pairs,
                                const std::vector<std::string>& labels, bool no_labels);

// The checks of interpret's arguments that each process makes on its own.
inline void check_interpret_arguments(Index model_genes, Index rows, Index cols, const std::vector<std::string>& genes,
                                      const std::vector<std::string>& cell_groups, const InterpretOptions& o) {
    const char* where = "exsal::interpret";
    if (rows != model_genes)
        throw ArgumentError(where, "input has " + std::to_string(rows) + " genes (rows), the model " + std::to_string(model_genes));
    if (static_cast<Index>(genes.size()) != rows)
        throw ArgumentError(where, std::to_string(genes.size()) + " gene names for " + std::to_string(rows) + " input rows");
    if (cols < 1 && !o.processes) throw ArgumentError(where, "no cells to interpret"); // several processes: checked on all of them
    if (!cell_groups.empty() && static_cast<Index>(cell_groups.size()) != cols)
        throw ArgumentError(where, std::to_string(cell_groups.size()) + " group labels for " + std::to_string(cols) +
                                       " cells (give one label per cell, or none)");
    std::unordered_map<std::string, std::size_t> seen;
    seen.reserve(genes.size());
    for (std::size_t i = 0; i < genes.size(); ++i) {
        const auto [it, inserted] = seen.emplace(genes[i], i);
        if (!inserted)
            throw ArgumentError(where, "gene '" + genes[i] + "' names rows " + std::to_string(it->second + 1) + " and " +
                                           std::to_string(i + 1) + "; gene names must be unique");
    }
    if (o.min_genes < 1) throw ArgumentError(where, "min_genes must be >= 1, got " + std::to_string(o.min_genes));
    if (o.block_cells < 1) throw ArgumentError(where, "block_cells must be >= 1, got " + std::to_string(o.block_cells));
    if (o.expression_bins < 0) throw ArgumentError(where, "expression_bins must be >= 0, got " + std::to_string(o.expression_bins));
    if (o.expression_level.size() != 0 && o.expression_level.size() != rows)
        throw ArgumentError(where, "expression_level has " + std::to_string(o.expression_level.size()) + " entries for " +
                                       std::to_string(rows) + " genes");
    if (o.null_method == NullMethod::exact && o.aggregator != ImpactAggregator::median)
        throw ArgumentError(where, "the exact null needs the median aggregator; use NullMethod::monte_carlo for the mean");
    if (o.null_method == NullMethod::monte_carlo && o.permutations < 1)
        throw ArgumentError(where, "permutations must be >= 1, got " + std::to_string(o.permutations));
    if (!o.processes) check_compare_pairs(o.compare_pairs, cell_groups, cell_groups.empty());
}

// Throws ArgumentError unless both groups of every pair are labels of some cell (`labels`: the
// cells' labels, or the distinct labels of all processes' cells).
inline void check_compare_pairs(const std::vector<std::pair<std::string, std::string>>& pairs,
                                const std::vector<std::string>& labels, bool no_labels) {
    const char* where = "exsal::interpret";
    const auto& cell_groups = labels;
    for (const auto& [a, b] : pairs) {
        for (const std::string* g : {&a, &b})
            if (g->empty() || std::find(cell_groups.begin(), cell_groups.end(), *g) == cell_groups.end())
                throw ArgumentError(where, "compare pair " + a + ":" + b + ": no cell has the group label '" + *g + "'" +
                                               (no_labels ? " (the cells have no group labels)" : ""));
        if (a == b) throw ArgumentError(where, "compare pair " + a + ":" + b + " names the same group twice");
    }
}

// What interpret() checks across the processes of a data-parallel run (collective): the same
// genes and model everywhere, cells labelled on every process or on none, and at least one cell.
// Returns the number of cells of all processes.
template <typename Scalar>
Index check_processes_agree(ProcessGroup& processes, const Autoencoder<Scalar>& model, const std::vector<std::string>& genes,
                            Index cells, bool labelled) {
    const char* where = "exsal::interpret";
    std::uint64_t h = 1469598103934665603ull; // FNV-1a over the gene names and the parameters' bytes
    const auto add = [&h](const void* data, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(data)[i]) * 1099511628211ull;
    };
    for (const auto& g : genes) add(g.data(), g.size() + 1);
    add(model.parameters().data(), sizeof(Scalar) * static_cast<std::size_t>(model.parameters().size()));
    const auto fingerprints = all_gather(processes, {std::to_string(h)});
    for (std::size_t r = 1; r < fingerprints.size(); ++r)
        if (fingerprints[r] != fingerprints[0])
            throw ArgumentError(where, "process " + std::to_string(r) + " has other genes or another model than process 0; "
                                       "every process must interpret the same model on the same genes");
    std::int64_t counts[3] = {cells, cells > 0 && !labelled ? 1 : 0, labelled ? 1 : 0};
    processes.sum(counts, 3);
    if (counts[1] > 0 && counts[2] > 0)
        throw ArgumentError(where, std::to_string(counts[2]) + " processes label their cells and " + std::to_string(counts[1]) +
                                       " do not; give every process its cells' group labels, or none");
    if (counts[0] < 1) throw ArgumentError(where, "no cells to interpret on any of the " + std::to_string(processes.size()) + " processes");
    return static_cast<Index>(counts[0]);
}

// +1 / -1 per set and unit: the sign of the lower median over the set's genes of the mean signed
// saliency (does the unit rise or fall with the set's genes, for most of them).
inline MatrixD set_direction(const MatrixD& signed_saliency, const std::vector<std::vector<Index>>& set_rows) {
    MatrixD d(static_cast<Index>(set_rows.size()), signed_saliency.cols());
    std::vector<double> buf;
    for (std::size_t s = 0; s < set_rows.size(); ++s)
        for (Index u = 0; u < signed_saliency.cols(); ++u) {
            buf.clear();
            for (Index r : set_rows[s]) buf.push_back(signed_saliency(r, u));
            d(static_cast<Index>(s), u) = lower_median(buf.data(), static_cast<Index>(buf.size())) >= 0.0 ? 1.0 : -1.0;
        }
    return d;
}

} // namespace detail

// Leaves the units that `tested` marks false out of the significance tests: their z-scores and
// p-values become NaN and the q-values of each unit are recomputed (a unit's family is its sets).
inline void restrict_tests_to_units(Interpretation& in, const std::vector<bool>& tested) {
    if (static_cast<Index>(tested.size()) != in.p_value.cols())
        throw ArgumentError("exsal::restrict_tests_to_units", std::to_string(tested.size()) + " flags for " +
                                                                  std::to_string(in.p_value.cols()) + " units");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (Index u = 0; u < in.p_value.cols(); ++u)
        if (!tested[static_cast<std::size_t>(u)]) {
            in.z_score.col(u).setConstant(nan);
            in.p_value.col(u).setConstant(nan);
        }
    in.q_value = benjamini_hochberg_per_column(in.p_value);
    in.unit_tested = tested;
}

// Interprets the representation units of `model` on cells `input` (the network input, i.e.
// transformed, genes x cells, rows named by `genes` in model order, handed out block by block),
// with group labels `cell_groups` (one per cell, or empty; "" = no group) and the gene sets
// `sets`. See the top of this header. Throws ArgumentError naming exsal::interpret on mismatched
// sizes, duplicate gene names, unknown groups in compare_pairs, non-finite input, bad options, or
// when no set has min_genes genes present.
template <typename Scalar>
Interpretation interpret(const Autoencoder<Scalar>& model, const CellBlockSource<Scalar>& input,
                         const std::vector<std::string>& genes, const std::vector<std::string>& cell_groups,
                         const GeneSetCollection& sets, const InterpretOptions& options) {
    const char* where = "exsal::interpret";
    ProcessGroup* processes = options.processes;
    on_every_process(processes, where, [&] {
        detail::check_interpret_arguments(model.n_genes(), input.genes(), input.cells(), genes, cell_groups, options);
    });
    Index cells = input.cells(); // of all processes
    GroupLabels labels;
    if (processes) {
        cells = detail::check_processes_agree(*processes, model, genes, input.cells(), !cell_groups.empty());
        labels = group_labels(cell_groups, *processes);
        detail::check_compare_pairs(options.compare_pairs, labels.names, labels.names.empty());
    } else {
        labels = group_labels(cell_groups);
    }
    // One pass over the input: its mean (the expression level of the null's bins) and its finiteness.
    const VectorD mean = detail::input_mean(input, processes);
    if (!mean.allFinite()) throw ArgumentError(where, "the input contains a non-finite value");

    Interpretation out;
    UsableGeneSets usable = usable_gene_sets(sets, genes, options.min_genes);
    if (usable.names.empty()) {
        std::string best = "none";
        Index most = -1;
        for (const auto& [name, found] : usable.skipped)
            if (found > most) {
                most = found;
                best = name + " with " + std::to_string(found);
            }
        throw ArgumentError(where, "none of the " + std::to_string(sets.size()) + " gene sets has at least min_genes = " +
                                       std::to_string(options.min_genes) + " of its genes among the " +
                                       std::to_string(genes.size()) + " genes of the data (best: " + best + ")");
    }

    // One streaming pass: impacts (all, per group) and per-gene saliency means.
    ImpactOptions io;
    io.saliency = options.saliency;
    io.aggregator = options.aggregator;
    io.block_cells = options.block_cells;
    io.on_progress = options.on_progress;
    io.processes = processes;
    GeneSetImpact gi = gene_set_impact<Scalar>(model, input, usable.rows, labels, io);

    // Significance of each set for each unit against random size-matched sets of the genes present.
    SignificanceOptions so;
    so.aggregator = options.aggregator;
    so.method = options.null_method;
    so.permutations = options.permutations;
    so.seed = options.seed;
    const Index bins = std::max<Index>(1, std::min<Index>(options.expression_bins, input.genes() / 50));
    if (bins > 1) {
        const VectorD level = options.expression_level.size() > 0 ? options.expression_level : mean;
        so.strata = expression_strata(level, bins);
    }
    SetSignificance sig = gene_set_significance(gi.gene_saliency, usable.rows, so);

    out.set_names = std::move(usable.names);
    out.set_descriptions = std::move(usable.descriptions);
    out.genes_in_set = std::move(usable.genes_in_set);
    out.genes_found = std::move(usable.genes_found);
    out.skipped_sets = std::move(usable.skipped);
    out.impact = std::move(gi.impact);
    out.z_score = std::move(sig.z_score);
    out.p_value = std::move(sig.p_value);
    out.q_value = benjamini_hochberg_per_column(out.p_value); // one family per unit
    out.set_score = std::move(sig.statistic);
    out.set_direction = detail::set_direction(gi.gene_saliency_signed, usable.rows);
    out.unit_tested.assign(static_cast<std::size_t>(model.units()), true);
    out.gene_saliency = gi.gene_saliency.cast<float>();
    out.gene_saliency_signed = gi.gene_saliency_signed.cast<float>();
    out.groups = labels.names;
    out.group_sizes = labels.sizes;
    out.impact_in_group = std::move(gi.impact_in_group);
    out.impact_in_rest = std::move(gi.impact_in_rest);
    out.cells = cells;
    out.null_method = so.method;
    out.expression_bins = bins;
    for (const auto& [a, b] : options.compare_pairs) {
        const auto index = [&](const std::string& g) {
            return static_cast<std::size_t>(std::lower_bound(out.groups.begin(), out.groups.end(), g) - out.groups.begin());
        };
        out.pairs.push_back({a, b, out.impact_in_group[index(a)], out.impact_in_group[index(b)]});
    }
    return out;
}

// The same for a genes x cells input matrix.
template <typename Scalar>
Interpretation interpret(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                         const std::vector<std::string>& genes, const std::vector<std::string>& cell_groups,
                         const GeneSetCollection& sets, const InterpretOptions& options) {
    return interpret<Scalar>(model, DenseCellBlocks<Scalar>(input), genes, cell_groups, sets, options);
}

} // namespace exsal

#endif // EXSAL_INTERPRET_INTERPRET_HPP
