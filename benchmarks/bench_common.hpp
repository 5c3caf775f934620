#ifndef EXSAL_BENCHMARKS_BENCH_COMMON_HPP
#define EXSAL_BENCHMARKS_BENCH_COMMON_HPP

// Small helpers shared by the benchmark programs: argument parsing, clocks, medians, peak memory,
// and the synthetic counts of the PyTorch reference (benchmarks only, not part of the library).

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <time.h>
#include <vector>

namespace exsal_bench {

using exsal::Index;

// --name value pairs and --flag switches; unknown names are an error.
class Args {
public:
    Args(int argc, char** argv, std::vector<std::string> known, std::vector<std::string> flags = {}) {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) throw exsal::ArgumentError(argv[0], "unexpected argument '" + a + "'");
            a = a.substr(2);
            std::string value;
            const auto eq = a.find('=');
            if (eq != std::string::npos) {
                value = a.substr(eq + 1);
                a = a.substr(0, eq);
            } else if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
                value = "1";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                throw exsal::ArgumentError(argv[0], "--" + a + " needs a value");
            }
            if (std::find(known.begin(), known.end(), a) == known.end() &&
                std::find(flags.begin(), flags.end(), a) == flags.end())
                throw exsal::ArgumentError(argv[0], "unknown option --" + a);
            m_values[a] = value;
        }
    }
    long long integer(const std::string& name, long long fallback) const {
        const auto it = m_values.find(name);
        return it == m_values.end() ? fallback : std::stoll(it->second);
    }
    double real(const std::string& name, double fallback) const {
        const auto it = m_values.find(name);
        return it == m_values.end() ? fallback : std::stod(it->second);
    }
    std::string text(const std::string& name, const std::string& fallback) const {
        const auto it = m_values.find(name);
        return it == m_values.end() ? fallback : it->second;
    }
    bool flag(const std::string& name) const { return m_values.count(name) > 0; }

private:
    std::map<std::string, std::string> m_values;
};

inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU seconds used by all threads of this process so far (with one thread, a time that concurrent
// load on the machine perturbs far less than wall time).
inline double cpu_s() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Peak resident set size of this process so far, in MiB.
inline double peak_rss_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Whether this binary was built with -march=native (EXSAL_NATIVE), as far as the compiler says.
// Eigen's instruction sets (Eigen 3.4 names AVX but not AVX2 / FMA, so those are added here).
inline std::string simd_name() {
    std::string s = Eigen::SimdInstructionSetsInUse();
#ifdef EIGEN_VECTORIZE_AVX2
    s = "AVX2 " + s;
#endif
#ifdef EIGEN_VECTORIZE_FMA
    s = "FMA " + s;
#endif
    return s;
}

// The reference's synthetic counts, genes x cells:
//   rate = usage (cells x modules, gamma(0.5, 1)) @ programs (modules x genes, gamma(0.3, 2)) + 0.05,
//   counts ~ Poisson(rate).
// Programs come from one stream, each cell's usage and counts from its own stream (derive_seed),
// so the data do not depend on the thread count.
// first_cell: index of the first cell generated (to produce a large data set in blocks).
template <typename Scalar>
exsal::Matrix<Scalar> synthetic_counts(Index cells, Index genes, std::uint64_t seed, Index modules = 8,
                                       Index first_cell = 0) {
    exsal::Matrix<double> programs(modules, genes); // modules x genes
    {
        exsal::Rng rng(exsal::derive_seed(seed, 0));
        for (Index g = 0; g < genes; ++g)
            for (Index m = 0; m < modules; ++m) programs(m, g) = rng.gamma(0.3, 2.0);
    }
    exsal::Matrix<Scalar> x(genes, cells);
#pragma omp parallel
    {
        exsal::Vector<double> usage(modules);
        exsal::Vector<double> rate(genes);
#pragma omp for schedule(static)
        for (Index c = 0; c < cells; ++c) {
            exsal::Rng rng(exsal::derive_seed(seed, static_cast<std::uint64_t>(first_cell + c) + 1));
            for (Index m = 0; m < modules; ++m) usage(m) = rng.gamma(0.5, 1.0);
            rate.noalias() = programs.transpose() * usage;
            for (Index g = 0; g < genes; ++g) x(g, c) = static_cast<Scalar>(rng.poisson(rate(g) + 0.05));
        }
    }
    return x;
}

} // namespace exsal_bench

#endif // EXSAL_BENCHMARKS_BENCH_COMMON_HPP
