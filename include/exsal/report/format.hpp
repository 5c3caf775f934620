#ifndef EXSAL_REPORT_FORMAT_HPP
#define EXSAL_REPORT_FORMAT_HPP

// Text formatting shared by the report writers (CSV, JSON, SVG): numbers through std::to_chars
// (locale-independent, shortest round-trip or fixed precision) and UTF-8 clean-up.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

namespace exsal::detail {

// Shortest text that std::from_chars reads back to the same value (finite values only;
// the callers decide how NaN and infinities are written). -0 is written "-0".
template <typename Real>
std::string format_shortest(Real value) {
    static_assert(std::is_floating_point_v<Real>, "format_shortest takes float, double or long double.");
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

template <typename Integer>
std::string format_integer(Integer value) {
    static_assert(std::is_integral_v<Integer>, "format_integer takes an integer type.");
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

// Fixed notation with at most `decimals` digits after the point, trailing zeros and a bare point
// removed, "-0" written "0": 12.50 -> "12.5", 3.0 -> "3", -0.0001 (2 decimals) -> "0".
// Non-finite values are written "0" (callers reject them before formatting geometry).
inline std::string format_fixed(double value, int decimals) {
    if (!std::isfinite(value)) return "0";
    char buffer[400];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed, decimals);
    std::string text(buffer, result.ptr);
    if (text.find('.') != std::string::npos) {
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
    }
    if (text == "-0") text = "0";
    return text;
}

// General notation with `digits` significant digits (std::chars_format::general), for tick
// labels: 0.000123456 (3) -> "0.000123", 1234567 (3) -> "1.23e+06". Non-finite -> "NA".
inline std::string format_significant(double value, int digits) {
    if (!std::isfinite(value)) return "NA";
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general, digits);
    std::string text(buffer, result.ptr);
    if (text == "-0") text = "0";
    return text;
}

// A number's text with a leading '-' replaced by the typographic minus U+2212 (for figures).
inline std::string with_minus_sign(std::string text) {
    if (!text.empty() && text[0] == '-') text.replace(0, 1, "\xE2\x88\x92");
    return text;
}

// Length in bytes of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
inline std::size_t utf8_sequence_length(const std::string& s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    const std::uint32_t minimum = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// The text with every invalid UTF-8 byte replaced by U+FFFD, so JSON and XML output stays valid.
inline std::string sanitize_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s, i, n);
            i += n;
        }
    }
    return out;
}

// Escapes text for XML character data and attribute values (both quote kinds). Control
// characters that XML 1.0 forbids (all below U+0020 except tab, LF, CR) become U+FFFD.
inline std::string xml_escape(const std::string& raw) {
    const std::string s = sanitize_utf8(raw);
    std::string out;
    out.reserve(s.size() + 8);
    for (const char ch : s) {
        switch (ch) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        case '\t': out += "&#9;"; break;
        case '\n': out += "&#10;"; break;
        case '\r': out += "&#13;"; break;
        default:
            if (static_cast<unsigned char>(ch) < 0x20) out += "\xEF\xBF\xBD";
            else out += ch;
        }
    }
    return out;
}

} // namespace exsal::detail

#endif // EXSAL_REPORT_FORMAT_HPP
