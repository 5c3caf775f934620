// Preprocessing steps and the haematopoiesis simulator.

#include "exsal/core/threads.hpp"
#include "exsal/data/cell_batches.hpp"
#include "exsal/data/preprocess.hpp"
#include "exsal/data/simulator.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace exsal;

namespace {

// Random expression matrix with genes "G0001".., cells "C1".., groups "a"/"b".
ExpressionMatrix random_matrix(Index genes, Index cells, std::uint64_t seed, float hi = 4.0f) {
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, hi);
    ExpressionMatrix m;
    m.values.resize(genes, cells);
    for (Index c = 0; c < cells; ++c)
        for (Index g = 0; g < genes; ++g) m.values(g, c) = u(gen);
    for (Index g = 0; g < genes; ++g) m.genes.push_back("G" + std::to_string(1000 + g));
    for (Index c = 0; c < cells; ++c) {
        m.cells.push_back("C" + std::to_string(c + 1));
        m.groups.push_back(c % 2 ? "a" : "b");
    }
    return m;
}

// Random counts (Poisson-like, many zeros) for the transforms.
ExpressionMatrix random_counts(Index genes, Index cells, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::poisson_distribution<int> pois(1.5);
    ExpressionMatrix m = random_matrix(genes, cells, seed);
    for (Index c = 0; c < cells; ++c)
        for (Index g = 0; g < genes; ++g) m.values(g, c) = static_cast<float>(pois(gen));
    return m;
}

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

double pearson(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
    const Eigen::ArrayXd x = a.array() - a.mean(), y = b.array() - b.mean();
    return (x * y).sum() / std::sqrt(x.square().sum() * y.square().sum());
}

SimulationOptions small_simulation(std::uint64_t seed) {
    SimulationOptions o;
    o.seed = seed;
    o.n_cells = 400;
    o.n_genes = 900;
    return o;
}

} // namespace

// ---------------------------------------------------------------------------------------------
TEST_CASE("split_train_validation: sizes, disjoint cover, the seeded permutation, determinism") {
    for (Index n : {20, 100, 2001}) {
        const Split s = split_train_validation(n, 0.05, 7);
        const auto n_val = static_cast<std::size_t>(std::llround(0.05 * static_cast<double>(n)));
        CHECK(s.validation.size() == n_val);
        CHECK(s.train.size() + s.validation.size() == static_cast<std::size_t>(n));
        std::vector<Index> all(s.train);
        all.insert(all.end(), s.validation.begin(), s.validation.end());
        std::sort(all.begin(), all.end());
        for (Index i = 0; i < n; ++i) CHECK(all[static_cast<std::size_t>(i)] == i); // disjoint and complete
        // Oracle: the last fraction of Rng(seed).permutation.
        const auto perm = Rng(7).permutation(n);
        for (std::size_t i = 0; i < n_val; ++i) CHECK(s.validation[i] == perm[perm.size() - n_val + i]);
        const Split again = split_train_validation(n, 0.05, 7);
        CHECK(again.train == s.train);
        CHECK(again.validation == s.validation);
        CHECK(split_train_validation(n, 0.05, 8).train != s.train);
    }
    const Split none = split_train_validation(10, 0.0, 1);
    CHECK(none.train.size() == 10);
    CHECK(none.validation.empty());
}

TEST_CASE("split_train_validation: errors name the function") {
    CHECK(contains(error_of([] { split_train_validation(10, 0.01, 1); }), "split_train_validation")); // 0 validation cells
    CHECK(contains(error_of([] { split_train_validation(1, 0.5, 1); }), "split_train_validation"));   // 1 cell, round(.5)=1 -> 0 train
    CHECK(contains(error_of([] { split_train_validation(10, 1.0, 1); }), "split_train_validation"));
    CHECK(contains(error_of([] { split_train_validation(10, -0.1, 1); }), "split_train_validation"));
    CHECK(contains(error_of([] { split_train_validation(10, std::nan(""), 1); }), "split_train_validation"));
    CHECK(contains(error_of([] { split_train_validation(0, 0.0, 1); }), "split_train_validation"));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("filter_genes_by_max keeps exactly the genes with a value > threshold") {
    ExpressionMatrix m = random_matrix(200, 15, 3, 2.6f);
    m.values.row(5).setConstant(2.0f); // max exactly at the threshold: dropped
    m.values.row(6).setConstant(0.0f);
    m.values(6, 14) = 2.0001f; // one cell just above: kept
    for (float threshold : {2.0f, 1.0f, 2.5f}) {
        std::vector<Index> oracle;
        for (Index g = 0; g < m.n_genes(); ++g) {
            bool keep = false;
            for (Index c = 0; c < m.n_cells(); ++c) keep = keep || m.values(g, c) > threshold;
            if (keep) oracle.push_back(g);
        }
        CHECK(filter_genes_by_max(m, threshold) == oracle);
    }
    const auto kept = filter_genes_by_max(m);
    CHECK(std::find(kept.begin(), kept.end(), 5) == kept.end());
    CHECK(std::find(kept.begin(), kept.end(), 6) != kept.end());
    CHECK(kept.size() < 200); // the filter removes something in this matrix

    ExpressionMatrix low = random_matrix(30, 10, 4, 2.0f); // all values < 2
    const std::string e = error_of([&] { filter_genes_by_max(low); });
    CHECK(contains(e, "filter_genes_by_max"));
    CHECK(contains(e, "30 genes"));
}

TEST_CASE("prepare upper-cases the symbols, and refuses symbols that collide") {
    ExpressionMatrix m = random_counts(3, 20, 6);
    m.genes = {"Actb", "gapdh", "CD34"};
    PreprocessOptions o;
    o.filter = false;
    CHECK(prepare(m, o).train.genes == std::vector<std::string>{"ACTB", "GAPDH", "CD34"});
    m.genes = {"Actb", "ACTB", "cd34"};
    try {
        prepare(m, o);
        FAIL("colliding symbols were accepted");
    } catch (const ArgumentError& e) {
        CHECK(contains(e.what(), "same symbol after upper-casing"));
        CHECK(e.subject() == Setting::expression_data);
    }
}

TEST_CASE("restrict_to_gene_sets keeps the genes of any set, case-insensitively") {
    ExpressionMatrix m = random_matrix(5, 3, 7);
    m.genes = {"actb", "GAPDH", "Foo", "CD34", "BAR"};
    const GeneSetCollection sets{{"S1", "", {"ACTB", "XYZ"}}, {"S2", "", {"cd34", "bar"}}};
    CHECK(restrict_to_gene_sets(m, sets) == std::vector<Index>{0, 3, 4});
    CHECK(restrict_to_gene_sets(m.genes, sets) == std::vector<Index>{0, 3, 4});

    const GeneSetCollection disjoint{{"S", "", {"ENSG0001", "ENSG0002"}}};
    const std::string e = error_of([&] { restrict_to_gene_sets(m, disjoint); });
    CHECK(contains(e, "restrict_to_gene_sets"));
    CHECK(contains(e, "5 genes"));
    CHECK(contains(e, "actb"));     // first data symbols shown
    CHECK(contains(e, "ENSG0001")); // first set symbols shown
    CHECK(contains(error_of([&] { restrict_to_gene_sets(m, GeneSetCollection{}); }), "restrict_to_gene_sets"));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("input transforms agree with their formulas") {
    const ExpressionMatrix train = random_counts(25, 30, 11);
    const ExpressionMatrix test = random_counts(25, 8, 12);
    SUBCASE("none") {
        const auto p = Preprocessor::fit(train, InputTransform::none);
        CHECK(p.transform(test.values) == test.values);
    }
    SUBCASE("log1p") {
        const auto p = Preprocessor::fit(train, InputTransform::log1p);
        const MatrixF y = p.transform(test.values);
        for (Index c = 0; c < y.cols(); ++c)
            for (Index g = 0; g < y.rows(); ++g)
                CHECK(y(g, c) == doctest::Approx(std::log(1.0 + test.values(g, c))).epsilon(1e-6));
    }
    SUBCASE("cpm_log1p") {
        const auto p = Preprocessor::fit(train, InputTransform::cpm_log1p);
        CHECK(p.cpm_scale() == 1e4);
        MatrixF x = test.values;
        x.col(3).setZero(); // empty cell -> zeros
        const MatrixF y = p.transform(x);
        for (Index c = 0; c < y.cols(); ++c) {
            const double lib = x.col(c).cast<double>().sum();
            for (Index g = 0; g < y.rows(); ++g) {
                const double expected = lib > 0 ? std::log(1.0 + x(g, c) * 1e4 / lib) : 0.0;
                CHECK(y(g, c) == doctest::Approx(expected).epsilon(1e-6));
            }
        }
    }
    SUBCASE("minmax is fitted on the training cells only") {
        ExpressionMatrix all = random_counts(25, 40, 13);
        all.values.row(4).setConstant(3.0f); // constant gene -> 0
        const Split split = split_train_validation(all.n_cells(), 0.25, 5);
        // Validation cells get values outside anything seen in training.
        for (Index c : split.validation) all.values(0, c) = 100.0f;
        std::vector<Index> rows(static_cast<std::size_t>(all.n_genes()));
        std::iota(rows.begin(), rows.end(), Index(0));
        const ExpressionMatrix tr = detail::prep::select_block(all, rows, all.genes, split.train),
                               va = detail::prep::select_block(all, rows, all.genes, split.validation);
        const auto p = Preprocessor::fit(tr, InputTransform::minmax);
        for (Index g = 0; g < all.n_genes(); ++g) {
            float lo = INFINITY, hi = -INFINITY;
            for (Index c : split.train) {
                lo = std::min(lo, all.values(g, c));
                hi = std::max(hi, all.values(g, c));
            }
            CHECK(p.minimum()(g) == lo);
            CHECK(p.maximum()(g) == hi);
        }
        CHECK(p.maximum()(0) < 100.0f);
        const MatrixF ytr = p.transform(tr.values), yva = p.transform(va.values);
        for (Index c = 0; c < ytr.cols(); ++c)
            for (Index g = 0; g < ytr.rows(); ++g) {
                const double lo = p.minimum()(g), hi = p.maximum()(g);
                const double expected = hi > lo ? (tr.values(g, c) - lo) / (hi - lo) : 0.0;
                CHECK(ytr(g, c) == doctest::Approx(expected).epsilon(1e-6));
                CHECK(ytr(g, c) >= 0.0f);
                CHECK(ytr(g, c) <= 1.0f);
            }
        CHECK(ytr.row(4).isZero());
        CHECK(yva.row(4).isZero());
        CHECK(yva(0, 0) > 1.0f); // not clipped outside the training range
    }
}

TEST_CASE("transform_in_place equals transform bit for bit, for every transform") {
    const ExpressionMatrix train = random_counts(25, 30, 21);
    MatrixF x = random_counts(25, 9, 22).values;
    x.col(2).setZero(); // an empty cell (cpm_log1p's library 0)
    for (InputTransform t : {InputTransform::none, InputTransform::log1p, InputTransform::minmax, InputTransform::cpm_log1p}) {
        CAPTURE(input_transform_name(t));
        const auto p = Preprocessor::fit(train, t);
        const MatrixF expected = p.transform(x);
        MatrixF y = x;
        p.transform_in_place(y);
        CHECK(y == expected);
        if (t != InputTransform::none) CHECK(y != x);
    }
    const auto p = Preprocessor::fit(train, InputTransform::log1p);
    MatrixF wrong = MatrixF::Zero(5, 3), negative = x;
    negative(7, 4) = -1.0f;
    CHECK(contains(error_of([&] { p.transform_in_place(wrong); }), "Preprocessor::transform_in_place"));
    CHECK(contains(error_of([&] { p.transform_in_place(negative); }), "gene G1007 of cell 5"));
}

TEST_CASE("transform rejects wrong shapes and values its formula cannot take") {
    const ExpressionMatrix train = random_counts(6, 5, 14);
    const auto p = Preprocessor::fit(train, InputTransform::log1p);
    CHECK(contains(error_of([&] { p.transform(MatrixF::Zero(5, 3)); }), "Preprocessor::transform"));
    MatrixF bad = train.values;
    bad(2, 1) = -1.0f;
    const std::string e = error_of([&] { p.transform(bad); });
    CHECK(contains(e, "Preprocessor::transform"));
    CHECK(contains(e, "gene G1002 of cell 2")); // the first offending entry is named
    MatrixF nan = train.values;
    nan(0, 4) = std::nanf("");
    CHECK(contains(error_of([&] { p.transform(nan); }), "gene G1000 of cell 5"));
    CHECK_NOTHROW(Preprocessor::fit(train, InputTransform::minmax).transform(bad)); // minmax takes negatives
    ExpressionMatrix dup = train;
    dup.genes[1] = "g1000"; // same as G1000 after upper-casing
    CHECK(contains(error_of([&] { Preprocessor::fit(dup, InputTransform::none); }), "Preprocessor::fit"));
    CHECK(parse_input_transform("MinMax") == InputTransform::minmax);
    CHECK(contains(error_of([] { parse_input_transform("zscore"); }), "parse_input_transform"));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("Preprocessor serialize / deserialize round trip gives identical output") {
    const ExpressionMatrix train = random_counts(30, 20, 21);
    const ExpressionMatrix test = random_counts(30, 7, 22);
    for (InputTransform t : {InputTransform::none, InputTransform::log1p, InputTransform::minmax, InputTransform::cpm_log1p}) {
        CAPTURE(input_transform_name(t));
        Preprocessor p = Preprocessor::fit(train, t, 1e6);
        p.set_filter_threshold(2.0);
        p.set_gene_sets("h.all.v6.2.symbols.gmt");
        const std::string bytes = p.serialize();
        const Preprocessor q = Preprocessor::deserialize(bytes, "model.exsal");
        CHECK(q.genes() == p.genes());
        CHECK(q.input_transform() == t);
        CHECK(q.cpm_scale() == 1e6);
        CHECK(q.filter_threshold() == 2.0);
        CHECK(q.gene_sets() == "h.all.v6.2.symbols.gmt");
        CHECK(q.transform(test.values) == p.transform(test.values)); // bit-identical
        CHECK(q.serialize() == bytes);
    }
}

TEST_CASE("deserialize of truncated or bit-flipped state throws FileError naming the origin") {
    const ExpressionMatrix train = random_counts(8, 10, 23);
    const std::string bytes = Preprocessor::fit(train, InputTransform::minmax).serialize();
    const std::string origin = "runs/model.exsal";
    const auto rejects = [&](const std::string& b) {
        try {
            Preprocessor::deserialize(b, origin);
        } catch (const FileError& e) {
            return e.path() == origin && contains(e.what(), origin);
        } catch (...) {
            return false;
        }
        return false;
    };
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        CHECK(rejects(bytes.substr(0, n)));
    }
    int flips_rejected = 0, flips = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            std::string b = bytes;
            b[i] = static_cast<char>(b[i] ^ (1 << bit));
            ++flips;
            flips_rejected += rejects(b);
        }
    CHECK(flips_rejected == flips);
    CHECK(rejects(bytes + "x"));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("align reorders to the model genes, zero-fills missing genes and ignores extras") {
    ExpressionMatrix train = random_counts(4, 6, 31);
    train.genes = {"A", "B", "C", "D"};
    const auto p = Preprocessor::fit(train, InputTransform::none);

    ExpressionMatrix fresh = random_counts(4, 5, 32);
    fresh.genes = {"d", "X", "b", "A"};
    const auto a = p.align(fresh);
    REQUIRE(a.values.rows() == 4);
    REQUIRE(a.values.cols() == 5);
    CHECK(a.values.row(0) == fresh.values.row(3)); // A
    CHECK(a.values.row(1) == fresh.values.row(2)); // B
    CHECK(a.values.row(2).isZero());               // C missing
    CHECK(a.values.row(3) == fresh.values.row(0)); // D
    CHECK(a.genes_missing == 1);
    CHECK(a.missing_genes == std::vector<std::string>{"C"});
    CHECK(a.genes_extra == 1);

    ExpressionMatrix same = train;
    const auto s = p.align(same);
    CHECK(s.values == train.values);
    CHECK(s.genes_missing == 0);
    CHECK(s.genes_extra == 0);

    fresh.genes = {"P", "Q", "R", "S"};
    CHECK(contains(error_of([&] { p.align(fresh); }), "Preprocessor::align"));
    fresh.genes = {"a", "A", "B", "C"};
    CHECK(contains(error_of([&] { p.align(fresh); }), "Preprocessor::align"));
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("prepare runs split, filter, upper-case, gene-set restriction and the transform in order") {
    SimulationOptions so = small_simulation(41);
    SimulatedData sim = simulate_haematopoiesis(so);
    ExpressionMatrix data = sim.expression;
    for (std::size_t i = 0; i < data.genes.size(); i += 3) // lower-case some symbols
        for (char& ch : data.genes[i]) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    PreprocessOptions opt;
    opt.seed = 9;
    opt.transform = InputTransform::log1p;
    opt.gene_sets_label = "simulated";
    const PreparedData d = prepare(data, sim.gene_sets, opt);

    // Oracle: the same steps by hand (the split's cells in ascending order).
    Split split = split_train_validation(data.n_cells(), 0.05, 9);
    std::sort(split.train.begin(), split.train.end());
    std::sort(split.validation.begin(), split.validation.end());
    CHECK(d.split.train == split.train);
    CHECK(d.split.validation == split.validation);
    std::set<std::string> in_sets;
    for (const auto& s : sim.gene_sets) in_sets.insert(s.genes.begin(), s.genes.end());
    std::vector<Index> rows;
    Index after_filter = 0;
    for (Index g = 0; g < data.n_genes(); ++g) {
        if (data.values.row(g).maxCoeff() <= 2.0f) continue;
        ++after_filter;
        if (in_sets.count(sim.expression.genes[static_cast<std::size_t>(g)])) rows.push_back(g);
    }
    REQUIRE(d.train.n_genes() == static_cast<Index>(rows.size()));
    CHECK(d.report.genes_input == data.n_genes());
    CHECK(d.report.genes_removed_by_filter == data.n_genes() - after_filter);
    CHECK(d.report.genes_removed_by_gene_sets == after_filter - static_cast<Index>(rows.size()));
    CHECK(d.report.genes_kept == static_cast<Index>(rows.size()));
    CHECK(d.report.genes_removed_by_filter > 0);
    CHECK(d.report.genes_removed_by_gene_sets > 0);
    CHECK(d.report.cells_train == static_cast<Index>(split.train.size()));
    CHECK(d.report.cells_validation == static_cast<Index>(split.validation.size()));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(d.train.genes[i] == sim.expression.genes[static_cast<std::size_t>(rows[i])]); // upper case again
        for (std::size_t j = 0; j < split.train.size(); j += 37)
            CHECK(d.train.values(static_cast<Index>(i), static_cast<Index>(j)) == data.values(rows[i], split.train[j]));
        for (std::size_t j = 0; j < split.validation.size(); ++j)
            CHECK(d.validation.values(static_cast<Index>(i), static_cast<Index>(j)) == data.values(rows[i], split.validation[j]));
    }
    CHECK(d.train.groups[0] == data.groups[static_cast<std::size_t>(split.train[0])]);
    CHECK(d.preprocessor.genes() == d.train.genes);
    CHECK(d.preprocessor.gene_sets() == "simulated");
    CHECK(d.preprocessor.filter_threshold() == 2.0);
    CHECK(d.train_input == d.preprocessor.transform(d.train.values));
    CHECK(d.validation_input == d.preprocessor.transform(d.validation.values));
    CHECK(d.train_input != d.train.values); // targets stay raw

    // Without a collection, step 4 is skipped.
    const PreparedData no_sets = prepare(data, opt);
    CHECK(no_sets.report.genes_removed_by_gene_sets == 0);
    CHECK(no_sets.report.genes_kept == after_filter);
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("simulator: deterministic from the seed, independent of the thread count") {
    const SimulationOptions o = small_simulation(5);
    const int threads_before = threads();
    set_threads(1);
    const SimulatedData a = simulate_haematopoiesis(o);
    set_threads(2);
    const SimulatedData b = simulate_haematopoiesis(o);
    set_threads(threads_before);
    CHECK(a.expression.values == b.expression.values);
    CHECK(a.expression.genes == b.expression.genes);
    CHECK(a.expression.groups == b.expression.groups);
    CHECK(a.truth.activity == b.truth.activity);
    REQUIRE(a.gene_sets.size() == b.gene_sets.size());
    for (std::size_t i = 0; i < a.gene_sets.size(); ++i) CHECK(a.gene_sets[i].genes == b.gene_sets[i].genes);
    const SimulatedData c = simulate_haematopoiesis(small_simulation(6));
    CHECK(c.expression.values != a.expression.values);
    CHECK(c.truth.activity != a.truth.activity);
}

TEST_CASE("simulator: default size, labels, symbols, sparsity, truth") {
    const SimulationOptions o; // defaults: 2000 cells x 3000 genes
    const SimulatedData d = simulate_haematopoiesis(o);
    const ExpressionMatrix& e = d.expression;
    CHECK_NOTHROW(e.check_consistent("test"));
    CHECK(e.n_cells() == 2000);
    CHECK(e.n_genes() == 3000);
    const Index K = static_cast<Index>(o.programmes.size());
    CHECK(d.truth.activity.rows() == K);
    CHECK(d.truth.activity.cols() == 2000);
    CHECK((d.truth.activity.array() >= 0.0f).all());

    // Population labels: the six names, counts as the weights say (largest remainder).
    std::map<std::string, Index> count;
    for (const auto& g : e.groups) ++count[g];
    const std::vector<std::string> names{"HSC", "MPP", "CMP", "MLP", "MEP", "GMP"};
    CHECK(count.size() == 6);
    for (std::size_t p = 0; p < 6; ++p) CHECK(count[names[p]] == std::llround(o.population_weights[p] * 2000));
    CHECK(e.groups == d.truth.populations);
    const std::map<std::string, int> depth{{"HSC", 0}, {"MPP", 1}, {"CMP", 2}, {"MLP", 2}, {"MEP", 3}, {"GMP", 3}};
    for (Index c = 0; c < e.n_cells(); ++c) {
        CHECK(d.truth.pseudotime(c) >= 0.0f);
        CHECK(d.truth.pseudotime(c) < 1.0f);
        CHECK(d.truth.tree_time(c) == doctest::Approx(depth.at(e.groups[static_cast<std::size_t>(c)]) + d.truth.pseudotime(c)));
    }

    // Symbols: unique, upper case, readable.
    std::set<std::string> unique(e.genes.begin(), e.genes.end());
    CHECK(unique.size() == e.genes.size());
    for (const auto& g : e.genes) CHECK(g == detail::upper_cased_ascii(g));
    CHECK(unique.count("ERY_001"));
    CHECK(unique.count("BG_0001"));

    // Counts: non-negative integers, 40-90 % zeros.
    CHECK((e.values.array() >= 0.0f).all());
    CHECK((e.values.array() == e.values.array().round()).all());
    const double zeros = (e.values.array() == 0.0f).cast<double>().mean();
    MESSAGE("simulated zero fraction " << zeros);
    CHECK(zeros > 0.4);
    CHECK(zeros < 0.9);

    // Programme genes: disjoint, sizes in range, loadings only on their programme.
    std::set<Index> seen;
    for (Index k = 0; k < K; ++k) {
        const auto& rows = d.truth.programme_genes[static_cast<std::size_t>(k)];
        CHECK(static_cast<Index>(rows.size()) >= o.min_programme_genes);
        CHECK(static_cast<Index>(rows.size()) <= o.max_programme_genes);
        for (Index r : rows) {
            CHECK(seen.insert(r).second);
            CHECK(d.truth.loadings(r, k) > 0.0f);
        }
    }
    CHECK(static_cast<Index>((d.truth.loadings.array() > 0.0f).count()) == static_cast<Index>(seen.size()));
}

TEST_CASE("simulator: planted genes follow the true activity; lineage trends as designed") {
    const SimulatedData d = simulate_haematopoiesis(small_simulation(17));
    const ExpressionMatrix& e = d.expression;
    const Index K = static_cast<Index>(d.truth.programmes.size());
    const Eigen::VectorXd lib = d.truth.library_size.cast<double>();
    std::set<Index> programme_rows;
    for (const auto& rows : d.truth.programme_genes) programme_rows.insert(rows.begin(), rows.end());
    for (Index k = 0; k < K; ++k) {
        CAPTURE(d.truth.programmes[static_cast<std::size_t>(k)]);
        const Eigen::VectorXd a = d.truth.activity.row(k).cast<double>().transpose();
        Eigen::VectorXd sum = Eigen::VectorXd::Zero(e.n_cells());
        double mean_gene_r = 0.0;
        for (Index r : d.truth.programme_genes[static_cast<std::size_t>(k)]) {
            const Eigen::VectorXd x = e.values.row(r).cast<double>().transpose().cwiseQuotient(lib);
            sum += x;
            mean_gene_r += pearson(x, a);
        }
        mean_gene_r /= static_cast<double>(d.truth.programme_genes[static_cast<std::size_t>(k)].size());
        CHECK(pearson(sum, a) > 0.8); // the programme's summed expression tracks its activity
        CHECK(mean_gene_r > 0.2);
        // Background genes do not follow it.
        double bg_r = 0.0;
        Index n_bg = 0;
        for (Index g = 0; g < e.n_genes() && n_bg < 200; ++g) {
            if (programme_rows.count(g) || e.values.row(g).isZero()) continue;
            bg_r += std::abs(pearson(e.values.row(g).cast<double>().transpose().cwiseQuotient(lib), a));
            ++n_bg;
        }
        CHECK(bg_r / static_cast<double>(n_bg) < 0.1);
    }
    // Mean activity per population.
    const auto mean_in = [&](const std::string& programme, const std::string& population) {
        const auto k = std::find(d.truth.programmes.begin(), d.truth.programmes.end(), programme) - d.truth.programmes.begin();
        double s = 0.0;
        Index n = 0;
        for (Index c = 0; c < e.n_cells(); ++c)
            if (d.truth.populations[static_cast<std::size_t>(c)] == population) {
                s += d.truth.activity(k, c);
                ++n;
            }
        return s / static_cast<double>(n);
    };
    CHECK(mean_in("ERYTHROID", "MEP") > mean_in("ERYTHROID", "CMP"));
    CHECK(mean_in("ERYTHROID", "CMP") > mean_in("ERYTHROID", "HSC"));
    CHECK(mean_in("MYELOID", "GMP") > mean_in("MYELOID", "MEP"));
    CHECK(mean_in("LYMPHOID", "MLP") > mean_in("LYMPHOID", "CMP"));
    CHECK(mean_in("STEMNESS", "HSC") > mean_in("STEMNESS", "MPP"));
    CHECK(mean_in("STEMNESS", "MPP") > mean_in("STEMNESS", "CMP"));
    CHECK(mean_in("STEMNESS", "CMP") > mean_in("STEMNESS", "MEP"));
    CHECK(mean_in("CELL_CYCLE", "CMP") > mean_in("CELL_CYCLE", "HSC"));
    // Within MEP, erythroid activity rises with pseudotime.
    Eigen::VectorXd t(0), a(0);
    for (Index c = 0; c < e.n_cells(); ++c)
        if (d.truth.populations[static_cast<std::size_t>(c)] == "MEP") {
            t.conservativeResize(t.size() + 1);
            a.conservativeResize(a.size() + 1);
            t(t.size() - 1) = d.truth.pseudotime(c);
            a(a.size() - 1) = d.truth.activity(0, c); // ERYTHROID is programme 0 by default
        }
    CHECK(pearson(t, a) > 0.5);
}

TEST_CASE("simulator: planted sets are 70 % true genes, decoys are random and size-matched") {
    SimulationOptions o = small_simulation(23);
    const SimulatedData d = simulate_haematopoiesis(o);
    const auto K = d.truth.programmes.size();
    REQUIRE(d.gene_sets.size() == K * (1 + static_cast<std::size_t>(o.decoys_per_programme)));
    std::map<std::string, Index> row_of;
    for (std::size_t g = 0; g < d.expression.genes.size(); ++g) row_of[d.expression.genes[g]] = static_cast<Index>(g);
    double decoy_true_share = 0.0;
    std::set<std::vector<std::string>> distinct;
    for (const auto& s : d.gene_sets) distinct.insert(s.genes);
    CHECK(distinct.size() == d.gene_sets.size()); // no two sets alike
    for (std::size_t k = 0; k < K; ++k) {
        const GeneSet& s = d.gene_sets[k];
        const auto& truth = d.truth.programme_genes[k];
        CHECK(s.name == "SIM_" + d.truth.programmes[k]);
        CHECK(s.description == "planted");
        CHECK(s.genes.size() == truth.size());
        CHECK(std::set<std::string>(s.genes.begin(), s.genes.end()).size() == s.genes.size());
        Index n_true = 0;
        for (const auto& g : s.genes) {
            REQUIRE(row_of.count(g));
            n_true += std::binary_search(truth.begin(), truth.end(), row_of[g]);
        }
        CHECK(n_true == std::llround(0.7 * static_cast<double>(truth.size())));
        for (Index j = 0; j < o.decoys_per_programme; ++j) {
            const GeneSet& decoy = d.gene_sets[K + k * static_cast<std::size_t>(o.decoys_per_programme) + static_cast<std::size_t>(j)];
            CHECK(decoy.description == "decoy");
            CHECK(decoy.genes.size() == s.genes.size());
            CHECK(std::set<std::string>(decoy.genes.begin(), decoy.genes.end()).size() == decoy.genes.size());
            Index in_truth = 0;
            for (const auto& g : decoy.genes) {
                REQUIRE(row_of.count(g));
                in_truth += std::binary_search(truth.begin(), truth.end(), row_of[g]);
            }
            decoy_true_share += static_cast<double>(in_truth) / static_cast<double>(decoy.genes.size());
        }
    }
    // A decoy holds a programme's genes only by chance (about size / n_genes, here < 10 %).
    CHECK(decoy_true_share / static_cast<double>(K * static_cast<std::size_t>(o.decoys_per_programme)) < 0.2);

    o.set_true_fraction = 0.5;
    o.decoys_per_programme = 0;
    const SimulatedData half = simulate_haematopoiesis(o);
    CHECK(half.gene_sets.size() == K);
}

TEST_CASE("simulator: options are checked; programmes are configurable") {
    SimulationOptions o = small_simulation(3);
    o.n_genes = 100; // fewer than the programme genes
    CHECK(contains(error_of([&] { simulate_haematopoiesis(o); }), "simulate_haematopoiesis"));
    o = small_simulation(3);
    o.programmes = {"ERYTHROID", "ERYTHROID"};
    CHECK(contains(error_of([&] { simulate_haematopoiesis(o); }), "simulate_haematopoiesis"));
    o.programmes = {"ERYTHROID", "hypoxia"}; // an unknown name gets a random lineage profile
    o.count_model = CountModel::poisson;
    const SimulatedData d = simulate_haematopoiesis(o);
    CHECK(d.truth.activity.rows() == 2);
    CHECK(d.gene_sets[1].name == "SIM_hypoxia");
    CHECK(std::count_if(d.expression.genes.begin(), d.expression.genes.end(),
                        [](const std::string& g) { return g.rfind("HYPOXIA_", 0) == 0; }) ==
          static_cast<long>(d.truth.programme_genes[1].size()));
}

// ---------------------------------------------------------------------------------------------
namespace {
// The same cells as CSR by cell (zeros not stored).
SparseExpression sparse_copy(const ExpressionMatrix& m) {
    SparseExpression s;
    s.genes_count = m.n_genes();
    s.genes = m.genes;
    s.cells = m.cells;
    s.groups = m.groups;
    for (Index c = 0; c < m.n_cells(); ++c) {
        for (Index g = 0; g < m.n_genes(); ++g)
            if (m.values(g, c) != 0.0f) {
                s.indices.push_back(static_cast<std::int32_t>(g));
                s.values.push_back(m.values(g, c));
            }
        s.indptr.push_back(static_cast<std::int64_t>(s.indices.size()));
    }
    return s;
}
} // namespace

TEST_CASE("batches gathered from dense or sparse data equal the prepared matrices, and train bit for bit alike") {
    SimulationOptions so = small_simulation(43);
    const SimulatedData sim = simulate_haematopoiesis(so);
    const SparseExpression sparse = sparse_copy(sim.expression);
    REQUIRE(sparse.nnz() < sim.expression.values.size()); // zeros are really left out
    for (InputTransform t : {InputTransform::none, InputTransform::log1p, InputTransform::minmax, InputTransform::cpm_log1p})
        for (bool centre : {false, true}) {
            CAPTURE(input_transform_name(t));
            CAPTURE(centre);
            PreprocessOptions opt;
            opt.seed = 5;
            opt.transform = t;
            opt.centre = centre;
            const PreparedData d = prepare(sim.expression, sim.gene_sets, opt);
            const PreparedCells dense = prepare_cells(sim.expression, sim.gene_sets, opt);
            const PreparedCells sp = prepare_cells(sparse, sim.gene_sets, opt);
            // The same decisions and the same fitted state from either storage.
            CHECK(dense.genes == d.train.genes);
            CHECK(sp.rows == dense.rows);
            CHECK(sp.split.train == d.split.train);
            CHECK(sp.preprocessor.serialize() == d.preprocessor.serialize());
            CHECK(dense.preprocessor.serialize() == d.preprocessor.serialize());
            {
                // The fitted state (minima, maxima, centre) for any thread count, bit for bit.
                const int threads_before = threads();
                set_threads(1);
                const PreparedCells one = prepare_cells(sparse, sim.gene_sets, opt);
                set_threads(threads_before);
                CHECK(one.preprocessor.serialize() == sp.preprocessor.serialize());
            }
            // Against the training cells themselves: minmax's minima and maxima per gene, and the
            // centre as the mean of the transformed training cells (added in cell order, in double).
            if (t == InputTransform::minmax) {
                CHECK(sp.preprocessor.minimum() == d.train.values.rowwise().minCoeff());
                CHECK(sp.preprocessor.maximum() == d.train.values.rowwise().maxCoeff());
            }
            if (centre) {
                Preprocessor uncentred = sp.preprocessor;
                uncentred.set_centre(VectorF());
                VectorD sum = VectorD::Zero(d.train.n_genes());
                VectorF x(d.train.n_genes());
                for (Index c = 0; c < d.train.n_cells(); ++c) {
                    uncentred.transform_column(d.train.values.col(c).data(), x.data());
                    sum += x.cast<double>();
                }
                CHECK(sp.preprocessor.centre() == (sum / static_cast<double>(d.train.n_cells())).cast<float>());
            }
            CHECK(centre == (d.preprocessor.centre().size() > 0));

            // Any batch (here the training cells in reverse, in pieces) equals the prepared columns.
            const GatheredCells<SparseExpression> from_sparse(sparse, sp.rows, sp.split.train, sp.preprocessor);
            const GatheredCells<ExpressionMatrix> from_dense(sim.expression, dense.rows, dense.split.train, dense.preprocessor);
            REQUIRE(from_sparse.cells() == d.train.n_cells());
            REQUIRE(from_sparse.genes() == d.train.n_genes());
            std::vector<std::int64_t> order(static_cast<std::size_t>(from_sparse.cells()));
            std::iota(order.rbegin(), order.rend(), std::int64_t(0));
            MatrixF x(d.train.n_genes(), 50), t_(d.train.n_genes(), 50), x2(x), t2(t_);
            for (std::size_t first = 0; first < order.size(); first += 50) {
                const Index n = std::min<Index>(50, static_cast<Index>(order.size() - first));
                from_sparse.gather(order.data() + first, n, x, t_);
                from_dense.gather(order.data() + first, n, x2, t2);
                for (Index j = 0; j < n; ++j) {
                    const Index c = order[first + static_cast<std::size_t>(j)];
                    REQUIRE(x.col(j) == d.train_input.col(c));
                    REQUIRE(t_.col(j) == d.train.values.col(c));
                    REQUIRE(x2.col(j) == d.train_input.col(c));
                    REQUIRE(t2.col(j) == d.train.values.col(c));
                }
            }
            // A sparse batch (every batch sparse at density 1) holds exactly the cells' non-zero
            // genes, in order, with the prepared input minus the input of a zero count, for 1 and
            // 2 threads alike (batches of 128 cells x the model's genes take the parallel path).
            {
                VectorF offset = VectorF::Zero(d.train.n_genes());
                sp.preprocessor.transform_column(offset.data(), offset.data());
                GatheredCells<SparseExpression> batches(sparse, sp.rows, sp.split.train, sp.preprocessor);
                batches.set_sparse_density(1.0);
                const Index batch = 128;
                REQUIRE(batch * d.train.n_genes() >= (Index(1) << 15));
                MatrixF xs(d.train.n_genes(), batch), ts(d.train.n_genes(), batch);
                const int threads_before = threads();
                for (int nt : {1, 2}) {
                    CAPTURE(nt);
                    set_threads(nt);
                    SparseBatch<float> s;
                    for (std::size_t first = 0; first < order.size(); first += batch) {
                        const Index n = std::min<Index>(batch, static_cast<Index>(order.size() - first));
                        REQUIRE(batches.gather_batch(order.data() + first, n, xs, s, ts));
                        REQUIRE(s.cols() == n);
                        REQUIRE(s.offset == offset);
                        bool same = true;
                        for (Index j = 0; j < n; ++j) {
                            const Index c = order[first + static_cast<std::size_t>(j)];
                            same = same && ts.col(j) == d.train.values.col(c);
                            std::int64_t k = s.start[static_cast<std::size_t>(j)];
                            for (Index g = 0; g < d.train.n_genes(); ++g) {
                                if (d.train.values(g, c) == 0.0f) continue;
                                same = same && k < s.start[static_cast<std::size_t>(j) + 1] &&
                                       s.row[static_cast<std::size_t>(k)] == g &&
                                       s.value[static_cast<std::size_t>(k)] == d.train_input(g, c) - offset(g);
                                ++k;
                            }
                            same = same && k == s.start[static_cast<std::size_t>(j) + 1];
                        }
                        REQUIRE(same);
                        REQUIRE(s.stored() == s.start.back());
                    }
                }
                set_threads(threads_before);
            }
            if (t != InputTransform::log1p || !centre) continue;
            // Training on gathered batches is training on the matrices.
            AutoencoderConfig ac;
            ac.n_genes = d.train.n_genes();
            ac.hidden = {16, 8, 16};
            Autoencoder<float> a(ac), b(ac);
            a.initialize(3);
            b.initialize(3);
            TrainOptions to;
            to.max_epochs = 3;
            to.batch_size = 32;
            to.validate_every = 1;
            const TrainHistory ha = train<float>(a, d.train_input, d.train.values, d.validation_input, d.validation.values, to);
            GatheredCells<SparseExpression> dense_batches(sparse, sp.rows, sp.split.train, sp.preprocessor);
            dense_batches.set_sparse_density(0.0); // never the sparse first layer: the same arithmetic
            const GatheredCells<SparseExpression> validation(sparse, sp.rows, sp.split.validation, sp.preprocessor);
            const TrainHistory hb = train<float>(b, dense_batches, &validation, to);
            CHECK(a.parameters() == b.parameters());
            CHECK(ha.train_loss == hb.train_loss);
            CHECK(ha.validation_loss == hb.validation_loss);
            CHECK(hb.sparse_batches == 0);
            // Every batch through the sparse first layer: the same training up to float rounding,
            // and from dense storage the same batches as from sparse storage, bit for bit.
            GatheredCells<SparseExpression> sparse_batches(sparse, sp.rows, sp.split.train, sp.preprocessor);
            GatheredCells<ExpressionMatrix> sparse_from_dense(sim.expression, dense.rows, dense.split.train, dense.preprocessor);
            sparse_batches.set_sparse_density(1.0);
            sparse_from_dense.set_sparse_density(1.0);
            Autoencoder<float> c_(ac), d_(ac);
            c_.initialize(3);
            d_.initialize(3);
            const TrainHistory hc = train<float>(c_, sparse_batches, &validation, to);
            const TrainHistory hd = train<float>(d_, sparse_from_dense, &validation, to);
            CHECK(hc.sparse_batches == hc.batches);
            CHECK(hc.batches == 3 * ((d.train.n_cells() + 31) / 32));
            CHECK(c_.parameters() == d_.parameters());
            for (std::size_t e = 0; e < ha.train_loss.size(); ++e)
                CHECK(hc.train_loss[e] == doctest::Approx(ha.train_loss[e]).epsilon(1e-4));
            CHECK((c_.parameters() - a.parameters()).cwiseAbs().maxCoeff() < 1e-3f);
        }
}

TEST_CASE("prepare_cells names the cell and gene of a value log1p cannot take, from dense or sparse data") {
    SimulationOptions so = small_simulation(44);
    SimulatedData sim = simulate_haematopoiesis(so);
    PreprocessOptions opt;
    opt.transform = InputTransform::log1p;
    const PreparedCells ok = prepare_cells(sim.expression, sim.gene_sets, opt);
    const Index row = ok.rows[3];
    sim.expression.values(row, 17) = -1.5f;
    const std::string expected = "gene " + ok.genes[3] + " of cell " + sim.expression.cells[17] + " is -1.5";
    for (int sparse = 0; sparse < 2; ++sparse) {
        CAPTURE(sparse);
        std::string message;
        try {
            if (sparse)
                prepare_cells(sparse_copy(sim.expression), sim.gene_sets, opt);
            else
                prepare_cells(sim.expression, sim.gene_sets, opt);
        } catch (const ArgumentError& e) {
            message = e.what();
        }
        CHECK(contains(message, "log1p needs finite non-negative values"));
        CHECK(contains(message, expected));
    }
    opt.transform = InputTransform::minmax; // minmax takes negative values
    CHECK_NOTHROW(prepare_cells(sim.expression, sim.gene_sets, opt));
}
