#ifndef EXSAL_INTERPRET_GROUPS_HPP
#define EXSAL_INTERPRET_GROUPS_HPP

// Cell groups (cell types, time points) and the comparisons made between them
// (as in Kinalis et al. 2019, Fig. 1e):
//   - labels: distinct group labels, sorted, and each cell's index into them;
//   - unit activity: each group against all other cells, or group a against group b, as the
//     difference of the representation means over the pooled standard deviation (Cohen's d);
//   - impact differences: GROUP MINUS REST (positive = the group has the higher impact). The
//     reference printed rest - group; exsal uses the opposite sign throughout.

#include "exsal/core/error.hpp"
#include "exsal/core/process_group.hpp"
#include "exsal/core/types.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

namespace exsal {

// Distinct labels and the group of every cell.
struct GroupLabels {
    std::vector<std::string> names; // distinct labels, sorted ("" is no label)
    std::vector<Index> of_cell;     // cells, index into names; -1: the cell has no group
    std::vector<Index> sizes;       // names, cells per group
    Index grouped() const { return std::accumulate(sizes.begin(), sizes.end(), Index(0)); }
};

// Groups of `cell_groups` (one label per cell; empty gives no groups). A cell labelled "" belongs
// to no group: it is in no group's statistics and in no group's "rest".
inline GroupLabels group_labels(const std::vector<std::string>& cell_groups) {
    GroupLabels g;
    g.names = cell_groups;
    std::sort(g.names.begin(), g.names.end());
    g.names.erase(std::unique(g.names.begin(), g.names.end()), g.names.end());
    if (!g.names.empty() && g.names.front().empty()) g.names.erase(g.names.begin());
    std::unordered_map<std::string, Index> index;
    for (std::size_t i = 0; i < g.names.size(); ++i) index.emplace(g.names[i], static_cast<Index>(i));
    g.sizes.assign(g.names.size(), 0);
    g.of_cell.reserve(cell_groups.size());
    for (const auto& label : cell_groups) {
        const Index i = label.empty() ? -1 : index.at(label);
        g.of_cell.push_back(i);
        if (i >= 0) ++g.sizes[static_cast<std::size_t>(i)];
    }
    return g;
}

// The same over the cells of all processes of a data-parallel run (collective): `cell_groups`
// labels this process's cells; names are the distinct labels of every process's cells, sorted,
// sizes count the cells of every process, and of_cell indexes this process's cells. Every
// process gets the same names and sizes, so per-group sums can be added across processes.
inline GroupLabels group_labels(const std::vector<std::string>& cell_groups, ProcessGroup& processes) {
    GroupLabels local = group_labels(cell_groups);
    GroupLabels g;
    for (auto& names : all_gather(processes, local.names)) g.names.insert(g.names.end(), names.begin(), names.end());
    std::sort(g.names.begin(), g.names.end());
    g.names.erase(std::unique(g.names.begin(), g.names.end()), g.names.end());
    std::vector<std::int64_t> sizes(g.names.size(), 0);
    std::vector<Index> to_global(local.names.size());
    for (std::size_t i = 0; i < local.names.size(); ++i) {
        to_global[i] = static_cast<Index>(std::lower_bound(g.names.begin(), g.names.end(), local.names[i]) - g.names.begin());
        sizes[static_cast<std::size_t>(to_global[i])] = local.sizes[i];
    }
    processes.sum(sizes.data(), static_cast<Index>(sizes.size()));
    g.sizes.assign(sizes.begin(), sizes.end());
    g.of_cell.reserve(local.of_cell.size());
    for (Index i : local.of_cell) g.of_cell.push_back(i < 0 ? -1 : to_global[static_cast<std::size_t>(i)]);
    return g;
}

// One unit in one comparison.
struct UnitGroupStats {
    std::string group;         // the group, or "a_vs_b" for a pair
    Index unit = 0;
    double mean_in_group = 0;  // mean activation in the group (pair: in a)
    double mean_in_rest = 0;   // mean activation in all other cells (pair: in b); NaN if empty
    double effect_size = 0;    // (mean_in_group - mean_in_rest) / pooled SD; 0 when undefined
};

namespace detail {

// Cohen's d of the cells of `in` against those of `out` for every unit (rows of r):
//   d = (mean_in - mean_out) / s_p,  s_p^2 = ((n_in - 1) var_in + (n_out - 1) var_out) / (n_in + n_out - 2)
// with unbiased variances. d = 0 when s_p = 0 (constant activations) or either side is empty
// (mean of an empty side: NaN). Sums in double.
inline void cohens_d(const MatrixF& r, const std::vector<Index>& in, const std::vector<Index>& out,
                     const std::string& label, std::vector<UnitGroupStats>& result) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const auto moments = [&](Index u, const std::vector<Index>& cells, double& mean, double& ss) {
        mean = 0.0;
        ss = 0.0;
        if (cells.empty()) {
            mean = nan;
            return;
        }
        for (Index c : cells) mean += r(u, c);
        mean /= static_cast<double>(cells.size());
        for (Index c : cells) ss += (r(u, c) - mean) * (r(u, c) - mean); // sum of squared deviations
    };
    const double n_in = static_cast<double>(in.size()), n_out = static_cast<double>(out.size());
    for (Index u = 0; u < r.rows(); ++u) {
        UnitGroupStats s;
        s.group = label;
        s.unit = u;
        double ss_in = 0.0, ss_out = 0.0;
        moments(u, in, s.mean_in_group, ss_in);
        moments(u, out, s.mean_in_rest, ss_out);
        const double dof = n_in + n_out - 2.0;
        const double pooled = dof > 0.0 ? std::sqrt((ss_in + ss_out) / dof) : 0.0;
        const bool defined = !in.empty() && !out.empty() && pooled > 0.0 && std::isfinite(pooled);
        s.effect_size = defined ? (s.mean_in_group - s.mean_in_rest) / pooled : 0.0;
        result.push_back(s);
    }
}

inline void check_activity_arguments(const char* where, const MatrixF& representation,
                                     const std::vector<std::string>& cell_groups) {
    if (static_cast<Index>(cell_groups.size()) != representation.cols())
        throw ArgumentError(where, std::to_string(cell_groups.size()) + " group labels for " +
                                       std::to_string(representation.cols()) + " cells (representation columns)");
    if (!representation.allFinite()) throw ArgumentError(where, "the representation contains a non-finite value");
}

} // namespace detail

// Each group (sorted labels) against all other grouped cells, for every unit (units x cells
// representation): group-major, units ascending. Cells labelled "" are in no comparison. Throws ArgumentError when the label count
// differs from the cell count or the representation is not finite.
inline std::vector<UnitGroupStats> compare_unit_activity(const MatrixF& representation,
                                                         const std::vector<std::string>& cell_groups) {
    detail::check_activity_arguments("exsal::compare_unit_activity", representation, cell_groups);
    const GroupLabels labels = group_labels(cell_groups);
    std::vector<UnitGroupStats> result;
    result.reserve(labels.names.size() * static_cast<std::size_t>(representation.rows()));
    for (std::size_t g = 0; g < labels.names.size(); ++g) {
        std::vector<Index> in, out;
        for (std::size_t c = 0; c < labels.of_cell.size(); ++c)
            if (labels.of_cell[c] >= 0) (labels.of_cell[c] == static_cast<Index>(g) ? in : out).push_back(static_cast<Index>(c));
        detail::cohens_d(representation, in, out, labels.names[g], result);
    }
    return result;
}

// Group a against group b for every unit: mean_in_group is a's mean, mean_in_rest b's, effect
// size (mean_a - mean_b) / pooled SD of a and b; the group field reads "a_vs_b". Throws
// ArgumentError when a or b labels no cell, or a == b.
inline std::vector<UnitGroupStats> compare_unit_activity(const MatrixF& representation,
                                                         const std::vector<std::string>& cell_groups,
                                                         const std::string& a, const std::string& b) {
    const char* where = "exsal::compare_unit_activity";
    detail::check_activity_arguments(where, representation, cell_groups);
    if (a == b) throw ArgumentError(where, "cannot compare group '" + a + "' with itself");
    std::vector<Index> in, out;
    for (std::size_t c = 0; c < cell_groups.size(); ++c) {
        if (cell_groups[c] == a) in.push_back(static_cast<Index>(c));
        if (cell_groups[c] == b) out.push_back(static_cast<Index>(c));
    }
    if (in.empty()) throw ArgumentError(where, "no cell has the group label '" + a + "'");
    if (out.empty()) throw ArgumentError(where, "no cell has the group label '" + b + "'");
    std::vector<UnitGroupStats> result;
    detail::cohens_d(representation, in, out, a + "_vs_" + b, result);
    return result;
}

// Impact difference of a group (sets x units): group minus rest, positive where the group's cells
// give the set the higher impact (the reference's rest - group with the opposite sign).
inline MatrixD impact_difference(const MatrixD& impact_in_group, const MatrixD& impact_in_rest) {
    if (impact_in_group.rows() != impact_in_rest.rows() || impact_in_group.cols() != impact_in_rest.cols())
        throw ArgumentError("exsal::impact_difference", "the two impact matrices differ in shape");
    return impact_in_group - impact_in_rest;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_GROUPS_HPP
