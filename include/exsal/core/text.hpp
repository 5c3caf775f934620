#ifndef EXSAL_CORE_TEXT_HPP
#define EXSAL_CORE_TEXT_HPP

// Text helpers shared by the readers and the preprocessing.

#include <string>

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

} // namespace detail
} // namespace exsal

#endif // EXSAL_CORE_TEXT_HPP
