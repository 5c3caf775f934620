#ifndef EXSAL_TESTS_INTERPRET_PARALLEL_CHECKS_HPP
#define EXSAL_TESTS_INTERPRET_PARALLEL_CHECKS_HPP

// Checks of data-parallel interpretation (InterpretOptions::processes) against interpret() in one
// process over all cells, run by every process of a ProcessGroup alike (collectively): by MPI
// ranks in tests/mpi/test_mpi.cpp and by threads standing in for processes in
// tests/test_data_parallel.cpp. Each process interprets all cells itself (small problem), then its
// share with the others.
//
// Tolerances. Every statistic is a sum over cells of per-cell values (the aggregate over a set's
// genes of a cell's |saliency|, the saliency itself). A cell's saliency is computed in float in a
// block of cells, and a process's blocks start at its first cell: a cell can sit at another
// position of another block than in one process, where the matrix kernels round it differently
// (measured: 2e-10 on impacts of 0.08). Float keeps 24 bits, so each per-cell value agrees to a
// few units of 2^-24 (6e-8) of its size and their sums and means to the same relative precision;
// the double sums' order adds less than that. 1e-6 of the largest value bounds it with a margin.
// The p-values of the exact null and the q-values follow from those means and agree as closely,
// unless a rounding difference reorders two equal statistics (none here); the direction of a set
// (the sign of a median) agrees exactly.

#include <doctest/doctest.h>

#include "data_parallel_checks.hpp"
#include "exsal/interpret/interpret.hpp"
#include "exsal/interpret/programmes.hpp"

#include <string>
#include <vector>

namespace exsal_test {

using namespace exsal;

struct InterpretProblem {
    MatrixF input;                   // genes x cells
    std::vector<std::string> genes;  // G0, G1, ...
    std::vector<std::string> labels; // A, B, C, and "" (no group) for every seventh cell
    GeneSetCollection sets;
    Autoencoder<float> model;
    InterpretOptions options;
};

inline InterpretProblem interpret_problem() {
    const Index G = 80, C = 301;
    AutoencoderConfig cfg;
    cfg.n_genes = G;
    cfg.hidden = {32, 8, 32};
    InterpretProblem p{parallel_test_data(G, C, 23), {}, {}, {}, Autoencoder<float>(cfg), {}};
    p.input = (p.input.array() + 1.0f).log().matrix(); // log1p, as the pipeline's input
    p.model.initialize(9);
    for (Index g = 0; g < G; ++g) p.genes.push_back("G" + std::to_string(g));
    for (Index c = 0; c < C; ++c) p.labels.push_back(c % 7 == 0 ? "" : std::string(1, static_cast<char>('A' + c % 3)));
    for (int s = 0; s < 6; ++s) { // sets of 10 to 20 genes, overlapping
        GeneSet set{"SET_" + std::to_string(s), "test", {}};
        for (Index g = 7 * s; g < 7 * s + 10 + 2 * s; ++g) set.genes.push_back(p.genes[static_cast<std::size_t>(g % G)]);
        p.sets.push_back(set);
    }
    p.options.compare_pairs = {{"A", "C"}};
    p.options.block_cells = 16;
    return p;
}

// Interprets `problem` on the cells `share` with the processes of `group`.
inline Interpretation interpret_share(const InterpretProblem& problem, ProcessGroup& group, CellRange share) {
    InterpretOptions o = problem.options;
    o.processes = &group;
    const std::vector<std::string> labels(problem.labels.begin() + share.first,
                                          problem.labels.begin() + share.first + share.count);
    return interpret<float>(problem.model, problem.input.middleCols(share.first, share.count), problem.genes, labels,
                            problem.sets, o);
}

inline void check_close(const MatrixD& a, const MatrixD& b, double relative, const char* what) {
    INFO(std::string(what));
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (a.size() == 0) return;
    CHECK(a.array().isNaN().matrix() == b.array().isNaN().matrix());
    const double scale = std::max(1e-300, a.array().isNaN().select(0.0, a.array().abs()).maxCoeff());
    const double diff = (a.array().isNaN()).select(0.0, (a - b).array().abs()).maxCoeff();
    CHECK(diff <= relative * scale);
}

inline std::vector<double> flat(const Interpretation& in) {
    std::vector<double> v;
    for (const MatrixD* m : {&in.impact, &in.z_score, &in.p_value, &in.q_value, &in.set_score, &in.set_direction})
        v.insert(v.end(), m->data(), m->data() + m->size());
    for (const auto& m : in.impact_in_group) v.insert(v.end(), m.data(), m.data() + m.size());
    v.insert(v.end(), in.gene_saliency.data(), in.gene_saliency.data() + in.gene_saliency.size());
    return v;
}

// The interpretation of the processes' shares equals the one-process interpretation of all cells
// (to rounding), the same bits on every process.
inline void check_interpretation(ProcessGroup& group, CellRange share) {
    const InterpretProblem problem = interpret_problem();
    const Interpretation one = interpret<float>(problem.model, problem.input, problem.genes, problem.labels, problem.sets,
                                                problem.options);
    const Interpretation many = interpret_share(problem, group, share);
    CHECK(many.cells == one.cells);
    CHECK(many.groups == one.groups);
    CHECK(many.group_sizes == one.group_sizes);
    CHECK(many.set_names == one.set_names);
    CHECK(many.genes_found == one.genes_found);
    check_close(many.impact, one.impact, 1e-6, "impact");
    check_close(many.set_score, one.set_score, 1e-6, "set score");
    check_close(many.z_score, one.z_score, 1e-6, "z");
    check_close(many.p_value, one.p_value, 1e-6, "p");
    check_close(many.q_value, one.q_value, 1e-6, "q");
    CHECK(many.set_direction == one.set_direction);
    check_close(many.gene_saliency.cast<double>(), one.gene_saliency.cast<double>(), 1e-6, "gene saliency (float)");
    REQUIRE(many.impact_in_group.size() == one.impact_in_group.size());
    for (std::size_t g = 0; g < one.impact_in_group.size(); ++g) {
        check_close(many.impact_in_group[g], one.impact_in_group[g], 1e-6, "impact in group");
        check_close(many.impact_in_rest[g], one.impact_in_rest[g], 1e-6, "impact in rest");
    }
    REQUIRE(many.pairs.size() == 1);
    check_close(many.pairs[0].impact_a, one.pairs[0].impact_a, 1e-6, "pair A");
    check_close(many.pairs[0].impact_b, one.pairs[0].impact_b, 1e-6, "pair B");
    CHECK(same_on_every_process(group, flat(many)));
}

inline void check_interpretation(ProcessGroup& group) {
    check_interpretation(group, even_share(interpret_problem().input.cols(), group.rank(), group.size()));
}

// The last process holds no cells; with three processes or more the first holds a single one.
inline void check_interpretation_uneven(ProcessGroup& group) {
    const Index C = interpret_problem().input.cols();
    const int last = group.size() - 1, offset = group.size() >= 3 ? 1 : 0;
    CellRange share{C, 0};
    if (group.rank() < last && group.rank() < offset) {
        share = {0, 1};
    } else if (group.rank() < last) {
        share = even_share(C - offset, group.rank() - offset, last - offset);
        share.first += offset;
    }
    check_interpretation(group, share);
}

inline void check_close_vector(const VectorD& a, const VectorD& b, double relative, const char* what) {
    check_close(MatrixD(a), MatrixD(b), relative, what);
}

// Group programmes of the processes' shares equal those of one process over all cells: the same
// labellings, T, z, p and q to float rounding (T sums float products over blocks of cells: 1e-5
// of the largest), the same directions and ranks; each process's cell scores are its rows of the
// one-process scores.
inline void check_programmes(ProcessGroup& group, CellRange share) {
    const InterpretProblem problem = interpret_problem();
    const MatrixF representation = problem.model.encode(problem.input);
    const UnitActivity activity = unit_activity(representation);
    const UsableGeneSets usable = usable_gene_sets(problem.sets, problem.genes, 5);
    ProgrammeOptions o;
    o.permutations = 99;
    o.block_cells = 16;
    o.compare_pairs = problem.options.compare_pairs;
    const ProgrammeAnalysis one =
        group_programmes<float>(problem.model, problem.input, representation, usable.rows, problem.labels, activity, o);
    o.processes = &group;
    o.first_cell = share.first;
    const ProgrammeAnalysis many = group_programmes<float>(problem.model, problem.input.middleCols(share.first, share.count),
                                                           representation, usable.rows, problem.labels, activity, o);
    REQUIRE(many.comparisons.size() == one.comparisons.size());
    REQUIRE(one.comparisons.size() == 4); // A, B, C against the rest, A against C
    std::vector<double> mine;
    for (std::size_t k = 0; k < one.comparisons.size(); ++k) {
        const GroupProgrammes &m = many.comparisons[k], &x = one.comparisons[k];
        INFO(x.group);
        CHECK(m.group == x.group);
        CHECK(m.cells_in == x.cells_in);
        CHECK(m.cells_out == x.cells_out);
        check_close_vector(m.score, x.score, 1e-5, "T");
        check_close_vector(m.z_score, x.z_score, 1e-5, "z");
        check_close_vector(m.p_value, x.p_value, 1e-12, "p");
        check_close_vector(m.q_value, x.q_value, 1e-12, "q");
        check_close_vector(m.competitive_z, x.competitive_z, 1e-5, "competitive z");
        check_close_vector(m.input_difference, x.input_difference, 1e-9, "input difference");
        CHECK(m.direction == x.direction);
        CHECK(m.rank == x.rank);
        CHECK(m.units == x.units);
        mine.insert(mine.end(), m.score.data(), m.score.data() + m.score.size());
        mine.insert(mine.end(), m.p_value.data(), m.p_value.data() + m.p_value.size());
    }
    REQUIRE(many.cell_scores.rows() == share.count);
    const MatrixF expected = one.cell_scores.middleRows(share.first, share.count);
    check_close(MatrixD(many.cell_scores.cast<double>()), MatrixD(expected.cast<double>()), 1e-5, "cell scores");
    CHECK(same_on_every_process(group, mine));
}

inline void check_programmes(ProcessGroup& group) {
    check_programmes(group, even_share(interpret_problem().input.cols(), group.rank(), group.size()));
}

// Errors on one process end interpret() on every process: its own error there, a note that
// another process failed elsewhere; mismatches between the processes are named on all of them.
inline void check_interpretation_failures(ProcessGroup& group) {
    InterpretProblem problem = interpret_problem();
    const CellRange share = even_share(problem.input.cols(), group.rank(), group.size());
    const int last = group.size() - 1;
    // One process passes one group label too few.
    {
        InterpretOptions o = problem.options;
        o.processes = &group;
        std::vector<std::string> labels(problem.labels.begin() + share.first, problem.labels.begin() + share.first + share.count);
        if (group.rank() == last) labels.pop_back();
        try {
            interpret<float>(problem.model, problem.input.middleCols(share.first, share.count), problem.genes, labels,
                             problem.sets, o);
            FAIL("interpret must throw on every process");
        } catch (const ArgumentError& e) {
            CHECK(group.rank() == last);
            CHECK(std::string(e.what()).find("group labels for") != std::string::npos);
        } catch (const Error& e) {
            CHECK(group.rank() != last);
            CHECK(std::string(e.what()).find("1 of " + std::to_string(group.size()) + " processes failed") != std::string::npos);
        }
    }
    // One process has another gene name: every process says which.
    {
        InterpretProblem other = interpret_problem();
        if (group.rank() == last) other.genes[3] = "OTHER";
        try {
            interpret_share(other, group, share);
            FAIL("interpret must throw on every process");
        } catch (const ArgumentError& e) {
            CHECK(std::string(e.what()).find("process " + std::to_string(last) + " has other genes or another model") !=
                  std::string::npos);
        }
    }
    // A NaN in one process's cells: every process refuses the input.
    {
        InterpretProblem bad = interpret_problem();
        bad.input(5, share.first + share.count - 1) = std::numeric_limits<float>::quiet_NaN();
        const bool mine = group.rank() == last;
        if (!mine) bad.input(5, share.first + share.count - 1) = problem.input(5, share.first + share.count - 1);
        CHECK_THROWS_WITH_AS(interpret_share(bad, group, share), doctest::Contains("non-finite"), ArgumentError);
    }
    // A pair naming a group that no process's cells have.
    {
        InterpretProblem none = interpret_problem();
        none.options.compare_pairs = {{"A", "Z"}};
        CHECK_THROWS_WITH_AS(interpret_share(none, group, share), doctest::Contains("no cell has the group label 'Z'"),
                             ArgumentError);
    }
}

} // namespace exsal_test

#endif // EXSAL_TESTS_INTERPRET_PARALLEL_CHECKS_HPP
