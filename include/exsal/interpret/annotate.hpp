#ifndef EXSAL_INTERPRET_ANNOTATE_HPP
#define EXSAL_INTERPRET_ANNOTATE_HPP

// Names for units and modules for groups (Kinalis et al. 2019: a group's modules are its most active units):
//   annotate_units  each unit's top gene sets: those with q <= q_max, by decreasing z-score, ties
//                   by decreasing impact, then collection order;
//   group_modules   each group's active modules: the units whose activation is higher in the
//                   group than in the rest (effect size > 0), by decreasing effect size.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/interpretation.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace exsal {

struct UnitAnnotation {
    Index unit = 0;
    std::vector<Index> top_sets; // indices into set_names, best first; empty when no set has q <= q_max
};

// One entry per unit (ascending). Throws ArgumentError when top_k < 0 or q_max is outside [0, 1].
inline std::vector<UnitAnnotation> annotate_units(const Interpretation& in, Index top_k = 3, double q_max = 0.05) {
    const char* where = "exsal::annotate_units";
    if (top_k < 0) throw ArgumentError(where, "top_k must be >= 0, got " + std::to_string(top_k));
    if (!(q_max >= 0.0 && q_max <= 1.0)) throw ArgumentError(where, "q_max must be in [0, 1], got " + std::to_string(q_max));
    const Index S = in.q_value.rows(), U = in.q_value.cols();
    if (in.z_score.rows() != S || in.z_score.cols() != U || in.impact.rows() != S || in.impact.cols() != U)
        throw ArgumentError(where, "the interpretation's impact, z and q matrices differ in shape");
    std::vector<UnitAnnotation> out;
    out.reserve(static_cast<std::size_t>(U));
    for (Index u = 0; u < U; ++u) {
        std::vector<Index> candidates;
        for (Index s = 0; s < S; ++s)
            if (in.q_value(s, u) <= q_max) candidates.push_back(s); // NaN q never qualifies
        std::stable_sort(candidates.begin(), candidates.end(), [&](Index a, Index b) {
            if (in.z_score(a, u) != in.z_score(b, u)) return in.z_score(a, u) > in.z_score(b, u);
            return in.impact(a, u) > in.impact(b, u);
        });
        if (static_cast<Index>(candidates.size()) > top_k) candidates.resize(static_cast<std::size_t>(top_k));
        out.push_back({u, std::move(candidates)});
    }
    return out;
}

struct GroupModules {
    std::string group;
    std::vector<Index> units; // by decreasing effect size (> 0 only), at most top_k
};

// Per group (in order of first appearance in `stats`, e.g. compare_unit_activity's output): the
// top_k units with the largest positive effect sizes, ties by unit index. Throws ArgumentError
// when top_k < 0.
inline std::vector<GroupModules> group_modules(const std::vector<UnitGroupStats>& stats, Index top_k = 3) {
    if (top_k < 0) throw ArgumentError("exsal::group_modules", "top_k must be >= 0, got " + std::to_string(top_k));
    std::vector<GroupModules> out;
    std::vector<std::vector<const UnitGroupStats*>> members;
    for (const auto& s : stats) {
        auto it = std::find_if(out.begin(), out.end(), [&](const GroupModules& g) { return g.group == s.group; });
        if (it == out.end()) {
            out.push_back({s.group, {}});
            members.emplace_back();
            it = out.end() - 1;
        }
        if (s.effect_size > 0.0) members[static_cast<std::size_t>(it - out.begin())].push_back(&s);
    }
    for (std::size_t g = 0; g < out.size(); ++g) {
        auto& m = members[g];
        std::stable_sort(m.begin(), m.end(), [](const UnitGroupStats* a, const UnitGroupStats* b) {
            if (a->effect_size != b->effect_size) return a->effect_size > b->effect_size;
            return a->unit < b->unit;
        });
        for (std::size_t i = 0; i < m.size() && static_cast<Index>(i) < top_k; ++i) out[g].units.push_back(m[i]->unit);
    }
    return out;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_ANNOTATE_HPP
