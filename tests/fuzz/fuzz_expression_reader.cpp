// libFuzzer target: read_expression on arbitrary bytes (plain or gzip), then, when it succeeds,
// the promises of ExpressionMatrix and a write_expression / read_expression round trip.
// Input: byte 0 selects the options, the rest is the file:
//   bit 0 genes_in_rows, bit 1 sum_duplicates, bit 2 allow_negative, bit 3 keep the symbols' case,
//   bits 4-5 separator (0 detect, 1 ',', 2 '\t', 3 ';'), bit 6 no group column.

#include "fuzz_common.hpp"
#include "line_buffer_cache.hpp"

#include "exsal/io/expression_reader.hpp"
#include "exsal/io/expression_writer.hpp"

#include <cmath>
#include <cstring>
#include <unordered_set>

using exsal_fuzz::ScratchFile;

namespace {

bool has_line_break(const std::vector<std::string>& names) {
    for (const auto& s : names)
        if (s.find_first_of("\r\n") != std::string::npos) return true;
    return false;
}

void check_matrix(const exsal::ExpressionMatrix& m, const exsal::ExpressionReadOptions& opt) {
    m.check_consistent("fuzz"); // throws (a finding: not caught below) when names and shape disagree
    fuzz_check(m.n_genes() >= 1 && m.n_cells() >= 1);
    if (opt.genes_in_rows || opt.group_column.empty()) fuzz_check(!m.has_groups());
    fuzz_check(m.values.allFinite());
    if (!opt.allow_negative) fuzz_check((m.values.array() >= 0.0f).all());
    std::unordered_set<std::string> seen;
    for (const auto& g : m.genes) {
        fuzz_check(!g.empty());
        fuzz_check(seen.insert(g).second); // unique (summed or refused otherwise)
        if (opt.upper_case_genes)
            for (char c : g) fuzz_check(!(c >= 'a' && c <= 'z'));
    }
    for (const auto& c : m.cells) fuzz_check(!c.empty());
}

void round_trip(const exsal::ExpressionMatrix& m, const exsal::ExpressionReadOptions& opt, char sep) {
    static ScratchFile out("expression-roundtrip");
    exsal::ExpressionWriteOptions w;
    w.genes_in_rows = opt.genes_in_rows;
    w.separator = sep;
    w.compression = exsal::Compression::none;
    try {
        exsal::write_expression(out.path, m, w);
    } catch (const exsal::ArgumentError&) {
        // Documented refusal: names with line breaks (a lone CR inside a line reads as text).
        fuzz_check(has_line_break(m.genes) || has_line_break(m.cells) || has_line_break(m.groups));
        return;
    }
    exsal::ExpressionReadOptions r;
    r.genes_in_rows = opt.genes_in_rows;
    r.separator = sep;
    r.upper_case_genes = false;
    r.allow_negative = true;
    r.group_column = m.has_groups() && !opt.genes_in_rows ? "cluster" : "";
    const exsal::ExpressionMatrix back = exsal::read_expression(out.path, r);
    fuzz_check(back.genes == m.genes);
    fuzz_check(back.cells == m.cells);
    if (!opt.genes_in_rows) fuzz_check(back.groups == m.groups);
    fuzz_check(back.values.rows() == m.values.rows() && back.values.cols() == m.values.cols());
    fuzz_check(std::memcmp(back.values.data(), m.values.data(), sizeof(float) * static_cast<std::size_t>(m.values.size())) == 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size < 1) return 0;
    static ScratchFile in("expression");
    const unsigned char flags = data[0];
    exsal::ExpressionReadOptions opt;
    opt.genes_in_rows = flags & 1;
    opt.sum_duplicates = flags & 2;
    opt.allow_negative = flags & 4;
    opt.upper_case_genes = !(flags & 8);
    static constexpr char separators[4] = {0, ',', '\t', ';'};
    opt.separator = separators[(flags >> 4) & 3];
    if (flags & 64) opt.group_column.clear();
    exsal_fuzz::write_scratch(in.path, data + 1, size - 1);
    exsal::ExpressionMatrix m;
    try {
        m = exsal::read_expression(in.path, opt);
    } catch (const exsal::FileError& e) {
        fuzz_check(e.path() == in.path); // every complaint names the file
        return 0;
    }
    check_matrix(m, opt);
    // The separator the reader used: forced, or the one detect_separator picks on the header.
    char sep = opt.separator;
    if (sep == 0) sep = ',';
    round_trip(m, opt, sep);
    return 0;
}
