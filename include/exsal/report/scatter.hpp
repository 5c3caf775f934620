#ifndef EXSAL_REPORT_SCATTER_HPP
#define EXSAL_REPORT_SCATTER_HPP

// A 2-D scatter plot of points coloured by group (e.g. PCA or UMAP of the input and of the
// representation, paper Fig. 1), with a legend, axis ticks and labels, written as SVG.
//
//   const exsal::PcaResult p = exsal::pca(expression.values, 2);
//   exsal::ScatterOptions o;
//   o.x_label = exsal::pca_axis_label(1, p.explained_variance_ratio(0));
//   o.y_label = exsal::pca_axis_label(2, p.explained_variance_ratio(1));
//   exsal::write_scatter("pca.svg", p.scores.row(0), p.scores.row(1), expression.groups, o);
//
// Points are drawn in a seeded random order (so no group hides the others just because it
// comes last); legend entries are the distinct groups in natural order (group_2 before group_10)
// or in options.group_order, each
// with its number of points; colours from exsal::categorical (20, then cycling).

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"
#include "exsal/report/colour.hpp"
#include "exsal/report/format.hpp"
#include "exsal/report/svg.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace exsal {

struct ScatterOptions {
    std::string title;
    std::string x_label = "x";
    std::string y_label = "y";
    std::string legend_title = "Group";
    double plot_width = 560.0;   // px, the data panel (the canvas adds margins and the legend)
    double plot_height = 460.0;  // px
    double point_radius = 2.2;   // px
    double point_opacity = 0.75; // 0..1
    double font_size = 12.0;     // px, tick labels and legend; axis labels the same, title 1.3 x
    std::vector<std::string> group_order; // legend order; empty = natural order; groups not listed follow
    std::uint64_t seed = 1;      // drawing order of the points
};

// "PC1 (12.3 %)" for component 1 (1-based) and ratio 0.123.
inline std::string pca_axis_label(int component, double ratio) {
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof(buffer), 100.0 * (std::isfinite(ratio) ? ratio : 0.0),
                                 std::chars_format::fixed, 1);
    return "PC" + std::to_string(component) + " (" + std::string(buffer, r.ptr) + " %)";
}

namespace detail {

// About `target` round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi].
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
    std::vector<double> ticks;
    const double range = hi - lo;
    if (!(range > 0.0) || !std::isfinite(range)) return {lo};
    const double raw = range / target;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    double step = power;
    for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * power >= raw) {
            step = m * power;
            break;
        }
    const double first = std::ceil(lo / step - 1e-9);
    for (double k = first; k * step <= hi + 1e-9 * step; k += 1.0) ticks.push_back(k * step == 0.0 ? 0.0 : k * step);
    return ticks;
}

// "Natural" order of labels: digit runs compare as numbers, so group_2 < group_10
// (ties, e.g. "a01" and "a1", broken by plain byte order).
struct NaturalLess {
    bool operator()(const std::string& a, const std::string& b) const {
        const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
        std::size_t i = 0, j = 0;
        while (i < a.size() && j < b.size()) {
            if (is_digit(a[i]) && is_digit(b[j])) {
                std::size_t ie = i, je = j;
                while (ie < a.size() && is_digit(a[ie])) ++ie;
                while (je < b.size() && is_digit(b[je])) ++je;
                // Compare the digit runs as numbers: strip leading zeros, then length, then digits.
                std::size_t is = i, js = j;
                while (is + 1 < ie && a[is] == '0') ++is;
                while (js + 1 < je && b[js] == '0') ++js;
                if (ie - is != je - js) return ie - is < je - js;
                const int c = a.compare(is, ie - is, b, js, je - js);
                if (c != 0) return c < 0;
                i = ie;
                j = je;
            } else {
                if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
                ++i;
                ++j;
            }
        }
        if ((i < a.size()) != (j < b.size())) return j < b.size();
        return a < b;
    }
};

// Padded axis range of the values: 4 % on each side, or +-1 around a single value.
inline std::pair<double, double> padded_range(const VectorD& v) {
    const double lo = v.minCoeff(), hi = v.maxCoeff();
    if (hi > lo) {
        const double pad = 0.04 * (hi - lo);
        return {lo - pad, hi + pad};
    }
    const double half = lo == 0.0 ? 1.0 : 0.5 * std::abs(lo);
    return {lo - half, hi + half};
}

template <typename Derived>
VectorD to_vector(const char* where, const char* name, const Eigen::MatrixBase<Derived>& m) {
    if (m.rows() != 1 && m.cols() != 1 && m.size() != 0)
        throw ArgumentError(where, std::string(name) + " must be a vector, got " + std::to_string(m.rows()) + " x " +
                                       std::to_string(m.cols()));
    const MatrixD dense = m.template cast<double>();
    return Eigen::Map<const VectorD>(dense.data(), dense.size());
}

} // namespace detail

// The scatter plot of points (x(i), y(i)) with one group label per point (or no labels: one
// colour, no legend). x and y are vectors or row vectors (float or double). Throws ArgumentError
// (naming make_scatter) on size mismatches, non-finite coordinates or invalid options.
template <typename DerivedX, typename DerivedY>
SvgDocument make_scatter(const Eigen::MatrixBase<DerivedX>& x_in, const Eigen::MatrixBase<DerivedY>& y_in,
                         const std::vector<std::string>& groups, const ScatterOptions& options = {}) {
    const char* where = "make_scatter";
    const VectorD x = detail::to_vector(where, "x", x_in), y = detail::to_vector(where, "y", y_in);
    const Index n = x.size();
    if (n == 0) throw ArgumentError(where, "no points");
    if (y.size() != n) throw ArgumentError(where, std::to_string(n) + " x values but " + std::to_string(y.size()) + " y values");
    if (!groups.empty() && static_cast<Index>(groups.size()) != n)
        throw ArgumentError(where, std::to_string(groups.size()) + " group labels for " + std::to_string(n) + " points");
    if (!x.allFinite() || !y.allFinite()) throw ArgumentError(where, "non-finite coordinates");
    for (const double v : {options.plot_width, options.plot_height, options.point_radius, options.font_size})
        if (!(std::isfinite(v) && v > 0)) throw ArgumentError(where, "sizes in ScatterOptions must be finite and positive");

    // Groups: legend order, colour index and count per point group.
    std::map<std::string, Index, detail::NaturalLess> counts;
    for (const auto& g : groups) ++counts[g];
    std::vector<std::string> legend;
    for (const auto& g : options.group_order)
        if (counts.count(g) && std::find(legend.begin(), legend.end(), g) == legend.end()) legend.push_back(g);
    for (const auto& [g, c] : counts)
        if (std::find(legend.begin(), legend.end(), g) == legend.end()) legend.push_back(g);
    std::map<std::string, std::size_t> colour_of;
    for (std::size_t k = 0; k < legend.size(); ++k) colour_of[legend[k]] = k;

    // Layout.
    const double pad = 12.0, font = options.font_size, title_font = 1.3 * font, tick_len = 5.0;
    // (plain names, not structured bindings: C++17 lambdas, as sx and sy below, cannot capture those)
    const std::pair<double, double> x_range = detail::padded_range(x), y_range = detail::padded_range(y);
    const double x_lo = x_range.first, x_hi = x_range.second, y_lo = y_range.first, y_hi = y_range.second;
    const std::vector<double> x_ticks = detail::nice_ticks(x_lo, x_hi), y_ticks = detail::nice_ticks(y_lo, y_hi);
    double y_tick_w = 0.0;
    for (const double t : y_ticks) y_tick_w = std::max(y_tick_w, estimate_text_width(detail::format_significant(t, 6), font));
    const std::vector<std::string> legend_text = [&] {
        std::vector<std::string> t;
        for (const auto& g : legend) t.push_back(g + " (" + std::to_string(counts[g]) + ")");
        return t;
    }();
    double legend_w = 0.0;
    if (!legend.empty()) {
        legend_w = estimate_text_width(options.legend_title, font, true);
        for (const auto& t : legend_text) legend_w = std::max(legend_w, 18.0 + estimate_text_width(t, font));
        legend_w += 20.0;
    }
    const double px = pad + (options.y_label.empty() ? 0.0 : 1.6 * font) + y_tick_w + tick_len + 4.0;
    const double py = pad + (options.title.empty() ? 0.0 : 1.8 * title_font);
    const double pw = options.plot_width, ph = options.plot_height;
    const double legend_row = 1.5 * font;
    const double legend_h = legend.empty() ? 0.0 : (static_cast<double>(legend.size()) + 1.0) * legend_row;
    double width = px + pw + legend_w + pad;
    width = std::max(width, estimate_text_width(options.title, title_font, true) + 2.0 * pad);
    const double height = std::max(py + ph + tick_len + 1.4 * font + (options.x_label.empty() ? 0.0 : 1.8 * font) + pad,
                                   py + legend_h + pad);
    const auto sx = [&](double v) { return px + (v - x_lo) / (x_hi - x_lo) * pw; };
    const auto sy = [&](double v) { return py + ph - (v - y_lo) / (y_hi - y_lo) * ph; };

    SvgDocument svg(width, height);
    svg.set_title(options.title.empty() ? "Scatter plot" : options.title);
    if (!options.title.empty()) {
        const double half = 0.5 * estimate_text_width(options.title, title_font, true);
        svg.text(std::clamp(px + 0.5 * pw, pad + half, std::max(pad + half, width - pad - half)), pad + title_font,
                 options.title, {title_font, "middle", 0.0, false, true});
    }

    // Grid lines and ticks.
    svg.begin_group({"axes"});
    for (const double t : x_ticks) {
        svg.line(sx(t), py, sx(t), py + ph, {"none", "#e5e5e5", 0.8});
        svg.line(sx(t), py + ph, sx(t), py + ph + tick_len, {"none", "#444444", 0.8});
        svg.text(sx(t), py + ph + tick_len + 1.1 * font, detail::with_minus_sign(detail::format_significant(t, 6)), {font, "middle"});
    }
    for (const double t : y_ticks) {
        svg.line(px, sy(t), px + pw, sy(t), {"none", "#e5e5e5", 0.8});
        svg.line(px - tick_len, sy(t), px, sy(t), {"none", "#444444", 0.8});
        svg.text(px - tick_len - 3.0, sy(t), detail::with_minus_sign(detail::format_significant(t, 6)), {font, "end", 0.0, true});
    }
    if (!options.x_label.empty())
        svg.text(px + 0.5 * pw, py + ph + tick_len + 1.4 * font + 1.4 * font, options.x_label, {font, "middle"});
    if (!options.y_label.empty())
        svg.text(pad + 0.5 * font, py + 0.5 * ph, options.y_label, {font, "middle", -90.0, true});
    svg.end_group();

    // Points in a seeded random order.
    std::vector<Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Index{0});
    Rng rng(options.seed);
    rng.shuffle(order);
    std::vector<std::string> colours;
    for (std::size_t k = 0; k < std::max<std::size_t>(legend.size(), 1); ++k) colours.push_back(categorical(k).hex());
    svg.begin_group({"points"});
    for (const Index i : order) {
        const std::size_t c = groups.empty() ? 0 : colour_of[groups[static_cast<std::size_t>(i)]];
        svg.circle(sx(x(i)), sy(y(i)), options.point_radius, {colours[c], "none", 1.0, options.point_opacity});
    }
    svg.end_group();
    svg.rect(px, py, pw, ph, {"none", "#444444", 0.8});

    // Legend.
    if (!legend.empty()) {
        svg.begin_group({"legend"});
        const double lx = px + pw + 20.0;
        svg.text(lx, py + 0.5 * legend_row, options.legend_title, {font, "start", 0.0, true, true});
        for (std::size_t k = 0; k < legend.size(); ++k) {
            const double ly = py + (static_cast<double>(k) + 1.5) * legend_row;
            svg.circle(lx + 5.0, ly, 5.0, {colours[k]});
            svg.text(lx + 16.0, ly, legend_text[k], {font, "start", 0.0, true});
        }
        svg.end_group();
    }
    return svg;
}

// make_scatter + write (atomically).
template <typename DerivedX, typename DerivedY>
void write_scatter(const std::string& path, const Eigen::MatrixBase<DerivedX>& x, const Eigen::MatrixBase<DerivedY>& y,
                   const std::vector<std::string>& groups, const ScatterOptions& options = {}) {
    make_scatter(x, y, groups, options).write(path);
}

} // namespace exsal

#endif // EXSAL_REPORT_SCATTER_HPP
