// Times one of exsal's expression readers on a file and prints one JSON line (built as
// bench_read_formats; used by benchmarks/formats/compare_read.py).
//
//   bench_read_formats --file PATH [--reps 1] [--group-column NAME] [--layer NAME]
//
// The reader is chosen as the pipeline chooses it, by content (exsal::detect_expression_format):
// an AnnData .h5ad (read_h5ad, with --group-column as the cells' groups, default cell_type as
// make_h5ad.py writes it, and --layer as the matrix), a 10x HDF5 file (read_10x_h5), a 10x MTX folder or matrix file (read_10x_mtx), or a
// CSV/TSV table (read_expression, group column default "cluster", which is dense: csr_bytes is then null and dense_bytes the
// genes x cells floats it holds).
//
// Keys: impl, file, format, storage, bytes (on disk; a folder: its files), reps, seconds (median
// of the repetitions, detection included), seconds_min, seconds_max, cells, genes, nnz,
// csr_bytes (SparseExpression::csr_bytes), dense_bytes, peak_rss_mib (getrusage ru_maxrss of this
// process: with --reps 1 the peak of one read, program and libraries included), vm_hwm_mib (VmHWM of
// /proc/self/status: the same peak, but of this program's image only. Linux carries ru_maxrss over
// fork and exec, so a program started by a large process, e.g. a Python interpreter with numpy
// loaded, reports at least that process's size as ru_maxrss; VmHWM starts afresh at exec).

#include "../bench_common.hpp"

#include "exsal/io/expression_reader.hpp"
#include "exsal/io/formats.hpp"
#include "exsal/io/mtx.hpp"
#include "exsal/io/sparse_expression.hpp"
#if EXSAL_WITH_HDF5
#include "exsal/io/h5ad.hpp"
#include "exsal/io/tenx_h5.hpp"
#endif

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct ReadFigures {
    std::string format, storage;
    long long cells = 0, genes = 0, nnz = 0;
    double csr_bytes = -1.0, dense_bytes = -1.0;
};

ReadFigures from_sparse(const exsal::SparseExpression& m) {
    ReadFigures r;
    r.cells = static_cast<long long>(m.n_cells());
    r.genes = static_cast<long long>(m.n_genes());
    r.nnz = static_cast<long long>(m.nnz());
    r.csr_bytes = m.csr_bytes();
    return r;
}

ReadFigures read_once(const std::string& path, const std::string& group_column, const std::string& layer) {
    const exsal::ExpressionFormat f = exsal::detect_expression_format(path); // throws for HDF5 without HDF5
    ReadFigures r;
    (void)layer; // h5ad only
    switch (f) {
    case exsal::ExpressionFormat::h5ad: {
#if EXSAL_WITH_HDF5
        exsal::H5adReadOptions o;
        o.group_column = group_column.empty() ? "cell_type" : group_column;
        o.layer = layer;
        const exsal::H5adData d = exsal::read_h5ad(path, o);
        r = from_sparse(d.data);
        r.storage = d.summary.storage;
#endif
        break;
    }
    case exsal::ExpressionFormat::tenx_h5: {
#if EXSAL_WITH_HDF5
        r = from_sparse(exsal::read_10x_h5(path));
        r.storage = "csc (10x)";
#endif
        break;
    }
    case exsal::ExpressionFormat::tenx_mtx:
        r = from_sparse(exsal::read_10x_mtx(path));
        r.storage = "coordinate";
        break;
    case exsal::ExpressionFormat::table: {
        exsal::ExpressionReadOptions o;
        if (!group_column.empty()) o.group_column = group_column;
        const exsal::ExpressionMatrix m = exsal::read_expression(path, o);
        r.cells = static_cast<long long>(m.n_cells());
        r.genes = static_cast<long long>(m.n_genes());
        r.nnz = static_cast<long long>((m.values.array() != 0.0f).count());
        r.dense_bytes = static_cast<double>(m.values.size()) * sizeof(float);
        r.storage = "dense";
        break;
    }
    }
    r.format = exsal::expression_format_name(f);
    return r;
}

long long bytes_on_disk(const std::string& path) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(path)) return static_cast<long long>(fs::file_size(path));
    long long total = 0;
    for (const auto& e : fs::recursive_directory_iterator(path))
        if (e.is_regular_file()) total += static_cast<long long>(e.file_size());
    return total;
}

// VmHWM of /proc/self/status in MiB (-1 where there is none).
double vm_hwm_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0; // "VmHWM:  1234 kB"
    return -1.0;
}

std::string json_number(double v) {
    if (v < 0) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

} // namespace

int main(int argc, char** argv) {
    try {
        const exsal_bench::Args a(argc, argv, {"file", "reps", "group-column", "layer"});
        const std::string path = a.text("file", "");
        if (path.empty()) throw exsal::ArgumentError("bench_read_formats", "--file is required");
        const int reps = static_cast<int>(a.integer("reps", 1));
        if (reps < 1) throw exsal::ArgumentError("bench_read_formats", "--reps must be at least 1");
        const std::string group_column = a.text("group-column", "");
        const std::string layer = a.text("layer", "");
        std::vector<double> t;
        ReadFigures r;
        for (int i = 0; i < reps; ++i) {
            const double t0 = exsal_bench::now_s();
            r = read_once(path, group_column, layer);
            t.push_back(exsal_bench::now_s() - t0);
        }
        const double med = exsal_bench::median(t);
        std::printf("{\"impl\": \"exsal\", \"file\": \"%s\", \"format\": \"%s\", \"storage\": \"%s\", \"bytes\": %lld, "
                    "\"reps\": %d, \"seconds\": %.4f, \"seconds_min\": %.4f, \"seconds_max\": %.4f, \"cells\": %lld, "
                    "\"genes\": %lld, \"nnz\": %lld, \"csr_bytes\": %s, \"dense_bytes\": %s, \"peak_rss_mib\": %.1f, "
                    "\"vm_hwm_mib\": %.1f}\n",
                    path.c_str(), r.format.c_str(), r.storage.c_str(), bytes_on_disk(path), reps, med,
                    *std::min_element(t.begin(), t.end()), *std::max_element(t.begin(), t.end()), r.cells, r.genes,
                    r.nnz, json_number(r.csr_bytes).c_str(), json_number(r.dense_bytes).c_str(),
                    exsal_bench::peak_rss_mib(), vm_hwm_mib());
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_read_formats: " << e.what() << "\n";
        return 1;
    }
}
