#ifndef EXSAL_REPORT_CSV_TABLE_HPP
#define EXSAL_REPORT_CSV_TABLE_HPP

// A small CSV writer for the result tables (RFC 4180 style, "\n" line ends, UTF-8).
//
//   exsal::CsvTable table("unit_top_sets", {"unit", "gene_set", "impact"});
//   table.add_row({"u3", "HALLMARK_MYOGENESIS", 0.125});
//   table.write("unit_top_sets.csv");
//
// Fields are quoted only when they contain a comma, a double quote, CR or LF (quotes doubled).
// Numbers are formatted when added: integers in decimal, float and double as the shortest text
// that std::from_chars reads back to the same value (a float keeps its own shortest form, so
// 0.1f is written "0.1"). Non-finite numbers are written the way R (read.csv) and pandas
// (read_csv) read them by default: NaN -> "NA", +inf -> "Inf", -inf -> "-Inf".
// Booleans are written "true" / "false".

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/text.hpp"
#include "exsal/report/format.hpp"

#include <cmath>
#include <cstddef>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace exsal {

// One field of a row, already formatted as text (see the header comment for the rules).
class CsvField {
public:
    CsvField(std::string text) : m_text(detail::sanitize_utf8(text)) {}
    CsvField(const char* text) : CsvField(std::string(text ? text : "")) {}
    CsvField(bool value) : m_text(value ? "true" : "false") {}
    CsvField(float value) : m_text(format_real(value)) {}
    CsvField(double value) : m_text(format_real(value)) {}
    template <typename Integer,
              typename = std::enable_if_t<std::is_integral_v<Integer> && !std::is_same_v<Integer, bool> &&
                                          !std::is_same_v<Integer, char>>>
    CsvField(Integer value) : m_text(detail::format_integer(value)) {}

    const std::string& text() const noexcept { return m_text; }

private:
    template <typename Real>
    static std::string format_real(Real value) {
        if (std::isnan(value)) return "NA";
        if (std::isinf(value)) return value > 0 ? "Inf" : "-Inf";
        return detail::format_shortest(value);
    }
    std::string m_text; // unquoted field text
};

class CsvTable {
public:
    // `name` identifies the table in error messages; `columns` are the header names (at least
    // one, none empty, no duplicates). Throws ArgumentError naming the table otherwise.
    CsvTable(std::string name, std::vector<std::string> columns)
        : m_name(std::move(name)), m_columns(std::move(columns)) {
        if (m_columns.empty()) throw ArgumentError(where(), "a table needs at least one column");
        std::unordered_set<std::string> seen;
        for (std::size_t c = 0; c < m_columns.size(); ++c) {
            if (m_columns[c].empty())
                throw ArgumentError(where(), "column " + std::to_string(c + 1) + " has an empty name");
            if (!seen.insert(m_columns[c]).second)
                throw ArgumentError(where(), "duplicate column name '" + m_columns[c] + "'");
            m_columns[c] = detail::sanitize_utf8(m_columns[c]);
        }
    }

    // Appends one row; throws ArgumentError naming the table when the field count differs from
    // the number of columns.
    CsvTable& add_row(std::vector<CsvField> fields) {
        if (fields.size() != m_columns.size())
            throw ArgumentError(where() + ".add_row", "row " + std::to_string(n_rows() + 1) + " has " +
                                                          std::to_string(fields.size()) + " fields, the table has " +
                                                          std::to_string(m_columns.size()) + " columns");
        for (auto& field : fields) m_cells.push_back(field.text());
        return *this;
    }

    const std::string& name() const noexcept { return m_name; }
    const std::vector<std::string>& columns() const noexcept { return m_columns; }
    std::size_t n_columns() const noexcept { return m_columns.size(); }
    std::size_t n_rows() const noexcept { return m_cells.size() / m_columns.size(); }
    // The unquoted text of a field (row and column 0-based, not checked).
    const std::string& field(std::size_t row, std::size_t column) const {
        return m_cells[row * m_columns.size() + column];
    }

    // Header line and rows, each ended by "\n".
    void write_to(std::ostream& out) const {
        write_line(out, m_columns.data());
        for (std::size_t r = 0; r < n_rows(); ++r) write_line(out, m_cells.data() + r * m_columns.size());
    }
    std::string to_string() const {
        std::ostringstream out;
        write_to(out);
        return out.str();
    }
    // Writes the table through write_file_atomically; throws FileError naming `path`.
    void write(const std::string& path) const {
        write_file_atomically(path, [this](std::ostream& out) { write_to(out); });
    }

    // A field as it appears in the file: quoted (with doubled quotes) only when needed.
    static std::string quote(const std::string& text) {
        return detail::csv_needs_quotes(text, ',') ? detail::csv_quoted(text) : text;
    }

private:
    std::string where() const { return "CsvTable '" + m_name + "'"; }
    void write_line(std::ostream& out, const std::string* fields) const {
        for (std::size_t c = 0; c < m_columns.size(); ++c) {
            if (c > 0) out << ',';
            out << quote(fields[c]);
        }
        out << '\n';
    }

    std::string m_name;                 // table name used in error messages
    std::vector<std::string> m_columns; // n_columns header names
    std::vector<std::string> m_cells;   // n_rows * n_columns unquoted fields, row-major
};

} // namespace exsal

#endif // EXSAL_REPORT_CSV_TABLE_HPP
