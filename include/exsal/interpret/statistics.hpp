#ifndef EXSAL_INTERPRET_STATISTICS_HPP
#define EXSAL_INTERPRET_STATISTICS_HPP

// Significance of gene-set scores against random size-matched gene sets, and Benjamini-Hochberg
// q-values (METHOD.md section 6, "go beyond the reference").
//
// The null is built from quantities computed once (recomputing per-cell medians for every random
// set is far too slow). Per unit u every gene g present has a score s_g(u) (in interpret():
// the mean over cells of |saliency(c, u, g)|, i.e. gene_saliency). For a set S with k genes
// present the test statistic is
//   T(u, S) = aggregator over g in S of s_g(u)      (lower median, or mean)
// and the null hypothesis is that S's genes are a uniformly random k-subset, drawn without
// replacement, of ALL genes present (rows of the score matrix), as far as their scores for u go:
//   p = P_null(T_random >= T)    (ties count as exceedances: conservative)
//   z = (T - E_null[T]) / SD_null[T]   (0 when SD_null = 0)
// Two ways to evaluate the null:
//   NullMethod::exact (lower median only): the distribution of the lower median of a random
//     k-subset of a fixed population is known in closed form. With the population sorted,
//     s_(1) <= ... <= s_(G), and m = floor((k - 1) / 2) + 1 the rank of the lower median in the
//     subset, P(median = s_(j)) = C(j-1, m-1) C(G-j, k-m) / C(G, k), so p, E and SD are exact
//     sums over j: the Monte Carlo null below with infinitely many random sets. No resolution
//     floor (a Monte Carlo p is >= 1 / (P + 1), which BH over many units x sets cannot bring
//     below 0.05 for a lone strong signal), no seed, O(G) per unit and set size.
//   NullMethod::monte_carlo (either aggregator): P random size-matched sets per set size, drawn
//     with Rng(derive_seed(seed, k)) and shared by all units and all sets of that size;
//     p = (1 + #{null >= T}) / (P + 1), E and SD are the null sample's mean and SD (n - 1).
// Both are calibrated by exchangeability: for a set that IS a random subset of the genes present,
// P(p <= alpha) <= alpha (up to the discreteness of p).

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace exsal {

enum class ImpactAggregator { median, mean };

inline const char* to_string(ImpactAggregator a) { return a == ImpactAggregator::median ? "median" : "mean"; }

// "median" or "mean"; throws ArgumentError otherwise.
inline ImpactAggregator impact_aggregator_from_string(const std::string& s) {
    if (s == "median") return ImpactAggregator::median;
    if (s == "mean") return ImpactAggregator::mean;
    throw ArgumentError("exsal::impact_aggregator_from_string", "unknown aggregator '" + s + "' (median, mean)");
}

enum class NullMethod { exact, monte_carlo };

inline const char* to_string(NullMethod m) { return m == NullMethod::exact ? "exact" : "monte_carlo"; }

namespace detail {

// Lower median of v[0..k), k >= 1: the element of 0-based rank (k - 1) / 2. Reorders v.
template <typename T>
T lower_median(T* v, Index k) {
    T* mid = v + (k - 1) / 2;
    std::nth_element(v, mid, v + k);
    return *mid;
}

// Aggregate of v[0..k), k >= 1, in double. Reorders v (median).
template <typename T>
double aggregate(T* v, Index k, ImpactAggregator a) {
    if (a == ImpactAggregator::median) return static_cast<double>(lower_median(v, k));
    double s = 0.0;
    for (Index i = 0; i < k; ++i) s += static_cast<double>(v[i]);
    return s / static_cast<double>(k);
}

} // namespace detail

// Benjamini-Hochberg q-values: q_(i) = min over j >= i of p_(j) m / j (p sorted ascending,
// ties in input order), capped at 1. NaN p-values are left out (their q is NaN, m counts the
// others). Monotone: p_a <= p_b implies q_a <= q_b.
inline std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
    std::vector<std::size_t> order;
    order.reserve(p.size());
    for (std::size_t i = 0; i < p.size(); ++i)
        if (!std::isnan(p[i])) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
    std::vector<double> q(p.size(), std::numeric_limits<double>::quiet_NaN());
    const double m = static_cast<double>(order.size());
    double running = 1.0; // min over j >= i of p_(j) m / j
    for (std::size_t r = order.size(); r-- > 0;) {
        running = std::min(running, p[order[r]] * m / static_cast<double>(r + 1));
        q[order[r]] = running;
    }
    return q;
}

// The same over all entries of a matrix (e.g. sets x units): one family.
inline MatrixD benjamini_hochberg(const MatrixD& p) {
    const std::vector<double> flat(p.data(), p.data() + p.size());
    const std::vector<double> q = benjamini_hochberg(flat);
    return Eigen::Map<const MatrixD>(q.data(), p.rows(), p.cols());
}

struct SignificanceOptions {
    ImpactAggregator aggregator = ImpactAggregator::median;
    NullMethod method = NullMethod::exact; // exact needs the median aggregator
    Index permutations = 1000;             // monte_carlo: random sets per set size
    std::uint64_t seed = 1;                // monte_carlo: random sets of size k from derive_seed(seed, k)
};

// Per set and unit (sets x units each).
struct SetSignificance {
    MatrixD statistic; // T(u, S), aggregator over the set's genes of their scores
    MatrixD null_mean; // E_null[T]
    MatrixD null_sd;   // SD_null[T]
    MatrixD z_score;   // (T - mean) / sd, 0 when sd = 0
    MatrixD p_value;   // P_null(T_random >= T); exact p is floored at the smallest normal double
};

namespace detail {

// Exact null of the lower median of a random k-subset (without replacement) of G values:
// w[j] = P(median = s_(j+1)) for the 0-based sorted position j. log_fact[i] = log(i!), i <= G.
inline std::vector<double> lower_median_weights(Index G, Index k, const std::vector<double>& log_fact) {
    const Index m = (k - 1) / 2 + 1; // rank of the lower median within the subset (1-based)
    std::vector<double> w(static_cast<std::size_t>(G), 0.0);
    const auto lf = [&](Index i) { return log_fact[static_cast<std::size_t>(i)]; };
    const double log_total = lf(G) - lf(k) - lf(G - k); // log C(G, k)
    for (Index j = m; j <= G - k + m; ++j) {             // 1-based population rank
        const double lw = (lf(j - 1) - lf(m - 1) - lf(j - m)) + (lf(G - j) - lf(k - m) - lf(G - j - k + m)) - log_total;
        w[static_cast<std::size_t>(j - 1)] = std::exp(lw); // C(j-1, m-1) C(G-j, k-m) / C(G, k)
    }
    return w;
}

inline void check_significance_arguments(const char* where, const MatrixD& scores,
                                         const std::vector<std::vector<Index>>& set_rows, const SignificanceOptions& o) {
    const Index G = scores.rows();
    if (G < 1 || scores.cols() < 1) throw ArgumentError(where, "the score matrix is empty");
    if (!scores.allFinite()) throw ArgumentError(where, "the scores contain a non-finite value");
    if (o.method == NullMethod::exact && o.aggregator != ImpactAggregator::median)
        throw ArgumentError(where, "the exact null needs the median aggregator; use NullMethod::monte_carlo for the mean");
    if (o.method == NullMethod::monte_carlo && o.permutations < 1)
        throw ArgumentError(where, "permutations must be >= 1, got " + std::to_string(o.permutations));
    for (std::size_t s = 0; s < set_rows.size(); ++s) {
        const auto& rows = set_rows[s];
        if (rows.empty() || static_cast<Index>(rows.size()) > G)
            throw ArgumentError(where, "set " + std::to_string(s) + " has " + std::to_string(rows.size()) +
                                           " genes; need 1.." + std::to_string(G));
        for (Index r : rows)
            if (r < 0 || r >= G)
                throw ArgumentError(where, "set " + std::to_string(s) + " holds row " + std::to_string(r) +
                                               ", outside 0.." + std::to_string(G - 1));
    }
}

} // namespace detail

// Tests every set (rows into `scores`, distinct) against random size-matched sets of the rows of
// `scores` (G genes present x U units), per unit. See the top of this header for the null.
// Deterministic and independent of the thread count. Throws ArgumentError naming
// gene_set_significance on empty or non-finite scores, rows out of range, or exact + mean.
inline SetSignificance gene_set_significance(const MatrixD& scores, const std::vector<std::vector<Index>>& set_rows,
                                             const SignificanceOptions& o = {}) {
    const char* where = "exsal::gene_set_significance";
    detail::check_significance_arguments(where, scores, set_rows, o);
    const Index G = scores.rows(), U = scores.cols(), S = static_cast<Index>(set_rows.size());
    SetSignificance r;
    r.statistic.resize(S, U);
    r.null_mean.resize(S, U);
    r.null_sd.resize(S, U);
    r.z_score.resize(S, U);
    r.p_value.resize(S, U);
    if (S == 0) return r;

    // Observed statistics, per unit.
#pragma omp parallel
    {
        std::vector<double> buf(static_cast<std::size_t>(G)); // gathered scores of one set
#pragma omp for schedule(static)
        for (Index u = 0; u < U; ++u)
            for (Index s = 0; s < S; ++s) {
                const auto& rows = set_rows[static_cast<std::size_t>(s)];
                const Index k = static_cast<Index>(rows.size());
                for (Index i = 0; i < k; ++i) buf[static_cast<std::size_t>(i)] = scores(rows[static_cast<std::size_t>(i)], u);
                r.statistic(s, u) = detail::aggregate(buf.data(), k, o.aggregator);
            }
    }

    // Sets grouped by size k (ascending).
    std::map<Index, std::vector<Index>> by_size; // k -> sets of that size
    for (Index s = 0; s < S; ++s) by_size[static_cast<Index>(set_rows[static_cast<std::size_t>(s)].size())].push_back(s);

    if (o.method == NullMethod::exact) {
        MatrixD sorted = scores; // G x U, each column ascending
        for (Index u = 0; u < U; ++u) std::sort(sorted.col(u).data(), sorted.col(u).data() + G);
        std::vector<double> log_fact(static_cast<std::size_t>(G + 1), 0.0); // log(i!)
        for (Index i = 1; i <= G; ++i)
            log_fact[static_cast<std::size_t>(i)] = log_fact[static_cast<std::size_t>(i - 1)] + std::log(static_cast<double>(i));
        for (const auto& [k, sets] : by_size) {
            const std::vector<double> w = detail::lower_median_weights(G, k, log_fact); // G, P(median = s_(j))
            std::vector<double> tail(static_cast<std::size_t>(G) + 1, 0.0);              // tail[j] = sum_{i >= j} w[i]
            for (Index j = G; j-- > 0;)
                tail[static_cast<std::size_t>(j)] = tail[static_cast<std::size_t>(j) + 1] + w[static_cast<std::size_t>(j)];
#pragma omp parallel for schedule(static)
            for (Index u = 0; u < U; ++u) {
                const double* v = sorted.col(u).data();
                double mean = 0.0, var = 0.0;
                for (Index j = 0; j < G; ++j) mean += w[static_cast<std::size_t>(j)] * v[j];
                for (Index j = 0; j < G; ++j) var += w[static_cast<std::size_t>(j)] * (v[j] - mean) * (v[j] - mean);
                const double sd = std::sqrt(var);
                for (Index s : sets) {
                    const double t = r.statistic(s, u);
                    const Index first = std::lower_bound(v, v + G, t) - v; // first sorted value >= T
                    r.null_mean(s, u) = mean;
                    r.null_sd(s, u) = sd;
                    r.z_score(s, u) = sd > 0.0 ? (t - mean) / sd : 0.0;
                    r.p_value(s, u) = std::clamp(tail[static_cast<std::size_t>(first)], std::numeric_limits<double>::min(), 1.0);
                }
            }
        }
        return r;
    }

    // Monte Carlo: P random k-subsets per size, shared by units and sets of that size.
    const Index P = o.permutations;
    for (const auto& [k, sets] : by_size) {
        Rng rng(derive_seed(o.seed, static_cast<std::uint64_t>(k)));
        std::vector<Index> pool(static_cast<std::size_t>(G));
        std::iota(pool.begin(), pool.end(), Index(0));
        std::vector<Index> drawn(static_cast<std::size_t>(P * k)); // P x k rows, permutation p at [p k, (p+1) k)
        for (Index p = 0; p < P; ++p) {
            for (Index i = 0; i < k; ++i) { // partial Fisher-Yates: a uniform k-subset
                const auto j = static_cast<std::size_t>(i) + rng.below(static_cast<std::uint64_t>(G - i));
                std::swap(pool[static_cast<std::size_t>(i)], pool[j]);
            }
            std::copy(pool.begin(), pool.begin() + k, drawn.begin() + p * k);
        }
#pragma omp parallel
        {
            std::vector<double> buf(static_cast<std::size_t>(k)), null(static_cast<std::size_t>(P));
#pragma omp for schedule(static)
            for (Index u = 0; u < U; ++u) {
                for (Index p = 0; p < P; ++p) {
                    for (Index i = 0; i < k; ++i) buf[static_cast<std::size_t>(i)] = scores(drawn[static_cast<std::size_t>(p * k + i)], u);
                    null[static_cast<std::size_t>(p)] = detail::aggregate(buf.data(), k, o.aggregator);
                }
                double mean = 0.0, var = 0.0;
                for (double x : null) mean += x;
                mean /= static_cast<double>(P);
                for (double x : null) var += (x - mean) * (x - mean);
                const double sd = P > 1 ? std::sqrt(var / static_cast<double>(P - 1)) : 0.0;
                for (Index s : sets) {
                    const double t = r.statistic(s, u);
                    Index exceed = 0;
                    for (double x : null) exceed += x >= t;
                    r.null_mean(s, u) = mean;
                    r.null_sd(s, u) = sd;
                    r.z_score(s, u) = sd > 0.0 ? (t - mean) / sd : 0.0;
                    r.p_value(s, u) = static_cast<double>(1 + exceed) / static_cast<double>(P + 1);
                }
            }
        }
    }
    return r;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_STATISTICS_HPP
