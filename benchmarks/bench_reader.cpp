// Times exsal::read_expression on a file, repeated, and prints one JSON line.
//
//   bench_reader --file PATH [--reps 5] [--genes-in-rows] [--threads 2]
//   bench_reader --write PATH --cells N --genes G [--seed 1] [--gmt SETS.gmt]
//       writes a synthetic counts CSV (cells as rows, the reference's counts) and exits; with --gmt
//       the genes are named by the first G distinct symbols of the gene sets (G0, G1, ... otherwise),
//       so the pipeline's gene-set restriction keeps them.
//
// Keys: file, bytes, cells, genes, read_s (median), read_min_s, mb_per_s (file bytes / median),
// peak_rss_mib.

#include "bench_common.hpp"

#include "exsal/core/threads.hpp"
#include "exsal/io/expression_reader.hpp"
#include "exsal/io/gmt.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sys/stat.h>
#include <unordered_set>

namespace {

// A cells-as-rows CSV of the reference's synthetic counts (integers), written plainly with stdio:
// a fixture for the reader benchmark, not a library output.
void write_synthetic_csv(const std::string& path, exsal::Index cells, exsal::Index genes, std::uint64_t seed,
                         const std::string& gmt) {
    std::vector<std::string> names;
    if (!gmt.empty()) {
        std::unordered_set<std::string> seen;
        for (const auto& set : exsal::read_gmt(gmt))
            for (const auto& g : set.genes)
                if (static_cast<exsal::Index>(names.size()) < genes && seen.insert(g).second) names.push_back(g);
        if (static_cast<exsal::Index>(names.size()) < genes)
            throw exsal::ArgumentError("bench_reader", gmt + " has only " + std::to_string(names.size()) +
                                                           " distinct genes, fewer than --genes");
    } else {
        for (exsal::Index g = 0; g < genes; ++g) names.push_back("G" + std::to_string(g));
    }
    // Written in blocks of cells so a 100,000-cell file never needs all counts in memory.
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw exsal::FileError(path, "cannot open for writing");
    std::fputs("sample,cluster", f);
    for (const auto& name : names) std::fprintf(f, ",%s", name.c_str());
    std::fputc('\n', f);
    const exsal::Index block = 5000;
    for (exsal::Index c0 = 0; c0 < cells; c0 += block) {
        const exsal::Index nc = std::min(block, cells - c0);
        const exsal::MatrixF x = exsal_bench::synthetic_counts<float>(nc, genes, seed, 8, c0);
        for (exsal::Index c = 0; c < nc; ++c) {
            std::fprintf(f, "cell%lld,group%lld", static_cast<long long>(c0 + c), static_cast<long long>((c0 + c) % 6));
            for (exsal::Index g = 0; g < genes; ++g) std::fprintf(f, ",%d", static_cast<int>(x(g, c)));
            std::fputc('\n', f);
        }
    }
    if (std::fclose(f) != 0) throw exsal::FileError(path, "write failed");
}

} // namespace

int main(int argc, char** argv) {
    try {
        const exsal_bench::Args a(argc, argv, {"file", "reps", "threads", "write", "cells", "genes", "seed", "gmt"},
                                  {"genes-in-rows"});
        exsal::set_threads(static_cast<int>(a.integer("threads", 2)));
        if (!a.text("write", "").empty()) {
            write_synthetic_csv(a.text("write", ""), a.integer("cells", 1000), a.integer("genes", 1000),
                                static_cast<std::uint64_t>(a.integer("seed", 1)), a.text("gmt", ""));
            return 0;
        }
        const std::string path = a.text("file", "");
        if (path.empty()) throw exsal::ArgumentError("bench_reader", "--file is required");
        const int reps = static_cast<int>(a.integer("reps", 5));
        exsal::ExpressionReadOptions opt;
        opt.genes_in_rows = a.flag("genes-in-rows");
        struct stat st{};
        if (stat(path.c_str(), &st) != 0) throw exsal::FileError(path, "cannot stat");
        std::vector<double> t;
        exsal::Index cells = 0, genes = 0;
        double checksum = 0.0;
        for (int i = 0; i < reps; ++i) {
            const double t0 = exsal_bench::now_s();
            const exsal::ExpressionMatrix m = exsal::read_expression(path, opt);
            t.push_back(exsal_bench::now_s() - t0);
            cells = m.n_cells();
            genes = m.n_genes();
            checksum = static_cast<double>(m.values.sum());
        }
        const double med = exsal_bench::median(t);
        std::printf("{\"impl\": \"exsal\", \"file\": \"%s\", \"bytes\": %lld, \"cells\": %lld, \"genes\": %lld, "
                    "\"reps\": %d, \"read_s\": %.4f, \"read_min_s\": %.4f, \"mb_per_s\": %.1f, \"sum\": %.6g, "
                    "\"peak_rss_mib\": %.1f}\n",
                    path.c_str(), static_cast<long long>(st.st_size), static_cast<long long>(cells),
                    static_cast<long long>(genes), reps, med, *std::min_element(t.begin(), t.end()),
                    static_cast<double>(st.st_size) / med * 1e-6, checksum, exsal_bench::peak_rss_mib());
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_reader: " << e.what() << "\n";
        return 1;
    }
}
