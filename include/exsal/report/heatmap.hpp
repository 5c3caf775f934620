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

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
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

// What the figure shows, for the pipeline to report.
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
    double label_font = 0;       // px, set and unit labels
    double title_font = 0;       // px
    double grid_x = 0, grid_y = 0; // top-left corner of the cell grid
    double grid_w = 0, grid_h = 0; // grid size
    double bar_x = 0;            // left edge of the colour bars
    double bar_w = 14;           // colour bar width
    double bar_h = 0;            // colour bar height
    double width = 0, height = 0; // document size
};

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
Heatmap render_heatmap(const char* where, const Eigen::MatrixBase<DerivedI>& impacts, const DerivedD* differences,
                       const std::vector<std::string>& set_names, const std::vector<std::string>& unit_labels,
                       const HeatmapOptions& options) {
    check_heatmap_arguments(where, impacts.rows(), impacts.cols(), set_names, unit_labels, options);
    check_no_infinity(where, "impact", impacts);
    if (differences) {
        if (differences->rows() != impacts.rows() || differences->cols() != impacts.cols())
            throw ArgumentError(where, "the difference matrix is " + std::to_string(differences->rows()) + " x " +
                                           std::to_string(differences->cols()) + ", the impact matrix " +
                                           std::to_string(impacts.rows()) + " x " + std::to_string(impacts.cols()));
        check_no_infinity(where, "difference", *differences);
    }
    HeatmapSelection sel = select_heatmap(impacts, options);
    const auto n_rows = static_cast<double>(sel.rows.size());
    const auto n_cols = static_cast<double>(sel.columns.size());

    // Layout: margins from the longest labels (estimated text widths).
    HeatmapLayout L;
    const double pad = 12.0, cs = options.cell_size;
    L.label_font = std::min(options.font_size, 0.85 * cs);
    L.title_font = 1.3 * options.font_size;
    const double axis_font = options.font_size;
    double set_w = 0.0, unit_w = 0.0;
    for (const Index s : sel.rows) set_w = std::max(set_w, estimate_text_width(set_names[static_cast<std::size_t>(s)], L.label_font));
    for (const Index u : sel.columns)
        unit_w = std::max(unit_w, estimate_text_width(unit_labels[static_cast<std::size_t>(u)], L.label_font));
    const double y_title_w = options.y_label.empty() ? 0.0 : 1.4 * axis_font;
    L.grid_x = pad + y_title_w + set_w + 6.0;
    L.grid_y = pad + 1.6 * L.title_font + 0.6 * axis_font;
    const std::string empty_message = "no unit above the threshold";
    L.grid_w = n_cols > 0 ? n_cols * cs : estimate_text_width(empty_message, L.label_font) + 8.0;
    L.grid_h = n_rows * cs;
    const double x_title_h = options.x_label.empty() ? 0.0 : 1.6 * axis_font;
    const double bottom = 6.0 + unit_w + 6.0 + x_title_h + pad;

    // Colour bars right of the grid: one for the scaled impact, one more for the difference.
    // (not under the x-axis title when the grid is narrower than that title)
    const double x_title_half = 0.5 * estimate_text_width(options.x_label, axis_font);
    const double x_title_centre = std::max(L.grid_x + 0.5 * L.grid_w, pad + x_title_half);
    L.bar_x = std::max(L.grid_x + L.grid_w + 24.0, x_title_centre + x_title_half + 16.0);
    const int n_bars = differences ? 2 : 1;
    const double bar_label_h = 1.4 * axis_font, bar_gap = 2.2 * axis_font;
    L.bar_h = std::clamp((L.grid_h - (n_bars - 1) * (bar_gap + bar_label_h)) / n_bars, 80.0, 220.0);
    double legend_w = L.bar_w + 6.0 + estimate_text_width("-0.000000", 0.9 * axis_font);
    legend_w = std::max({legend_w, estimate_text_width(options.scale_label, axis_font, true) + 4.0,
                         differences ? estimate_text_width(options.difference_label, axis_font, true) + 4.0 : 0.0});
    const double legend_h = n_bars * (L.bar_h + bar_label_h) + (n_bars - 1) * bar_gap;
    L.width = L.bar_x + legend_w + pad;
    L.width = std::max(L.width, estimate_text_width(options.title, L.title_font, true) + 2.0 * pad);
    L.height = std::max(L.grid_y + L.grid_h + bottom, L.grid_y + bar_label_h + legend_h + pad);

    Heatmap out{SvgDocument(L.width, L.height), std::move(sel)};
    SvgDocument& svg = out.svg;
    const HeatmapSelection& S = out.selection;
    svg.set_title(options.title);
    if (!options.title.empty()) {
        // Centred over the grid, shifted so that it stays inside the canvas.
        const double half = 0.5 * estimate_text_width(options.title, L.title_font, true);
        const double x = std::clamp(L.grid_x + 0.5 * L.grid_w, pad + half, std::max(pad + half, L.width - pad - half));
        svg.text(x, pad + L.title_font, options.title, {L.title_font, "middle", 0.0, false, true});
    }

    // Cells.
    const auto impact_value = [&](Index s, Index u) { return static_cast<double>(impacts(s, u)); };
    svg.begin_group({"cells", 0.0, 0.0, true});
    for (std::size_t r = 0; r < S.rows.size(); ++r) {
        const Index s = S.rows[r];
        for (std::size_t k = 0; k < S.columns.size(); ++k) {
            const Index u = S.columns[k];
            const double v = S.scaled(s, u);
            const std::string colour = std::isnan(v) ? "#d9d9d9" : viridis(v).hex();
            std::string tip;
            if (options.tooltips)
                tip = set_names[static_cast<std::size_t>(s)] + " / " + unit_labels[static_cast<std::size_t>(u)] +
                      ": impact " + format_significant(impact_value(s, u), 4) + ", scaled " + format_fixed(v, 3);
            svg.rect(L.grid_x + static_cast<double>(k) * cs, L.grid_y + static_cast<double>(r) * cs, cs, cs, {colour}, tip);
        }
    }
    svg.end_group();
    if (S.columns.empty())
        svg.text(L.grid_x + 4.0, L.grid_y + 0.5 * L.grid_h, empty_message,
                 {L.label_font, "start", 0.0, true});
    svg.rect(L.grid_x, L.grid_y, L.grid_w, L.grid_h, {"none", "#444444", 0.6});

    // Group-difference markers.
    double max_abs = 0.0;
    if (differences) {
        for (const Index s : S.rows)
            for (const Index u : S.columns)
                if (S.scaled(s, u) > options.overlay_threshold && !std::isnan(static_cast<double>((*differences)(s, u))))
                    max_abs = std::max(max_abs, std::abs(static_cast<double>((*differences)(s, u))));
        const double scale = max_abs > 0.0 ? max_abs : 1.0;
        svg.begin_group({"group-differences"});
        for (std::size_t r = 0; r < S.rows.size(); ++r) {
            const Index s = S.rows[r];
            for (std::size_t k = 0; k < S.columns.size(); ++k) {
                const Index u = S.columns[k];
                const double d = static_cast<double>((*differences)(s, u));
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

    // Axis labels: set names left of the rows, unit labels under the columns (rotated).
    svg.begin_group({"labels"});
    for (std::size_t r = 0; r < S.rows.size(); ++r)
        svg.text(L.grid_x - 6.0, L.grid_y + (static_cast<double>(r) + 0.5) * cs,
                 set_names[static_cast<std::size_t>(S.rows[r])], {L.label_font, "end", 0.0, true});
    for (std::size_t k = 0; k < S.columns.size(); ++k)
        svg.text(L.grid_x + (static_cast<double>(k) + 0.5) * cs, L.grid_y + L.grid_h + 6.0,
                 unit_labels[static_cast<std::size_t>(S.columns[k])], {L.label_font, "end", -90.0, true});
    if (!options.x_label.empty())
        svg.text(x_title_centre, L.grid_y + L.grid_h + 6.0 + unit_w + 6.0 + axis_font, options.x_label,
                 {axis_font, "middle"});
    if (!options.y_label.empty())
        svg.text(pad + 0.5 * axis_font, L.grid_y + 0.5 * L.grid_h, options.y_label, {axis_font, "middle", -90.0, true});
    svg.end_group();

    // Colour bars.
    svg.begin_group({"legend"});
    double bar_y = L.grid_y + bar_label_h;
    draw_colour_bar(svg, L.bar_x, bar_y, L.bar_w, L.bar_h, 0.0, 1.0, {0.0, 0.25, 0.5, 0.75, 1.0}, options.scale_label,
                    axis_font, [](double v) { return viridis(v); }, -1);
    if (differences) {
        bar_y += L.bar_h + bar_gap + bar_label_h;
        const double m = max_abs > 0.0 ? max_abs : 1.0;
        draw_colour_bar(svg, L.bar_x, bar_y, L.bar_w, L.bar_h, -m, m, {-m, -0.5 * m, 0.0, 0.5 * m, m},
                        options.difference_label, axis_font, [m](double v) { return blue_white_red(v / m); }, 3);
    }
    svg.end_group();
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

} // namespace exsal

#endif // EXSAL_REPORT_HEATMAP_HPP
