#ifndef EXSAL_IO_EXPRESSION_READER_HPP
#define EXSAL_IO_EXPRESSION_READER_HPP

// Reads an expression table (CSV or TSV, plain or gzip) into an ExpressionMatrix (genes x cells).
//
// Layouts:
//   cells as rows (default, the reference layout)   genes as rows (options.genes_in_rows)
//     sample,cluster,GENE1,GENE2,...                  gene,CELL1,CELL2,...
//     cell1,0h,1.5,0,...                              GENE1,1.5,0,...
// In the cells-as-rows layout the id and group columns are found by name anywhere in the header;
// the group column may be absent (no groups). In the genes-as-rows layout the first header field
// names the gene column and is ignored; a header one field shorter than the rows (R's
// write.table without col.names=NA) is taken as cell ids only.
//
// Fields: comma or tab separated (detected from the header unless forced); "double quoted"
// fields may hold separators and "" for a quote, but not line breaks; spaces around a field are
// ignored; CR LF line ends and a UTF-8 BOM are fine; empty lines are skipped. Numbers are decimal
// (integers, decimals, exponents, a leading + or -), read with std::from_chars into float.
// Values too small for a float become 0.
//
// Every problem is a FileError "path:line:field: message" quoting the offending text; the
// reader stops at the first one and returns nothing.

#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_matrix.hpp"
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace exsal {

struct ExpressionReadOptions {
    bool genes_in_rows = false;            // false: one row per cell; true: one row per gene
    char separator = 0;                    // 0: detect ',' or '\t' from the header; else this one
    std::string id_column = "sample";      // cells as rows: header name of the cell id column (required)
    std::string group_column = "cluster";  // cells as rows: header name of the group column ("" or absent: no groups)
    bool upper_case_genes = true;          // upper-case gene symbols (ASCII letters)
    bool sum_duplicates = false;           // add up genes whose symbols coincide, instead of failing
    bool allow_negative = false;           // accept values < 0 (the Poisson loss needs counts >= 0)
};
// Errors that a setting above could resolve carry it as a typed hint (Error::hints(): id_column,
// genes_in_rows, sum_duplicates, allow_negative), so a program can name it as its own option.

namespace detail {

inline std::vector<SettingHint> duplicate_hint() { return {{Setting::sum_duplicates, "to add them up"}}; }

enum class FieldStatus : unsigned char { ok, unterminated_quote, text_after_quote };

// Splits the field starting at p (p <= end): on return `field` is its content (quotes removed,
// "" turned into ", surrounding spaces dropped; unescaping happens in place) and p points at the
// separator after it or at end.
inline FieldStatus next_field(char*& p, char* end, char sep, std::string_view& field) noexcept {
    char* b = p;
    while (b < end && *b == ' ') ++b;
    if (b < end && *b == '"') {
        char* r = b + 1;
        char* w = r;
        for (;;) {
            if (r == end) {
                field = std::string_view(b, static_cast<std::size_t>(end - b));
                p = end;
                return FieldStatus::unterminated_quote;
            }
            if (*r == '"') {
                if (r + 1 < end && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                    continue;
                }
                break;
            }
            *w++ = *r++;
        }
        field = std::string_view(b + 1, static_cast<std::size_t>(w - (b + 1)));
        ++r; // past the closing quote
        while (r < end && *r == ' ') ++r;
        p = r;
        if (r < end && *r != sep) {
            field = std::string_view(r, static_cast<std::size_t>(end - r));
            return FieldStatus::text_after_quote;
        }
        return FieldStatus::ok;
    }
    char* e = b;
    while (e < end && *e != sep) ++e;
    p = e;
    while (e > b && e[-1] == ' ') --e;
    field = std::string_view(b, static_cast<std::size_t>(e - b));
    return FieldStatus::ok;
}

// Number of fields of [p, end) under the grammar of next_field, without modifying the text.
inline std::size_t count_fields(const char* p, const char* end, char sep) noexcept {
    std::size_t n = 0;
    for (;;) {
        ++n;
        while (p < end && *p == ' ') ++p;
        if (p < end && *p == '"') {
            ++p;
            for (;;) {
                if (p >= end) return n;
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        p += 2;
                        continue;
                    }
                    ++p;
                    break;
                }
                ++p;
            }
        }
        while (p < end && *p != sep) ++p;
        if (p == end) return n;
        ++p;
    }
}

// ',' or '\t', whichever separates more fields of the header line; 0 when neither occurs.
inline char detect_separator(const char* p, const char* end) noexcept {
    const std::size_t commas = count_fields(p, end, ',') - 1;
    const std::size_t tabs = count_fields(p, end, '\t') - 1;
    if (tabs == 0 && commas == 0) return 0;
    return tabs >= commas ? '\t' : ',';
}

enum class NumberStatus : unsigned char { ok, empty, not_a_number, not_finite, overflow, negative };

// Clinger's fast path for the decimal at p: digits[.digits] with at most 9 digits in all, read as
// a mantissa m <= 2^24 and k <= 10 decimals, is exactly float(m) / 10^k (both operands exact, one
// correctly rounded division), the same float std::from_chars gives. Returns the position after
// the number with `out` set, or nullptr for anything else (left to from_chars, which gives the
// same value wherever both apply, so which path reads a field never changes the result).
inline const char* scan_decimal(const char* p, const char* end, float& out) noexcept {
    static constexpr float pow10[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
    std::uint32_t m = 0;
    int digits = 0, decimals = 0;
    for (; p < end; ++p) {
        const auto d = static_cast<unsigned>(static_cast<unsigned char>(*p) - '0');
        if (d >= 10) break;
        m = m * 10 + d;
        ++digits;
    }
    if (digits == 0 || digits > 9) return nullptr;
    if (p < end && *p == '.') {
        for (++p; p < end; ++p) {
            const auto d = static_cast<unsigned>(static_cast<unsigned char>(*p) - '0');
            if (d >= 10) break;
            m = m * 10 + d;
            ++decimals;
            if (digits + decimals > 9) return nullptr;
        }
    }
    if (m > (std::uint32_t(1) << 24) || decimals > 10) return nullptr;
    out = decimals > 0 ? static_cast<float>(m) / pow10[decimals] : static_cast<float>(m);
    return p;
}

// A whole field [-]digits[.digits] through scan_decimal; false for anything else.
inline bool parse_simple_decimal(const char* b, const char* e, float& out) noexcept {
    const bool negative = b < e && *b == '-';
    if (negative) ++b;
    float v;
    if (scan_decimal(b, e, v) != e) return false;
    out = negative ? -v : v;
    return true;
}

// The common field in one pass: a scan_decimal number (no sign, quote or space) directly followed
// by the separator or the end of the line. Returns the position after the number with `out` set,
// or nullptr to leave the field to the general path.
inline char* scan_plain_number(char* p, char* end, char sep, float& out) noexcept {
    float v;
    const char* q = scan_decimal(p, end, v);
    if (!q || (q < end && *q != sep)) return nullptr;
    out = v;
    return p + (q - p);
}

// Parses a whole field as a finite float: decimal, optional sign and exponent. Magnitudes below
// the float range become (signed) zero; above it they are an overflow.
inline NumberStatus parse_value(std::string_view f, bool allow_negative, float& out) noexcept {
    if (f.empty()) return NumberStatus::empty;
    const char* b = f.data();
    const char* const e = b + f.size();
    if (*b == '+') {
        ++b;
        if (b == e || *b == '-' || *b == '+') return NumberStatus::not_a_number;
    }
    if (parse_simple_decimal(b, e, out)) {
        if (out < 0.0f && !allow_negative) return NumberStatus::negative;
        return NumberStatus::ok;
    }
    auto res = std::from_chars(b, e, out);
    if (res.ec == std::errc::result_out_of_range) {
        if (res.ptr != e) return NumberStatus::not_a_number;
        // Too large or too small for a float: tell them apart through double, or the exponent's sign.
        double d = 0.0;
        const auto rd = std::from_chars(b, e, d);
        bool tiny;
        if (rd.ec == std::errc()) {
            tiny = std::fabs(d) < 1.0;
        } else {
            const char* x = std::find_if(b, e, [](char c) { return c == 'e' || c == 'E'; });
            tiny = x + 1 < e && x[1] == '-';
        }
        if (!tiny) return NumberStatus::overflow;
        out = (*b == '-') ? -0.0f : 0.0f;
    } else if (res.ec != std::errc() || res.ptr != e) {
        return NumberStatus::not_a_number;
    }
    if (!std::isfinite(out)) return NumberStatus::not_finite;
    if (out < 0.0f && !allow_negative) return NumberStatus::negative;
    return NumberStatus::ok;
}

[[noreturn]] inline void throw_number_error(const std::string& path, std::size_t line, std::size_t column,
                                            NumberStatus status, std::string_view text, const std::string& where,
                                            const ExpressionReadOptions&) {
    const std::string q = quote_excerpt(text);
    std::string msg;
    std::vector<SettingHint> hints;
    switch (status) {
    case NumberStatus::empty: msg = "empty field where a number was expected"; break;
    case NumberStatus::not_finite: msg = q + " is not a finite number (NaN and infinity are not allowed)"; break;
    case NumberStatus::overflow: msg = q + " is out of the range of a 32-bit float (overflow)"; break;
    case NumberStatus::negative:
        msg = q + " is negative (expression counts must be >= 0)";
        hints.push_back({Setting::allow_negative, "to accept negative values"});
        break;
    default: msg = q + " is not a number"; break;
    }
    throw FileError(path, line, column, msg + " (" + where + ")", std::move(hints));
}

// A sum of a duplicate gene's values (sum_duplicates) beyond the largest float: each value fits,
// their sum does not. `where` names the gene and the cell.
[[noreturn]] inline void throw_sum_overflow(const std::string& path, std::size_t line, std::size_t column,
                                            const std::string& where) {
    throw FileError(path, line, column,
                    "adding this value to the same gene's earlier values (sum_duplicates) goes beyond the range of a "
                    "32-bit float (overflow; " + where + ")");
}

[[noreturn]] inline void throw_field_error(const std::string& path, std::size_t line, std::size_t column,
                                           FieldStatus status, std::string_view text) {
    if (status == FieldStatus::unterminated_quote)
        throw FileError(path, line, column,
                        "unterminated quoted field " + quote_excerpt(text) + " (quoted fields cannot span lines)");
    throw FileError(path, line, column, "unexpected text " + quote_excerpt(text) + " after a closing quote");
}

[[noreturn]] inline void throw_field_count(const std::string& path, std::size_t line, std::size_t column,
                                           std::size_t expected, std::size_t found, bool at_least = false) {
    throw FileError(path, line, column,
                    "expected " + std::to_string(expected) + " fields as in the header, found " +
                        (at_least ? "at least " : "") + std::to_string(found));
}

// All fields of a header line as strings.
inline std::vector<std::string> split_header(const TextLineReader& in, char* line, char sep) {
    std::vector<std::string> names;
    char* p = line;
    char* const end = line + std::strlen(line);
    std::string_view f;
    for (;;) {
        const FieldStatus fs = next_field(p, end, sep, f);
        if (fs != FieldStatus::ok) throw_field_error(in.path(), in.line_number(), names.size() + 1, fs, f);
        names.emplace_back(f);
        if (p == end) break;
        ++p;
    }
    return names;
}

// Fields after the expected ones, for the "found" count of a too-long row (p at a separator).
inline std::size_t count_extra_fields(char* p, char* end, char sep) noexcept {
    return count_fields(p + 1, end, sep);
}

inline std::string field_list_excerpt(const std::vector<std::string>& names, std::size_t count = 3) {
    std::string s;
    for (std::size_t i = 0; i < std::min(count, names.size()); ++i) s += (i ? ", " : "") + quote_excerpt(names[i]);
    if (names.size() > count) s += ", ...";
    return s;
}

// rows x cols row-major `src` into column-major `dst` (rows x cols), in cache-sized tiles.
inline void transpose_into(const float* src, Index rows, Index cols, MatrixF& dst) {
    dst.resize(rows, cols);
    constexpr Index tile = 64;
    for (Index r0 = 0; r0 < rows; r0 += tile)
        for (Index c0 = 0; c0 < cols; c0 += tile) {
            const Index r1 = std::min(rows, r0 + tile), c1 = std::min(cols, c0 + tile);
            for (Index c = c0; c < c1; ++c)
                for (Index r = r0; r < r1; ++r) dst(r, c) = src[r * cols + c];
        }
}

// A value field starting at p: plain numbers in one pass (scan_plain_number), anything else
// through next_field and parse_value. Returns the position after the field; `where()` names the
// value in an error message and is only called then, so the common path builds no strings.
template <typename Where>
inline char* read_value_field(char* p, char* end, char sep, const ExpressionReadOptions& opt, const std::string& path,
                              std::size_t line_no, std::size_t column, float& value, const Where& where) {
    if (char* q = scan_plain_number(p, end, sep, value)) return q;
    std::string_view f;
    const FieldStatus fs = next_field(p, end, sep, f);
    if (fs != FieldStatus::ok) throw_field_error(path, line_no, column, fs, f);
    const NumberStatus ns = parse_value(f, opt.allow_negative, value);
    if (ns != NumberStatus::ok) throw_number_error(path, line_no, column, ns, f, where(), opt);
    return p;
}

inline std::string duplicate_cell_message(std::string_view id, const char* places, std::size_t first,
                                          std::size_t second) {
    return "duplicate cell id " + quote_excerpt(id) + " " + places + " " + std::to_string(first) + " and " +
           std::to_string(second) + "; every output table is keyed by the cell id, so ids must be unique";
}

// What each header field of a cells-as-rows table holds.
struct CellTableHeader {
    static constexpr Index id = -1, group = -2; // roles of the id and group fields
    std::vector<std::string> names;             // the header fields as written
    std::vector<Index> role;                    // per field: the row of its gene, or id or group
    std::vector<std::string> genes;             // distinct symbols, in the order of their first column
    bool has_groups = false;                    // a group column exists
    bool has_duplicates = false;                // some gene spans several columns (sum_duplicates)
};

// Marks the id and group fields in h.role (the first field of each name); throws when there is
// no id column.
inline void find_id_and_group_fields(CellTableHeader& h, const ExpressionReadOptions& opt, const std::string& path,
                                     std::size_t header_line) {
    constexpr std::size_t none = static_cast<std::size_t>(-1);
    std::size_t id_field = none, group_field = none;
    for (std::size_t k = 0; k < h.names.size(); ++k) {
        if (id_field == none && h.names[k] == opt.id_column)
            id_field = k;
        else if (group_field == none && !opt.group_column.empty() && h.names[k] == opt.group_column)
            group_field = k;
    }
    if (id_field == none)
        throw FileError(path, header_line, 0,
                        "the header has no cell id column " + quote_excerpt(opt.id_column) + " (its fields start with " +
                            field_list_excerpt(h.names) + ")",
                        {{Setting::id_column, "to name it"}, {Setting::genes_in_rows, "for a genes x cells table"}});
    h.role[id_field] = CellTableHeader::id;
    if (group_field != none) h.role[group_field] = CellTableHeader::group;
    h.has_groups = group_field != none;
}

// Gives every other field the row of its gene: the first column of a symbol opens a row, a later
// one adds to it (sum_duplicates) or is an error.
inline void assign_gene_rows(CellTableHeader& h, const ExpressionReadOptions& opt, const std::string& path,
                             std::size_t header_line) {
    const std::size_t nf = h.names.size();
    h.genes.reserve(nf);
    std::unordered_map<std::string, std::size_t> first_field; // symbol -> header field of its first column
    first_field.reserve(nf);
    for (std::size_t k = 0; k < nf; ++k) {
        if (h.role[k] == CellTableHeader::id || h.role[k] == CellTableHeader::group) continue;
        std::string symbol = h.names[k];
        if (symbol.empty())
            throw FileError(path, header_line, k + 1,
                            "empty gene symbol in header field " + std::to_string(k + 1) + " (a row-names column?)");
        if (opt.upper_case_genes) upper_case_ascii(symbol);
        const auto [it, inserted] = first_field.try_emplace(symbol, k);
        if (inserted) {
            h.role[k] = static_cast<Index>(h.genes.size());
            h.genes.push_back(std::move(symbol));
        } else if (opt.sum_duplicates) {
            h.role[k] = h.role[it->second];
            h.has_duplicates = true;
        } else {
            throw FileError(path, header_line, k + 1,
                            "duplicate gene symbol " + quote_excerpt(symbol) + " in header fields " +
                                std::to_string(it->second + 1) + " and " + std::to_string(k + 1) +
                                (opt.upper_case_genes ? " (after upper-casing)" : ""),
                            duplicate_hint());
        }
    }
    if (h.genes.empty())
        throw FileError(path, header_line, 0,
                        "the header has no gene columns (fields: " + field_list_excerpt(h.names) + ")");
}

inline CellTableHeader read_cell_table_header(const TextLineReader& in, char* header, char sep,
                                              const ExpressionReadOptions& opt) {
    CellTableHeader h;
    h.names = split_header(in, header, sep);
    h.role.assign(h.names.size(), 0); // every field set below
    find_id_and_group_fields(h, opt, in.path(), in.line_number());
    assign_gene_rows(h, opt, in.path(), in.line_number());
    return h;
}

// The id and group of each cell read so far.
struct CellLabels {
    std::vector<std::string> cells, groups;
    std::unordered_map<std::string, std::size_t> line_of; // cell id -> line of its row

    void add_id(std::string_view id, const std::string& path, std::size_t line_no, std::size_t column) {
        if (id.empty()) throw FileError(path, line_no, column, "empty cell id");
        const auto [it, inserted] = line_of.try_emplace(std::string(id), line_no);
        if (!inserted) throw FileError(path, line_no, column, duplicate_cell_message(id, "on lines", it->second, line_no));
        cells.emplace_back(id);
    }
};

// Parses the data row [line, end) into `col` (this cell's value of every gene) and `labels`.
inline void read_cell_row(char* line, char* end, char sep, const CellTableHeader& h, const ExpressionReadOptions& opt,
                          const std::string& path, std::size_t line_no, float* col, CellLabels& labels) {
    const std::size_t nf = h.names.size();
    if (h.has_duplicates) std::fill(col, col + h.genes.size(), 0.0f);
    char* p = line;
    std::string_view f;
    for (std::size_t k = 0; k < nf; ++k) {
        if (k > 0) {
            if (p == end) throw_field_count(path, line_no, 0, nf, k);
            ++p;
        }
        const Index r = h.role[k];
        if (r >= 0) {
            float v;
            p = read_value_field(p, end, sep, opt, path, line_no, k + 1, v,
                                 [&] { return "gene " + quote_excerpt(h.names[k]); });
            if (h.has_duplicates) {
                col[r] += v;
                if (!std::isfinite(col[r]))
                    throw_sum_overflow(path, line_no, k + 1, "gene " + quote_excerpt(h.genes[static_cast<std::size_t>(r)]));
            } else {
                col[r] = v;
            }
            continue;
        }
        const FieldStatus fs = next_field(p, end, sep, f);
        if (fs != FieldStatus::ok) throw_field_error(path, line_no, k + 1, fs, f);
        if (r == CellTableHeader::id)
            labels.add_id(f, path, line_no, k + 1);
        else
            labels.groups.emplace_back(f);
    }
    if (p != end) throw_field_count(path, line_no, nf + 1, nf, nf + count_extra_fields(p, end, sep));
}

// Cells as rows: parses every row straight into its column of a genes x cells matrix, whose
// capacity grows by realloc (Eigen's conservativeResize keeps column-major data in place).
inline ExpressionMatrix read_cells_in_rows(TextLineReader& in, char* header, char sep,
                                           const ExpressionReadOptions& opt) {
    const std::string& path = in.path();
    const std::size_t header_line = in.line_number();
    CellTableHeader h = read_cell_table_header(in, header, sep, opt);
    const auto n_genes = static_cast<Index>(h.genes.size());

    ExpressionMatrix m;
    Index capacity = 64;
    m.values.resize(n_genes, capacity);
    CellLabels labels;
    Index n = 0;
    while (char* line = in.next_line()) {
        if (*line == '\0') continue; // blank line
        const std::size_t length = std::strlen(line);
        if (n == capacity) {
            capacity *= 2;
            m.values.conservativeResize(n_genes, capacity);
        }
        read_cell_row(line, line + length, sep, h, opt, path, in.line_number(), m.values.data() + n * n_genes, labels);
        ++n;
        if (n == 1 && !in.is_gzip() && in.file_size() > 0) {
            // Pre-size from the file size and the first row's length (10 % slack).
            const auto estimate = static_cast<Index>(in.file_size() / (length + 1) * 11 / 10 + 16);
            if (estimate > capacity) {
                capacity = estimate;
                m.values.conservativeResize(n_genes, capacity);
            }
        }
    }
    if (n == 0) throw FileError(path, header_line, 0, "no data rows: the file has a header only");
    m.values.conservativeResize(n_genes, n);
    m.genes = std::move(h.genes);
    m.cells = std::move(labels.cells);
    if (h.has_groups) m.groups = std::move(labels.groups);
    return m;
}

// The first non-blank line after the header; throws when there is none.
inline char* first_data_line(TextLineReader& in) {
    const std::size_t header_line = in.line_number();
    char* line = in.next_line();
    while (line && *line == '\0') line = in.next_line();
    if (!line) throw FileError(in.path(), header_line, 0, "no data rows: the file has a header only");
    return line;
}

// The cell ids of a genes-as-rows header (all fields, or all but the first when `corner` holds
// the gene column's name); throws on none, an empty id or a duplicate.
inline std::vector<std::string> header_cell_ids(const std::vector<std::string>& names, bool corner,
                                                const std::string& path, std::size_t header_line) {
    std::vector<std::string> cells(names.begin() + (corner ? 1 : 0), names.end());
    if (cells.empty())
        throw FileError(path, header_line, 0, "the header has no cell columns (genes_in_rows expects gene, cell ids...)");
    std::unordered_map<std::string_view, std::size_t> cell_field; // id -> its header field (1-based)
    for (std::size_t c = 0; c < cells.size(); ++c) {
        const std::size_t field = c + (corner ? 2 : 1);
        if (cells[c].empty()) throw FileError(path, header_line, field, "empty cell id in the header");
        const auto [it, inserted] = cell_field.try_emplace(cells[c], field);
        if (!inserted)
            throw FileError(path, header_line, field,
                            duplicate_cell_message(cells[c], "in header fields", it->second, field));
    }
    return cells;
}

// The genes of a genes-as-rows table as read so far.
struct GeneRows {
    std::vector<float> buffer;      // genes x cells, row-major
    std::vector<std::string> genes; // one per row of `buffer`
    std::unordered_map<std::string, std::pair<Index, std::size_t>> seen; // symbol -> (row, line)
    std::vector<float> scratch;     // a duplicate gene's values before they are added to its row
};

// Parses the data row [line, end) (nf fields: a gene symbol, then one value per cell) into `rows`.
inline void read_gene_row(char* line, char* end, char sep, std::size_t nf, const std::vector<std::string>& cells,
                          const ExpressionReadOptions& opt, const std::string& path, std::size_t line_no,
                          GeneRows& rows) {
    char* p = line;
    std::string_view f;
    const FieldStatus fs = next_field(p, end, sep, f);
    if (fs != FieldStatus::ok) throw_field_error(path, line_no, 1, fs, f);
    std::string symbol(f);
    if (symbol.empty()) throw FileError(path, line_no, 1, "empty gene symbol");
    if (opt.upper_case_genes) upper_case_ascii(symbol);
    const auto n_cells = cells.size();
    const auto [it, inserted] = rows.seen.try_emplace(symbol, static_cast<Index>(rows.genes.size()), line_no);
    float* dst;
    if (inserted) {
        rows.buffer.resize(rows.buffer.size() + n_cells);
        dst = rows.buffer.data() + rows.buffer.size() - n_cells;
    } else if (opt.sum_duplicates) {
        dst = rows.scratch.data();
    } else {
        throw FileError(path, line_no, 1,
                        "duplicate gene symbol " + quote_excerpt(symbol) + " on lines " +
                            std::to_string(it->second.second) + " and " + std::to_string(line_no) +
                            (opt.upper_case_genes ? " (after upper-casing)" : ""),
                        duplicate_hint());
    }
    for (std::size_t k = 1; k < nf; ++k) {
        if (p == end) throw_field_count(path, line_no, 0, nf, k);
        p = read_value_field(p + 1, end, sep, opt, path, line_no, k + 1, dst[k - 1], [&] {
            return "gene " + quote_excerpt(symbol) + ", cell " + quote_excerpt(cells[k - 1]);
        });
    }
    if (p != end) throw_field_count(path, line_no, nf + 1, nf, nf + count_extra_fields(p, end, sep));
    if (inserted) {
        rows.genes.push_back(std::move(symbol));
    } else {
        float* row = rows.buffer.data() + static_cast<std::size_t>(it->second.first) * n_cells;
        for (std::size_t c = 0; c < n_cells; ++c) {
            row[c] += rows.scratch[c];
            if (!std::isfinite(row[c]))
                throw_sum_overflow(path, line_no, c + 2,
                                   "gene " + quote_excerpt(rows.genes[static_cast<std::size_t>(it->second.first)]) +
                                       " of line " + std::to_string(it->second.second) + ", cell " + quote_excerpt(cells[c]));
        }
    }
}

// Genes as rows: parses rows into a row-major genes x cells buffer and transposes it once.
inline ExpressionMatrix read_genes_in_rows(TextLineReader& in, char* header, char sep,
                                           const ExpressionReadOptions& opt) {
    const std::string& path = in.path();
    const std::size_t header_line = in.line_number();
    const std::vector<std::string> names = split_header(in, header, sep);
    char* line = first_data_line(in);

    // A first row one field longer than the header: the header holds cell ids only.
    const bool corner_missing = count_fields(line, line + std::strlen(line), sep) == names.size() + 1;
    const std::size_t nf = corner_missing ? names.size() + 1 : names.size(); // fields per row
    std::vector<std::string> cells = header_cell_ids(names, !corner_missing, path, header_line);
    const auto n_cells = static_cast<Index>(cells.size());

    GeneRows rows;
    if (in.file_size() > 0 && !in.is_gzip()) {
        const std::size_t est_rows = in.file_size() / (std::strlen(line) + 1) * 11 / 10 + 16;
        rows.buffer.reserve(std::min<std::size_t>(est_rows, std::size_t(1) << 22) * cells.size());
    }
    rows.scratch.resize(cells.size());
    for (; line; line = in.next_line()) {
        if (*line == '\0') continue;
        read_gene_row(line, line + std::strlen(line), sep, nf, cells, opt, path, in.line_number(), rows);
    }
    ExpressionMatrix m;
    transpose_into(rows.buffer.data(), static_cast<Index>(rows.genes.size()), n_cells, m.values);
    m.genes = std::move(rows.genes);
    m.cells = std::move(cells);
    return m;
}

// Only the id and group of the data row [line, end) into `labels` (a row of another process's
// share: that process checks its values and field count).
inline void read_cell_row_labels(char* line, char* end, char sep, const CellTableHeader& h, const std::string& path,
                                 std::size_t line_no, CellLabels& labels) {
    char* p = line;
    std::string_view f;
    bool id_done = false, group_done = !h.has_groups;
    for (std::size_t k = 0; k < h.names.size() && !(id_done && group_done); ++k) {
        if (k > 0) {
            if (p == end) throw_field_count(path, line_no, 0, h.names.size(), k);
            ++p;
        }
        const FieldStatus fs = next_field(p, end, sep, f);
        const Index r = h.role[k];
        if (r >= 0) continue; // a value: its syntax is the owning process's to check
        if (fs != FieldStatus::ok) throw_field_error(path, line_no, k + 1, fs, f);
        if (r == CellTableHeader::id) {
            labels.add_id(f, path, line_no, k + 1);
            id_done = true;
        } else {
            labels.groups.emplace_back(f);
            group_done = true;
        }
    }
}

inline void check_read_options(const ExpressionReadOptions& options) {
    const char s = options.separator;
    if (s == '"' || s == ' ' || s == '\n' || s == '\r')
        throw ArgumentError("read_expression", "separator cannot be a quote, space or line break");
    if (!options.genes_in_rows) {
        if (options.id_column.empty()) throw ArgumentError("read_expression", "id_column is empty");
        if (options.id_column == options.group_column)
            throw ArgumentError("read_expression", "id_column and group_column are both \"" + options.id_column + "\"");
    }
}

// Reads the header of a table opened as `in`; returns it and sets its separator.
inline char* open_expression_table(TextLineReader& in, const ExpressionReadOptions& options, char& sep) {
    const std::string& path = in.path();
    const char s = options.separator;
    char* header = in.next_line();
    while (header && *header == '\0') header = in.next_line();
    if (!header) throw FileError(path, "empty file (no header line)");
    sep = s;
    if (sep == 0) {
        sep = detect_separator(header, header + std::strlen(header));
        if (sep == 0)
            throw FileError(path, in.line_number(), 0,
                            "cannot detect the separator: the header line " + quote_excerpt(header) +
                                " has neither commas nor tabs");
    }
    return header;
}

// Cells as rows, the values of the cells `share` only (SparseExpression::held), every cell's id
// and group: a first pass counts the rows, a second parses the share's rows whole and of the
// others the id and group fields alone.
inline SparseExpression read_cells_in_rows_share(const std::string& path, const ExpressionReadOptions& opt,
                                                 ReadShare share) {
    std::int64_t rows = 0;
    {
        TextLineReader in(path);
        char sep = 0;
        open_expression_table(in, opt, sep);
        while (char* line = in.next_line())
            if (*line != '\0') ++rows;
    }
    TextLineReader in(path);
    char sep = 0;
    char* header = open_expression_table(in, opt, sep);
    const std::size_t header_line = in.line_number();
    CellTableHeader h = read_cell_table_header(in, header, sep, opt);
    if (rows == 0) throw FileError(path, header_line, 0, "no data rows: the file has a header only");
    const CellRange mine = share.of(rows);
    SparseExpression m;
    m.genes_count = static_cast<Index>(h.genes.size());
    m.indptr.assign(static_cast<std::size_t>(mine.first) + 1, 0);
    CellLabels labels;
    std::vector<float> col(h.genes.size());
    std::int64_t row = 0;
    while (char* line = in.next_line()) {
        if (*line == '\0') continue;
        const std::size_t length = std::strlen(line);
        if (row >= mine.first && row < mine.first + mine.count) {
            read_cell_row(line, line + length, sep, h, opt, path, in.line_number(), col.data(), labels);
            for (std::size_t g = 0; g < col.size(); ++g)
                if (col[g] != 0.0f) {
                    m.indices.push_back(static_cast<std::int32_t>(g));
                    m.values.push_back(col[g]);
                }
            m.indptr.push_back(static_cast<std::int64_t>(m.indices.size()));
        } else {
            read_cell_row_labels(line, line + length, sep, h, path, in.line_number(), labels);
        }
        ++row;
    }
    if (row != rows) throw FileError(path, "changed while it was read (" + std::to_string(rows) + " rows, then " +
                                               std::to_string(row) + ")");
    m.indptr.resize(static_cast<std::size_t>(rows) + 1, static_cast<std::int64_t>(m.indices.size()));
    m.genes = std::move(h.genes);
    m.cells = std::move(labels.cells);
    if (h.has_groups) m.groups = std::move(labels.groups);
    m.held = mine;
    return m;
}

} // namespace detail

// Reads the expression table at `path` (plain or gzip, CSV or TSV) as genes x cells.
// Throws ArgumentError("read_expression", ...) for invalid options and FileError
// "path:line:field: ..." for anything wrong with the file.
inline ExpressionMatrix read_expression(const std::string& path, const ExpressionReadOptions& options = {}) {
    detail::check_read_options(options);
    TextLineReader in(path);
    char sep = 0;
    char* header = detail::open_expression_table(in, options, sep);
    return options.genes_in_rows ? detail::read_genes_in_rows(in, header, sep, options)
                                 : detail::read_cells_in_rows(in, header, sep, options);
}

// The same table as SparseExpression holding the values of the cells `share` only (see
// SparseExpression::held; zeros are not stored), with every cell's id and group: what one process
// of a data-parallel run reads. Cells as rows: only the share's rows are parsed for values (the
// file is read twice, once to count its rows); genes as rows: the table is read whole, then cut
// down to the share. Throws as read_expression, for the share's rows' values.
inline SparseExpression read_expression_share(const std::string& path, const ExpressionReadOptions& options,
                                              ReadShare share) {
    detail::check_read_options(options);
    if (options.genes_in_rows) {
        const ExpressionMatrix m = read_expression(path, options);
        return sparse_cells(m, share.of(m.n_cells()));
    }
    return detail::read_cells_in_rows_share(path, options, share);
}

} // namespace exsal

#endif // EXSAL_IO_EXPRESSION_READER_HPP
