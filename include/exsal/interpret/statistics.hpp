#ifndef EXSAL_INTERPRET_STATISTICS_HPP
#define EXSAL_INTERPRET_STATISTICS_HPP

// Significance of gene-set scores against random gene sets of the same size (and, optionally,
// the same expression profile), and Benjamini-Hochberg q-values (the reference code of Kinalis et al.
// 2019 reported impacts without any significance).
//
// The null is built from quantities computed once (recomputing per-cell medians for every random
// set is far too slow). Per unit u every gene g present has a score s_g(u) (in interpret():
// the mean over cells of |saliency(c, u, g)|, i.e. gene_saliency). For a set S with k genes
// present the test statistic is
//   T(u, S) = aggregator over g in S of s_g(u)      (lower median, or mean)
// Null hypothesis: S's genes are a random draw from the genes present, as far as their scores
// for u go. Genes may be split into strata (e.g. bins of mean expression: saliency grows with a
// gene's expression, so sets of highly expressed genes would otherwise look significant for
// every unit); with k_b of S's genes in stratum b, the random sets hold k_b genes drawn uniformly
// without replacement from each stratum b (one stratum: a uniform k-subset of all genes present).
//   p = P_null(T_random >= T)    (ties count as exceedances: conservative)
// Two ways to evaluate the null:
//   NullMethod::exact (lower median only). The lower median, the m-th smallest of the k values
//     with m = floor((k - 1) / 2) + 1, is >= T exactly when at most m - 1 of the drawn values are
//     < T. The number drawn below T from stratum b is hypergeometric (N_b genes, a_b of them
//     below T, k_b draws), independently across strata, so
//       p = P(sum_b Hypergeometric(N_b, a_b, k_b) <= m - 1)
//     by convolution of the strata's distributions: the Monte Carlo null below with infinitely
//     many random sets. No resolution floor (a Monte Carlo p is >= 1 / (P + 1), which BH over
//     many units x sets cannot bring below 0.05 for a lone strong signal), no seed.
//     z = -Phi^{-1}(mid-p), mid-p = P(T_random > T) + P(T_random = T) / 2: the standard normal
//     deviate with the same upper tail, centred for a discrete null (all values tied: z = 0);
//     p and mid-p are floored at the smallest normal double, so z <= 37.5. With one stratum the
//     null's mean and SD are exact too: P(median = s_(j)) = C(j-1, m-1) C(G-j, k-m) / C(G, k)
//     over the sorted scores; with several strata they are not computed (NaN).
//   NullMethod::monte_carlo (either aggregator): P random sets per stratum composition (per set
//     size with one stratum), drawn with Rng(derive_seed(seed, k)) (one stratum) or
//     Rng(derive_seed(seed, hash of (k_b)_b)), shared by all units and all sets with that
//     composition; p = (1 + #{null >= T}) / (P + 1); z = (T - mean) / SD of the null sample
//     (n - 1; z = 0 when SD = 0).
// Both are calibrated by exchangeability: for a set that IS such a random draw,
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

// Each column of a matrix (e.g. sets x units) as its own family: q-values per unit, as GSEA
// corrects per ranked list.
inline MatrixD benjamini_hochberg_per_column(const MatrixD& p) {
    MatrixD q(p.rows(), p.cols());
    for (Index j = 0; j < p.cols(); ++j) {
        const std::vector<double> col(p.col(j).data(), p.col(j).data() + p.rows());
        const std::vector<double> qc = benjamini_hochberg(col);
        q.col(j) = Eigen::Map<const VectorD>(qc.data(), p.rows());
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
    Index permutations = 1000;             // monte_carlo: random sets per stratum composition
    std::uint64_t seed = 1;                // monte_carlo: see the top of this header
    std::vector<Index> strata;             // per gene (row of the scores): stratum >= 0; empty = one stratum
};

// Per set and unit (sets x units each).
struct SetSignificance {
    MatrixD statistic; // T(u, S), aggregator over the set's genes of their scores
    MatrixD null_mean; // E_null[T] (exact with several strata: NaN)
    MatrixD null_sd;   // SD_null[T] (exact with several strata: NaN)
    MatrixD z_score;   // exact: -Phi^{-1}(mid-p); monte_carlo: (T - mean) / sd, 0 when sd = 0
    MatrixD p_value;   // P_null(T_random >= T); exact p is floored at the smallest normal double
};

// Equal-count strata of genes by `level` (e.g. mean expression): genes sorted by level (ties by
// row), the gene of rank i (0-based) in stratum floor(i * bins / G). Throws ArgumentError unless
// 1 <= bins <= G and all levels are finite.
inline std::vector<Index> expression_strata(const VectorD& level, Index bins) {
    const char* where = "exsal::expression_strata";
    const Index G = level.size();
    if (bins < 1 || bins > G)
        throw ArgumentError(where, "bins must be in [1, " + std::to_string(G) + "], got " + std::to_string(bins));
    if (!level.allFinite()) throw ArgumentError(where, "a level is not finite");
    std::vector<Index> order(static_cast<std::size_t>(G));
    std::iota(order.begin(), order.end(), Index(0));
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return level(a) < level(b); });
    std::vector<Index> stratum(static_cast<std::size_t>(G));
    for (Index i = 0; i < G; ++i) stratum[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = i * bins / G;
    return stratum;
}

namespace detail {

// Standard normal quantile Phi^{-1}(p), 0 < p < 1: Acklam's rational approximation refined by one
// Halley step on erfc (relative error ~1e-15 over the double range).
inline double normal_quantile(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
    const double lo = 0.02425, hi = 1.0 - lo;
    double x;
    if (p < lo) {
        const double q = std::sqrt(-2.0 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    } else if (p <= hi) {
        const double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    } else {
        const double q = std::sqrt(-2.0 * std::log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    // Halley step: e = Phi(x) - p, u = e sqrt(2 pi) exp(x^2 / 2)
    const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
    const double u = e * std::sqrt(2.0 * 3.14159265358979323846) * std::exp(x * x / 2.0);
    return x - u / (1.0 + x * u / 2.0);
}

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

// P(sum_b X_b <= limit), X_b ~ Hypergeometric(n[b] genes, a[b] marked, k[b] draws) independent:
// convolution truncated at `limit`. dist and next are scratch of size >= limit + 1.
inline double hypergeometric_sum_cdf(const std::vector<Index>& n, const std::vector<Index>& a, const std::vector<Index>& k,
                                     Index limit, const std::vector<double>& log_fact, std::vector<double>& dist,
                                     std::vector<double>& next) {
    const auto lf = [&](Index i) { return log_fact[static_cast<std::size_t>(i)]; };
    const auto lchoose = [&](Index N, Index r) { return lf(N) - lf(r) - lf(N - r); };
    std::fill(dist.begin(), dist.begin() + limit + 1, 0.0);
    dist[0] = 1.0; // distribution of the partial sum over [0, limit]
    Index top = 0; // largest partial sum with mass
    for (std::size_t b = 0; b < n.size(); ++b) {
        if (k[b] == 0) continue;
        const Index lo = std::max<Index>(0, k[b] - (n[b] - a[b])), hi = std::min(k[b], a[b]);
        if (lo > limit) return 0.0;
        const double log_total = lchoose(n[b], k[b]);
        std::fill(next.begin(), next.begin() + limit + 1, 0.0);
        for (Index x = lo; x <= hi && x <= limit; ++x) {
            const double h = std::exp(lchoose(a[b], x) + lchoose(n[b] - a[b], k[b] - x) - log_total); // P(X_b = x)
            for (Index y = 0; y <= top && y + x <= limit; ++y) next[static_cast<std::size_t>(y + x)] += dist[static_cast<std::size_t>(y)] * h;
        }
        top = std::min(limit, top + hi);
        std::swap(dist, next);
    }
    double p = 0.0;
    for (Index y = 0; y <= top; ++y) p += dist[static_cast<std::size_t>(y)];
    return p;
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
    if (!o.strata.empty()) {
        if (static_cast<Index>(o.strata.size()) != G)
            throw ArgumentError(where, std::to_string(o.strata.size()) + " strata for " + std::to_string(G) + " genes");
        for (Index s : o.strata)
            if (s < 0 || s >= G) throw ArgumentError(where, "stratum " + std::to_string(s) + " is outside 0.." + std::to_string(G - 1));
    }
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

namespace detail {

// Genes grouped by stratum, and sets grouped by composition (genes per stratum): every set of one
// composition has the same null, so each null is computed once.
struct Strata {
    std::vector<Index> of_gene;                 // stratum of each row
    std::vector<std::vector<Index>> members;    // rows of each stratum, ascending
    std::vector<Index> size;                    // rows per stratum
    std::map<std::vector<Index>, std::vector<Index>> sets_by_composition; // (k_b)_b -> sets with it
    Index count() const noexcept { return static_cast<Index>(members.size()); }
};

inline Strata make_strata(Index G, const std::vector<Index>& strata, const std::vector<std::vector<Index>>& set_rows) {
    Strata st;
    st.of_gene = strata.empty() ? std::vector<Index>(static_cast<std::size_t>(G), 0) : strata;
    const Index B = *std::max_element(st.of_gene.begin(), st.of_gene.end()) + 1;
    st.members.resize(static_cast<std::size_t>(B));
    for (Index g = 0; g < G; ++g) st.members[static_cast<std::size_t>(st.of_gene[static_cast<std::size_t>(g)])].push_back(g);
    for (const auto& m : st.members) st.size.push_back(static_cast<Index>(m.size()));
    for (std::size_t s = 0; s < set_rows.size(); ++s) {
        std::vector<Index> k(static_cast<std::size_t>(B), 0);
        for (Index g : set_rows[s]) ++k[static_cast<std::size_t>(st.of_gene[static_cast<std::size_t>(g)])];
        st.sets_by_composition[k].push_back(static_cast<Index>(s));
    }
    return st;
}

// r.statistic: each set's aggregate score, per unit.
inline void observed_statistics(const MatrixD& scores, const std::vector<std::vector<Index>>& set_rows,
                                ImpactAggregator aggregator, SetSignificance& r) {
    const Index G = scores.rows(), U = scores.cols(), S = static_cast<Index>(set_rows.size());
#pragma omp parallel
    {
        std::vector<double> buf(static_cast<std::size_t>(G)); // gathered scores of one set
#pragma omp for schedule(static)
        for (Index u = 0; u < U; ++u)
            for (Index s = 0; s < S; ++s) {
                const auto& rows = set_rows[static_cast<std::size_t>(s)];
                const Index k = static_cast<Index>(rows.size());
                for (Index i = 0; i < k; ++i) buf[static_cast<std::size_t>(i)] = scores(rows[static_cast<std::size_t>(i)], u);
                r.statistic(s, u) = aggregate(buf.data(), k, aggregator);
            }
    }
}

// p = P(T_random >= T); z from the mid-p P(T_random > T) + P(T_random = T) / 2, which is 1/2
// (z = 0) when every value is tied.
inline void set_exact_p(SetSignificance& r, Index s, Index u, double p_ge, double p_gt) {
    const double tiny = std::numeric_limits<double>::min();
    r.p_value(s, u) = std::clamp(p_ge, tiny, 1.0);
    const double mid = std::clamp(0.5 * (p_ge + p_gt), tiny, 1.0 - std::numeric_limits<double>::epsilon());
    r.z_score(s, u) = -normal_quantile(mid);
}

// log(i!) for i = 0 .. n.
inline std::vector<double> log_factorials(Index n) {
    std::vector<double> f(static_cast<std::size_t>(n + 1), 0.0);
    for (Index i = 1; i <= n; ++i) f[static_cast<std::size_t>(i)] = f[static_cast<std::size_t>(i - 1)] + std::log(static_cast<double>(i));
    return f;
}

// Exact null, one stratum: tail sums of the closed-form distribution of the lower median of k of
// the G scores; also its mean and SD.
inline void exact_null_one_stratum(const MatrixD& scores, const Strata& st, SetSignificance& r) {
    const Index G = scores.rows(), U = scores.cols();
    const std::vector<double> log_fact = log_factorials(G);
    MatrixD sorted = scores; // G x U, each column ascending
    for (Index u = 0; u < U; ++u) std::sort(sorted.col(u).data(), sorted.col(u).data() + G);
    for (const auto& composition : st.sets_by_composition) {
        // (named, not a structured binding: C++17 does not let the OpenMP region below capture one)
        const Index k = composition.first[0];
        const std::vector<Index>& sets = composition.second;
        const std::vector<double> w = lower_median_weights(G, k, log_fact); // G, P(median = s_(j))
        std::vector<double> tail(static_cast<std::size_t>(G) + 1, 0.0);    // tail[j] = sum_{i >= j} w[i]
        for (Index j = G; j-- > 0;)
            tail[static_cast<std::size_t>(j)] = tail[static_cast<std::size_t>(j) + 1] + w[static_cast<std::size_t>(j)];
#pragma omp parallel for schedule(static)
        for (Index u = 0; u < U; ++u) {
            const double* v = sorted.col(u).data();
            double mean = 0.0, var = 0.0;
            for (Index j = 0; j < G; ++j) mean += w[static_cast<std::size_t>(j)] * v[j];
            for (Index j = 0; j < G; ++j) var += w[static_cast<std::size_t>(j)] * (v[j] - mean) * (v[j] - mean);
            for (Index s : sets) {
                const Index ge = std::lower_bound(v, v + G, r.statistic(s, u)) - v; // first sorted value >= T
                const Index gt = std::upper_bound(v, v + G, r.statistic(s, u)) - v; // first sorted value > T
                r.null_mean(s, u) = mean;
                r.null_sd(s, u) = std::sqrt(var);
                set_exact_p(r, s, u, tail[static_cast<std::size_t>(ge)], tail[static_cast<std::size_t>(gt)]);
            }
        }
    }
}

// Exact null, several strata: P(sum_b Hypergeometric(N_b, a_b, k_b) <= m - 1) with
// a_b = #{g in b: s_g < T}; no closed-form mean or SD (NaN).
inline void exact_null_strata(const MatrixD& scores, const Strata& st, SetSignificance& r) {
    const Index G = scores.rows(), U = scores.cols(), B = st.count();
    const std::vector<double> log_fact = log_factorials(G);
    r.null_mean.setConstant(std::numeric_limits<double>::quiet_NaN());
    r.null_sd.setConstant(std::numeric_limits<double>::quiet_NaN());
#pragma omp parallel
    {
        std::vector<std::vector<double>> sorted(static_cast<std::size_t>(B)); // per stratum: this unit's scores, ascending
        std::vector<Index> below(static_cast<std::size_t>(B));
        std::vector<double> dist(static_cast<std::size_t>(G) + 1), next(static_cast<std::size_t>(G) + 1);
        // Values of stratum b below t (strict: < t; else <= t).
        const auto count_below = [&](double t, bool strict) {
            for (Index b = 0; b < B; ++b) {
                const auto& v = sorted[static_cast<std::size_t>(b)];
                below[static_cast<std::size_t>(b)] =
                    (strict ? std::lower_bound(v.begin(), v.end(), t) : std::upper_bound(v.begin(), v.end(), t)) - v.begin();
            }
        };
#pragma omp for schedule(static)
        for (Index u = 0; u < U; ++u) {
            for (Index b = 0; b < B; ++b) {
                auto& v = sorted[static_cast<std::size_t>(b)];
                v.clear();
                for (Index g : st.members[static_cast<std::size_t>(b)]) v.push_back(scores(g, u));
                std::sort(v.begin(), v.end());
            }
            for (const auto& [comp, sets] : st.sets_by_composition) {
                const Index k = std::accumulate(comp.begin(), comp.end(), Index(0));
                const Index m = (k - 1) / 2 + 1;
                for (Index s : sets) {
                    const double t = r.statistic(s, u);
                    // median >= T  <=>  at most m - 1 drawn values < T; median > T: at most m - 1 <= T
                    count_below(t, true);
                    const double p_ge = hypergeometric_sum_cdf(st.size, below, comp, m - 1, log_fact, dist, next);
                    count_below(t, false);
                    const double p_gt = hypergeometric_sum_cdf(st.size, below, comp, m - 1, log_fact, dist, next);
                    set_exact_p(r, s, u, p_ge, p_gt);
                }
            }
        }
    }
}

// P random sets of one composition: partial Fisher-Yates draws within each stratum, from the
// composition's own stream (its size with one stratum, an FNV-1a hash of it with several).
inline std::vector<Index> draw_random_sets(const Strata& st, const std::vector<Index>& comp, Index P, std::uint64_t seed) {
    const Index k = std::accumulate(comp.begin(), comp.end(), Index(0)), B = st.count();
    std::uint64_t stream = static_cast<std::uint64_t>(k);
    if (B > 1) {
        stream = 1469598103934665603ULL;
        for (Index c : comp) stream = (stream ^ static_cast<std::uint64_t>(c)) * 1099511628211ULL;
    }
    Rng rng(derive_seed(seed, stream));
    std::vector<std::vector<Index>> pool = st.members;
    std::vector<Index> drawn(static_cast<std::size_t>(P * k)); // P x k rows, random set p at [p k, (p+1) k)
    for (Index p = 0; p < P; ++p) {
        Index at = p * k;
        for (Index b = 0; b < B; ++b) {
            auto& pb = pool[static_cast<std::size_t>(b)];
            const Index kb = comp[static_cast<std::size_t>(b)], nb = static_cast<Index>(pb.size());
            for (Index i = 0; i < kb; ++i) { // a uniform kb-subset of the stratum
                const auto j = static_cast<std::size_t>(i) + rng.below(static_cast<std::uint64_t>(nb - i));
                std::swap(pb[static_cast<std::size_t>(i)], pb[j]);
                drawn[static_cast<std::size_t>(at++)] = pb[static_cast<std::size_t>(i)];
            }
        }
    }
    return drawn;
}

// Monte Carlo null: P random sets per composition, shared by the units and the sets with it;
// p = (1 + #{null >= T}) / (P + 1), z = (T - mean) / sd (0 when sd = 0).
inline void monte_carlo_null(const MatrixD& scores, const Strata& st, const SignificanceOptions& o, SetSignificance& r) {
    const Index U = scores.cols(), P = o.permutations;
    for (const auto& composition : st.sets_by_composition) {
        // (named, not a structured binding: C++17 does not let the OpenMP region below capture one)
        const std::vector<Index>& comp = composition.first;
        const std::vector<Index>& sets = composition.second;
        const Index k = std::accumulate(comp.begin(), comp.end(), Index(0));
        const std::vector<Index> drawn = draw_random_sets(st, comp, P, o.seed);
#pragma omp parallel
        {
            std::vector<double> buf(static_cast<std::size_t>(k)), null(static_cast<std::size_t>(P));
#pragma omp for schedule(static)
            for (Index u = 0; u < U; ++u) {
                for (Index p = 0; p < P; ++p) {
                    for (Index i = 0; i < k; ++i) buf[static_cast<std::size_t>(i)] = scores(drawn[static_cast<std::size_t>(p * k + i)], u);
                    null[static_cast<std::size_t>(p)] = aggregate(buf.data(), k, o.aggregator);
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
}

} // namespace detail

// Tests every set (rows into `scores`, distinct) against random sets of the rows of `scores`
// (G genes present x U units) with the same size and, with strata, the same number of genes in
// every stratum, per unit. See the top of this header for the null. Deterministic and independent
// of the thread count. Throws ArgumentError naming gene_set_significance on empty or non-finite
// scores, rows out of range, strata of the wrong size, or exact + mean.
inline SetSignificance gene_set_significance(const MatrixD& scores, const std::vector<std::vector<Index>>& set_rows,
                                             const SignificanceOptions& o = {}) {
    detail::check_significance_arguments("exsal::gene_set_significance", scores, set_rows, o);
    const Index U = scores.cols(), S = static_cast<Index>(set_rows.size());
    SetSignificance r;
    r.statistic.resize(S, U);
    r.null_mean.resize(S, U);
    r.null_sd.resize(S, U);
    r.z_score.resize(S, U);
    r.p_value.resize(S, U);
    if (S == 0) return r;
    const detail::Strata strata = detail::make_strata(scores.rows(), o.strata, set_rows);
    detail::observed_statistics(scores, set_rows, o.aggregator, r);
    if (o.method == NullMethod::monte_carlo) detail::monte_carlo_null(scores, strata, o, r);
    else if (strata.count() == 1) detail::exact_null_one_stratum(scores, strata, r);
    else detail::exact_null_strata(scores, strata, r);
    return r;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_STATISTICS_HPP
