#ifndef EXSAL_REPORT_JSON_HPP
#define EXSAL_REPORT_JSON_HPP

// A tiny JSON value and writer, enough for run.json (settings, sizes, timings, nested objects).
//
//   exsal::JsonValue run = exsal::JsonValue::object();
//   run["seed"] = 42;
//   run["model"]["layers"] = exsal::JsonValue::array({128, 64, 128});
//   run["loss"]["final"] = 0.3125;
//   exsal::write_json("run.json", run);
//
// Objects keep their keys in insertion order (assigning an existing key replaces its value).
// Numbers are formatted when stored: integers in decimal, float and double as the shortest text
// that reads back to the same value (a float keeps its own shortest form). Non-finite numbers
// become null, since JSON has no NaN or infinity. Strings are escaped per RFC 8259 ('"', '\\',
// and control characters; other characters are written as UTF-8) and invalid UTF-8 bytes are
// replaced by U+FFFD, so the output is always valid JSON.

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/error.hpp"
#include "exsal/report/format.hpp"

#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace exsal {

class JsonValue {
public:
    enum class Kind { null, boolean, number, string, array, object };

    JsonValue() = default; // null
    JsonValue(std::nullptr_t) {}
    JsonValue(bool value) : m_kind(Kind::boolean), m_text(value ? "true" : "false") {}
    JsonValue(float value) { set_real(value); }
    JsonValue(double value) { set_real(value); }
    template <typename Integer,
              typename = std::enable_if_t<std::is_integral_v<Integer> && !std::is_same_v<Integer, bool> &&
                                          !std::is_same_v<Integer, char>>>
    JsonValue(Integer value) : m_kind(Kind::number), m_text(detail::format_integer(value)) {}
    JsonValue(std::string text) : m_kind(Kind::string), m_text(std::move(text)) {}
    JsonValue(const char* text) : JsonValue(std::string(text ? text : "")) {}

    static JsonValue object() {
        JsonValue v;
        v.m_kind = Kind::object;
        return v;
    }
    static JsonValue array(std::initializer_list<JsonValue> items = {}) {
        JsonValue v;
        v.m_kind = Kind::array;
        v.m_items.assign(items.begin(), items.end());
        return v;
    }
    template <typename Container>
    static JsonValue array_of(const Container& items) {
        JsonValue v = array();
        for (const auto& item : items) v.m_items.emplace_back(item);
        return v;
    }

    Kind kind() const noexcept { return m_kind; }
    bool is_null() const noexcept { return m_kind == Kind::null; }
    // A scalar's text: a string's characters (unescaped), a number or boolean as written.
    const std::string& text() const noexcept { return m_text; }
    // Object member names (in insertion order) and the members or array items.
    const std::vector<std::string>& keys() const noexcept { return m_keys; }
    const std::vector<JsonValue>& items() const noexcept { return m_items; }
    std::size_t size() const noexcept { return m_items.size(); } // array items or object members

    // Object member access; a null value becomes an empty object first. Inserts a null member
    // when the key is new. Throws ArgumentError when the value is neither null nor an object.
    JsonValue& operator[](const std::string& key) {
        if (m_kind == Kind::null) m_kind = Kind::object;
        if (m_kind != Kind::object) throw ArgumentError("JsonValue::operator[]", "'" + key + "' on a non-object value");
        for (std::size_t i = 0; i < m_keys.size(); ++i)
            if (m_keys[i] == key) return m_items[i];
        m_keys.push_back(key);
        m_items.emplace_back();
        return m_items.back();
    }
    // Appends to an array; a null value becomes an empty array first. Throws ArgumentError on
    // other kinds.
    JsonValue& push_back(JsonValue item) {
        if (m_kind == Kind::null) m_kind = Kind::array;
        if (m_kind != Kind::array) throw ArgumentError("JsonValue::push_back", "the value is not an array");
        m_items.push_back(std::move(item));
        return m_items.back();
    }

    // JSON text. indent > 0: pretty-printed with that many spaces per level; indent <= 0: compact.
    std::string dump(int indent = 2) const {
        std::ostringstream out;
        write_to(out, indent, 0);
        return out.str();
    }
    void write_to(std::ostream& out, int indent = 2, int level = 0) const {
        switch (m_kind) {
        case Kind::null: out << "null"; break;
        case Kind::boolean:
        case Kind::number: out << m_text; break;
        case Kind::string: out << escape(m_text); break;
        case Kind::array:
        case Kind::object: {
            const bool is_object = m_kind == Kind::object;
            out << (is_object ? '{' : '[');
            for (std::size_t i = 0; i < m_items.size(); ++i) {
                if (i > 0) out << ',';
                newline(out, indent, level + 1);
                if (is_object) out << escape(m_keys[i]) << (indent > 0 ? ": " : ":");
                m_items[i].write_to(out, indent, level + 1);
            }
            if (!m_items.empty()) newline(out, indent, level);
            out << (is_object ? '}' : ']');
            break;
        }
        }
    }

    // A JSON string literal (with the quotes) for `text`.
    static std::string escape(const std::string& raw) {
        const std::string text = detail::sanitize_utf8(raw);
        std::string out = "\"";
        for (const char ch : text) {
            switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20) {
                    static const char hex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[(static_cast<unsigned char>(ch) >> 4) & 0xF];
                    out += hex[static_cast<unsigned char>(ch) & 0xF];
                } else {
                    out += ch;
                }
            }
        }
        return out + "\"";
    }

private:
    template <typename Real>
    void set_real(Real value) {
        if (std::isfinite(value)) {
            m_kind = Kind::number;
            m_text = detail::format_shortest(value);
        }
    }
    static void newline(std::ostream& out, int indent, int level) {
        if (indent <= 0) return;
        out << '\n' << std::string(static_cast<std::size_t>(indent) * static_cast<std::size_t>(level), ' ');
    }

    Kind m_kind = Kind::null;
    std::string m_text;              // literal text of a boolean or number; raw text of a string
    std::vector<JsonValue> m_items;  // array items, or object member values (parallel to m_keys)
    std::vector<std::string> m_keys; // object member names in insertion order
};

// Writes `value` (pretty-printed, final newline) through write_file_atomically.
inline void write_json(const std::string& path, const JsonValue& value, int indent = 2) {
    write_file_atomically(path, [&](std::ostream& out) {
        value.write_to(out, indent, 0);
        out << '\n';
    });
}

} // namespace exsal

#endif // EXSAL_REPORT_JSON_HPP
