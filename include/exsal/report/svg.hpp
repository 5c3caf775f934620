#ifndef EXSAL_REPORT_SVG_HPP
#define EXSAL_REPORT_SVG_HPP

// An SVG document builder: the library writes its figures as SVG text, with no plotting
// dependency. Coordinates are in pixels, origin top left, y down; every number is written in
// fixed notation with at most `decimals` digits; every text and attribute value is XML-escaped,
// so the output is always well-formed XML.
//
//   exsal::SvgDocument svg(200, 100);
//   svg.set_title("Example");
//   svg.rect(10, 10, 50, 30, {"#21918c", "#000000", 0.5});
//   svg.text(100, 50, "a < b", {12, "middle"});
//   svg.write("example.svg");

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/error.hpp"
#include "exsal/report/format.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <ostream>
#include <string>
#include <utility>

namespace exsal {

// Paint of a shape. Colours are any SVG colour text ("#rrggbb", "none", "white").
struct SvgStyle {
    std::string fill = "none";
    std::string stroke = "none";
    double stroke_width = 1.0; // written only when stroke != "none"
    double opacity = 1.0;      // whole-element opacity, written only when < 1
};

struct SvgTextStyle {
    double font_size = 12.0;
    std::string anchor = "start"; // text-anchor: start, middle or end
    double rotate = 0.0;          // degrees, clockwise, about the anchor point (x, y)
    bool centre_vertically = false; // shift down by 0.35 em so (x, y) is the middle of the glyphs
    bool bold = false;
    std::string fill = "#000000";
};

// Attributes of a <g> element.
struct SvgGroup {
    std::string id;           // id attribute, empty = none
    double translate_x = 0.0; // translation of the group's content, px
    double translate_y = 0.0;
    bool crisp_edges = false; // shape-rendering="crispEdges": no anti-aliased seams between adjacent cells
};

// Approximate width in pixels of `text` in a sans-serif font of `font_size` px (per-character
// classes: wide capitals, narrow i/l/punctuation, ...; bold about 13 % wider); used to size margins
// for labels. Calibrated on DejaVu Sans, one of the widest common sans fonts (estimates are 0-10 %
// above its rendered widths, measured with Chromium's getComputedTextLength).
inline double estimate_text_width(const std::string& text, double font_size, bool bold = false) {
    double em = 0.0;
    for (std::size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const std::size_t n = std::max<std::size_t>(1, detail::utf8_sequence_length(text, i));
        i += n;
        if (c >= 0x80) em += 0.70;
        else if (c == 'M' || c == 'W' || c == 'm' || c == 'w') em += 0.88;
        else if (c >= 'A' && c <= 'Z') em += 0.70;
        else if (c == 'i' || c == 'l' || c == 'j' || c == 'I' || c == '.' || c == ',' || c == ':' || c == ';' ||
                 c == '\'' || c == '|' || c == '!')
            em += 0.32;
        else if (c == ' ' || c == 'f' || c == 't' || c == 'r' || c == '(' || c == ')' || c == '[' || c == ']')
            em += 0.42;
        else if (c >= '0' && c <= '9') em += 0.64;
        else if (c == '_' || c == '-') em += 0.55;
        else if (c >= 'a' && c <= 'z') em += 0.60;
        else em += 0.66;
    }
    return em * font_size * (bold ? 1.13 : 1.0);
}

class SvgDocument {
public:
    // A width x height px canvas with a white background. Throws ArgumentError unless both are
    // finite and positive and 0 <= decimals <= 6.
    SvgDocument(double width, double height, int decimals = 2) : m_width(width), m_height(height), m_decimals(decimals) {
        if (!(std::isfinite(width) && std::isfinite(height) && width > 0 && height > 0))
            throw ArgumentError("SvgDocument", "the canvas size must be finite and positive, got " +
                                                   detail::format_shortest(width) + " x " + detail::format_shortest(height));
        if (decimals < 0 || decimals > 6) throw ArgumentError("SvgDocument", "decimals must be in [0, 6]");
    }

    double width() const noexcept { return m_width; }
    double height() const noexcept { return m_height; }

    // The document's <title> (shown by viewers as the name of the figure).
    SvgDocument& set_title(std::string title) {
        m_title = std::move(title);
        return *this;
    }

    // A rectangle; `tooltip` (if not empty) becomes a <title> child shown on hover.
    SvgDocument& rect(double x, double y, double width, double height, const SvgStyle& style,
                      const std::string& tooltip = "") {
        check_finite("SvgDocument::rect", {x, y, width, height});
        if (width < 0 || height < 0) throw ArgumentError("SvgDocument::rect", "negative width or height");
        m_body += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(width) + "\" height=\"" +
                  num(height) + "\"" + paint(style);
        close_element("rect", tooltip);
        return *this;
    }

    SvgDocument& line(double x1, double y1, double x2, double y2, const SvgStyle& style) {
        check_finite("SvgDocument::line", {x1, y1, x2, y2});
        m_body += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
                  "\"" + paint(style);
        close_element("line", "");
        return *this;
    }

    SvgDocument& circle(double cx, double cy, double r, const SvgStyle& style, const std::string& tooltip = "") {
        check_finite("SvgDocument::circle", {cx, cy, r});
        if (r < 0) throw ArgumentError("SvgDocument::circle", "negative radius");
        m_body += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\"" + paint(style);
        close_element("circle", tooltip);
        return *this;
    }

    // Text at (x, y) (the baseline, or the middle with centre_vertically), escaped.
    SvgDocument& text(double x, double y, const std::string& content, const SvgTextStyle& style = {}) {
        check_finite("SvgDocument::text", {x, y, style.font_size, style.rotate});
        if (style.anchor != "start" && style.anchor != "middle" && style.anchor != "end")
            throw ArgumentError("SvgDocument::text", "anchor must be start, middle or end, got '" + style.anchor + "'");
        m_body += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(style.font_size) + "\"";
        if (style.anchor != "start") m_body += " text-anchor=\"" + style.anchor + "\"";
        if (style.centre_vertically) m_body += " dy=\"0.35em\"";
        if (style.bold) m_body += " font-weight=\"bold\"";
        if (style.fill != "#000000") m_body += " fill=\"" + detail::xml_escape(style.fill) + "\"";
        if (style.rotate != 0.0)
            m_body += " transform=\"rotate(" + num(style.rotate) + " " + num(x) + " " + num(y) + ")\"";
        m_body += ">" + detail::xml_escape(content) + "</text>\n";
        return *this;
    }

    // Opens a <g>; every begin_group needs an end_group.
    SvgDocument& begin_group(const SvgGroup& group = {}) {
        check_finite("SvgDocument::begin_group", {group.translate_x, group.translate_y});
        m_body += "<g";
        if (!group.id.empty()) m_body += " id=\"" + detail::xml_escape(group.id) + "\"";
        if (group.translate_x != 0.0 || group.translate_y != 0.0)
            m_body += " transform=\"translate(" + num(group.translate_x) + " " + num(group.translate_y) + ")\"";
        if (group.crisp_edges) m_body += " shape-rendering=\"crispEdges\"";
        m_body += ">\n";
        ++m_open_groups;
        return *this;
    }
    SvgDocument& end_group() {
        if (m_open_groups == 0) throw ArgumentError("SvgDocument::end_group", "no group is open");
        --m_open_groups;
        m_body += "</g>\n";
        return *this;
    }

    // The whole document. Throws ArgumentError when a group is still open.
    std::string to_string() const {
        if (m_open_groups != 0)
            throw ArgumentError("SvgDocument", std::to_string(m_open_groups) + " group(s) left open");
        std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(m_width) + "\" height=\"" +
             num(m_height) + "\" viewBox=\"0 0 " + num(m_width) + " " + num(m_height) +
             "\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n";
        if (!m_title.empty()) s += "<title>" + detail::xml_escape(m_title) + "</title>\n";
        s += "<rect x=\"0\" y=\"0\" width=\"" + num(m_width) + "\" height=\"" + num(m_height) + "\" fill=\"#ffffff\"/>\n";
        s += m_body;
        s += "</svg>\n";
        return s;
    }
    // Writes the document through write_file_atomically; throws FileError naming `path`.
    void write(const std::string& path) const {
        const std::string text = to_string();
        write_file_atomically(path, text);
    }

private:
    std::string num(double v) const { return detail::format_fixed(v, m_decimals); }
    static void check_finite(const char* where, std::initializer_list<double> values) {
        for (const double v : values)
            if (!std::isfinite(v)) throw ArgumentError(where, "non-finite coordinate or size");
    }
    std::string paint(const SvgStyle& style) const {
        std::string s = " fill=\"" + detail::xml_escape(style.fill) + "\"";
        if (style.stroke != "none") {
            s += " stroke=\"" + detail::xml_escape(style.stroke) + "\"";
            if (std::isfinite(style.stroke_width)) s += " stroke-width=\"" + num(style.stroke_width) + "\"";
        }
        if (std::isfinite(style.opacity) && style.opacity < 1.0)
            s += " opacity=\"" + detail::format_fixed(std::max(0.0, style.opacity), 3) + "\"";
        return s;
    }
    void close_element(const char* name, const std::string& tooltip) {
        if (tooltip.empty()) {
            m_body += "/>\n";
        } else {
            m_body += "><title>" + detail::xml_escape(tooltip) + "</title></";
            m_body += name;
            m_body += ">\n";
        }
    }

    double m_width;          // canvas width, px
    double m_height;         // canvas height, px
    int m_decimals;          // digits after the point for every number
    std::string m_title;     // document <title>, empty = none
    std::string m_body;      // serialized elements in drawing order
    int m_open_groups = 0;   // begin_group calls not yet closed
};

} // namespace exsal

#endif // EXSAL_REPORT_SVG_HPP
