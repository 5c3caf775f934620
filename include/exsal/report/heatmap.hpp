#ifndef EXSAL_REPORT_HEATMAP_HPP
#define EXSAL_REPORT_HEATMAP_HPP

// The paper's heatmap (Kinalis et al. 2019, Fig. 1): gene sets (rows) x representation units
// (columns). Each set's impacts are min-max scaled across the units; only units where some set's
// scaled impact exceeds a threshold (0.7) are shown. The group variant overlays, where the scaled
// impact exceeds a second threshold (0.85), a circle coloured and sized by the group difference
// (blue = negative, red = positive; the caller decides the sign, the default legend says
// "group - rest").
//
// Rules (also what select_heatmap returns):
//  - scaling: scaled(s, u) = (impact(s, u) - min_s) / (max_s - min_s) over the finite values of
//    row s; a row whose range is 0 (or below 1e-12 of its largest magnitude) scales to zeros;
//    NaN impacts stay NaN (drawn grey, never selected);
//  - selection: unit u is shown iff scaled(s, u) > threshold for some set s; with max_columns > 0
//    and more units passing, the units with the most sets above the threshold are kept (ties:
//    larger sum of scaled values, then lower index); shown units keep their input order;
//  - rows: input order, or with order_rows_by_argmax sorted by the shown column holding the row's
//    largest scaled value (ties: larger value first, then input order); rows with no shown value
//    above the threshold go last in input order. This gives a diagonal-like picture.
//
// The signed heatmap (make_signed_heatmap) draws signed values, e.g. z-scores, as they are:
//  - colour: blue (negative), white (0), red (positive), symmetric and clipped at +-max_abs, by
//    default signed_scale_limit(values) = max(2, 98th percentile of |finite values|); infinite
//    values get the full colour, NaN cells are grey;
//  - order: rows and columns by cluster_order (average linkage on 1 - Pearson correlation,
//    cluster.hpp), or as given;
//  - optional marks: a dot per cell of mark level k >= 1 (mark_levels turns q-values and
//    thresholds into levels; a higher level draws a larger dot), and bold labels for highlighted
//    rows.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/report/cluster.hpp"
#include "exsal/report/colour.hpp"
#include "exsal/report/format.hpp"
#include "exsal/report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace exsal {

struct HeatmapOptions {
    std::string title = "Gene-set impact per representation unit";
    std::string x_label = "Representation unit";
    std::string y_label = "Gene set";
    std::string scale_label = "Scaled impact";
    std::string difference_label = "Group \xE2\x88\x92 rest"; // "Group − rest"
    double threshold = 0.7;           // a unit is shown iff some set's scaled impact > threshold
    Index max_columns = 0;            // at most this many units (0 = no limit), see the header comment
    double overlay_threshold = 0.85;  // group variant: a marker where the scaled impact > this
    bool order_rows_by_argmax = false; // false: sets in input order
    double cell_size = 14.0;          // px per cell (square)
    double font_size = 11.0;          // px, labels; the title is 1.3 times larger
    bool tooltips = true;             // a <title> per cell: set, unit, impact, scaled value
};

// What the figure shows, for the pipeline to report. (write_signed_z_heatmap fills it too, with
// scaled = signed value / colour scale limit in [-1, 1]; see result_figures.hpp.)
struct HeatmapSelection {
    MatrixD scaled;             // sets x units, each row min-max scaled to [0, 1] (NaN kept)
    std::vector<Index> columns; // shown units (indices into the input columns), ascending
    std::vector<Index> rows;    // all sets in drawing order, top to bottom
};

struct Heatmap {
    SvgDocument svg;
    HeatmapSelection selection;
};

// Each row min-max scaled across its columns (rules in the header comment).
template <typename Derived>
MatrixD scale_rows_min_max(const Eigen::MatrixBase<Derived>& values) {
    MatrixD scaled = values.template cast<double>();
    for (Index s = 0; s < scaled.rows(); ++s) {
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (Index u = 0; u < scaled.cols(); ++u) {
            const double v = scaled(s, u);
            if (std::isnan(v)) continue;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double range = hi - lo;
        const bool constant = !(range > 1e-12 * std::max(std::abs(lo), std::abs(hi)));
        for (Index u = 0; u < scaled.cols(); ++u) {
            double& v = scaled(s, u);
            if (std::isnan(v)) continue;
            v = constant ? 0.0 : std::clamp((v - lo) / range, 0.0, 1.0);
        }
    }
    return scaled;
}

// Scaling, column selection and row order of the heatmap for `impacts` (sets x units).
template <typename Derived>
HeatmapSelection select_heatmap(const Eigen::MatrixBase<Derived>& impacts, const HeatmapOptions& options = {}) {
    HeatmapSelection sel;
    sel.scaled = scale_rows_min_max(impacts);
    const MatrixD& scaled = sel.scaled;
    const Index n_sets = scaled.rows(), n_units = scaled.cols();

    // Per unit: number of sets above the threshold and sum of scaled values.
    std::vector<Index> above(static_cast<std::size_t>(n_units), 0);
    std::vector<double> total(static_cast<std::size_t>(n_units), 0.0);
    for (Index u = 0; u < n_units; ++u)
        for (Index s = 0; s < n_sets; ++s) {
            const double v = scaled(s, u);
            if (v > options.threshold) ++above[static_cast<std::size_t>(u)];
            if (!std::isnan(v)) total[static_cast<std::size_t>(u)] += v;
        }
    for (Index u = 0; u < n_units; ++u)
        if (above[static_cast<std::size_t>(u)] > 0) sel.columns.push_back(u);
    if (options.max_columns > 0 && static_cast<Index>(sel.columns.size()) > options.max_columns) {
        std::stable_sort(sel.columns.begin(), sel.columns.end(), [&](Index a, Index b) {
            const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
            if (above[ia] != above[ib]) return above[ia] > above[ib];
            if (total[ia] != total[ib]) return total[ia] > total[ib];
            return a < b;
        });
        sel.columns.resize(static_cast<std::size_t>(options.max_columns));
        std::sort(sel.columns.begin(), sel.columns.end());
    }

    sel.rows.resize(static_cast<std::size_t>(n_sets));
    std::iota(sel.rows.begin(), sel.rows.end(), Index{0});
    if (options.order_rows_by_argmax) {
        // Per set: position (among shown columns) of its largest scaled value, and that value.
        std::vector<Index> position(static_cast<std::size_t>(n_sets), std::numeric_limits<Index>::max());
        std::vector<double> best(static_cast<std::size_t>(n_sets), -1.0);
        for (Index s = 0; s < n_sets; ++s)
            for (std::size_t k = 0; k < sel.columns.size(); ++k) {
                const double v = scaled(s, sel.columns[k]);
                if (v > options.threshold && v > best[static_cast<std::size_t>(s)]) {
                    best[static_cast<std::size_t>(s)] = v;
                    position[static_cast<std::size_t>(s)] = static_cast<Index>(k);
                }
            }
        std::stable_sort(sel.rows.begin(), sel.rows.end(), [&](Index a, Index b) {
            const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
            if (position[ia] != position[ib]) return position[ia] < position[ib];
            return best[ia] > best[ib];
        });
    }
    return sel;
}

namespace detail {

struct HeatmapLayout {
    double pad = 12.0;             // px, outer margin
    double cell = 0;               // px, side of a cell
    double label_font = 0;         // px, set and unit labels
    double axis_font = 0;          // px, axis titles and colour bar labels
    double title_font = 0;         // px
    double grid_x = 0, grid_y = 0; // top-left corner of the cell grid
    double grid_w = 0, grid_h = 0; // grid size
    double unit_label_w = 0;       // longest unit label (drawn rotated under the grid)
    double x_title_centre = 0;     // x of the centre of the x-axis title
    double bar_x = 0;              // left edge of the colour bars
    double bar_w = 14;             // colour bar width
    double bar_h = 0;              // colour bar height
    double bar_label_h = 0;        // room above each colour bar for its label
    double bar_gap = 0;            // between the two colour bars
    double width = 0, height = 0;  // document size
};

// Drawn in place of the cells when no unit passes the threshold.
inline const char* heatmap_empty_message() { return "no unit above the threshold"; }

inline void check_heatmap_arguments(const char* where, Index rows, Index cols, const std::vector<std::string>& set_names,
                                    const std::vector<std::string>& unit_labels, const HeatmapOptions& options) {
    if (rows < 1 || cols < 1) throw ArgumentError(where, "the impact matrix is empty");
    if (static_cast<Index>(set_names.size()) != rows)
        throw ArgumentError(where, std::to_string(set_names.size()) + " set names for " + std::to_string(rows) +
                                       " matrix rows");
    if (static_cast<Index>(unit_labels.size()) != cols)
        throw ArgumentError(where, std::to_string(unit_labels.size()) + " unit labels for " + std::to_string(cols) +
                                       " matrix columns");
    if (!(options.threshold >= 0.0 && options.threshold < 1.0))
        throw ArgumentError(where, "threshold must be in [0, 1)");
    if (!(options.overlay_threshold >= 0.0 && options.overlay_threshold < 1.0))
        throw ArgumentError(where, "overlay_threshold must be in [0, 1)");
    if (options.max_columns < 0) throw ArgumentError(where, "max_columns must be >= 0 (0 = no limit)");
    if (!(std::isfinite(options.cell_size) && options.cell_size > 0))
        throw ArgumentError(where, "cell_size must be finite and positive");
    if (!(std::isfinite(options.font_size) && options.font_size > 0))
        throw ArgumentError(where, "font_size must be finite and positive");
}

template <typename Derived>
void check_no_infinity(const char* where, const char* what, const Eigen::MatrixBase<Derived>& m) {
    for (Index j = 0; j < m.cols(); ++j)
        for (Index i = 0; i < m.rows(); ++i)
            if (std::isinf(static_cast<double>(m(i, j))))
                throw ArgumentError(where, std::string(what) + " (" + std::to_string(i) + ", " + std::to_string(j) +
                                               ") is infinite");
}

// A vertical colour bar at (x, y), size w x h, value `hi` at the top and `lo` at the bottom,
// with tick labels right of it and `label` above it.
template <typename ColourMap>
void draw_colour_bar(SvgDocument& svg, double x, double y, double w, double h, double lo, double hi,
                     const std::vector<double>& ticks, const std::string& label, double font, ColourMap colour,
                     int tick_digits) {
    svg.text(x, y - 0.9 * font, label, {font, "start", 0.0, false, true});
    svg.begin_group({"", 0.0, 0.0, true});
    const int steps = 64;
    for (int k = 0; k < steps; ++k) {
        // Step k covers [k, k + 1] / steps of the range from the bottom; overlap 0.5 px against seams.
        const double t0 = static_cast<double>(k) / steps;
        const double top = y + h * (1.0 - static_cast<double>(k + 1) / steps);
        const double value = lo + (hi - lo) * (t0 + 0.5 / steps);
        svg.rect(x, top, w, h / steps + (k + 1 < steps ? 0.5 : 0.0), {colour(value).hex()});
    }
    svg.end_group();
    svg.rect(x, y, w, h, {"none", "#444444", 0.6});
    for (const double t : ticks) {
        const double ty = y + h * (1.0 - (t - lo) / (hi - lo));
        svg.line(x + w, ty, x + w + 4, ty, {"none", "#444444", 0.8});
        svg.text(x + w + 6, ty, with_minus_sign(tick_digits < 0 ? format_fixed(t, 2) : format_significant(t, tick_digits)),
                 {font * 0.9, "start", 0.0, true});
    }
}

template <typename DerivedI, typename DerivedD>
void check_heatmap_values(const char* where, const Eigen::MatrixBase<DerivedI>& impacts, const DerivedD* differences) {
    check_no_infinity(where, "impact", impacts);
    if (!differences) return;
    if (differences->rows() != impacts.rows() || differences->cols() != impacts.cols())
        throw ArgumentError(where, "the difference matrix is " + std::to_string(differences->rows()) + " x " +
                                       std::to_string(differences->cols()) + ", the impact matrix " +
                                       std::to_string(impacts.rows()) + " x " + std::to_string(impacts.cols()));
    check_no_infinity(where, "difference", *differences);
}

// Margins from the longest labels (estimated text widths); colour bars right of the grid, one for
// the scaled impact and, in the group variant, one for the difference, and not under the x-axis
// title when the grid is narrower than that title.
inline HeatmapLayout heatmap_layout(const HeatmapSelection& sel, const std::vector<std::string>& set_names,
                                    const std::vector<std::string>& unit_labels, const HeatmapOptions& options,
                                    bool group_variant) {
    HeatmapLayout L;
    const double pad = L.pad, cs = options.cell_size;
    L.cell = cs;
    L.label_font = std::min(options.font_size, 0.85 * cs);
    L.title_font = 1.3 * options.font_size;
    L.axis_font = options.font_size;
    const double axis_font = L.axis_font;
    double set_w = 0.0;
    for (const Index s : sel.rows) set_w = std::max(set_w, estimate_text_width(set_names[static_cast<std::size_t>(s)], L.label_font));
    for (const Index u : sel.columns)
        L.unit_label_w = std::max(L.unit_label_w, estimate_text_width(unit_labels[static_cast<std::size_t>(u)], L.label_font));
    const double y_title_w = options.y_label.empty() ? 0.0 : 1.4 * axis_font;
    L.grid_x = pad + y_title_w + set_w + 6.0;
    L.grid_y = pad + 1.6 * L.title_font + 0.6 * axis_font;
    const auto n_cols = static_cast<double>(sel.columns.size());
    L.grid_w = n_cols > 0 ? n_cols * cs : estimate_text_width(heatmap_empty_message(), L.label_font) + 8.0;
    L.grid_h = static_cast<double>(sel.rows.size()) * cs;
    const double x_title_h = options.x_label.empty() ? 0.0 : 1.6 * axis_font;
    const double bottom = 6.0 + L.unit_label_w + 6.0 + x_title_h + pad;

    const double x_title_half = 0.5 * estimate_text_width(options.x_label, axis_font);
    L.x_title_centre = std::max(L.grid_x + 0.5 * L.grid_w, pad + x_title_half);
    L.bar_x = std::max(L.grid_x + L.grid_w + 24.0, L.x_title_centre + x_title_half + 16.0);
    const int n_bars = group_variant ? 2 : 1;
    L.bar_label_h = 1.4 * axis_font;
    L.bar_gap = 2.2 * axis_font;
    L.bar_h = std::clamp((L.grid_h - (n_bars - 1) * (L.bar_gap + L.bar_label_h)) / n_bars, 80.0, 220.0);
    double legend_w = L.bar_w + 6.0 + estimate_text_width("-0.000000", 0.9 * axis_font);
    legend_w = std::max({legend_w, estimate_text_width(options.scale_label, axis_font, true) + 4.0,
                         group_variant ? estimate_text_width(options.difference_label, axis_font, true) + 4.0 : 0.0});
    const double legend_h = n_bars * (L.bar_h + L.bar_label_h) + (n_bars - 1) * L.bar_gap;
    L.width = L.bar_x + legend_w + pad;
    L.width = std::max(L.width, estimate_text_width(options.title, L.title_font, true) + 2.0 * pad);
    L.height = std::max(L.grid_y + L.grid_h + bottom, L.grid_y + L.bar_label_h + legend_h + pad);
    return L;
}

// The document title, and the title centred over the grid, shifted so that it stays inside the canvas.
inline void draw_heatmap_title(SvgDocument& svg, const HeatmapLayout& L, const std::string& title) {
    svg.set_title(title);
    if (title.empty()) return;
    const double half = 0.5 * estimate_text_width(title, L.title_font, true);
    const double x = std::clamp(L.grid_x + 0.5 * L.grid_w, L.pad + half, std::max(L.pad + half, L.width - L.pad - half));
    svg.text(x, L.pad + L.title_font, title, {L.title_font, "middle", 0.0, false, true});
}

// A cell per shown (set, unit) coloured by the scaled impact (grey for NaN), and the grid's frame.
template <typename DerivedI>
void draw_heatmap_cells(SvgDocument& svg, const HeatmapLayout& L, const HeatmapSelection& S,
                        const Eigen::MatrixBase<DerivedI>& impacts, const std::vector<std::string>& set_names,
                        const std::vector<std::string>& unit_labels, bool tooltips) {
    const double cs = L.cell;
    svg.begin_group({"cells", 0.0, 0.0, true});
    for (std::size_t r = 0; r < S.rows.size(); ++r) {
        const Index s = S.rows[r];
        for (std::size_t k = 0; k < S.columns.size(); ++k) {
            const Index u = S.columns[k];
            const double v = S.scaled(s, u);
            const std::string colour = std::isnan(v) ? "#d9d9d9" : viridis(v).hex();
            std::string tip;
            if (tooltips)
                tip = set_names[static_cast<std::size_t>(s)] + " / " + unit_labels[static_cast<std::size_t>(u)] +
                      ": impact " + format_significant(static_cast<double>(impacts(s, u)), 4) + ", scaled " +
                      format_fixed(v, 3);
            svg.rect(L.grid_x + static_cast<double>(k) * cs, L.grid_y + static_cast<double>(r) * cs, cs, cs, {colour}, tip);
        }
    }
    svg.end_group();
    if (S.columns.empty())
        svg.text(L.grid_x + 4.0, L.grid_y + 0.5 * L.grid_h, heatmap_empty_message(), {L.label_font, "start", 0.0, true});
    svg.rect(L.grid_x, L.grid_y, L.grid_w, L.grid_h, {"none", "#444444", 0.6});
}

// The largest |difference| among the cells that get a marker (0 when none).
template <typename DerivedD>
double largest_marked_difference(const HeatmapSelection& S, const DerivedD& differences, double overlay_threshold) {
    double max_abs = 0.0;
    for (const Index s : S.rows)
        for (const Index u : S.columns)
            if (S.scaled(s, u) > overlay_threshold && !std::isnan(static_cast<double>(differences(s, u))))
                max_abs = std::max(max_abs, std::abs(static_cast<double>(differences(s, u))));
    return max_abs;
}

// A marker per cell whose scaled impact exceeds the overlay threshold, sized and coloured by the
// group difference relative to `max_abs` (the largest marked |difference|, or 0).
template <typename DerivedD>
void draw_group_differences(SvgDocument& svg, const HeatmapLayout& L, const HeatmapSelection& S,
                            const DerivedD& differences, double max_abs, const std::vector<std::string>& set_names,
                            const std::vector<std::string>& unit_labels, const HeatmapOptions& options) {
    const double cs = L.cell;
    const double scale = max_abs > 0.0 ? max_abs : 1.0;
    svg.begin_group({"group-differences"});
    for (std::size_t r = 0; r < S.rows.size(); ++r) {
        const Index s = S.rows[r];
        for (std::size_t k = 0; k < S.columns.size(); ++k) {
            const Index u = S.columns[k];
            const double d = static_cast<double>(differences(s, u));
            if (!(S.scaled(s, u) > options.overlay_threshold) || std::isnan(d)) continue;
            // radius from 0.18 to 0.45 cell by |d| / max |d|; colour by d / max |d|.
            const double t = d / scale;
            std::string tip;
            if (options.tooltips)
                tip = set_names[static_cast<std::size_t>(s)] + " / " + unit_labels[static_cast<std::size_t>(u)] +
                      ": difference " + format_significant(d, 4);
            svg.circle(L.grid_x + (static_cast<double>(k) + 0.5) * cs, L.grid_y + (static_cast<double>(r) + 0.5) * cs,
                       cs * (0.18 + 0.27 * std::abs(t)), {blue_white_red(t).hex(), "#000000", 0.6}, tip);
        }
    }
    svg.end_group();
}

// Set names left of the rows, unit labels under the columns (rotated), and the axis titles.
inline void draw_heatmap_labels(SvgDocument& svg, const HeatmapLayout& L, const HeatmapSelection& S,
                                const std::vector<std::string>& set_names, const std::vector<std::string>& unit_labels,
                                const HeatmapOptions& options) {
    const double cs = L.cell, axis_font = L.axis_font;
    svg.begin_group({"labels"});
    for (std::size_t r = 0; r < S.rows.size(); ++r)
        svg.text(L.grid_x - 6.0, L.grid_y + (static_cast<double>(r) + 0.5) * cs,
                 set_names[static_cast<std::size_t>(S.rows[r])], {L.label_font, "end", 0.0, true});
    for (std::size_t k = 0; k < S.columns.size(); ++k)
        svg.text(L.grid_x + (static_cast<double>(k) + 0.5) * cs, L.grid_y + L.grid_h + 6.0,
                 unit_labels[static_cast<std::size_t>(S.columns[k])], {L.label_font, "end", -90.0, true});
    if (!options.x_label.empty())
        svg.text(L.x_title_centre, L.grid_y + L.grid_h + 6.0 + L.unit_label_w + 6.0 + axis_font, options.x_label,
                 {axis_font, "middle"});
    if (!options.y_label.empty())
        svg.text(L.pad + 0.5 * axis_font, L.grid_y + 0.5 * L.grid_h, options.y_label, {axis_font, "middle", -90.0, true});
    svg.end_group();
}

// The colour bars: scaled impact on [0, 1], and in the group variant the difference on [-m, m]
// with m = max_abs (1 when no marker was drawn).
inline void draw_heatmap_legend(SvgDocument& svg, const HeatmapLayout& L, const HeatmapOptions& options,
                                bool group_variant, double max_abs) {
    svg.begin_group({"legend"});
    double bar_y = L.grid_y + L.bar_label_h;
    draw_colour_bar(svg, L.bar_x, bar_y, L.bar_w, L.bar_h, 0.0, 1.0, {0.0, 0.25, 0.5, 0.75, 1.0}, options.scale_label,
                    L.axis_font, [](double v) { return viridis(v); }, -1);
    if (group_variant) {
        bar_y += L.bar_h + L.bar_gap + L.bar_label_h;
        const double m = max_abs > 0.0 ? max_abs : 1.0;
        draw_colour_bar(svg, L.bar_x, bar_y, L.bar_w, L.bar_h, -m, m, {-m, -0.5 * m, 0.0, 0.5 * m, m},
                        options.difference_label, L.axis_font, [m](double v) { return blue_white_red(v / m); }, 3);
    }
    svg.end_group();
}

template <typename DerivedI, typename DerivedD>
Heatmap render_heatmap(const char* where, const Eigen::MatrixBase<DerivedI>& impacts, const DerivedD* differences,
                       const std::vector<std::string>& set_names, const std::vector<std::string>& unit_labels,
                       const HeatmapOptions& options) {
    check_heatmap_arguments(where, impacts.rows(), impacts.cols(), set_names, unit_labels, options);
    check_heatmap_values(where, impacts, differences);
    HeatmapSelection sel = select_heatmap(impacts, options);
    const HeatmapLayout L = heatmap_layout(sel, set_names, unit_labels, options, differences != nullptr);

    Heatmap out{SvgDocument(L.width, L.height), std::move(sel)};
    SvgDocument& svg = out.svg;
    const HeatmapSelection& S = out.selection;
    draw_heatmap_title(svg, L, options.title);
    draw_heatmap_cells(svg, L, S, impacts, set_names, unit_labels, options.tooltips);
    double max_abs = 0.0;
    if (differences) {
        max_abs = largest_marked_difference(S, *differences, options.overlay_threshold);
        draw_group_differences(svg, L, S, *differences, max_abs, set_names, unit_labels, options);
    }
    draw_heatmap_labels(svg, L, S, set_names, unit_labels, options);
    draw_heatmap_legend(svg, L, options, differences != nullptr, max_abs);
    return out;
}

} // namespace detail

// The heatmap of `impacts` (sets x units; float or double) with one name per set and one label
// per unit. Throws ArgumentError (naming make_heatmap) on size mismatches, infinite impacts or
// invalid options.
template <typename Derived>
Heatmap make_heatmap(const Eigen::MatrixBase<Derived>& impacts, const std::vector<std::string>& set_names,
                     const std::vector<std::string>& unit_labels, const HeatmapOptions& options = {}) {
    return detail::render_heatmap<Derived, MatrixD>("make_heatmap", impacts, nullptr, set_names, unit_labels, options);
}

// The group variant: `differences` (sets x units, e.g. group minus rest) drawn as markers where
// the scaled impact exceeds options.overlay_threshold, with a second colour bar.
template <typename DerivedI, typename DerivedD>
Heatmap make_group_heatmap(const Eigen::MatrixBase<DerivedI>& impacts, const Eigen::MatrixBase<DerivedD>& differences,
                           const std::vector<std::string>& set_names, const std::vector<std::string>& unit_labels,
                           const HeatmapOptions& options = {}) {
    const MatrixD diff = differences.template cast<double>();
    return detail::render_heatmap<DerivedI, MatrixD>("make_group_heatmap", impacts, &diff, set_names, unit_labels,
                                                     options);
}

// make_heatmap + write (atomically); returns what was shown.
template <typename Derived>
HeatmapSelection write_heatmap(const std::string& path, const Eigen::MatrixBase<Derived>& impacts,
                               const std::vector<std::string>& set_names, const std::vector<std::string>& unit_labels,
                               const HeatmapOptions& options = {}) {
    Heatmap h = make_heatmap(impacts, set_names, unit_labels, options);
    h.svg.write(path);
    return std::move(h.selection);
}

template <typename DerivedI, typename DerivedD>
HeatmapSelection write_group_heatmap(const std::string& path, const Eigen::MatrixBase<DerivedI>& impacts,
                                     const Eigen::MatrixBase<DerivedD>& differences,
                                     const std::vector<std::string>& set_names,
                                     const std::vector<std::string>& unit_labels, const HeatmapOptions& options = {}) {
    Heatmap h = make_group_heatmap(impacts, differences, set_names, unit_labels, options);
    h.svg.write(path);
    return std::move(h.selection);
}

// ---- Signed heatmap ----

struct SignedHeatmapOptions {
    std::string title = "Signed z-score";
    std::string subtitle;                 // a second line under the title, empty = none
    std::string x_label = "Representation unit";
    std::string y_label = "Gene set";
    std::string scale_label = "signed z-score";
    std::vector<std::string> mark_labels = {"q \xE2\x89\xA4 0.05"}; // legend text of mark levels 1, 2, 3 ("q ≤ 0.05")
    std::string highlight_label;          // legend line explaining the bold row labels, empty = none
    std::string empty_message = "nothing to show"; // drawn instead of the grid when there are no rows or columns
    double max_abs = 0.0;                 // colour scale clipped at +-max_abs; 0 = signed_scale_limit(values)
    bool cluster_rows = true;             // false: rows in input order
    bool cluster_columns = true;          // false: columns in input order
    double cell_size = 14.0;              // px per cell (square)
    double font_size = 11.0;              // px, labels; the title is 1.3 times larger
    bool tooltips = true;                 // a <title> per cell: row, column, value, mark
};

// rows x columns mark levels: 0 = no mark, 1 .. 3 = a dot, larger for higher levels.
using MarkLevels = Matrix<int>;

// What the signed heatmap shows.
struct SignedHeatmapSelection {
    std::vector<Index> rows;    // input rows in drawing order, top to bottom
    std::vector<Index> columns; // input columns in drawing order, left to right
    double max_abs = 0.0;       // colour scale limit: |value| >= max_abs gets the full colour
};

struct SignedHeatmap {
    SvgDocument svg;
    SignedHeatmapSelection selection;
};

// Default colour scale limit: max(floor, the `quantile` quantile of |finite values|), the quantile
// linearly interpolated between order statistics at position quantile x (n - 1); `floor` when
// there are no finite values.
inline double signed_scale_limit(const MatrixD& values, double quantile = 0.98, double floor = 2.0) {
    if (!(quantile >= 0.0 && quantile <= 1.0)) throw ArgumentError("signed_scale_limit", "quantile must be in [0, 1]");
    std::vector<double> a;
    for (Index j = 0; j < values.cols(); ++j)
        for (Index i = 0; i < values.rows(); ++i)
            if (std::isfinite(values(i, j))) a.push_back(std::abs(values(i, j)));
    if (a.empty()) return floor;
    std::sort(a.begin(), a.end());
    const double position = quantile * static_cast<double>(a.size() - 1);
    const auto k = static_cast<std::size_t>(position);
    const double f = position - static_cast<double>(k);
    const double q = k + 1 < a.size() ? (1.0 - f) * a[k] + f * a[k + 1] : a[k];
    return std::max(floor, q);
}

// level(i, j) = number of thresholds t with q(i, j) <= t (NaN q: 0); e.g. thresholds {0.05, 0.01}
// give 1 for 0.01 < q <= 0.05 and 2 for q <= 0.01.
inline MarkLevels mark_levels(const MatrixD& q, const std::vector<double>& thresholds) {
    for (const double t : thresholds)
        if (std::isnan(t)) throw ArgumentError("mark_levels", "a threshold is NaN");
    if (thresholds.size() > 3) throw ArgumentError("mark_levels", "at most 3 thresholds (mark levels 1 .. 3)");
    MarkLevels levels = MarkLevels::Zero(q.rows(), q.cols());
    for (Index j = 0; j < q.cols(); ++j)
        for (Index i = 0; i < q.rows(); ++i)
            for (const double t : thresholds) levels(i, j) += q(i, j) <= t ? 1 : 0; // NaN never marks
    return levels;
}

namespace detail {

// Dot radius of mark level k >= 1 in a cell of size cs: 0.15, 0.26, 0.37 cell.
inline double mark_radius(int level, double cs) { return cs * (0.15 + 0.11 * static_cast<double>(level - 1)); }

// Ticks of a symmetric colour bar [-m, m] drawn `bar_h` px tall with labels of `font` px: 0 and
// the multiples of the smallest 1-2-5 step at least 2.2 fonts apart, plus +-m when at least 1.6
// fonts beyond the outermost multiple.
inline std::vector<double> symmetric_ticks(double m, double bar_h, double font) {
    const double px_per_unit = bar_h / (2.0 * m);
    double step = std::pow(10.0, std::floor(std::log10(2.2 * font / px_per_unit)));
    for (const double f : {1.0, 2.0, 5.0, 10.0})
        if (f * step * px_per_unit >= 2.2 * font) {
            step *= f;
            break;
        }
    std::vector<double> ticks;
    const auto k_max = static_cast<long>(std::floor(m / step * (1.0 + 1e-9)));
    for (long k = -k_max; k <= k_max; ++k) ticks.push_back(static_cast<double>(k) * step);
    if ((m - static_cast<double>(k_max) * step) * px_per_unit >= 1.6 * font) {
        ticks.insert(ticks.begin(), -m);
        ticks.push_back(m);
    }
    return ticks;
}

inline void check_signed_heatmap_arguments(const char* where, const MatrixD& values,
                                           const std::vector<std::string>& row_labels,
                                           const std::vector<std::string>& column_labels,
                                           const std::vector<bool>& highlight, const MarkLevels& marks,
                                           const SignedHeatmapOptions& options) {
    const Index rows = values.rows(), cols = values.cols();
    if (static_cast<Index>(row_labels.size()) != rows)
        throw ArgumentError(where, std::to_string(row_labels.size()) + " row labels for " + std::to_string(rows) +
                                       " matrix rows");
    if (static_cast<Index>(column_labels.size()) != cols)
        throw ArgumentError(where, std::to_string(column_labels.size()) + " column labels for " +
                                       std::to_string(cols) + " matrix columns");
    if (!highlight.empty() && static_cast<Index>(highlight.size()) != rows)
        throw ArgumentError(where, std::to_string(highlight.size()) + " highlight flags for " + std::to_string(rows) +
                                       " matrix rows (or none)");
    if (marks.size() > 0) { // empty = no marks
        if (marks.rows() != rows || marks.cols() != cols)
            throw ArgumentError(where, "the mark matrix is " + std::to_string(marks.rows()) + " x " +
                                           std::to_string(marks.cols()) + ", the value matrix " + std::to_string(rows) +
                                           " x " + std::to_string(cols));
        if (marks.minCoeff() < 0 || marks.maxCoeff() > 3) throw ArgumentError(where, "mark levels must be in 0 .. 3");
    }
    if (options.mark_labels.size() > 3) throw ArgumentError(where, "at most 3 mark labels (levels 1 .. 3)");
    if (!(std::isfinite(options.max_abs) && options.max_abs >= 0.0))
        throw ArgumentError(where, "max_abs must be finite and >= 0 (0 = automatic)");
    if (!(std::isfinite(options.cell_size) && options.cell_size > 0))
        throw ArgumentError(where, "cell_size must be finite and positive");
    if (!(std::isfinite(options.font_size) && options.font_size > 0))
        throw ArgumentError(where, "font_size must be finite and positive");
}

inline int mark_at(const MarkLevels& marks, Index r, Index c) { return marks.size() > 0 ? marks(r, c) : 0; }
inline bool highlighted(const std::vector<bool>& highlight, Index r) {
    return !highlight.empty() && highlight[static_cast<std::size_t>(r)];
}
inline std::string clip_note(double m) { return "clipped at \xC2\xB1" + format_significant(m, 3); } // "clipped at ±m"
inline const char* no_value_note() { return "no value"; }

// The colour scale limit and the drawing order of rows and columns (clustered or as given).
inline SignedHeatmapSelection signed_heatmap_selection(const MatrixD& values, const SignedHeatmapOptions& options) {
    SignedHeatmapSelection sel;
    sel.max_abs = options.max_abs > 0.0 ? options.max_abs : signed_scale_limit(values);
    if (values.rows() == 0 || values.cols() == 0) return sel;
    sel.rows.resize(static_cast<std::size_t>(values.rows()));
    std::iota(sel.rows.begin(), sel.rows.end(), Index{0});
    sel.columns.resize(static_cast<std::size_t>(values.cols()));
    std::iota(sel.columns.begin(), sel.columns.end(), Index{0});
    if (options.cluster_rows) sel.rows = cluster_order(values);
    if (options.cluster_columns) sel.columns = cluster_order(values.transpose());
    return sel;
}

// What the legend lists: marks that occur or have a label, grey cells if any, clipping if any.
struct SignedLegendContent {
    bool any_nan = false; // some cell is NaN (grey)
    bool clipped = false; // some |value| exceeds the colour scale limit
    int max_level = 0;    // highest mark level drawn
    int levels = 0;       // mark levels the legend lists
};

inline SignedLegendContent signed_legend_content(const MatrixD& values, const MarkLevels& marks,
                                                 const SignedHeatmapSelection& sel, const SignedHeatmapOptions& options) {
    SignedLegendContent legend;
    for (const Index r : sel.rows)
        for (const Index c : sel.columns) {
            const double v = values(r, c);
            legend.any_nan = legend.any_nan || std::isnan(v);
            legend.clipped = legend.clipped || std::abs(v) > sel.max_abs;
            legend.max_level = std::max(legend.max_level, mark_at(marks, r, c));
        }
    const bool empty = sel.rows.empty() || sel.columns.empty();
    legend.levels = empty ? 0 : std::max(legend.max_level, static_cast<int>(options.mark_labels.size()));
    return legend;
}

struct SignedHeatmapLayout {
    bool empty = false;            // no rows or no columns: the empty message instead of the grid
    double pad = 12.0;             // px, outer margin
    double cell = 0;               // px, side of a cell
    double axis_font = 0, label_font = 0, title_font = 0; // px
    double title_h = 0;            // the title's line (0 without a title)
    double column_label_w = 0;     // longest column label (drawn rotated under the grid)
    double grid_x = 0, grid_y = 0; // top-left corner of the grid (or of the empty message's box)
    double grid_w = 0, grid_h = 0; // its size
    double x_title_half = 0, x_title_centre = 0; // the x-axis title's half width and centre
    double y_title_half = 0, y_title_centre = 0; // the same for the rotated y-axis title
    double bar_x = 0, bar_y = 0, bar_w = 14.0, bar_h = 0; // the colour bar
    double bar_label_h = 0;        // room above the colour bar for its label
    double line_h = 0;             // one line of the legend
    double width = 0, height = 0;  // document size
};

// Fonts, grid and x-axis title, with margins from the longest labels (estimated text widths).
inline void place_signed_grid(SignedHeatmapLayout& L, const SignedHeatmapSelection& sel,
                              const std::vector<std::string>& row_labels, const std::vector<std::string>& column_labels,
                              const std::vector<bool>& highlight, const SignedHeatmapOptions& options) {
    const double pad = L.pad, cs = options.cell_size, axis_font = options.font_size;
    const bool empty = L.empty;
    L.cell = cs;
    L.axis_font = axis_font;
    L.label_font = std::min(options.font_size, 0.85 * cs);
    L.title_font = 1.3 * options.font_size;
    double row_w = 0.0;
    for (const Index r : sel.rows)
        row_w = std::max(row_w, estimate_text_width(row_labels[static_cast<std::size_t>(r)], L.label_font, highlighted(highlight, r)));
    for (const Index c : sel.columns)
        L.column_label_w = std::max(L.column_label_w, estimate_text_width(column_labels[static_cast<std::size_t>(c)], L.label_font));
    const double y_title_w = options.y_label.empty() || empty ? 0.0 : 1.4 * axis_font;
    L.grid_x = pad + y_title_w + row_w + 6.0;
    L.title_h = options.title.empty() ? 0.0 : 1.6 * L.title_font;
    const double subtitle_h = options.subtitle.empty() ? 0.0 : 1.5 * axis_font;
    L.grid_y = pad + L.title_h + subtitle_h + 0.6 * axis_font;
    L.grid_w = empty ? estimate_text_width(options.empty_message, L.label_font) + 8.0
                     : static_cast<double>(sel.columns.size()) * cs;
    L.grid_h = empty ? 2.0 * L.label_font : static_cast<double>(sel.rows.size()) * cs;
    L.x_title_half = empty ? 0.0 : 0.5 * estimate_text_width(options.x_label, axis_font);
    L.x_title_centre = std::max(L.grid_x + 0.5 * L.grid_w, pad + L.x_title_half);
}

// The legend right of the grid, top to bottom: colour bar, clipping note, marks, grey cells, bold
// labels. Places the colour bar; returns the legend's width and sets `bottom` to its lower edge.
inline double place_signed_legend(SignedHeatmapLayout& L, const SignedLegendContent& legend,
                                  const SignedHeatmapOptions& options, double m, double& bottom) {
    const double axis_font = L.axis_font, cs = L.cell;
    L.bar_label_h = 1.4 * axis_font;
    L.line_h = 1.6 * axis_font;
    L.bar_x = std::max(L.grid_x + L.grid_w + 24.0, L.x_title_centre + L.x_title_half + 16.0);
    L.bar_y = L.grid_y + L.bar_label_h;
    L.bar_h = std::clamp(0.45 * L.grid_h, 100.0, 220.0);
    bottom = L.grid_y;
    if (L.empty) return 0.0;
    double w = std::max(L.bar_w + 6.0 + estimate_text_width("\xE2\x88\x92" "00.00", 0.9 * axis_font),
                        estimate_text_width(options.scale_label, axis_font, true) + 4.0);
    double y = L.bar_y + L.bar_h + 0.9 * axis_font;
    if (legend.clipped) {
        w = std::max(w, estimate_text_width(clip_note(m), 0.9 * axis_font));
        y += L.line_h;
    }
    y += 0.4 * axis_font;
    for (int k = 1; k <= legend.levels; ++k) {
        const std::string text = k <= static_cast<int>(options.mark_labels.size())
                                     ? options.mark_labels[static_cast<std::size_t>(k - 1)] : "";
        w = std::max(w, L.bar_w + 6.0 + estimate_text_width(text, axis_font));
        y += std::max(L.line_h, 2.0 * mark_radius(k, cs) + 4.0);
    }
    if (legend.any_nan) {
        w = std::max(w, L.bar_w + 6.0 + estimate_text_width(no_value_note(), axis_font));
        y += L.line_h;
    }
    if (!options.highlight_label.empty()) {
        w = std::max(w, estimate_text_width(options.highlight_label, axis_font));
        y += L.line_h;
    }
    bottom = y;
    return w;
}

inline SignedHeatmapLayout signed_heatmap_layout(const SignedHeatmapSelection& sel, const SignedLegendContent& legend,
                                                 const std::vector<std::string>& row_labels,
                                                 const std::vector<std::string>& column_labels,
                                                 const std::vector<bool>& highlight,
                                                 const SignedHeatmapOptions& options) {
    SignedHeatmapLayout L;
    L.empty = sel.rows.empty() || sel.columns.empty();
    place_signed_grid(L, sel, row_labels, column_labels, highlight, options);
    double legend_bottom = 0.0;
    const double legend_w = place_signed_legend(L, legend, options, sel.max_abs, legend_bottom);
    const double pad = L.pad, axis_font = L.axis_font;
    const double x_title_h = options.x_label.empty() || L.empty ? 0.0 : 1.6 * axis_font;
    const double bottom = L.empty ? pad : 6.0 + L.column_label_w + 6.0 + x_title_h + pad;
    L.width = L.empty ? L.grid_x + L.grid_w + pad : L.bar_x + legend_w + pad;
    L.width = std::max({L.width, estimate_text_width(options.title, L.title_font, true) + 2.0 * pad,
                        estimate_text_width(options.subtitle, axis_font) + 2.0 * pad});
    // The rotated y-axis title is centred on the grid, or lower when the grid is shorter than it.
    L.y_title_half = L.empty || options.y_label.empty() ? 0.0 : 0.5 * estimate_text_width(options.y_label, axis_font);
    L.y_title_centre = std::max(L.grid_y + 0.5 * L.grid_h, L.grid_y + L.y_title_half);
    L.height = std::max({L.grid_y + L.grid_h + bottom, legend_bottom + L.pad, L.y_title_centre + L.y_title_half + L.pad});
    return L;
}

// The document title, and title and subtitle on one centre line over the grid, shifted so that
// both stay inside the canvas.
inline void draw_signed_titles(SvgDocument& svg, const SignedHeatmapLayout& L, const SignedHeatmapOptions& options) {
    svg.set_title(options.title);
    const double half = 0.5 * std::max(estimate_text_width(options.title, L.title_font, true),
                                       estimate_text_width(options.subtitle, L.axis_font));
    const double x = std::clamp(L.grid_x + 0.5 * L.grid_w, L.pad + half, std::max(L.pad + half, L.width - L.pad - half));
    if (!options.title.empty())
        svg.text(x, L.pad + L.title_font, options.title, {L.title_font, "middle", 0.0, false, true});
    if (!options.subtitle.empty())
        svg.text(x, L.pad + L.title_h + L.axis_font, options.subtitle, {L.axis_font, "middle", 0.0, false, false, "#444444"});
}

// Cells coloured blue_white_red(clamp(v / m, -1, 1)), grey for NaN, and the grid's frame.
inline void draw_signed_cells(SvgDocument& svg, const SignedHeatmapLayout& L, const SignedHeatmapSelection& S,
                              const MatrixD& values, const std::vector<std::string>& row_labels,
                              const std::vector<std::string>& column_labels, const MarkLevels& marks,
                              const SignedHeatmapOptions& options) {
    const double m = S.max_abs, cs = L.cell;
    const auto cell_colour = [m](double v) {
        return std::isnan(v) ? std::string("#d9d9d9") : blue_white_red(std::clamp(v / m, -1.0, 1.0)).hex();
    };
    svg.begin_group({"cells", 0.0, 0.0, true});
    for (std::size_t i = 0; i < S.rows.size(); ++i) {
        const Index r = S.rows[i];
        for (std::size_t k = 0; k < S.columns.size(); ++k) {
            const Index c = S.columns[k];
            const double v = values(r, c);
            std::string tip;
            if (options.tooltips) {
                tip = row_labels[static_cast<std::size_t>(r)] + " / " + column_labels[static_cast<std::size_t>(c)] + ": " +
                      (std::isnan(v) ? std::string("no value") : with_minus_sign(format_significant(v, 3)));
                const int level = mark_at(marks, r, c);
                if (level > 0 && level <= static_cast<int>(options.mark_labels.size()))
                    tip += ", " + options.mark_labels[static_cast<std::size_t>(level - 1)];
            }
            svg.rect(L.grid_x + static_cast<double>(k) * cs, L.grid_y + static_cast<double>(i) * cs, cs, cs,
                     {cell_colour(v)}, tip);
        }
    }
    svg.end_group();
    svg.rect(L.grid_x, L.grid_y, L.grid_w, L.grid_h, {"none", "#444444", 0.6});
}

// A dark dot with a thin white rim per marked cell (visible on dark blue and dark red alike).
inline void draw_signed_marks(SvgDocument& svg, const SignedHeatmapLayout& L, const SignedHeatmapSelection& S,
                              const MarkLevels& marks) {
    const double cs = L.cell;
    svg.begin_group({"marks"});
    for (std::size_t i = 0; i < S.rows.size(); ++i)
        for (std::size_t k = 0; k < S.columns.size(); ++k) {
            const int level = mark_at(marks, S.rows[i], S.columns[k]);
            if (level > 0)
                svg.circle(L.grid_x + (static_cast<double>(k) + 0.5) * cs, L.grid_y + (static_cast<double>(i) + 0.5) * cs,
                           mark_radius(level, cs), {"#1a1a1a", "#ffffff", 0.5});
        }
    svg.end_group();
}

// Row labels left of the grid (bold when highlighted), column labels under it (rotated), axis titles.
inline void draw_signed_labels(SvgDocument& svg, const SignedHeatmapLayout& L, const SignedHeatmapSelection& S,
                               const std::vector<std::string>& row_labels, const std::vector<std::string>& column_labels,
                               const std::vector<bool>& highlight, const SignedHeatmapOptions& options) {
    const double cs = L.cell, axis_font = L.axis_font;
    svg.begin_group({"labels"});
    for (std::size_t i = 0; i < S.rows.size(); ++i)
        svg.text(L.grid_x - 6.0, L.grid_y + (static_cast<double>(i) + 0.5) * cs, row_labels[static_cast<std::size_t>(S.rows[i])],
                 {L.label_font, "end", 0.0, true, highlighted(highlight, S.rows[i])});
    for (std::size_t k = 0; k < S.columns.size(); ++k)
        svg.text(L.grid_x + (static_cast<double>(k) + 0.5) * cs, L.grid_y + L.grid_h + 6.0,
                 column_labels[static_cast<std::size_t>(S.columns[k])], {L.label_font, "end", -90.0, true});
    if (!options.x_label.empty())
        svg.text(L.x_title_centre, L.grid_y + L.grid_h + 6.0 + L.column_label_w + 6.0 + axis_font, options.x_label,
                 {axis_font, "middle"});
    if (!options.y_label.empty())
        svg.text(L.pad + 0.5 * axis_font, L.y_title_centre, options.y_label, {axis_font, "middle", -90.0, true});
    svg.end_group();
}

// The legend, in the steps place_signed_legend measured.
inline void draw_signed_legend(SvgDocument& svg, const SignedHeatmapLayout& L, const SignedLegendContent& legend,
                               const SignedHeatmapOptions& options, double m) {
    const double axis_font = L.axis_font, line_h = L.line_h, bar_x = L.bar_x, bar_w = L.bar_w, cs = L.cell;
    svg.begin_group({"legend"});
    draw_colour_bar(svg, bar_x, L.bar_y, bar_w, L.bar_h, -m, m, symmetric_ticks(m, L.bar_h, 0.9 * axis_font),
                    options.scale_label, axis_font, [m](double v) { return blue_white_red(v / m); }, 3);
    double y = L.bar_y + L.bar_h + 0.9 * axis_font;
    if (legend.clipped) {
        svg.text(bar_x, y + 0.5 * line_h, clip_note(m), {0.9 * axis_font, "start", 0.0, true, false, "#444444"});
        y += line_h;
    }
    y += 0.4 * axis_font;
    for (int k = 1; k <= legend.levels; ++k) {
        const double h = std::max(line_h, 2.0 * mark_radius(k, cs) + 4.0);
        svg.circle(bar_x + 0.5 * bar_w, y + 0.5 * h, mark_radius(k, cs), {"#1a1a1a", "#ffffff", 0.5});
        if (k <= static_cast<int>(options.mark_labels.size()))
            svg.text(bar_x + bar_w + 6.0, y + 0.5 * h, options.mark_labels[static_cast<std::size_t>(k - 1)],
                     {axis_font, "start", 0.0, true});
        y += h;
    }
    if (legend.any_nan) {
        const double box = std::min(bar_w, axis_font);
        svg.rect(bar_x + 0.5 * (bar_w - box), y + 0.5 * (line_h - box), box, box, {"#d9d9d9", "#444444", 0.6});
        svg.text(bar_x + bar_w + 6.0, y + 0.5 * line_h, no_value_note(), {axis_font, "start", 0.0, true});
        y += line_h;
    }
    if (!options.highlight_label.empty())
        svg.text(bar_x, y + 0.5 * line_h, options.highlight_label, {axis_font, "start", 0.0, true});
    svg.end_group();
}

inline SignedHeatmap render_signed_heatmap(const char* where, const MatrixD& values,
                                           const std::vector<std::string>& row_labels,
                                           const std::vector<std::string>& column_labels,
                                           const std::vector<bool>& highlight, const MarkLevels& marks,
                                           const SignedHeatmapOptions& options) {
    check_signed_heatmap_arguments(where, values, row_labels, column_labels, highlight, marks, options);
    SignedHeatmapSelection sel = signed_heatmap_selection(values, options);
    const SignedLegendContent legend = signed_legend_content(values, marks, sel, options);
    const SignedHeatmapLayout L = signed_heatmap_layout(sel, legend, row_labels, column_labels, highlight, options);

    SignedHeatmap out{SvgDocument(L.width, L.height), std::move(sel)};
    SvgDocument& svg = out.svg;
    const SignedHeatmapSelection& S = out.selection;
    draw_signed_titles(svg, L, options);
    if (L.empty) {
        svg.text(L.grid_x + 4.0, L.grid_y + 0.5 * L.grid_h, options.empty_message, {L.label_font, "start", 0.0, true});
        svg.rect(L.grid_x, L.grid_y, L.grid_w, L.grid_h, {"none", "#444444", 0.6});
        return out;
    }
    draw_signed_cells(svg, L, S, values, row_labels, column_labels, marks, options);
    if (legend.max_level > 0) draw_signed_marks(svg, L, S, marks);
    draw_signed_labels(svg, L, S, row_labels, column_labels, highlight, options);
    draw_signed_legend(svg, L, legend, options, S.max_abs);
    return out;
}

} // namespace detail

// The signed heatmap of `values` (rows x columns, e.g. sets x units; rules at the top of this
// header) with one label per row and per column, optional bold rows (`highlight`: one flag per
// row, or empty) and optional dots (`marks`: rows x columns levels 0 .. 3, or empty). Rows or
// columns may be 0: the figure then shows options.empty_message. Throws ArgumentError (naming
// make_signed_heatmap) on size mismatches and invalid options.
inline SignedHeatmap make_signed_heatmap(const MatrixD& values, const std::vector<std::string>& row_labels,
                                         const std::vector<std::string>& column_labels,
                                         const std::vector<bool>& highlight = {}, const MarkLevels& marks = {},
                                         const SignedHeatmapOptions& options = {}) {
    return detail::render_signed_heatmap("make_signed_heatmap", values, row_labels, column_labels, highlight, marks,
                                         options);
}

// make_signed_heatmap + write (atomically); returns what was shown.
inline SignedHeatmapSelection write_signed_heatmap(const std::string& path, const MatrixD& values,
                                                   const std::vector<std::string>& row_labels,
                                                   const std::vector<std::string>& column_labels,
                                                   const std::vector<bool>& highlight = {}, const MarkLevels& marks = {},
                                                   const SignedHeatmapOptions& options = {}) {
    SignedHeatmap h = detail::render_signed_heatmap("write_signed_heatmap", values, row_labels, column_labels, highlight,
                                                    marks, options);
    h.svg.write(path);
    return std::move(h.selection);
}

} // namespace exsal

#endif // EXSAL_REPORT_HEATMAP_HPP
