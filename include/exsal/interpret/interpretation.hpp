#ifndef EXSAL_INTERPRET_INTERPRETATION_HPP
#define EXSAL_INTERPRET_INTERPRETATION_HPP

// The options and the result of interpret() (see interpret.hpp), in their own header so that
// annotate.hpp and the pipeline can use them without the computation.

#include "exsal/core/process_group.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/saliency.hpp"
#include "exsal/interpret/statistics.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

struct InterpretOptions {
    SaliencyKind saliency = SaliencyKind::guided;
    ImpactAggregator aggregator = ImpactAggregator::median;
    Index min_genes = 10;          // sets with fewer genes found are skipped and listed
    Index permutations = 1000;     // random size-matched gene sets per set size (Monte Carlo null only)
    std::uint64_t seed = 1;        // seeds the Monte Carlo null
    Index block_cells = 64;        // cells per saliency block
    std::vector<std::pair<std::string, std::string>> compare_pairs; // named group pairs A:B
    std::function<void(Index done, Index total)> on_progress;        // optional, cells done (in order, one call at a time)
    // Added to the contract: how the null of random size-matched sets is evaluated (statistics.hpp).
    // exact (default) needs the median aggregator; the mean aggregator needs monte_carlo (refused otherwise).
    NullMethod null_method = NullMethod::exact;
    // Added to the contract: random sets are matched to the set's expression profile. Genes are
    // split into this many equal-count bins of their mean input over the cells (at most one bin
    // per 50 genes; 0 or 1: no matching) and every random set takes as many genes from each bin
    // as the set has there (statistics.hpp). Guards against sets of highly expressed genes being
    // called for every unit (saliency grows with expression).
    Index expression_bins = 20;
    // Per gene, the expression level the bins are made of; empty: the mean input over the cells.
    // A centred input has mean ~0 for every gene, so a caller that centres passes the mean of the
    // uncentred input (the pipeline: mean input + the Preprocessor's centre).
    VectorD expression_level;
    // Data-parallel interpretation: the input and cell_groups hold this process's cells only (a
    // share of all cells, e.g. exsal::even_share), every process calls interpret() with the same
    // model, genes, sets and options, and every process gets the interpretation of all cells:
    // the per-cell sums are added across the processes (exsal/core/process_group.hpp). Null:
    // one process.
    ProcessGroup* processes = nullptr;
};

// Impacts of one named pair of groups (impact_a - impact_b = a minus b).
struct PairImpact {
    std::string group_a, group_b;
    MatrixD impact_a, impact_b; // sets x units each
};

struct Interpretation {
    std::vector<std::string> set_names;   // usable sets (>= min_genes found), collection order
    std::vector<std::string> set_descriptions;
    std::vector<Index> genes_in_set, genes_found;               // per usable set
    std::vector<std::pair<std::string, Index>> skipped_sets;    // (name, genes found) below min_genes
    MatrixD impact;                         // sets x units, over all cells (reference statistic)
    MatrixD z_score, p_value, q_value;      // sets x units (q: Benjamini-Hochberg per unit, over its sets)
    MatrixF gene_saliency;                  // genes x units, mean |saliency| over all cells
    std::vector<std::string> groups;        // distinct group labels, sorted; empty when no labels
    std::vector<MatrixD> impact_in_group;   // per group: sets x units
    std::vector<MatrixD> impact_in_rest;    // per group: sets x units (all other cells; NaN if there are none)
    std::vector<PairImpact> pairs;          // one per compare_pairs entry
    // Added to the contract:
    MatrixD set_score;                      // sets x units, T(u, S) = aggregator over S of gene_saliency (what z, p test)
    MatrixF gene_saliency_signed;           // genes x units, mean signed saliency over all cells
    std::vector<Index> group_sizes;         // per group: number of cells
    Index cells = 0;                        // cells interpreted
    NullMethod null_method = NullMethod::exact; // the null actually used
    Index expression_bins = 1;              // expression bins actually used (1 = none)
    MatrixD set_direction; // sets x units, +1/-1: sign of the lower median over S's genes of the mean signed saliency
    std::vector<bool> unit_tested;          // per unit: false for units left out of the tests (inactive)
};

} // namespace exsal

#endif // EXSAL_INTERPRET_INTERPRETATION_HPP
