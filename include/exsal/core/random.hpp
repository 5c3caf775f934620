#ifndef EXSAL_CORE_RANDOM_HPP
#define EXSAL_CORE_RANDOM_HPP

// Seeded random numbers with distributions written out here (not std::*_distribution, whose
// algorithms differ between standard libraries), so a seed gives the same numbers everywhere.

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace exsal {

class Rng {
public:
    explicit Rng(std::uint64_t seed) : m_engine(seed) {}

    std::uint64_t next() { return m_engine(); }

    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(m_engine() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method).
    std::uint64_t below(std::uint64_t n) {
        for (;;) {
            const std::uint64_t x = m_engine();
            __extension__ using u128 = unsigned __int128;
            const u128 m = static_cast<u128>(x) * n;
            const std::uint64_t low = static_cast<std::uint64_t>(m);
            if (low >= n || low >= (-n) % n) return static_cast<std::uint64_t>(m >> 64);
        }
    }

    // Standard normal (Marsaglia polar method; the spare value is kept).
    double normal() {
        if (m_has_spare) {
            m_has_spare = false;
            return m_spare;
        }
        double u, v, s;
        do {
            u = 2.0 * uniform() - 1.0;
            v = 2.0 * uniform() - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        const double f = std::sqrt(-2.0 * std::log(s) / s);
        m_spare = v * f;
        m_has_spare = true;
        return u * f;
    }
    double normal(double mean, double sd) { return mean + sd * normal(); }
    double lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }

    // Gamma(shape, scale) by Marsaglia and Tsang; shape < 1 by the boost u^(1/shape).
    double gamma(double shape, double scale = 1.0) {
        if (shape < 1.0) {
            const double u = uniform();
            return gamma(shape + 1.0, scale) * std::pow(u > 0 ? u : 0x1.0p-53, 1.0 / shape);
        }
        const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
        for (;;) {
            double x, v;
            do {
                x = normal();
                v = 1.0 + c * x;
            } while (v <= 0.0);
            v = v * v * v;
            const double u = uniform();
            if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
            if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
        }
    }

    // Poisson(mean): multiplication method below 30, PTRS (Hormann 1993) above.
    std::uint64_t poisson(double mean) {
        if (!(mean > 0.0)) return 0;
        if (mean < 30.0) {
            const double limit = std::exp(-mean);
            double p = uniform();
            std::uint64_t k = 0;
            while (p > limit) {
                ++k;
                p *= uniform();
            }
            return k;
        }
        const double slam = std::sqrt(mean), loglam = std::log(mean);
        const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
        const double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2.0);
        for (;;) {
            const double u = uniform() - 0.5, v = uniform();
            const double us = 0.5 - std::fabs(u);
            const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
            if (us >= 0.07 && v <= vr) return static_cast<std::uint64_t>(k);
            if (k < 0.0 || (us < 0.013 && v > us)) continue;
            if (std::log(v) + std::log(invalpha) - std::log(a / (us * us) + b) <=
                -mean + k * loglam - std::lgamma(k + 1.0))
                return static_cast<std::uint64_t>(k);
        }
    }

    // Negative binomial with the given mean and dispersion (variance = mean + mean^2 / size),
    // as a gamma-Poisson mixture.
    std::uint64_t negative_binomial(double mean, double size) {
        return poisson(gamma(size, mean / size));
    }

    // Fisher-Yates shuffle.
    template <typename T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

    // 0..n-1 in random order.
    std::vector<std::int64_t> permutation(std::int64_t n) {
        std::vector<std::int64_t> p(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
        shuffle(p);
        return p;
    }

private:
    std::mt19937_64 m_engine;
    double m_spare = 0.0;
    bool m_has_spare = false;
};

// A seed derived from a base seed and a stream number (splitmix64), for independent streams,
// e.g. one per permutation block, that do not depend on the thread count.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

} // namespace exsal

#endif // EXSAL_CORE_RANDOM_HPP
