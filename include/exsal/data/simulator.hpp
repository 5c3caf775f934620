#ifndef EXSAL_DATA_SIMULATOR_HPP
#define EXSAL_DATA_SIMULATOR_HPP

// Synthetic haematopoiesis with planted gene programmes: ground truth for the whole method.
//
// Populations lie on a branching tree, HSC -> MPP -> {CMP -> {MEP, GMP}, MLP}; every cell has a
// pseudotime t in [0, 1) along its population's segment. Each of K gene programmes has an activity
// a_k(cell) >= 0:
//   lineage programmes   a = profile_k(population, t) x lognormal(0, activity_noise), where the
//                        profile interpolates linearly from a start to an end level within each
//                        population (continuous across the tree: a population starts where its
//                        parent ends), e.g. ERYTHROID rises along CMP -> MEP, STEMNESS falls from HSC;
//   CELL_CYCLE           a random subset of cells (probability per population, HSC mostly quiescent)
//                        with activity uniform(0.4, 1), partly independent of lineage;
//   INTERFERON           a random subset (interferon_fraction of all cells), activity gamma(2, 0.35).
//   Other names get a random lineage profile (per population start / end levels).
// Each programme owns its genes (sizes uniform in [min, max]) with loadings w_gk (lognormal);
// the remaining genes are background. Per gene a baseline b_g (lognormal, mostly low), per cell a
// library size L_c (lognormal). Counts ~ Poisson or negative binomial with mean
//   lambda_gc = L_c (b_g + sum_k a_k(c) w_gk).
// Gene sets: one planted set per programme, "SIM_<NAME>" with description "planted", of the
// programme's size, set_true_fraction of it drawn from the programme's true genes and the rest from
// other genes; plus decoy sets "SIM_DECOY_<NAME>_<j>", description "decoy", of random genes with the
// same size as the planted set. Everything is deterministic from the seed (exsal::Rng only) and
// independent of the thread count.

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/text.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/expression_matrix.hpp"
#include "exsal/io/gene_set.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_set>
#include <vector>

namespace exsal {

enum class CountModel { poisson, negative_binomial };

struct SimulationOptions {
    std::uint64_t seed = 1;
    Index n_cells = 2000;
    Index n_genes = 3000; // programme genes + background genes
    std::vector<std::string> programmes = {"ERYTHROID", "MEGAKARYOCYTE", "MYELOID", "LYMPHOID",
                                           "STEMNESS",  "CELL_CYCLE",    "INTERFERON"};
    Index min_programme_genes = 40; // size of each programme, uniform in [min, max]
    Index max_programme_genes = 80;
    // Share of cells per population HSC, MPP, CMP, MLP, MEP, GMP (normalised; exact counts by
    // largest remainder, so every population with a positive share and enough cells appears).
    std::array<double, 6> population_weights = {0.15, 0.15, 0.2, 0.1, 0.2, 0.2};
    double activity_noise = 0.25;       // sd of the log of the per-cell multiplicative activity noise
    double interferon_fraction = 0.15;  // share of cells with interferon activity
    double library_log_sd = 0.5;        // L_c = lognormal(0, library_log_sd)
    double baseline_log_mean = -1.5;    // b_g = lognormal(baseline_log_mean, baseline_log_sd)
    double baseline_log_sd = 1.5;
    double programme_baseline_log_mean = -2.5; // baseline of programme genes (lower)
    double loading_log_mean = 1.4;      // w_gk = lognormal(loading_log_mean, loading_log_sd)
    double loading_log_sd = 0.5;
    CountModel count_model = CountModel::negative_binomial;
    double nb_size = 2.0;               // dispersion: variance = mean + mean^2 / nb_size
    double set_true_fraction = 0.7;     // share of each planted set taken from the programme's genes
    Index decoys_per_programme = 3;
};

// What was planted.
struct SimulatedTruth {
    std::vector<std::string> programmes;             // K names
    std::vector<std::vector<Index>> programme_genes; // K lists of gene rows (ascending), disjoint
    MatrixF loadings;                                // genes x K, w_gk (0 off the programme's genes)
    VectorF baseline;                                // genes, b_g
    MatrixF activity;                                // K x cells, a_k(c)
    std::vector<std::string> populations;            // cells, HSC/MPP/CMP/MLP/MEP/GMP (= expression.groups)
    VectorF pseudotime;                              // cells, t within the population in [0, 1)
    VectorF tree_time;                               // cells, depth + t (HSC 0, MPP 1, CMP/MLP 2, MEP/GMP 3)
    VectorF library_size;                            // cells, L_c
};

struct SimulatedData {
    ExpressionMatrix expression; // genes x cells counts (as float), groups = populations
    GeneSetCollection gene_sets; // K planted sets, then K x decoys_per_programme decoys
    SimulatedTruth truth;
};

namespace detail::sim {

inline const std::array<const char*, 6>& population_names() {
    static const std::array<const char*, 6> names = {"HSC", "MPP", "CMP", "MLP", "MEP", "GMP"};
    return names;
}

// Depth of each population in the tree HSC -> MPP -> {CMP -> {MEP, GMP}, MLP}.
inline const std::array<int, 6>& population_depth() {
    static const std::array<int, 6> depth = {0, 1, 2, 2, 3, 3};
    return depth;
}

enum class Kind { lineage, cell_cycle, random_subset };

struct Profile {
    Kind kind = Kind::lineage;
    std::array<std::array<double, 2>, 6> level{}; // per population: activity at t = 0 and t -> 1
    std::array<double, 6> probability{};          // cell_cycle: share of active cells per population
    std::string prefix;                           // gene symbol prefix
};

// Built-in profiles; populations in the order HSC, MPP, CMP, MLP, MEP, GMP.
inline bool builtin_profile(const std::string& name, Profile& p) {
    using L = std::array<std::array<double, 2>, 6>;
    if (name == "STEMNESS") {
        p.prefix = "STEM";
        p.level = L{{{1.0, 0.8}, {0.8, 0.5}, {0.5, 0.2}, {0.5, 0.2}, {0.2, 0.0}, {0.2, 0.0}}};
    } else if (name == "ERYTHROID") {
        p.prefix = "ERY";
        p.level = L{{{0.0, 0.0}, {0.0, 0.05}, {0.05, 0.3}, {0.05, 0.0}, {0.3, 1.0}, {0.3, 0.05}}};
    } else if (name == "MEGAKARYOCYTE") {
        p.prefix = "MEG";
        p.level = L{{{0.15, 0.15}, {0.15, 0.1}, {0.1, 0.25}, {0.1, 0.0}, {0.25, 0.7}, {0.25, 0.0}}};
    } else if (name == "MYELOID") {
        p.prefix = "MYE";
        p.level = L{{{0.0, 0.0}, {0.0, 0.05}, {0.05, 0.3}, {0.05, 0.15}, {0.3, 0.05}, {0.3, 1.0}}};
    } else if (name == "LYMPHOID") {
        p.prefix = "LYM";
        p.level = L{{{0.0, 0.0}, {0.0, 0.1}, {0.1, 0.0}, {0.1, 1.0}, {0.0, 0.0}, {0.0, 0.0}}};
    } else if (name == "CELL_CYCLE") {
        p.prefix = "CC";
        p.kind = Kind::cell_cycle;
        p.probability = {0.1, 0.3, 0.45, 0.35, 0.5, 0.45};
    } else if (name == "INTERFERON") {
        p.prefix = "IFN";
        p.kind = Kind::random_subset;
    } else {
        return false;
    }
    return true;
}

inline std::string numbered(const std::string& prefix, Index i, int width) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "_%0*lld", width, static_cast<long long>(i));
    return prefix + buf;
}

// `k` distinct values drawn uniformly from `pool` (partial Fisher-Yates on a copy).
inline std::vector<Index> sample_without_replacement(std::vector<Index> pool, Index k, Rng& rng) {
    for (Index i = 0; i < k; ++i) {
        const auto j = static_cast<std::size_t>(i) + rng.below(pool.size() - static_cast<std::size_t>(i));
        std::swap(pool[static_cast<std::size_t>(i)], pool[j]);
    }
    pool.resize(static_cast<std::size_t>(k));
    return pool;
}

inline ArgumentError simulation_error(const std::string& message) {
    return ArgumentError("simulate_haematopoiesis", message);
}

// The checks that need no random draw, in the order their errors are reported.
inline void check_options(const SimulationOptions& opt) {
    if (opt.n_cells < 1) throw simulation_error("n_cells must be >= 1");
    if (opt.programmes.empty()) throw simulation_error("need at least one programme");
    if (opt.min_programme_genes < 1 || opt.max_programme_genes < opt.min_programme_genes)
        throw simulation_error("programme sizes need 1 <= min_programme_genes <= max_programme_genes");
    if (!(opt.set_true_fraction >= 0.0 && opt.set_true_fraction <= 1.0))
        throw simulation_error("set_true_fraction must be in [0, 1]");
    if (opt.decoys_per_programme < 0) throw simulation_error("decoys_per_programme must be >= 0");
    if (opt.count_model == CountModel::negative_binomial && !(opt.nb_size > 0.0))
        throw simulation_error("nb_size must be > 0");
    if (!(opt.interferon_fraction >= 0.0 && opt.interferon_fraction <= 1.0))
        throw simulation_error("interferon_fraction must be in [0, 1]");
    if (!(opt.activity_noise >= 0.0 && opt.library_log_sd >= 0.0 && opt.baseline_log_sd >= 0.0 && opt.loading_log_sd >= 0.0))
        throw simulation_error("noise and log-sd options must be >= 0");
    double weight_sum = 0.0;
    for (double w : opt.population_weights) {
        if (!(w >= 0.0 && std::isfinite(w))) throw simulation_error("population weights must be finite and >= 0");
        weight_sum += w;
    }
    if (!(weight_sum > 0.0)) throw simulation_error("population weights sum to 0");
}

// One profile per programme (stream 0 draws the random lineage profiles of names without a
// built-in one); names and gene prefixes must be unique.
inline std::vector<Profile> programme_profiles(const SimulationOptions& opt) {
    Rng rng(derive_seed(opt.seed, 0));
    std::vector<Profile> profiles(opt.programmes.size());
    std::unordered_set<std::string> names, prefixes;
    for (std::size_t k = 0; k < profiles.size(); ++k) {
        const std::string& name = opt.programmes[k];
        Profile& p = profiles[k];
        if (name.empty() || !names.insert(name).second)
            throw simulation_error("programme names must be non-empty and unique ('" + name + "')");
        if (!builtin_profile(name, p)) {
            p.prefix = detail::upper_cased_ascii(name);
            for (auto& lv : p.level)
                for (double& v : lv) v = rng.uniform() < 0.5 ? 0.0 : rng.uniform();
        }
        if (p.prefix == "BG" || !prefixes.insert(p.prefix).second)
            throw simulation_error("programme '" + name + "' has the gene prefix '" + p.prefix +
                                   "' of another programme or of the background");
    }
    return profiles;
}

// Number of genes of each programme, uniform in [min, max]; throws when together they exceed n_genes.
inline std::vector<Index> programme_sizes(const SimulationOptions& opt, Rng& rng) {
    std::vector<Index> sizes(opt.programmes.size());
    Index total = 0;
    for (auto& s : sizes) {
        s = opt.min_programme_genes +
            static_cast<Index>(rng.below(static_cast<std::uint64_t>(opt.max_programme_genes - opt.min_programme_genes + 1)));
        total += s;
    }
    if (opt.n_genes < total)
        throw simulation_error("n_genes = " + std::to_string(opt.n_genes) + " is smaller than the " +
                               std::to_string(total) + " programme genes drawn");
    return sizes;
}

// Gene symbols, programme membership, loadings and baselines (stream 1): the programmes' genes
// first, then the background, each logical gene placed at a random row.
inline void draw_genes(const SimulationOptions& opt, const std::vector<Profile>& profiles, SimulatedTruth& truth,
                       std::vector<std::string>& genes) {
    Rng rng(derive_seed(opt.seed, 1));
    const std::vector<Index> sizes = programme_sizes(opt, rng);
    const Index G = opt.n_genes, K = static_cast<Index>(sizes.size());
    const std::vector<std::int64_t> row_order = rng.permutation(G); // logical gene i -> row row_order[i]
    truth.programmes = opt.programmes;
    truth.programme_genes.resize(static_cast<std::size_t>(K));
    truth.loadings = MatrixF::Zero(G, K);
    truth.baseline.resize(G);
    genes.resize(static_cast<std::size_t>(G));
    Index logical = 0;
    for (Index k = 0; k < K; ++k)
        for (Index i = 0; i < sizes[static_cast<std::size_t>(k)]; ++i, ++logical) {
            const Index row = row_order[static_cast<std::size_t>(logical)];
            genes[static_cast<std::size_t>(row)] = numbered(profiles[static_cast<std::size_t>(k)].prefix, i + 1, 3);
            truth.programme_genes[static_cast<std::size_t>(k)].push_back(row);
            truth.loadings(row, k) = static_cast<float>(rng.lognormal(opt.loading_log_mean, opt.loading_log_sd));
            truth.baseline(row) = static_cast<float>(rng.lognormal(opt.programme_baseline_log_mean, opt.baseline_log_sd));
        }
    const Index n_background = G - logical;
    for (Index i = 0; i < n_background; ++i, ++logical) {
        const Index row = row_order[static_cast<std::size_t>(logical)];
        genes[static_cast<std::size_t>(row)] = numbered("BG", i + 1, 4);
        truth.baseline(row) = static_cast<float>(rng.lognormal(opt.baseline_log_mean, opt.baseline_log_sd));
    }
    for (auto& rows : truth.programme_genes) std::sort(rows.begin(), rows.end());
}

// Exact number of cells per population: shares of n_cells rounded down, the cells left over
// going to the largest remainders (ties to the earlier population).
inline std::array<Index, 6> population_counts(const SimulationOptions& opt) {
    const Index C = opt.n_cells;
    double weight_sum = 0.0;
    for (double w : opt.population_weights) weight_sum += w;
    std::array<Index, 6> counts{};
    std::array<double, 6> remainder{};
    Index assigned = 0;
    for (std::size_t p = 0; p < 6; ++p) {
        const double exact = opt.population_weights[p] / weight_sum * static_cast<double>(C);
        counts[p] = static_cast<Index>(std::floor(exact));
        remainder[p] = exact - std::floor(exact);
        assigned += counts[p];
    }
    while (assigned < C) {
        const std::size_t p = static_cast<std::size_t>(std::max_element(remainder.begin(), remainder.end()) - remainder.begin());
        ++counts[p];
        remainder[p] = -1.0;
        ++assigned;
    }
    return counts;
}

// a_k of a cell of population p at pseudotime t (rules at the top of this header).
inline double programme_activity(const Profile& pr, std::size_t p, double t, const SimulationOptions& opt, Rng& rng) {
    switch (pr.kind) {
    case Kind::lineage: // linear from start to end level within the population, times noise
        return (pr.level[p][0] + (pr.level[p][1] - pr.level[p][0]) * t) * rng.lognormal(0.0, opt.activity_noise);
    case Kind::cell_cycle: return rng.uniform() < pr.probability[p] ? rng.uniform(0.4, 1.0) : 0.0;
    case Kind::random_subset: return rng.uniform() < opt.interferon_fraction ? rng.gamma(2.0, 0.35) : 0.0;
    }
    return 0.0;
}

// Cells (stream 2): populations shuffled, then per cell its pseudotime, library size and the
// activity of every programme.
inline void draw_cells(const SimulationOptions& opt, const std::vector<Profile>& profiles, SimulatedTruth& truth,
                       std::vector<std::string>& cells) {
    const Index C = opt.n_cells, K = static_cast<Index>(profiles.size());
    Rng rng(derive_seed(opt.seed, 2));
    const std::array<Index, 6> counts = population_counts(opt);
    std::vector<int> population;
    population.reserve(static_cast<std::size_t>(C));
    for (int p = 0; p < 6; ++p) population.insert(population.end(), static_cast<std::size_t>(counts[static_cast<std::size_t>(p)]), p);
    rng.shuffle(population);

    truth.populations.resize(static_cast<std::size_t>(C));
    truth.pseudotime.resize(C);
    truth.tree_time.resize(C);
    truth.library_size.resize(C);
    truth.activity = MatrixF::Zero(K, C);
    cells.resize(static_cast<std::size_t>(C));
    for (Index c = 0; c < C; ++c) {
        const auto p = static_cast<std::size_t>(population[static_cast<std::size_t>(c)]);
        const double t = rng.uniform();
        truth.populations[static_cast<std::size_t>(c)] = population_names()[p];
        truth.pseudotime(c) = static_cast<float>(t);
        truth.tree_time(c) = static_cast<float>(population_depth()[p] + t);
        truth.library_size(c) = static_cast<float>(rng.lognormal(0.0, opt.library_log_sd));
        cells[static_cast<std::size_t>(c)] = numbered("CELL", c + 1, 5);
        for (Index k = 0; k < K; ++k)
            truth.activity(k, c) = static_cast<float>(programme_activity(profiles[static_cast<std::size_t>(k)], p, t, opt, rng));
    }
}

// Counts with mean lambda = L_c (b + W a_c), one random stream per cell, so the result does not
// depend on the thread count.
inline void draw_counts(const SimulationOptions& opt, const SimulatedTruth& truth, MatrixF& values) {
    const Index G = truth.loadings.rows(), K = truth.loadings.cols(), C = opt.n_cells;
    const std::uint64_t count_seed = derive_seed(opt.seed, 3);
    values.resize(G, C);
#pragma omp parallel for schedule(static)
    for (Index c = 0; c < C; ++c) {
        Rng rng(derive_seed(count_seed, static_cast<std::uint64_t>(c)));
        for (Index g = 0; g < G; ++g) {
            double rate = truth.baseline(g); // b_g + sum_k w_gk a_k(c)
            for (Index k = 0; k < K; ++k) rate += static_cast<double>(truth.loadings(g, k)) * truth.activity(k, c);
            const double lambda = static_cast<double>(truth.library_size(c)) * rate;
            const std::uint64_t x = opt.count_model == CountModel::poisson ? rng.poisson(lambda)
                                                                           : (lambda > 0.0 ? rng.negative_binomial(lambda, opt.nb_size) : 0);
            values(g, c) = static_cast<float>(x);
        }
    }
}

// The symbols of `rows`, sorted.
inline std::vector<std::string> symbols_of(const std::vector<Index>& rows, const std::vector<std::string>& genes) {
    std::vector<std::string> s;
    for (Index r : rows) s.push_back(genes[static_cast<std::size_t>(r)]);
    std::sort(s.begin(), s.end());
    return s;
}

// The planted set of programme k: set_true_fraction of its size from the programme's genes, the
// rest from the other genes.
inline GeneSet planted_set(const SimulationOptions& opt, Index k, const std::vector<Index>& own,
                           const std::vector<std::string>& genes, Rng& rng) {
    const Index G = static_cast<Index>(genes.size());
    const Index size = static_cast<Index>(own.size());
    const Index n_true = static_cast<Index>(std::llround(opt.set_true_fraction * static_cast<double>(size)));
    std::vector<Index> others;
    std::unordered_set<Index> own_set(own.begin(), own.end());
    for (Index g = 0; g < G; ++g)
        if (!own_set.count(g)) others.push_back(g);
    const std::string& name = opt.programmes[static_cast<std::size_t>(k)];
    if (static_cast<Index>(others.size()) < size - n_true)
        throw simulation_error("too few genes outside programme '" + name + "' to fill its planted set");
    std::vector<Index> rows = sample_without_replacement(own, n_true, rng);
    const std::vector<Index> fill = sample_without_replacement(others, size - n_true, rng);
    rows.insert(rows.end(), fill.begin(), fill.end());
    return {"SIM_" + name, "planted", symbols_of(rows, genes)};
}

// Gene sets (stream 4): the planted sets, then per programme its decoys of random genes, as
// many as its planted set.
inline GeneSetCollection draw_gene_sets(const SimulationOptions& opt, const SimulatedTruth& truth,
                                        const std::vector<std::string>& genes) {
    Rng rng(derive_seed(opt.seed, 4));
    const Index G = static_cast<Index>(genes.size()), K = static_cast<Index>(opt.programmes.size());
    GeneSetCollection sets;
    for (Index k = 0; k < K; ++k)
        sets.push_back(planted_set(opt, k, truth.programme_genes[static_cast<std::size_t>(k)], genes, rng));
    std::vector<Index> all_rows(static_cast<std::size_t>(G));
    for (Index g = 0; g < G; ++g) all_rows[static_cast<std::size_t>(g)] = g;
    for (Index k = 0; k < K; ++k) {
        const auto size = static_cast<Index>(truth.programme_genes[static_cast<std::size_t>(k)].size());
        for (Index j = 0; j < opt.decoys_per_programme; ++j)
            sets.push_back({"SIM_DECOY_" + opt.programmes[static_cast<std::size_t>(k)] + "_" + std::to_string(j + 1),
                            "decoy", symbols_of(sample_without_replacement(all_rows, size, rng), genes)});
    }
    return sets;
}

} // namespace detail::sim

// Simulates counts, planted gene sets and the truth behind them; see the top of this header.
// Throws ArgumentError("simulate_haematopoiesis", ...) on invalid options.
inline SimulatedData simulate_haematopoiesis(const SimulationOptions& opt) {
    using namespace detail::sim;
    check_options(opt);
    const std::vector<Profile> profiles = programme_profiles(opt);
    SimulatedData out;
    draw_genes(opt, profiles, out.truth, out.expression.genes);
    draw_cells(opt, profiles, out.truth, out.expression.cells);
    out.expression.groups = out.truth.populations;
    draw_counts(opt, out.truth, out.expression.values);
    out.gene_sets = draw_gene_sets(opt, out.truth, out.expression.genes);
    return out;
}

} // namespace exsal

#endif // EXSAL_DATA_SIMULATOR_HPP
