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
//   write_signed_z_heatmap  gene sets x active units, z-score times the set's direction (red: the
//                           unit rises with the set's genes, blue: it falls), rows and columns
//                           clustered, a dot where q <= 0.05, bold set names for planted sets and
//                           sets with q <= 0.05 in some active unit
//   write_group_programmes_figure  gene sets x groups, programme score, the top sets of each group
//                           (group_programme_rows), dots for q <= 0.05 and larger ones for q <= 0.01
// With more than `max_sets` usable sets the heatmaps show the max_sets sets with the smallest
// q-value for some unit (ties: larger z-score, then collection order), in every heatmap alike.
// File names: figure_file_name() keeps letters, digits and . _ + - of a label, replaces every
// other character by '_' and makes names unique by a numeric suffix.

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
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

// Sets x active units: value(s, u) = z_score(s, u) x set_direction(s, u) for the sets `rows`
// (indices into in.set_names) and the units u with active_units[u]; see the top of this header.
// Returns what is shown as for write_impact_heatmap: rows = positions in `rows` in drawing order
// (top to bottom), columns = the active units ascending (drawn in cluster order), scaled =
// rows.size() x units, value / colour scale limit clipped to [-1, 1] (NaN for inactive units and
// missing values). Throws ArgumentError (naming write_signed_z_heatmap) when a flag count, matrix
// size or row index does not fit `in`.
inline HeatmapSelection write_signed_z_heatmap(const std::string& path, const Interpretation& in,
                                                     const std::vector<bool>& active_units,
                                                     const std::vector<Index>& rows) {
    const char* where = "write_signed_z_heatmap";
    const Index n_sets = in.z_score.rows(), n_units = in.z_score.cols();
    const auto shape = [](const MatrixD& m) { return std::to_string(m.rows()) + " x " + std::to_string(m.cols()); };
    if (in.set_direction.rows() != n_sets || in.set_direction.cols() != n_units)
        throw ArgumentError(where, "set_direction is " + shape(in.set_direction) + ", z_score " + shape(in.z_score));
    if (in.q_value.rows() != n_sets || in.q_value.cols() != n_units)
        throw ArgumentError(where, "q_value is " + shape(in.q_value) + ", z_score " + shape(in.z_score));
    if (static_cast<Index>(in.set_names.size()) != n_sets)
        throw ArgumentError(where, std::to_string(in.set_names.size()) + " set names for " + std::to_string(n_sets) +
                                       " z_score rows");
    if (static_cast<Index>(active_units.size()) != n_units)
        throw ArgumentError(where, std::to_string(active_units.size()) + " active-unit flags for " +
                                       std::to_string(n_units) + " units");
    for (const Index s : rows)
        if (s < 0 || s >= n_sets)
            throw ArgumentError(where, "set index " + std::to_string(s) + " is outside 0 .. " + std::to_string(n_sets - 1));
    std::vector<Index> units;
    for (Index u = 0; u < n_units; ++u)
        if (active_units[static_cast<std::size_t>(u)]) units.push_back(u);

    const auto n_rows = static_cast<Index>(rows.size()), n_cols = static_cast<Index>(units.size());
    MatrixD values(n_rows, n_cols), q(n_rows, n_cols);
    std::vector<bool> highlight(rows.size(), false);
    bool any_planted = false;
    for (Index i = 0; i < n_rows; ++i) {
        const Index s = rows[static_cast<std::size_t>(i)];
        const bool planted = static_cast<std::size_t>(s) < in.set_descriptions.size() &&
                             in.set_descriptions[static_cast<std::size_t>(s)] == "planted";
        any_planted = any_planted || planted;
        bool significant = false;
        for (Index k = 0; k < n_cols; ++k) {
            const Index u = units[static_cast<std::size_t>(k)];
            values(i, k) = in.z_score(s, u) * in.set_direction(s, u);
            q(i, k) = in.q_value(s, u);
            significant = significant || q(i, k) <= 0.05; // NaN never counts
        }
        highlight[static_cast<std::size_t>(i)] = planted || significant;
    }
    std::vector<std::string> column_labels;
    for (const Index u : units) column_labels.push_back(unit_label(u));

    SignedHeatmapOptions o;
    o.title = "Gene sets \xC3\x97 active units: signed z-score (dot: q \xE2\x89\xA4 0.05)"; // × and ≤
    o.subtitle = "red: the unit rises with the set's genes; blue: it falls";
    o.x_label = "Active unit (" + std::to_string(n_cols) + " of " + std::to_string(n_units) + ")";
    o.y_label = "Gene set (" + std::to_string(n_rows) + ")";
    o.scale_label = "signed z-score";
    o.mark_labels = {"q \xE2\x89\xA4 0.05"};
    o.highlight_label = std::string("bold: ") + (any_planted ? "planted set, or " : "") +
                        "q \xE2\x89\xA4 0.05 in some active unit";
    o.empty_message = n_cols == 0 ? "no active unit" : "no gene set";
    const SignedHeatmapSelection drawn =
        write_signed_heatmap(path, values, detail::select_names(in.set_names, rows), column_labels, highlight,
                             mark_levels(q, {0.05}), o);
    HeatmapSelection sel;
    sel.scaled = MatrixD::Constant(n_rows, n_units, std::numeric_limits<double>::quiet_NaN());
    for (Index i = 0; i < n_rows; ++i)
        for (Index k = 0; k < n_cols; ++k)
            if (!std::isnan(values(i, k)))
                sel.scaled(i, units[static_cast<std::size_t>(k)]) = std::clamp(values(i, k) / drawn.max_abs, -1.0, 1.0);
    sel.columns = units;
    sel.rows = drawn.rows;
    return sel;
}

// Rows of the group programmes figure (indices into the sets = rows of `score`, sets x groups),
// in drawing order: per group the top_k sets by score among those with score > 0 (rank 1 = the
// largest score; ties: lower set index), united; each set is drawn under the group where its rank
// is best (ties: the earlier group), groups in the given order, then by decreasing score there,
// then by set index. NaN scores never count.
inline std::vector<Index> group_programme_rows(const MatrixD& score, Index top_k) {
    if (top_k < 1) throw ArgumentError("group_programme_rows", "top_k must be >= 1, got " + std::to_string(top_k));
    const Index n_sets = score.rows(), n_groups = score.cols();
    const Index none = std::numeric_limits<Index>::max();
    std::vector<Index> best_rank(static_cast<std::size_t>(n_sets), none), best_group(static_cast<std::size_t>(n_sets), none);
    for (Index g = 0; g < n_groups; ++g) {
        std::vector<Index> positive;
        for (Index s = 0; s < n_sets; ++s)
            if (score(s, g) > 0.0) positive.push_back(s);
        std::stable_sort(positive.begin(), positive.end(), [&](Index a, Index b) { return score(a, g) > score(b, g); });
        for (std::size_t rank = 0; rank < positive.size(); ++rank) {
            const auto i = static_cast<std::size_t>(positive[rank]);
            if (static_cast<Index>(rank) < best_rank[i]) { // strict: an earlier group keeps a tie
                best_rank[i] = static_cast<Index>(rank);
                best_group[i] = g;
            }
        }
    }
    std::vector<Index> out;
    for (Index s = 0; s < n_sets; ++s)
        if (best_rank[static_cast<std::size_t>(s)] < top_k) out.push_back(s);
    std::stable_sort(out.begin(), out.end(), [&](Index a, Index b) {
        const Index ga = best_group[static_cast<std::size_t>(a)], gb = best_group[static_cast<std::size_t>(b)];
        if (ga != gb) return ga < gb;
        return score(a, ga) > score(b, gb);
    });
    return out;
}

// Gene sets x groups: colour = programme score (sets x groups, signed so that positive means
// "higher in the group"), a dot where q <= 0.05 and a larger one where q <= 0.01 (q_value: sets x
// groups; NaN never marks); rows from group_programme_rows(score, top_k), columns the groups in
// the given order. No groups or no positive score: a figure that says so. Throws ArgumentError
// (naming write_group_programmes_figure) on size mismatches and top_k < 1.
inline void write_group_programmes_figure(const std::string& path, const std::vector<std::string>& groups,
                                          const std::vector<std::string>& set_names, const MatrixD& score,
                                          const MatrixD& q_value, Index top_k = 3) {
    const char* where = "write_group_programmes_figure";
    if (score.rows() != static_cast<Index>(set_names.size()) || score.cols() != static_cast<Index>(groups.size()))
        throw ArgumentError(where, "the score matrix is " + std::to_string(score.rows()) + " x " +
                                       std::to_string(score.cols()) + " for " + std::to_string(set_names.size()) +
                                       " sets and " + std::to_string(groups.size()) + " groups");
    if (q_value.rows() != score.rows() || q_value.cols() != score.cols())
        throw ArgumentError(where, "the q-value matrix is " + std::to_string(q_value.rows()) + " x " +
                                       std::to_string(q_value.cols()) + ", the score matrix " +
                                       std::to_string(score.rows()) + " x " + std::to_string(score.cols()));
    if (top_k < 1) throw ArgumentError(where, "top_k must be >= 1, got " + std::to_string(top_k));
    const std::vector<Index> rows = group_programme_rows(score, top_k);

    SignedHeatmapOptions o;
    o.title = "Programmes that tell each group apart";
    o.subtitle = "top " + std::to_string(top_k) + " sets per group by score; each set under the group where it ranks best";
    o.x_label = "Group";
    o.y_label = "Gene set (" + std::to_string(rows.size()) + ")";
    o.scale_label = "score / largest score of the group (negative: set lower in the group)";
    o.mark_labels = {"q \xE2\x89\xA4 0.05", "q \xE2\x89\xA4 0.01"};
    o.empty_message = groups.empty() ? "no groups to compare" : "no set with a positive score in any group";
    o.cluster_rows = false;
    o.cluster_columns = false;
    o.cell_size = 18.0;
    const MatrixD shown = detail::select_rows(score, rows);
    for (Index i = 0; i < shown.size(); ++i) // the colour scale spans the values shown
        if (std::isfinite(shown.data()[i])) o.max_abs = std::max(o.max_abs, std::abs(shown.data()[i]));
    write_signed_heatmap(path, shown, detail::select_names(set_names, rows), groups, {},
                         mark_levels(detail::select_rows(q_value, rows), {0.05, 0.01}), o);
}

// representation_map.svg: PCA of the units x cells representation, coloured by group.
// Points drawn at most in representation_map.svg: a million points make an SVG of 70 MB that no
// viewer opens, and beyond a few ten thousand they only overdraw each other.
inline constexpr Index representation_map_points = 20000;

inline void write_representation_map(const std::string& path, const MatrixF& representation,
                                     const std::vector<std::string>& groups) {
    const int components = static_cast<int>(std::min<Index>(2, std::min(representation.rows(), representation.cols())));
    const PcaResult p = pca(representation, components); // over every cell
    const Index C = representation.cols();
    std::vector<Index> shown(static_cast<std::size_t>(C));
    std::iota(shown.begin(), shown.end(), Index(0));
    if (C > representation_map_points) { // a fixed-seed random sample, in cell order
        Rng rng(1);
        rng.shuffle(shown);
        shown.resize(static_cast<std::size_t>(representation_map_points));
        std::sort(shown.begin(), shown.end());
    }
    const Index n = static_cast<Index>(shown.size());
    Eigen::RowVectorXf x(n), y = Eigen::RowVectorXf::Zero(n);
    std::vector<std::string> g;
    for (Index i = 0; i < n; ++i) {
        const Index c = shown[static_cast<std::size_t>(i)];
        x(i) = p.scores(0, c);
        if (components > 1) y(i) = p.scores(1, c);
        if (!groups.empty()) g.push_back(groups[static_cast<std::size_t>(c)]);
    }
    ScatterOptions o;
    o.title = "Representation of " + std::to_string(C) + " cells (" + std::to_string(representation.rows()) +
              " units), principal components" +
              (n < C ? "; " + std::to_string(n) + " cells drawn at random" : std::string());
    o.x_label = pca_axis_label(1, p.explained_variance_ratio(0));
    o.y_label = components > 1 ? pca_axis_label(2, p.explained_variance_ratio(1)) : std::string();
    write_scatter(path, x, y, g, o);
}

} // namespace exsal

#endif // EXSAL_PIPELINE_RESULT_FIGURES_HPP
