// libFuzzer target: read_gmt on arbitrary bytes (plain or gzip), then, when it succeeds, the
// promises of the collection, a write_gmt / read_gmt round trip and gene_set_coverage against
// the sets' own genes.
// Input: byte 0 selects the options (bit 0 keep the symbols' case, bit 1 name prefix
// "HALLMARK_"), the rest is the file.

#include "fuzz_common.hpp"
#include "line_buffer_cache.hpp"

#include "exsal/io/gmt.hpp"

#include <unordered_set>

using exsal_fuzz::ScratchFile;

namespace {

bool has_line_break(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

bool is_trimmed(const std::string& s) {
    return !s.empty() && s.front() != ' ' && s.front() != '\t' && s.back() != ' ' && s.back() != '\t';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    if (size < 1) return 0;
    static ScratchFile in("gmt");
    static ScratchFile out("gmt-roundtrip");
    exsal::GmtReadOptions opt;
    opt.upper_case_genes = !(data[0] & 1);
    if (data[0] & 2) opt.name_prefix = "HALLMARK_";
    exsal_fuzz::write_scratch(in.path, data + 1, size - 1);
    exsal::GeneSetCollection sets;
    try {
        sets = exsal::read_gmt(in.path, opt);
    } catch (const exsal::FileError& e) {
        fuzz_check(e.path() == in.path);
        return 0;
    }
    fuzz_check(!sets.empty());
    std::unordered_set<std::string> names;
    bool line_break = false;
    std::vector<std::string> all_genes;
    for (const auto& s : sets) {
        fuzz_check(is_trimmed(s.name));
        fuzz_check(names.insert(s.name).second);
        fuzz_check(s.name.compare(0, opt.name_prefix.size(), opt.name_prefix) == 0);
        fuzz_check(s.description.find('\t') == std::string::npos);
        fuzz_check(!s.genes.empty());
        std::unordered_set<std::string> genes;
        for (const auto& g : s.genes) {
            fuzz_check(is_trimmed(g) && g.find('\t') == std::string::npos);
            fuzz_check(genes.insert(g).second);
            if (opt.upper_case_genes)
                for (char c : g) fuzz_check(!(c >= 'a' && c <= 'z'));
            line_break = line_break || has_line_break(g);
            all_genes.push_back(g);
        }
        line_break = line_break || has_line_break(s.name) || has_line_break(s.description);
    }

    // Coverage by the collection's own genes: every set is found completely, rows point at its genes.
    const auto coverage = exsal::gene_set_coverage(sets, all_genes);
    fuzz_check(coverage.size() == sets.size());
    for (std::size_t i = 0; i < sets.size(); ++i) {
        fuzz_check(coverage[i].name == sets[i].name);
        fuzz_check(coverage[i].genes_in_set == static_cast<exsal::Index>(sets[i].genes.size()));
        fuzz_check(coverage[i].genes_found == coverage[i].genes_in_set);
        for (std::size_t k = 0; k < coverage[i].rows.size(); ++k)
            fuzz_check(all_genes[static_cast<std::size_t>(coverage[i].rows[k])] == sets[i].genes[k]);
    }

    try {
        exsal::write_gmt(out.path, sets);
    } catch (const exsal::ArgumentError&) {
        // The documented refusals for what read_gmt returns: a line break in a field, a first
        // set name that begins with a byte order mark (read_gmt trims the blanks before it).
        fuzz_check(line_break || !exsal::detail::leading_byte_order_mark(sets.front().name).empty());
        return 0;
    }
    exsal::GmtReadOptions raw;
    raw.upper_case_genes = false;
    const exsal::GeneSetCollection back = exsal::read_gmt(out.path, raw);
    fuzz_check(back.size() == sets.size());
    for (std::size_t i = 0; i < sets.size(); ++i) {
        fuzz_check(back[i].name == sets[i].name);
        fuzz_check(back[i].description == sets[i].description);
        fuzz_check(back[i].genes == sets[i].genes);
    }
    return 0;
}
