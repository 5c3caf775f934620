#ifndef EXSAL_INTERPRET_GENE_SET_IMPACT_HPP
#define EXSAL_INTERPRET_GENE_SET_IMPACT_HPP

// From gene saliency to gene-set impact (Kinalis et al. 2019), the reference statistic:
//   impact(u, S) over cells C = mean over c in C of  agg over g in S present of |saliency(c, u, g)|
// with agg the LOWER median (element of 0-based rank (k-1)/2 of the k genes of S present in the
// data) or the mean. Only the genes of S present in the data count; sets with fewer than
// min_genes present are skipped and listed.
//
// One streaming pass over the cells computes, for every usable set and unit: the impact over all
// cells and over each group, and per gene and unit the mean of |saliency| and of the signed
// saliency. Per cell and unit, each set's values are gathered into per-thread scratch and
// reduced (nth_element for the median); per-cell values go into per-thread sums that are added
// to the totals in block order, so results do not depend on the thread count. Impacts over "the
// rest" of a group are the other groups' sums, so nothing is computed twice.

#include "exsal/core/error.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/saliency.hpp"
#include "exsal/interpret/statistics.hpp"
#include "exsal/io/gene_set.hpp"
#include "exsal/io/gmt.hpp"

#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

// The sets of a collection that the data covers well enough, in collection order.
struct UsableGeneSets {
    std::vector<std::string> names;        // usable sets (>= min_genes present)
    std::vector<std::string> descriptions;
    std::vector<Index> genes_in_set;       // distinct symbols in the set
    std::vector<Index> genes_found;        // of those, present in the data (= rows[s].size())
    std::vector<std::vector<Index>> rows;  // rows of the present genes, in the set's order
    std::vector<std::pair<std::string, Index>> skipped; // (name, genes found) below min_genes
};

// Matches the sets to the data's gene symbols (exact match, as gene_set_coverage) and keeps those
// with at least min_genes present. Throws ArgumentError when min_genes < 1.
inline UsableGeneSets usable_gene_sets(const GeneSetCollection& sets, const std::vector<std::string>& genes,
                                       Index min_genes) {
    if (min_genes < 1)
        throw ArgumentError("exsal::usable_gene_sets", "min_genes must be >= 1, got " + std::to_string(min_genes));
    const std::vector<GeneSetCoverage> coverage = gene_set_coverage(sets, genes);
    UsableGeneSets u;
    for (std::size_t s = 0; s < sets.size(); ++s) {
        const GeneSetCoverage& c = coverage[s];
        if (c.genes_found < min_genes) {
            u.skipped.emplace_back(c.name, c.genes_found);
            continue;
        }
        u.names.push_back(sets[s].name);
        u.descriptions.push_back(sets[s].description);
        u.genes_in_set.push_back(c.genes_in_set);
        u.genes_found.push_back(c.genes_found);
        u.rows.push_back(c.rows);
    }
    return u;
}

struct ImpactOptions {
    SaliencyKind saliency = SaliencyKind::guided;
    ImpactAggregator aggregator = ImpactAggregator::median;
    Index block_cells = 64;                                   // cells per saliency block
    std::function<void(Index done, Index total)> on_progress; // optional, cells done, in order, one call at a time
};

struct GeneSetImpact {
    MatrixD impact;                       // sets x units, over all cells
    std::vector<MatrixD> impact_in_group; // per group: sets x units over its cells
    std::vector<MatrixD> impact_in_rest;  // per group: sets x units over all other cells (NaN if none)
    MatrixD gene_saliency;                // genes x units, mean over cells of |saliency|
    MatrixD gene_saliency_signed;         // genes x units, mean over cells of the signed saliency
};

namespace detail {

// Per-thread sums over the cells of one block.
struct ImpactPartial {
    MatrixD abs_sum;                // G x U, sum of |saliency|
    MatrixD signed_sum;             // G x U, sum of saliency
    MatrixD all;                    // S x U, sum over cells of the per-cell aggregate
    std::vector<MatrixD> group;     // per group: S x U, the same over the group's cells
    void reset() {
        abs_sum.setZero();
        signed_sum.setZero();
        all.setZero();
        for (auto& g : group) g.setZero();
    }
};

} // namespace detail

// Streams saliency over all cells and aggregates it per set (rows of the genes present, e.g.
// UsableGeneSets::rows) and per group (groups.of_cell empty = no groups). Throws ArgumentError
// naming gene_set_impact on mismatched sizes or rows out of range.
template <typename Scalar>
GeneSetImpact gene_set_impact(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                              const std::vector<std::vector<Index>>& set_rows, const GroupLabels& groups,
                              const ImpactOptions& options = {}) {
    const char* where = "exsal::gene_set_impact";
    detail::check_saliency_arguments(where, model.n_genes(), input.rows(), options.block_cells);
    const Index G = model.n_genes(), U = model.units(), C = input.cols(), S = static_cast<Index>(set_rows.size());
    if (C < 1) throw ArgumentError(where, "no cells");
    const bool grouped = !groups.of_cell.empty();
    if (grouped && static_cast<Index>(groups.of_cell.size()) != C)
        throw ArgumentError(where, std::to_string(groups.of_cell.size()) + " group labels for " + std::to_string(C) + " cells");
    const Index n_groups = grouped ? static_cast<Index>(groups.names.size()) : 0;
    Index largest = 1;
    for (std::size_t s = 0; s < set_rows.size(); ++s) {
        if (set_rows[s].empty()) throw ArgumentError(where, "set " + std::to_string(s) + " has no genes");
        largest = std::max(largest, static_cast<Index>(set_rows[s].size()));
        for (Index r : set_rows[s])
            if (r < 0 || r >= G)
                throw ArgumentError(where, "set " + std::to_string(s) + " holds row " + std::to_string(r) +
                                               ", outside 0.." + std::to_string(G - 1));
    }

    const std::size_t T = static_cast<std::size_t>(threads());
    std::vector<detail::ImpactPartial> partial(T);
    std::vector<std::vector<Scalar>> gather(T); // per thread: |saliency| of one set's genes
    for (std::size_t t = 0; t < T; ++t) {
        partial[t].abs_sum.resize(G, U);
        partial[t].signed_sum.resize(G, U);
        partial[t].all.resize(S, U);
        partial[t].group.assign(static_cast<std::size_t>(n_groups), MatrixD(S, U));
        gather[t].resize(static_cast<std::size_t>(largest));
    }
    detail::ImpactPartial total;
    total.abs_sum = MatrixD::Zero(G, U);
    total.signed_sum = MatrixD::Zero(G, U);
    total.all = MatrixD::Zero(S, U);
    total.group.assign(static_cast<std::size_t>(n_groups), MatrixD::Zero(S, U));
    Index done = 0;

    auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& block) {
        detail::ImpactPartial& p = partial[static_cast<std::size_t>(t)];
        Scalar* buf = gather[static_cast<std::size_t>(t)].data();
        p.reset();
        const Index n = block.cols() / U;
        for (Index j = 0; j < n; ++j) {
            MatrixD* group_sum = grouped ? &p.group[static_cast<std::size_t>(groups.of_cell[static_cast<std::size_t>(first + j)])] : nullptr;
            for (Index u = 0; u < U; ++u) {
                const auto col = block.col(j * U + u); // G, d r_u / d x of cell first + j
                p.signed_sum.col(u) += col.template cast<double>();
                p.abs_sum.col(u) += col.cwiseAbs().template cast<double>();
                const Scalar* v = col.data();
                for (Index s = 0; s < S; ++s) {
                    const auto& rows = set_rows[static_cast<std::size_t>(s)];
                    const Index k = static_cast<Index>(rows.size());
                    for (Index i = 0; i < k; ++i) buf[i] = std::abs(v[rows[static_cast<std::size_t>(i)]]);
                    const double a = detail::aggregate(buf, k, options.aggregator); // agg over S of |saliency|
                    p.all(s, u) += a;
                    if (group_sum) (*group_sum)(s, u) += a;
                }
            }
        }
    };
    auto merge = [&](int t, Index, Index n) {
        const detail::ImpactPartial& p = partial[static_cast<std::size_t>(t)];
        total.abs_sum += p.abs_sum;
        total.signed_sum += p.signed_sum;
        total.all += p.all;
        for (Index g = 0; g < n_groups; ++g) total.group[static_cast<std::size_t>(g)] += p.group[static_cast<std::size_t>(g)];
        done += n;
        if (options.on_progress) options.on_progress(done, C);
    };
    SaliencyOptions so;
    so.kind = options.saliency;
    so.block_cells = options.block_cells;
    detail::saliency_blocks<Scalar>(model, input, so, visit, &merge);

    GeneSetImpact r;
    const double nc = static_cast<double>(C);
    r.impact = total.all / nc;
    r.gene_saliency = total.abs_sum / nc;
    r.gene_saliency_signed = total.signed_sum / nc;
    for (Index g = 0; g < n_groups; ++g) {
        const Index n_in = groups.sizes[static_cast<std::size_t>(g)];
        MatrixD rest = MatrixD::Zero(S, U); // sum over the other groups, in group order
        for (Index h = 0; h < n_groups; ++h)
            if (h != g) rest += total.group[static_cast<std::size_t>(h)];
        r.impact_in_group.push_back(total.group[static_cast<std::size_t>(g)] / static_cast<double>(n_in));
        r.impact_in_rest.push_back(C - n_in > 0 ? MatrixD(rest / static_cast<double>(C - n_in))
                                                : MatrixD::Constant(S, U, std::numeric_limits<double>::quiet_NaN()));
    }
    return r;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_GENE_SET_IMPACT_HPP
