#ifndef EXSAL_IO_GMT_HPP
#define EXSAL_IO_GMT_HPP

// Gene sets in the GMT format (MSigDB): one set per line, NAME <TAB> DESCRIPTION <TAB> GENE...
// Reading: plain or gzip, CR LF or LF, blank lines skipped, spaces around names and genes
// dropped, empty gene fields skipped, symbols upper-cased (optional), a gene listed twice in a
// set kept once at its first position, an optional name prefix filter ("HALLMARK_").
// Also the coverage of a collection by a list of genes (e.g. a matrix's rows).

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/gene_set.hpp"

#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace exsal {

struct GmtReadOptions {
    std::string name_prefix;      // keep only sets whose name starts with this ("" keeps all)
    bool upper_case_genes = true; // upper-case gene symbols (ASCII letters)
};

// How much of one gene set a gene list covers.
struct GeneSetCoverage {
    std::string name;       // the set's name
    Index genes_in_set = 0; // distinct symbols in the set
    Index genes_found = 0;  // of those, how many the gene list holds (= rows.size())
    std::vector<Index> rows; // their indices in the gene list, in the set's order
};

namespace detail {

inline std::string_view trim_blanks(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

} // namespace detail

// Reads the GMT file at `path`. Throws FileError "path:line: ..." for a line with fewer than 3
// fields, an empty name, a set without genes, a duplicate set name (naming both lines; checked
// over the whole file, before the prefix filter), and
// for an empty/binary/unreadable file or one without any set (after the prefix filter).
inline GeneSetCollection read_gmt(const std::string& path, const GmtReadOptions& options = {}) {
    TextLineReader in(path);
    GeneSetCollection sets;
    std::unordered_map<std::string, std::size_t> name_line; // set name -> its line (all sets, kept or not)
    std::unordered_set<std::string> in_set;                 // genes of the current set so far
    std::size_t lines = 0, sets_in_file = 0;
    while (char* line = in.next_line()) {
        ++lines;
        const std::string_view text(line, std::strlen(line));
        if (detail::trim_blanks(text).empty()) continue; // blank line
        const std::size_t line_no = in.line_number();
        // Split at tabs: name, description, genes...
        std::vector<std::string_view> fields;
        std::size_t start = 0;
        for (;;) {
            const std::size_t tab = text.find('\t', start);
            fields.push_back(text.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
            if (tab == std::string_view::npos) break;
            start = tab + 1;
        }
        if (fields.size() < 3)
            throw FileError(path, line_no, 0,
                            "expected at least 3 tab-separated fields (name, description, genes...), found " +
                                std::to_string(fields.size()) + " in " + detail::quote_excerpt(text));
        const std::string_view name = detail::trim_blanks(fields[0]);
        if (name.empty()) throw FileError(path, line_no, 1, "empty gene set name");
        ++sets_in_file;
        GeneSet set;
        set.name = std::string(name);
        set.description = std::string(fields[1]);
        in_set.clear();
        for (std::size_t k = 2; k < fields.size(); ++k) {
            const std::string_view g = detail::trim_blanks(fields[k]);
            if (g.empty()) continue;
            std::string symbol(g);
            if (options.upper_case_genes) detail::upper_case_ascii(symbol);
            if (in_set.insert(symbol).second) set.genes.push_back(std::move(symbol));
        }
        if (set.genes.empty())
            throw FileError(path, line_no, 0, "gene set " + detail::quote_excerpt(set.name) + " lists no genes");
        const auto [it, inserted] = name_line.try_emplace(set.name, line_no);
        if (!inserted)
            throw FileError(path, line_no, 1,
                            "duplicate gene set name " + detail::quote_excerpt(set.name) + " (lines " +
                                std::to_string(it->second) + " and " + std::to_string(line_no) + ")");
        if (set.name.compare(0, options.name_prefix.size(), options.name_prefix) == 0) sets.push_back(std::move(set));
    }
    if (lines == 0) throw FileError(path, "empty file");
    if (sets.empty()) {
        if (sets_in_file == 0) throw FileError(path, "no gene sets in the file (only blank lines)");
        throw FileError(path, "no usable gene set: none of the " + std::to_string(sets_in_file) +
                                  " set names starts with the prefix " + detail::quote_excerpt(options.name_prefix));
    }
    return sets;
}

// Writes `sets` to `path` as GMT, atomically. Throws ArgumentError("write_gmt", ...) for what
// read_gmt would not read back: empty or duplicate names, no genes, tabs or line breaks in fields,
// a first set name that begins with a byte order mark.
inline void write_gmt(const std::string& path, const GeneSetCollection& sets) {
    const std::string where = "write_gmt";
    std::unordered_set<std::string_view> names;
    auto check = [&](const std::string& what, const std::string& s, bool allow_empty) {
        if (!allow_empty && detail::trim_blanks(s).empty()) throw ArgumentError(where, what + " is empty");
        if (s.find_first_of(std::string_view("\t\n\r\0", 4)) != std::string::npos)
            throw ArgumentError(where, what + " \"" + s + "\" contains a tab, line break or NUL byte");
    };
    for (const auto& set : sets) {
        check("gene set name", set.name, false);
        if (!names.insert(set.name).second) throw ArgumentError(where, "duplicate gene set name \"" + set.name + "\"");
        check("description of gene set \"" + set.name + "\"", set.description, true);
        if (set.genes.empty()) throw ArgumentError(where, "gene set \"" + set.name + "\" has no genes");
        for (const auto& g : set.genes) check("a gene symbol of set \"" + set.name + "\"", g, false);
    }
    if (!sets.empty()) {
        const std::string mark = detail::leading_byte_order_mark(sets.front().name);
        if (!mark.empty())
            throw ArgumentError(where, "gene set name \"" + sets.front().name + "\" begins with a " + mark +
                                           "; as the first bytes of the file it would not be read back as written");
    }
    std::string text;
    for (const auto& set : sets) {
        text += set.name;
        text += '\t';
        text += set.description;
        for (const auto& g : set.genes) {
            text += '\t';
            text += g;
        }
        text += '\n';
    }
    write_file_atomically(path, text);
}

// For each set, the rows of `genes` holding its symbols (exact match, first occurrence in
// `genes`), in the set's order; a symbol listed twice in a set counts once.
inline std::vector<GeneSetCoverage> gene_set_coverage(const GeneSetCollection& sets,
                                                      const std::vector<std::string>& genes) {
    std::unordered_map<std::string_view, Index> row_of; // symbol -> first row in genes
    row_of.reserve(genes.size());
    for (std::size_t i = 0; i < genes.size(); ++i) row_of.try_emplace(genes[i], static_cast<Index>(i));
    std::vector<GeneSetCoverage> out;
    out.reserve(sets.size());
    std::unordered_set<std::string_view> seen; // symbols of the current set so far
    for (const auto& set : sets) {
        GeneSetCoverage c;
        c.name = set.name;
        seen.clear();
        for (const auto& g : set.genes) {
            if (!seen.insert(g).second) continue;
            ++c.genes_in_set;
            const auto it = row_of.find(g);
            if (it != row_of.end()) c.rows.push_back(it->second);
        }
        c.genes_found = static_cast<Index>(c.rows.size());
        out.push_back(std::move(c));
    }
    return out;
}

} // namespace exsal

#endif // EXSAL_IO_GMT_HPP
