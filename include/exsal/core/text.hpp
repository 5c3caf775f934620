#ifndef EXSAL_CORE_TEXT_HPP
#define EXSAL_CORE_TEXT_HPP

// Text helpers shared by the readers, the writers and the preprocessing.

#include <string>
#include <string_view>

namespace exsal {
namespace detail {

// Upper-cases ASCII letters in place; every other byte (UTF-8 included) stays as it is, so the
// result does not depend on the locale. Gene symbols are matched by this.
inline void upper_case_ascii(std::string& s) noexcept {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
}

// upper_case_ascii on a copy.
inline std::string upper_cased_ascii(std::string s) {
    upper_case_ascii(s);
    return s;
}

// Whether a CSV field must be quoted (RFC 4180): it holds the separator, a double quote, CR or LF.
inline bool csv_needs_quotes(std::string_view text, char sep) noexcept {
    for (const char c : text)
        if (c == sep || c == '"' || c == '\r' || c == '\n') return true;
    return false;
}

// `text` as a quoted CSV field: in double quotes, each double quote doubled (RFC 4180). The one
// quoting of every CSV we write; read_expression, R and pandas all undo it.
inline std::string csv_quoted(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

} // namespace detail
} // namespace exsal

#endif // EXSAL_CORE_TEXT_HPP
