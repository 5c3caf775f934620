#ifndef EXSAL_PIPELINE_RESULT_FIGURES_HPP
#define EXSAL_PIPELINE_RESULT_FIGURES_HPP

// The pipeline's figures (SVG):
//   heatmap.svg             gene sets x units, impact over all cells, each set min-max scaled
//                           across units; only units where some set exceeds 0.7 are shown
//                           (paper Fig. 1); sets ordered so that the picture is diagonal-like
//   heatmap_<group>.svg     the same for the group's cells, with the difference group minus rest
//                           overlaid as circles where the scaled impact exceeds 0.85
//   heatmap_<A>_vs_<B>.svg  one per --compare pair: impact in A, difference A minus B overlaid
//   representation_map.svg  the first two principal components of the representation, coloured
//                           by group
// With more than `max_sets` usable sets the heatmaps show the max_sets sets with the smallest
// q-value for some unit (ties: larger z-score, then collection order), in every heatmap alike.
// File names: figure_file_name() keeps letters, digits and . _ + - of a label, replaces every
// other character by '_' and makes names unique by a numeric suffix.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/interpret/pca.hpp"
#include "exsal/pipeline/result_tables.hpp"
#include "exsal/report/heatmap.hpp"
#include "exsal/report/scatter.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace exsal {

// "<prefix><label>.svg" with the label made safe for a file name (see the top of this header);
// `taken` holds the names handed out so far and receives the new one.
inline std::string figure_file_name(const std::string& prefix, const std::string& label, std::set<std::string>& taken) {
    std::string safe;
    for (const char ch : label) {
        const bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                          ch == '_' || ch == '+' || ch == '-';
        safe += keep ? ch : '_';
    }
    if (safe.size() > 100) safe.resize(100);
    if (safe.empty()) safe = "_";
    std::string name = prefix + safe + ".svg";
    for (int k = 2; taken.count(name); ++k) name = prefix + safe + "_" + std::to_string(k) + ".svg";
    taken.insert(name);
    return name;
}

// Rows (usable sets) the heatmaps show, in collection order: all of them when there are at most
// max_sets, else the max_sets sets with the smallest q-value over units (see the top).
inline std::vector<Index> heatmap_sets(const Interpretation& in, Index max_sets) {
    const Index S = in.q_value.rows();
    std::vector<Index> rows(static_cast<std::size_t>(S));
    std::iota(rows.begin(), rows.end(), Index{0});
    if (max_sets <= 0 || S <= max_sets) return rows;
    std::vector<double> best_q(static_cast<std::size_t>(S), 2.0), best_z(static_cast<std::size_t>(S), -std::numeric_limits<double>::infinity());
    for (Index s = 0; s < S; ++s)
        for (Index u = 0; u < in.q_value.cols(); ++u) {
            const auto i = static_cast<std::size_t>(s);
            if (in.q_value(s, u) < best_q[i]) best_q[i] = in.q_value(s, u); // NaN never wins
            if (in.z_score(s, u) > best_z[i]) best_z[i] = in.z_score(s, u);
        }
    std::stable_sort(rows.begin(), rows.end(), [&](Index a, Index b) {
        const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
        if (best_q[ia] != best_q[ib]) return best_q[ia] < best_q[ib];
        return best_z[ia] > best_z[ib];
    });
    rows.resize(static_cast<std::size_t>(max_sets));
    std::sort(rows.begin(), rows.end());
    return rows;
}

namespace detail {

inline MatrixD select_rows(const MatrixD& m, const std::vector<Index>& rows) {
    MatrixD out(static_cast<Index>(rows.size()), m.cols());
    for (std::size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Index>(i)) = m.row(rows[i]);
    return out;
}

inline std::vector<std::string> select_names(const std::vector<std::string>& names, const std::vector<Index>& rows) {
    std::vector<std::string> out;
    for (Index r : rows) out.push_back(names[static_cast<std::size_t>(r)]);
    return out;
}

inline HeatmapOptions pipeline_heatmap_options(const std::string& title, Index n_sets) {
    HeatmapOptions o;
    o.title = title;
    o.order_rows_by_argmax = true;
    o.y_label = "Gene set (" + std::to_string(n_sets) + ")";
    return o;
}

} // namespace detail

// heatmap.svg: impact over all cells of the sets `rows` (heatmap_sets). Returns what is shown.
inline HeatmapSelection write_impact_heatmap(const std::string& path, const Interpretation& in,
                                             const std::vector<Index>& rows) {
    const auto options = detail::pipeline_heatmap_options("Gene-set impact per representation unit, all cells",
                                                          static_cast<Index>(rows.size()));
    return write_heatmap(path, detail::select_rows(in.impact, rows), detail::select_names(in.set_names, rows),
                         unit_labels(in.impact.cols()), options);
}

// heatmap_<group>.svg: impact in the group with the difference (first minus second) overlaid.
inline HeatmapSelection write_difference_heatmap(const std::string& path, const Interpretation& in,
                                                 const std::vector<Index>& rows, const std::string& title,
                                                 const MatrixD& impact_in, const MatrixD& impact_other,
                                                 const std::string& difference_label) {
    auto options = detail::pipeline_heatmap_options(title, static_cast<Index>(rows.size()));
    options.difference_label = difference_label;
    const MatrixD impact = detail::select_rows(impact_in, rows);
    const MatrixD difference = impact - detail::select_rows(impact_other, rows); // in minus other
    return write_group_heatmap(path, impact, difference, detail::select_names(in.set_names, rows),
                               unit_labels(in.impact.cols()), options);
}

// representation_map.svg: PCA of the units x cells representation, coloured by group.
inline void write_representation_map(const std::string& path, const MatrixF& representation,
                                     const std::vector<std::string>& groups) {
    const int components = static_cast<int>(std::min<Index>(2, std::min(representation.rows(), representation.cols())));
    const PcaResult p = pca(representation, components);
    ScatterOptions o;
    o.title = "Representation of " + std::to_string(representation.cols()) + " cells (" +
              std::to_string(representation.rows()) + " units), principal components";
    o.x_label = pca_axis_label(1, p.explained_variance_ratio(0));
    if (components > 1) {
        o.y_label = pca_axis_label(2, p.explained_variance_ratio(1));
        write_scatter(path, p.scores.row(0), p.scores.row(1), groups, o);
    } else {
        o.y_label = "";
        write_scatter(path, p.scores.row(0), VectorF::Zero(representation.cols()).transpose(), groups, o);
    }
}

} // namespace exsal

#endif // EXSAL_PIPELINE_RESULT_FIGURES_HPP
