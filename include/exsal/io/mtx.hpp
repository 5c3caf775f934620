#ifndef EXSAL_IO_MTX_HPP
#define EXSAL_IO_MTX_HPP

// Reads a 10x Genomics matrix folder (Cell Ranger's filtered_feature_bc_matrix/, or before Cell
// Ranger 3 filtered_gene_bc_matrices/<genome>/) into a SparseExpression with one row per barcode:
//   matrix.mtx[.gz]     Matrix Market "coordinate integer|real general": rows = features,
//                       columns = barcodes, 1-based indices
//   features.tsv[.gz]   id <TAB> name <TAB> feature type (Cell Ranger >= 3), or
//   genes.tsv[.gz]      id <TAB> name (Cell Ranger 2: every row is a gene)
//   barcodes.tsv[.gz]   one barcode per line (the first tab-separated field)
// Any file may be gzip (recognised by its content). The path may also be the matrix file itself;
// the other files are then looked for next to it with the same prefix ("GSM1_matrix.mtx.gz" ->
// "GSM1_features.tsv.gz", ...), as GEO supplementary files are named.
//
// Genes are the name column of the features whose type is options.feature_type ("Gene
// Expression": antibody, CRISPR guide and custom features are dropped), upper-cased by default
// like the other readers, then made unique the way scanpy's var_names_make_unique does: the
// second "X" becomes "X-1", the third "X-2", ..., skipping a suffix that is already a name.
// Blank lines in the TSV files are skipped (as pandas does).
//
// Memory: the entries are kept as (row, value) pairs in file order, 8 bytes each, plus a column
// per entry (4 bytes) only once an entry comes in a column before the previous one's; Cell Ranger
// writes them column by column, so the common file goes into the CSR arrays without a copy.
// Otherwise a stable counting sort by column (two passes) builds them.
//
// Every problem is a FileError naming the file, and the line and column where one applies.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_reader.hpp" // detail::parse_value
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace exsal {

struct TenxReadOptions {
    // features.tsv: keep the features of this type ("" keeps every feature). genes.tsv has no
    // type column: all its rows are kept.
    std::string feature_type = "Gene Expression";
    // Upper-case gene symbols (ASCII letters) as read_expression and read_gmt do by default, so
    // that they match gene sets; duplicates are made unique after upper-casing.
    bool upper_case_genes = true;
    // The barcodes whose values are kept (SparseExpression::held); all barcodes' ids are read.
    // An HDF5 matrix is read for those cells alone; a Matrix Market file, whose entries may come
    // in any order, is read whole and then cut down to them.
    ReadShare share;
};

// What read_10x_mtx read and changed, for a log line.
struct TenxReadSummary {
    std::string matrix_path, features_path, barcodes_path; // the files read
    bool features_v3 = false;         // features.tsv (Cell Ranger >= 3) rather than genes.tsv
    Index features_in_file = 0;       // matrix rows
    Index features_dropped = 0;       // not of options.feature_type (e.g. "Antibody Capture")
    Index genes_renamed = 0;          // duplicate symbols given a "-1", "-2", ... suffix
    std::int64_t entries_in_file = 0; // stored values in the matrix file
    std::int64_t entries_dropped = 0; // of those, values of dropped features (HDF5 read by share: of the share's cells)
};

namespace detail::tenx {

namespace fs = std::filesystem;

struct TenxFiles {
    std::string matrix, features, barcodes;
    bool v3 = true; // features.tsv (id, name, type) rather than genes.tsv (id, name)
};

// "the folder holds: a, b, c" (sorted, at most 12 names), for a missing file.
inline std::string folder_listing(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        names.push_back(it->path().filename().string());
    if (names.empty()) return "the folder is empty";
    std::sort(names.begin(), names.end());
    std::string s = "the folder holds ";
    for (std::size_t i = 0; i < names.size() && i < 12; ++i) s += (i ? ", " : "") + quote_excerpt(names[i]);
    if (names.size() > 12) s += ", ... (" + std::to_string(names.size()) + " entries)";
    return s;
}

// The path of `base` or `base.gz` in `dir`, whichever exists; "" for neither. Both is an error:
// they may differ and nothing says which one is meant.
inline std::string plain_or_gzip(const fs::path& dir, const std::string& base) {
    std::error_code ec;
    const fs::path plain = dir / base, gz = dir / (base + ".gz");
    const bool has_plain = fs::is_regular_file(plain, ec), has_gz = fs::is_regular_file(gz, ec);
    if (has_plain && has_gz)
        throw FileError(dir.string(), "the folder holds both " + base + " and " + base +
                                          ".gz; keep one of them so that it is clear which is meant");
    return has_plain ? plain.string() : has_gz ? gz.string() : std::string();
}

inline bool ends_with(std::string_view s, std::string_view tail) noexcept {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The three files of the 10x folder `path`, or of the folder holding the matrix file `path`.
inline TenxFiles find_files(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st))
        throw FileError(path, "no such file or folder (give a 10x matrix folder or its matrix.mtx[.gz])");
    TenxFiles f;
    fs::path dir = path;
    std::string prefix;
    if (fs::is_directory(st)) {
        f.matrix = plain_or_gzip(dir, "matrix.mtx");
        if (f.matrix.empty())
            throw FileError(path, "not a 10x matrix folder: no matrix.mtx or matrix.mtx.gz; " + folder_listing(dir));
    } else {
        const std::string name = dir.filename().string();
        const std::string_view tail = ends_with(name, "matrix.mtx.gz") ? "matrix.mtx.gz" : "matrix.mtx";
        if (!ends_with(name, tail))
            throw FileError(path, "not a 10x matrix file: the name should end in matrix.mtx or matrix.mtx.gz "
                                  "(or give the folder that holds it)");
        prefix = name.substr(0, name.size() - tail.size());
        f.matrix = path;
        dir = dir.parent_path();
        if (dir.empty()) dir = ".";
    }
    f.features = plain_or_gzip(dir, prefix + "features.tsv");
    const std::string genes = plain_or_gzip(dir, prefix + "genes.tsv");
    if (!f.features.empty() && !genes.empty())
        throw FileError(dir.string(), "the folder holds both " + prefix + "features.tsv and " + prefix +
                                          "genes.tsv; keep the one that belongs to the matrix");
    if (f.features.empty()) {
        f.features = genes;
        f.v3 = false;
    }
    if (f.features.empty())
        throw FileError(dir.string(), "no " + prefix + "features.tsv[.gz] (Cell Ranger >= 3) or " + prefix +
                                          "genes.tsv[.gz] (Cell Ranger 2) next to the matrix; " + folder_listing(dir));
    f.barcodes = plain_or_gzip(dir, prefix + "barcodes.tsv");
    if (f.barcodes.empty())
        throw FileError(dir.string(), "no " + prefix + "barcodes.tsv[.gz] next to the matrix; " + folder_listing(dir));
    return f;
}

inline bool is_blank(const char* p) noexcept {
    while (*p == ' ' || *p == '\t') ++p;
    return *p == '\0';
}

// Splits a TSV line at tabs: the first `max_fields` fields go to `fields`; returns the number of
// fields of the whole line.
inline std::size_t split_tabs(std::string_view line, std::string_view* fields, std::size_t max_fields) noexcept {
    std::size_t n = 0, start = 0;
    for (;;) {
        const std::size_t tab = line.find('\t', start);
        const std::size_t end = tab == std::string_view::npos ? line.size() : tab;
        if (n < max_fields) fields[n] = line.substr(start, end - start);
        ++n;
        if (tab == std::string_view::npos) return n;
        start = tab + 1;
    }
}

inline std::size_t column_of(std::string_view field, const char* line) noexcept {
    return static_cast<std::size_t>(field.data() - line) + 1;
}

// The features file: per matrix row its gene (or -1 for a dropped feature), and the genes' names.
struct FeatureTable {
    std::vector<std::int32_t> gene_of_row;
    std::vector<std::string> genes;
    std::vector<std::string> dropped_types; // distinct types of dropped features, the first few
    Index dropped = 0;
};

inline FeatureTable read_features(const std::string& path, bool v3, const TenxReadOptions& opt) {
    TextLineReader in(path);
    FeatureTable t;
    const std::size_t needed = v3 ? 3 : 2;
    std::string_view f[3];
    while (char* line = in.next_line()) {
        if (is_blank(line)) continue;
        const std::string_view text(line);
        const std::size_t n = split_tabs(text, f, 3);
        if (n < needed)
            throw FileError(path, in.line_number(), 0,
                            "expected " + std::string(v3 ? "3 tab-separated fields (id, name, feature type)"
                                                         : "2 tab-separated fields (id, name)") +
                                ", found " + std::to_string(n) + " in " + quote_excerpt(text) +
                                (v3 && n == 2 ? " (id and name only is the Cell Ranger 2 layout of genes.tsv)" : ""));
        if (f[1].empty()) throw FileError(path, in.line_number(), column_of(f[1], line), "empty feature name");
        if (t.gene_of_row.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
            throw FileError(path, in.line_number(), 0, "more than 2^31-1 features");
        if (!v3 || opt.feature_type.empty() || f[2] == opt.feature_type) {
            t.gene_of_row.push_back(static_cast<std::int32_t>(t.genes.size()));
            t.genes.emplace_back(f[1]);
            continue;
        }
        t.gene_of_row.push_back(-1);
        ++t.dropped;
        if (t.dropped_types.size() < 5 && std::find(t.dropped_types.begin(), t.dropped_types.end(), f[2]) ==
                                              t.dropped_types.end())
            t.dropped_types.emplace_back(f[2]);
    }
    return t;
}

// The barcodes, one per non-blank line (first tab-separated field); empty or repeated ones are
// refused, since cells are keyed by barcode.
inline std::vector<std::string> read_barcodes(const std::string& path) {
    TextLineReader in(path);
    std::vector<std::string> cells;
    std::unordered_map<std::string, std::size_t> line_of;
    std::string_view f[1];
    while (char* line = in.next_line()) {
        if (is_blank(line)) continue;
        split_tabs(line, f, 1);
        if (f[0].empty()) throw FileError(path, in.line_number(), 1, "empty barcode");
        const auto [it, inserted] = line_of.try_emplace(std::string(f[0]), in.line_number());
        if (!inserted)
            throw FileError(path, in.line_number(), 1,
                            "duplicate barcode " + quote_excerpt(f[0]) + " on lines " + std::to_string(it->second) +
                                " and " + std::to_string(in.line_number()) + "; cells are keyed by barcode");
        cells.emplace_back(f[0]);
    }
    return cells;
}

// scanpy's var_names_make_unique (anndata.utils.make_index_unique): every repeat of a name, in
// order, gets "-k" with k counting up per name from 1, skipping results that are names already.
// Returns the number of names changed.
inline Index make_names_unique(std::vector<std::string>& names) {
    std::unordered_set<std::string> taken(names.begin(), names.end());
    if (taken.size() == names.size()) return 0;
    std::unordered_set<std::string_view> first;
    std::vector<std::size_t> repeats;
    for (std::size_t i = 0; i < names.size(); ++i)
        if (!first.insert(names[i]).second) repeats.push_back(i);
    first.clear(); // its views point into names, which change below
    std::unordered_map<std::string, std::size_t> counter;
    for (const std::size_t i : repeats) {
        std::size_t& k = counter[names[i]];
        for (;;) {
            std::string candidate = names[i] + "-" + std::to_string(++k);
            if (taken.insert(candidate).second) {
                names[i] = std::move(candidate);
                break;
            }
        }
    }
    return static_cast<Index>(repeats.size());
}

// ---- The Matrix Market file ----

// What the header of a matrix file says.
struct MtxLayout {
    std::string path;
    bool integer = true; // "integer" values, else "real"
    std::int64_t rows = 0, cols = 0, entries = 0;
    std::size_t size_line = 0; // line of "rows columns entries"
};

struct Word {
    std::string_view text;
    std::size_t column; // 1-based
};

// The next word from p (after spaces and tabs); p is left after it. Empty at the end of the line.
inline std::string_view next_word(const char*& p) noexcept {
    while (*p == ' ' || *p == '\t') ++p;
    const char* b = p;
    while (*p != '\0' && *p != ' ' && *p != '\t') ++p;
    return std::string_view(b, static_cast<std::size_t>(p - b));
}

inline std::vector<Word> words(const char* line) {
    std::vector<Word> out;
    const char* p = line;
    for (std::string_view w = next_word(p); !w.empty(); w = next_word(p)) out.push_back({w, column_of(w, line)});
    return out;
}

inline std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// A non-negative decimal integer, digits only; false for anything else and for values above
// 2^63-1. Up to 18 digits (no overflow possible) by a plain loop: it reads every index of the
// file, and from_chars took twice as long.
inline bool parse_count(std::string_view s, std::int64_t& out) noexcept {
    if (s.empty() || s.front() < '0' || s.front() > '9') return false; // from_chars would take a '-'
    if (s.size() > 18) {
        const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
        return r.ec == std::errc() && r.ptr == s.data() + s.size();
    }
    std::int64_t v = 0;
    for (const char c : s) {
        const auto d = static_cast<unsigned>(static_cast<unsigned char>(c) - '0');
        if (d >= 10) return false;
        v = v * 10 + static_cast<std::int64_t>(d);
    }
    out = v;
    return true;
}

inline bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Checks the banner (line 1) and sets m.integer: only a coordinate general matrix of integer or
// real values is a 10x matrix.
inline void check_banner(const char* line, MtxLayout& m) {
    const std::vector<Word> w = words(line);
    const auto refuse = [&](std::size_t column, const std::string& what) {
        throw FileError(m.path, 1, column,
                        what + "; a 10x matrix file starts with \"%%MatrixMarket matrix coordinate integer general\""
                               " (or real instead of integer)");
    };
    if (w.empty() || lower_ascii(w[0].text) != "%%matrixmarket")
        refuse(1, "not a Matrix Market file: the first line is " + quote_excerpt(line));
    if (w.size() != 5) refuse(0, "the header line has " + std::to_string(w.size()) + " words, not 5");
    const auto q = [&](std::size_t k) { return quote_excerpt(w[k].text); };
    if (lower_ascii(w[1].text) != "matrix")
        refuse(w[1].column, "object " + q(1) + " is not supported: expected \"matrix\"");
    const std::string format = lower_ascii(w[2].text), field = lower_ascii(w[3].text), symmetry = lower_ascii(w[4].text);
    if (format == "array")
        refuse(w[2].column,
               "dense (\"array\") Matrix Market files are not supported: expected the sparse \"coordinate\" format");
    if (format != "coordinate") refuse(w[2].column, "unknown format " + q(2) + ": expected \"coordinate\"");
    if (field == "pattern")
        refuse(w[3].column,
               "\"pattern\" matrices (positions without values) are not supported: expected integer or real values");
    if (field == "complex") refuse(w[3].column, "complex values are not supported: expected integer or real values");
    if (field != "integer" && field != "real")
        refuse(w[3].column, "unknown value type " + q(3) + ": expected integer or real");
    if (symmetry == "symmetric" || symmetry == "skew-symmetric" || symmetry == "hermitian")
        refuse(w[4].column,
               q(4) + " matrices (one triangle stored) are not supported: expected \"general\" (every entry listed)");
    if (symmetry != "general") refuse(w[4].column, "unknown symmetry " + q(4) + ": expected \"general\"");
    m.integer = field == "integer";
}

inline void parse_size_line(const char* line, std::size_t line_no, MtxLayout& m) {
    const std::vector<Word> w = words(line);
    const std::string what = "the size line holds rows, columns and entries";
    if (w.size() != 3)
        throw FileError(m.path, line_no, 0,
                        what + "; found " + std::to_string(w.size()) + " words in " + quote_excerpt(line));
    std::int64_t v[3];
    for (std::size_t k = 0; k < 3; ++k)
        if (!parse_count(w[k].text, v[k]))
            throw FileError(m.path, line_no, w[k].column,
                            quote_excerpt(w[k].text) + " is not a non-negative integer (" + what + ")");
    if (v[0] == 0 || v[1] == 0)
        throw FileError(m.path, line_no, 0, "the matrix is empty: " + std::to_string(v[0]) + " rows (features) and " +
                                                std::to_string(v[1]) + " columns (barcodes)");
    constexpr std::int64_t max_index = std::numeric_limits<std::int32_t>::max();
    for (std::size_t k = 0; k < 2; ++k)
        if (v[k] > max_index)
            throw FileError(m.path, line_no, w[k].column,
                            std::string(k == 0 ? "rows" : "columns") + " above 2^31-1 are not supported");
    if (v[2] > v[0] * v[1]) // both at most 2^31-1: no overflow
        throw FileError(m.path, line_no, w[2].column,
                        std::to_string(v[2]) + " entries is more than rows x columns = " + std::to_string(v[0] * v[1]) +
                            " (each position is stored at most once)");
    m.rows = v[0];
    m.cols = v[1];
    m.entries = v[2];
    m.size_line = line_no;
}

// Reads the banner, the comment lines and the size line.
inline MtxLayout read_header(TextLineReader& in) {
    MtxLayout m;
    m.path = in.path();
    const char* line = in.next_line();
    if (!line)
        throw FileError(m.path,
                        "empty file; a 10x matrix file starts with \"%%MatrixMarket matrix coordinate integer general\"");
    check_banner(line, m);
    while ((line = in.next_line()) != nullptr && (*line == '%' || is_blank(line))) {
    }
    if (!line) throw FileError(m.path, in.line_number(), 0, "no size line (rows, columns, entries) after the header");
    parse_size_line(line, in.line_number(), m);
    return m;
}

// The entries in file order.
struct EntryStore {
    std::vector<std::int32_t> rows;    // 0-based matrix row (feature)
    std::vector<float> values;
    std::vector<std::int32_t> cols;    // 0-based column (barcode); left empty while in column order
    std::vector<std::int64_t> per_col; // entries per column
    std::int32_t last_col = 0;
    bool column_order = true;          // no entry so far lies in a column before the previous entry's

    void add(std::int32_t r, std::int32_t c, float v) {
        if (column_order && c < last_col) leave_column_order();
        if (!column_order) cols.push_back(c);
        last_col = c;
        rows.push_back(r);
        values.push_back(v);
        ++per_col[static_cast<std::size_t>(c)];
    }

    // In column order the columns of the entries so far follow from per_col.
    void leave_column_order() {
        column_order = false;
        cols.reserve(rows.capacity());
        for (std::size_t c = 0; c < per_col.size(); ++c)
            cols.insert(cols.end(), static_cast<std::size_t>(per_col[c]), static_cast<std::int32_t>(c));
    }
};

// The index word `w` of an entry line (1-based, 1..limit), 0-based.
inline std::int32_t parse_entry_index(std::string_view w, const char* line, std::size_t line_no, std::int64_t limit,
                                      const char* what, const MtxLayout& m) {
    const std::size_t column = column_of(w, line);
    if (w.empty())
        throw FileError(m.path, line_no, column,
                        std::string("missing ") + what + " index (an entry is row, column, value)");
    std::int64_t v = 0;
    const bool parsed = parse_count(w, v);
    if (!parsed && !all_digits(w))
        throw FileError(m.path, line_no, column, quote_excerpt(w) + " is not a positive integer (the " + what + " index)");
    if (!parsed || v < 1 || v > limit) // all digits but unparsed: above 2^63-1
        throw FileError(m.path, line_no, column,
                        std::string(what) + " index " + quote_excerpt(w) + " is out of range 1.." + std::to_string(limit) +
                            " (the size line, line " + std::to_string(m.size_line) + ")");
    return static_cast<std::int32_t>(v - 1);
}

inline float parse_entry_value(std::string_view w, const char* line, std::size_t line_no, const MtxLayout& m) {
    const std::size_t column = column_of(w, line);
    if (w.empty()) throw FileError(m.path, line_no, column, "missing value (an entry is row, column, value)");
    if (m.integer && !all_digits(w.substr(w.front() == '+' || w.front() == '-' ? 1 : 0)))
        throw FileError(m.path, line_no, column,
                        quote_excerpt(w) + " is not an integer (the header declares integer values)");
    float v = 0.0f;
    const NumberStatus status = detail::parse_value(w, false, v);
    if (status == NumberStatus::ok) return v + 0.0f; // "-0" is stored as +0
    const std::string q = quote_excerpt(w);
    switch (status) {
    case NumberStatus::negative: throw FileError(m.path, line_no, column, q + " is negative (counts must be >= 0)");
    case NumberStatus::not_finite:
        throw FileError(m.path, line_no, column, q + " is not a finite number (NaN and infinity are not allowed)");
    case NumberStatus::overflow: throw FileError(m.path, line_no, column, q + " is out of the range of a 32-bit float");
    default: throw FileError(m.path, line_no, column, q + " is not a number");
    }
}

// Reads the entry lines after the size line, checking every index against the size line and
// the number of entries against its count.
inline EntryStore read_entries(TextLineReader& in, const MtxLayout& m) {
    EntryStore s;
    s.per_col.assign(static_cast<std::size_t>(m.cols), 0);
    // Reserve what the size line says, but no more than the file can hold, against a lying header
    // (an entry takes at least 6 bytes of text; gzip is guessed at 4 entries per byte at most).
    const auto disk = static_cast<std::int64_t>(std::min<std::uint64_t>(in.file_size(), std::uint64_t(1) << 40));
    const std::int64_t cap = in.is_gzip() ? disk * 4 + 4096 : disk / 6 + 16;
    s.rows.reserve(static_cast<std::size_t>(std::min(m.entries, cap)));
    s.values.reserve(s.rows.capacity());
    std::int64_t n = 0;
    std::size_t line_no = in.line_number();
    while (const char* line = in.next_line()) {
        line_no = in.line_number();
        const char* p = line;
        const std::string_view row = next_word(p);
        if (row.empty() || *line == '%') continue; // blank or comment line
        if (n == m.entries)
            throw FileError(m.path, line_no, column_of(row, line),
                            "more entries than the size line (line " + std::to_string(m.size_line) + ") says (" +
                                std::to_string(m.entries) + ")");
        const std::int32_t r = parse_entry_index(row, line, line_no, m.rows, "row", m);
        const std::int32_t c = parse_entry_index(next_word(p), line, line_no, m.cols, "column", m);
        const float v = parse_entry_value(next_word(p), line, line_no, m);
        const std::string_view extra = next_word(p);
        if (!extra.empty())
            throw FileError(m.path, line_no, column_of(extra, line),
                            "unexpected " + quote_excerpt(extra) + " after the value (an entry is row, column, value)");
        s.add(r, c, v);
        ++n;
    }
    if (n < m.entries)
        throw FileError(m.path, line_no, 0,
                        "the file ends after " + std::to_string(n) + " entries, but the size line (line " +
                            std::to_string(m.size_line) + ") says " + std::to_string(m.entries) + " (a truncated file?)");
    return s;
}

// The entries as CSR by column (cell), in file order within a column; empties `s`.
inline void entries_to_csr(EntryStore& s, SparseExpression& out) {
    const std::size_t n_cols = s.per_col.size();
    out.indptr.assign(n_cols + 1, 0);
    for (std::size_t c = 0; c < n_cols; ++c) out.indptr[c + 1] = out.indptr[c] + s.per_col[c];
    if (s.column_order) {
        out.indices = std::move(s.rows);
        out.values = std::move(s.values);
    } else { // stable counting sort: each entry goes to the next free place of its column
        std::vector<std::int64_t> next(out.indptr.begin(), out.indptr.end() - 1);
        out.indices.resize(s.rows.size());
        out.values.resize(s.rows.size());
        for (std::size_t k = 0; k < s.rows.size(); ++k) {
            const auto at = static_cast<std::size_t>(next[static_cast<std::size_t>(s.cols[k])]++);
            out.indices[at] = s.rows[k];
            out.values[at] = s.values[k];
        }
    }
    s = EntryStore();
}

inline void sort_cell(SparseExpression& out, std::size_t b, std::size_t e,
                      std::vector<std::pair<std::int32_t, float>>& scratch) {
    const auto first = out.indices.begin() + static_cast<std::ptrdiff_t>(b);
    if (std::is_sorted(first, first + static_cast<std::ptrdiff_t>(e - b))) return;
    scratch.clear();
    for (std::size_t k = b; k < e; ++k) scratch.emplace_back(out.indices[k], out.values[k]);
    std::sort(scratch.begin(), scratch.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (std::size_t k = b; k < e; ++k) {
        out.indices[k] = scratch[k - b].first;
        out.values[k] = scratch[k - b].second;
    }
}

struct Duplicate {
    std::int64_t cell = -1; // -1: none
    std::int32_t row = -1;
};

// Sorts each cell's entries by row and looks for a row stored twice, then drops the entries of
// dropped features and renumbers the rest as genes, in place (gene_of_row is increasing over the
// kept rows, so cells stay sorted). Returns the first duplicate, if any, and counts the dropped.
inline Duplicate sort_and_select(SparseExpression& out, const std::vector<std::int32_t>& gene_of_row,
                                 std::int64_t& dropped) {
    std::vector<std::pair<std::int32_t, float>> scratch;
    const std::size_t n_cells = out.indptr.size() - 1;
    std::size_t w = 0;
    for (std::size_t c = 0; c < n_cells; ++c) {
        const auto b = static_cast<std::size_t>(out.indptr[c]), e = static_cast<std::size_t>(out.indptr[c + 1]);
        sort_cell(out, b, e, scratch);
        for (std::size_t k = b + 1; k < e; ++k)
            if (out.indices[k] == out.indices[k - 1]) return {static_cast<std::int64_t>(c), out.indices[k]};
        out.indptr[c] = static_cast<std::int64_t>(w); // b was read first; w <= b
        for (std::size_t k = b; k < e; ++k) {
            const std::int32_t g = gene_of_row[static_cast<std::size_t>(out.indices[k])];
            if (g < 0) continue;
            out.indices[w] = g;
            out.values[w++] = out.values[k];
        }
    }
    dropped = static_cast<std::int64_t>(out.indices.size() - w);
    out.indptr[n_cells] = static_cast<std::int64_t>(w);
    out.indices.resize(w);
    out.values.resize(w);
    if (dropped > static_cast<std::int64_t>(w / 4)) { // worth a copy to give the memory back
        out.indices.shrink_to_fit();
        out.values.shrink_to_fit();
    }
    return {};
}

// The lines of the first two entries at (row, col) (0-based). Found by reading the file again:
// a line number per entry would cost memory for the sake of this one message.
inline std::pair<std::size_t, std::size_t> lines_of_entry(const MtxLayout& m, std::int32_t row, std::int64_t col) {
    TextLineReader in(m.path);
    std::size_t first = 0;
    while (const char* line = in.next_line()) {
        if (in.line_number() <= m.size_line || *line == '%') continue;
        const char* p = line;
        std::int64_t r = 0, c = 0;
        if (parse_count(next_word(p), r) && parse_count(next_word(p), c) && r == row + 1 && c == col + 1) {
            if (first) return {first, in.line_number()};
            first = in.line_number();
        }
    }
    return {first, 0};
}

[[noreturn]] inline void throw_duplicate(const MtxLayout& m, const Duplicate& d, const std::vector<std::string>& cells) {
    const auto [first, second] = lines_of_entry(m, d.row, d.cell);
    throw FileError(m.path, second, 0,
                    "duplicate entry: row " + std::to_string(d.row + 1) + ", column " + std::to_string(d.cell + 1) +
                        " (barcode " + quote_excerpt(cells[static_cast<std::size_t>(d.cell)]) + ") is stored on lines " +
                        std::to_string(first) + " and " + std::to_string(second) +
                        "; each position of the matrix may be stored once");
}

// The features and barcodes must match the matrix's rows and columns, and some feature must be kept.
inline void check_dimensions(const TenxFiles& files, const MtxLayout& m, const FeatureTable& features,
                             std::size_t n_barcodes, const TenxReadOptions& opt) {
    const auto mismatch = [&](const std::string& path, std::size_t n, const char* what, std::int64_t dim,
                              const char* dim_name) {
        throw FileError(path, std::to_string(n) + " " + what + " (non-blank lines), but the matrix " + m.path + " has " +
                                  std::to_string(dim) + " " + dim_name + " (its size line, line " +
                                  std::to_string(m.size_line) + "); do the files belong to the same matrix?");
    };
    if (static_cast<std::int64_t>(features.gene_of_row.size()) != m.rows)
        mismatch(files.features, features.gene_of_row.size(), "features", m.rows, "rows");
    if (static_cast<std::int64_t>(n_barcodes) != m.cols)
        mismatch(files.barcodes, n_barcodes, "barcodes", m.cols, "columns");
    if (features.genes.empty()) {
        std::string types;
        for (const auto& t : features.dropped_types) types += (types.empty() ? "" : ", ") + quote_excerpt(t);
        throw FileError(files.features, "none of the " + std::to_string(features.gene_of_row.size()) +
                                            " features has the type " + quote_excerpt(opt.feature_type) +
                                            " (types found: " + types + ")");
    }
}

// Reads the matrix file into `out`'s CSR arrays (rows still numbered as features).
inline MtxLayout read_matrix(const TenxFiles& files, const FeatureTable& features, SparseExpression& out,
                             const TenxReadOptions& opt) {
    TextLineReader in(files.matrix);
    const MtxLayout m = read_header(in);
    check_dimensions(files, m, features, out.cells.size(), opt);
    EntryStore entries = read_entries(in, m);
    entries_to_csr(entries, out);
    return m;
}

} // namespace detail::tenx

// Reads the 10x matrix folder `path` (or its matrix.mtx[.gz] file; see the top of this file):
// one cell per barcode, one gene per kept feature, values as stored. Fills `summary` when given.
// Throws FileError for a missing file (listing what the folder holds), a header that is not
// "%%MatrixMarket matrix coordinate integer|real general", a bad size line, an index out of
// range, a value that is negative, not finite or not a number (or not an integer where the header
// says integer), more or fewer entries than the size line says, a position stored twice (both
// lines named), features or barcodes not matching the matrix's dimensions, a features line with
// too few fields, an empty or repeated barcode, and no feature of options.feature_type.
inline SparseExpression read_10x_mtx(const std::string& path, const TenxReadOptions& options = {},
                                     TenxReadSummary* summary = nullptr) {
    namespace t = detail::tenx;
    const t::TenxFiles files = t::find_files(path);
    t::FeatureTable features = t::read_features(files.features, files.v3, options);
    SparseExpression out;
    out.cells = t::read_barcodes(files.barcodes);
    const t::MtxLayout m = t::read_matrix(files, features, out, options);
    std::int64_t dropped_entries = 0;
    const t::Duplicate d = t::sort_and_select(out, features.gene_of_row, dropped_entries);
    if (d.cell >= 0) t::throw_duplicate(m, d, out.cells);
    if (options.upper_case_genes)
        for (auto& g : features.genes) detail::upper_case_ascii(g);
    const Index renamed = t::make_names_unique(features.genes);
    out.genes_count = static_cast<Index>(features.genes.size());
    out.genes = std::move(features.genes);
    if (!options.share.all()) restrict_to_cells(out, options.share.of(out.n_cells()));
    if (summary) {
        *summary = TenxReadSummary();
        summary->matrix_path = files.matrix;
        summary->features_path = files.features;
        summary->barcodes_path = files.barcodes;
        summary->features_v3 = files.v3;
        summary->features_in_file = static_cast<Index>(m.rows);
        summary->features_dropped = features.dropped;
        summary->genes_renamed = renamed;
        summary->entries_in_file = m.entries;
        summary->entries_dropped = dropped_entries;
    }
    return out;
}

} // namespace exsal

#endif // EXSAL_IO_MTX_HPP
