#ifndef EXSAL_IO_CELL_GROUPS_HPP
#define EXSAL_IO_CELL_GROUPS_HPP

// Cell groups (clusters, conditions, time points) from a table of their own, for data whose files
// carry none (a 10x folder) or to replace those they carry. The table is CSV or TSV (separator
// detected from the header line, plain or gzip) with a header line and one row per cell; by
// default the first column holds the cell id and the second the group, or columns are chosen by
// header name. Fields follow read_expression's grammar ("double quotes", spaces around a field
// dropped, blank lines skipped).
//
// Cells of the data that the table does not list get the group "" (no group); ids of the table
// that the data lacks are ignored; both are counted in the summary so that a caller can warn.
// A table that matches no cell at all is an error: it is almost surely meant for other data (or
// writes the barcodes differently, e.g. without the "-1" suffix).

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_matrix.hpp"
#include "exsal/io/expression_reader.hpp" // detail::next_field, detect_separator, split_header
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace exsal {

struct CellGroupsOptions {
    std::string id_column;    // header name of the cell id column; "": the first column that is not the group column
    std::string group_column; // header name of the group column; "": the first column that is not the id column
    char separator = 0;       // 0: detect ',' or '\t' from the header line
};

// How the table's rows met the data's cells.
struct CellGroupsSummary {
    std::string path;
    Index cells_in_file = 0;    // data rows of the table (distinct ids)
    Index cells_grouped = 0;    // cells of the data that the table lists
    Index cells_not_listed = 0; // cells of the data that it does not list: group ""
    Index ids_not_in_data = 0;  // ids of the table that no cell of the data has
    std::vector<std::string> first_not_listed;  // the first few (at most 5) of those cells, in data order
    std::vector<std::string> first_not_in_data; // the first few (at most 5) of those ids, in file order
};

namespace detail::groups {

// The table's rows in file order.
struct GroupTable {
    std::vector<std::string> ids, groups;
    std::vector<std::size_t> lines;
    std::unordered_map<std::string, std::size_t> row_of; // id -> row
};

// Field index of the header name `name`; throws when absent.
inline std::size_t header_field(const std::vector<std::string>& names, const std::string& name, const char* what,
                                const std::string& path, std::size_t line) {
    for (std::size_t k = 0; k < names.size(); ++k)
        if (names[k] == name) return k;
    throw FileError(path, line, 0,
                    std::string("no ") + what + " column " + quote_excerpt(name) + " in the header (its fields: " +
                        field_list_excerpt(names, 8) + ")");
}

// The id and group fields of the header (options by name, else the first two other columns).
inline std::pair<std::size_t, std::size_t> id_and_group_fields(const std::vector<std::string>& names,
                                                               const CellGroupsOptions& opt, const std::string& path,
                                                               std::size_t line) {
    constexpr std::size_t unset = static_cast<std::size_t>(-1);
    std::size_t id = opt.id_column.empty() ? unset : header_field(names, opt.id_column, "cell id", path, line);
    std::size_t group = opt.group_column.empty() ? unset : header_field(names, opt.group_column, "group", path, line);
    if (id == unset) id = group == 0 ? 1 : 0;
    if (group == unset) group = id == 0 ? 1 : 0;
    return {id, group};
}

// Reads the data rows after the header: each has the header's field count, a non-empty id
// that no earlier row had, and a group (maybe empty: no group).
inline GroupTable read_rows(TextLineReader& in, char sep, std::size_t nf, std::size_t id_field, std::size_t group_field) {
    GroupTable t;
    std::string_view f, id, group;
    while (char* line = in.next_line()) {
        if (*line == '\0') continue; // blank line
        const std::size_t line_no = in.line_number();
        char* p = line;
        char* const end = line + std::strlen(line);
        for (std::size_t k = 0; k < nf; ++k) {
            if (k > 0) {
                if (p == end) throw_field_count(in.path(), line_no, 0, nf, k);
                ++p;
            }
            const FieldStatus fs = next_field(p, end, sep, f);
            if (fs != FieldStatus::ok) throw_field_error(in.path(), line_no, k + 1, fs, f);
            if (k == id_field) id = f;
            if (k == group_field) group = f;
        }
        if (p != end) throw_field_count(in.path(), line_no, nf + 1, nf, nf + count_extra_fields(p, end, sep));
        if (id.empty()) throw FileError(in.path(), line_no, id_field + 1, "empty cell id");
        const auto [it, inserted] = t.row_of.try_emplace(std::string(id), t.ids.size());
        if (!inserted)
            throw FileError(in.path(), line_no, id_field + 1,
                            duplicate_cell_message(id, "on lines", t.lines[it->second], line_no) +
                                " (one group per cell)");
        t.ids.emplace_back(id);
        t.groups.emplace_back(group);
        t.lines.push_back(line_no);
    }
    return t;
}

inline GroupTable read_table(const std::string& path, const CellGroupsOptions& opt) {
    TextLineReader in(path);
    char* header = in.next_line();
    while (header && *header == '\0') header = in.next_line();
    if (!header) throw FileError(path, "empty file (no header line)");
    char sep = opt.separator;
    if (sep == 0) sep = detect_separator(header, header + std::strlen(header));
    const std::size_t header_line = in.line_number();
    if (sep == 0)
        throw FileError(path, header_line, 0,
                        "the header line " + quote_excerpt(header) +
                            " has neither commas nor tabs; a cell groups table has at least two columns, "
                            "cell id and group");
    const std::vector<std::string> names = split_header(in, header, sep);
    if (names.size() < 2)
        throw FileError(path, header_line, 0,
                        "the header has one field; a cell groups table has at least two columns, cell id and group");
    const auto [id, group] = id_and_group_fields(names, opt, path, header_line);
    if (id == group)
        throw FileError(path, header_line, id + 1,
                        "the cell id and the group are the same column " + quote_excerpt(names[id]));
    GroupTable t = read_rows(in, sep, names.size(), id, group);
    if (t.ids.empty()) throw FileError(path, header_line, 0, "no data rows: the file has a header only");
    return t;
}

inline std::string excerpt_list(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + quote_excerpt(x);
    return s;
}

} // namespace detail::groups

// The group of each of `cells` (same order) from the table at `path`; "" for cells it does not
// list. Fills `summary` when given. Throws FileError for an unreadable or empty file, a header
// without the named columns or with one field, a row whose field count differs from the header's,
// an empty or repeated cell id (both lines named) and a table that lists none of `cells`.
inline std::vector<std::string> read_cell_groups(const std::vector<std::string>& cells, const std::string& path,
                                                 const CellGroupsOptions& options = {},
                                                 CellGroupsSummary* summary = nullptr) {
    const detail::groups::GroupTable t = detail::groups::read_table(path, options);
    CellGroupsSummary s;
    s.path = path;
    s.cells_in_file = static_cast<Index>(t.ids.size());
    std::vector<std::string> groups(cells.size());
    std::vector<char> used(t.ids.size(), 0);
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const auto it = t.row_of.find(cells[c]);
        if (it == t.row_of.end()) {
            ++s.cells_not_listed;
            if (s.first_not_listed.size() < 5) s.first_not_listed.push_back(cells[c]);
            continue;
        }
        groups[c] = t.groups[it->second];
        used[it->second] = 1;
        ++s.cells_grouped;
    }
    for (std::size_t r = 0; r < t.ids.size(); ++r) {
        if (used[r]) continue;
        ++s.ids_not_in_data;
        if (s.first_not_in_data.size() < 5) s.first_not_in_data.push_back(t.ids[r]);
    }
    if (s.cells_grouped == 0) {
        const auto shown = static_cast<std::ptrdiff_t>(std::min<std::size_t>(cells.size(), 3));
        const std::vector<std::string> first_cells(cells.begin(), cells.begin() + shown);
        throw FileError(path, "none of its " + std::to_string(t.ids.size()) + " cell ids is a cell of the data (its ids: " +
                                  detail::groups::excerpt_list(s.first_not_in_data) + (t.ids.size() > 5 ? ", ..." : "") +
                                  "; the data's: " + detail::groups::excerpt_list(first_cells) +
                                  (cells.size() > 3 ? ", ..." : "") + ")");
    }
    if (summary) *summary = std::move(s);
    return groups;
}

// Sets data.groups from the table at `path` (see read_cell_groups) and returns the summary.
inline CellGroupsSummary assign_cell_groups(SparseExpression& data, const std::string& path,
                                            const CellGroupsOptions& options = {}) {
    CellGroupsSummary s;
    data.groups = read_cell_groups(data.cells, path, options, &s);
    return s;
}

inline CellGroupsSummary assign_cell_groups(ExpressionMatrix& data, const std::string& path,
                                            const CellGroupsOptions& options = {}) {
    CellGroupsSummary s;
    data.groups = read_cell_groups(data.cells, path, options, &s);
    return s;
}

} // namespace exsal

#endif // EXSAL_IO_CELL_GROUPS_HPP
