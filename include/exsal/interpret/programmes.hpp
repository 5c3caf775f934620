#ifndef EXSAL_INTERPRET_PROGRAMMES_HPP
#define EXSAL_INTERPRET_PROGRAMMES_HPP

// Which units are active, and which gene sets tell a group of cells apart according to the model.
//
// Active units. A unit whose activation hardly varies over the cells explains nothing: its
// saliency still has gene sets that stand out, and tiny activation differences still give it
// large effect sizes. With sd_u the standard deviation of unit u over the interpreted cells,
//   floor = relative_floor x max over units of sd_v,   active(u) = sd_u > floor
// (relative_floor 0.01 by default). fraction_on(u) is the share of cells whose activation
// exceeds the unit's minimum by more than the floor.
//
// Group programmes. For a comparison of the cells "in" (a group) with the cells "out" (all other
// cells, or one other group), with x_c the network input of cell c, xbar the mean input over the
// interpreted cells and J_c(u, g) = d r_u / d x_g at x_c (the plain gradient):
//   B(c, u, S) = 1/|S| sum over g in S of J_c(u, g) (x_cg - xbar_g)
// is the first-order share of set S's genes in r_u(x_c) - r_u(xbar): gradient times input
// relative to the mean cell (Shrikumar et al. 2017; Sundararajan et al. 2017 use the same
// reference in integrated gradients). It depends on what the cell expresses, not only on the
// weights, and keeps the sign. Then
//   w_u     = Cohen's d of r_u between in and out for active units, 0 for inactive ones
//   D(u, S) = mean over in of B(., u, S) - mean over out of B(., u, S)
//   T(S)    = sum over u of w_u D(u, S)
// T(S) > 0 says the genes of S move the group's cells along the direction in which the
// representation separates the group. The direction "higher"/"lower" is the sign of the
// difference of the group's and the other cells' mean input over S's genes.
// Null: the labels are permuted among the comparison's cells (the group sizes stay), and w, D and
// T are recomputed for each permutation. This keeps the gene-gene correlation that a null of
// random gene sets breaks, and it is exact under exchangeable labels:
//   p(S) = (1 + #{permutations with T_perm(S) >= T(S)}) / (permutations + 1)     (one-sided)
//   z(S) = (T(S) - mean T_perm(S)) / sd T_perm(S)
// The score of a set is T(S) itself: ranking by z favours sets whose null happens to be narrow
// (on HSMM it put APICAL_SURFACE first for 0h in every seed, where T puts E2F_TARGETS and
// G2M_CHECKPOINT first and MYOGENESIS among the first three for 72h).
// q-values: Benjamini-Hochberg over the sets of one comparison (the family is one comparison).
// The label permutation asks whether a set has anything to do with the group; with a strong group
// difference most sets do, random ones included. Whether a set stands out from random gene sets
// of its size is a second, competitive question: T(S) is the mean over S's genes of the per-gene
//   t_g = sum over u of w_u (mean over in - mean over out of J_c(u, g) (x_cg - xbar_g)),
// so under random sets of k of the model's G genes it has mean m = mean_g t_g and variance
// (sigma^2 / k) (G - k) / (G - 1) (sigma^2 = variance of t over the genes, sampling without
// replacement); competitive_z = (T - m) / sd, competitive_p = 1 - Phi(competitive_z) (normal
// approximation; it ignores gene-gene correlation, so it is a filter, not a calibrated test) and
// competitive_q its Benjamini-Hochberg value over the comparison's sets. A set "stands out" when
// competitive_q <= 0.05.
// rank: the sets that stand out, within each direction by decreasing T (ties: smaller p, then
// collection order), so rank 1 "higher" is the strongest set higher in the group; 0 (no rank) for
// the others. On the simulated data this keeps the random decoy sets (competitive z 0 to 2, where
// the planted sets reach 20) out of every group's first ranks. The units that carry S are the
// units with the largest positive w_u D(u, S).
//
// Cells without a group (label "") are in no comparison; "the rest" of a group is the other
// grouped cells.
//
// Cost: B once, U x (genes in all sets) multiply-adds per cell on top of the gradients (one
// backward pass per cell and unit, as the saliency), and per comparison U S n_in (permutations + 1)
// additions (n_in: its in cells), in the same pass. Memory: no per-cell attributions;
// the labellings as bits, n (permutations + 1) / 8 bytes per comparison (see group_programmes).

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/saliency.hpp"
#include "exsal/interpret/statistics.hpp"
#include "exsal/nn/autoencoder.hpp"

#include <Eigen/SparseCore>

#include <algorithm>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace exsal {

// Per-unit activation statistics over the interpreted cells, and the active/inactive call.
struct UnitActivity {
    VectorD mean, sd, min, max;   // per unit, over the cells
    VectorD fraction_on;          // per unit: share of cells with activation > min + floor
    std::vector<bool> active;     // per unit
    double relative_floor = 0.01; // the rule's setting
    double floor = 0.0;           // relative_floor x the largest sd
    Index n_active() const { return static_cast<Index>(std::count(active.begin(), active.end(), true)); }
};

// Activity of every unit of a units x cells representation (see the top of this header).
// Throws ArgumentError when there are no cells, the representation is not finite, or
// relative_floor is outside [0, 1).
inline UnitActivity unit_activity(const MatrixF& representation, double relative_floor = 0.01) {
    const char* where = "exsal::unit_activity";
    if (representation.cols() < 1) throw ArgumentError(where, "no cells");
    if (!representation.allFinite()) throw ArgumentError(where, "the representation contains a non-finite value");
    if (!(relative_floor >= 0.0 && relative_floor < 1.0))
        throw ArgumentError(where, "relative_floor must be in [0, 1), got " + std::to_string(relative_floor));
    const Index U = representation.rows(), C = representation.cols();
    UnitActivity a;
    a.relative_floor = relative_floor;
    a.mean.resize(U);
    a.sd.resize(U);
    a.min.resize(U);
    a.max.resize(U);
    a.fraction_on.resize(U);
    for (Index u = 0; u < U; ++u) {
        const Eigen::ArrayXd r = representation.row(u).cast<double>().transpose().array();
        a.mean(u) = r.mean();
        a.sd(u) = C > 1 ? std::sqrt((r - a.mean(u)).square().sum() / static_cast<double>(C - 1)) : 0.0;
        a.min(u) = r.minCoeff();
        a.max(u) = r.maxCoeff();
    }
    a.floor = U > 0 ? relative_floor * a.sd.maxCoeff() : 0.0;
    a.active.resize(static_cast<std::size_t>(U));
    for (Index u = 0; u < U; ++u) {
        a.active[static_cast<std::size_t>(u)] = a.sd(u) > a.floor;
        const Eigen::ArrayXd r = representation.row(u).cast<double>().transpose().array();
        a.fraction_on(u) = static_cast<double>((r > a.min(u) + a.floor).count()) / static_cast<double>(C);
    }
    return a;
}

struct ProgrammeOptions {
    Index permutations = 1000;  // label permutations per comparison
    std::uint64_t seed = 1;     // seeds the permutations (comparison k draws from derive_seed(seed, k + 1))
    Index block_cells = 64;     // cells per gradient block
    Index top_units = 3;        // units listed as carrying a set
    std::vector<std::pair<std::string, std::string>> compare_pairs; // A:B comparisons after the group-vs-rest ones
    std::function<void(Index done, Index total)> on_progress;        // optional: cells of the gradient pass
    // Data-parallel: `input` holds this process's cells only, cells first_cell .. first_cell +
    // input.cells() - 1 of all cells in order, while the representation and the group labels are
    // those of all cells, the same on every process (they are small: units and one label per
    // cell). Every process draws the same labellings, passes over its own cells, and the pass's
    // sums are added across the processes (one sum), so every process gets the programmes of all
    // cells; cell_scores holds this process's cells. Null: one process.
    ProcessGroup* processes = nullptr;
    Index first_cell = 0;
};

enum class ProgrammeDirection { higher, lower };

inline const char* to_string(ProgrammeDirection d) { return d == ProgrammeDirection::higher ? "higher" : "lower"; }

// One comparison: a group against the rest, or group_a against group_b.
struct GroupProgrammes {
    std::string group;           // the group label, or "A_vs_B"
    std::string group_a, group_b; // group_b empty: the rest
    Index cells_in = 0, cells_out = 0;
    VectorD score;               // per set: T(S)
    VectorD z_score;             // per set: (T - mean T_perm) / sd T_perm
    VectorD p_value, q_value;    // per set
    VectorD input_difference;    // per set: mean input over S's genes, in minus out
    VectorD competitive_z, competitive_p, competitive_q; // per set: T against random sets of the same size
    std::vector<ProgrammeDirection> direction; // per set
    std::vector<Index> rank;     // per set: 1 = first within its direction, 0 = does not stand out
    std::vector<std::vector<Index>> units; // per set: the units carrying it, strongest first
};

struct ProgrammeAnalysis {
    std::vector<GroupProgrammes> comparisons; // the groups (sorted labels) against the rest, then the pairs
    Index permutations = 0;
    MatrixF cell_scores; // cells x sets: each cell's score under its own group's weights (see group_programmes)
};

namespace detail {

// Set membership as a sets x genes sparse matrix with entries 1/|S| (a mean over S's genes).
template <typename Scalar>
Eigen::SparseMatrix<Scalar, Eigen::RowMajor> set_mean_operator(const std::vector<std::vector<Index>>& set_rows, Index genes) {
    std::vector<Eigen::Triplet<Scalar>> entries;
    for (std::size_t s = 0; s < set_rows.size(); ++s)
        for (Index g : set_rows[s])
            entries.emplace_back(static_cast<Index>(s), g, Scalar(1) / static_cast<Scalar>(set_rows[s].size()));
    Eigen::SparseMatrix<Scalar, Eigen::RowMajor> m(static_cast<Index>(set_rows.size()), genes);
    m.setFromTriplets(entries.begin(), entries.end());
    return m;
}

// Cohen's d of each active unit between the cells labelled in and the others of a comparison,
// from the in-sums of r and r^2 and the comparison's totals (0 for inactive units, and when the
// pooled standard deviation is 0).
inline void unit_weights(const Eigen::Ref<const VectorD>& sum_h, const Eigen::Ref<const VectorD>& sum_h2, const VectorD& total_h,
                         const VectorD& total_h2, double n_in, double n_out, const std::vector<bool>& active,
                         Eigen::Ref<VectorD> w) {
    const double n = n_in + n_out;
    for (Index u = 0; u < w.size(); ++u) {
        w(u) = 0.0;
        if (!active[static_cast<std::size_t>(u)]) continue;
        const double m_i = sum_h(u) / n_in, m_o = (total_h(u) - sum_h(u)) / n_out;
        const double ss = std::max(0.0, sum_h2(u) - n_in * m_i * m_i) + std::max(0.0, total_h2(u) - sum_h2(u) - n_out * m_o * m_o);
        const double pooled = n > 2.0 ? std::sqrt(ss / (n - 2.0)) : 0.0;
        w(u) = pooled > 0.0 ? (m_i - m_o) / pooled : 0.0;
    }
}

// One comparison of group_programmes: group `group` against the other grouped cells, or the
// pair `pair`; its permutations draw from derive_seed(seed, stream).
struct Comparison {
    std::size_t group = 0;
    const std::pair<std::string, std::string>* pair = nullptr;
    std::uint64_t stream = 0;
};

// The groups against the rest (a group holding every grouped cell has nothing to compare with),
// then the pairs; streams 1, 2, ... in that order, skipped groups included.
inline std::vector<Comparison> list_comparisons(const GroupLabels& labels,
                                                const std::vector<std::pair<std::string, std::string>>& pairs) {
    const Index grouped = std::accumulate(labels.sizes.begin(), labels.sizes.end(), Index(0));
    std::vector<Comparison> jobs;
    std::uint64_t k = 0;
    for (std::size_t g = 0; g < labels.names.size(); ++g) {
        ++k;
        if (labels.sizes[g] != grouped) jobs.push_back({g, nullptr, k});
    }
    for (const auto& p : pairs) jobs.push_back({0, &p, ++k});
    return jobs;
}

// One comparison, prepared before the gradient pass: its cells, the observed labelling
// (labelling 0) and the permuted ones (1 .. permutations; Fisher-Yates from Rng(seed), each
// shuffling the previous one) as one bit per cell and labelling, and the unit weights w of every
// labelling, which depend on the representation only.
struct ComparisonPlan {
    std::size_t group_a = 0, group_b = 0; // group indices (group_b: pairs only)
    bool pair = false;
    std::vector<Index> position;          // per interpreted cell: its index among the comparison's cells, -1: not in it
    Index cells_in = 0, cells_out = 0;
    Index labellings = 0;                 // permutations + 1
    Index words = 0;                      // 64-bit words of `bits` per cell
    std::vector<std::uint64_t> bits;      // cell i, labelling l: bit l % 64 of bits[i words + l / 64]
    MatrixD weights;                      // U x labellings: w of each labelling
    MatrixF weights_f;                    // the same in float, for the pass's products

    bool in(Index i, Index l) const {
        return (bits[static_cast<std::size_t>(i * words + l / 64)] >> (l % 64)) & std::uint64_t(1);
    }
};

inline ComparisonPlan plan_comparison(const Comparison& job, const GroupLabels& labels, const MatrixD& rep,
                                      const std::vector<bool>& active, Index permutations, std::uint64_t seed) {
    const Index C = rep.cols(), U = rep.rows();
    ComparisonPlan p;
    p.pair = job.pair != nullptr;
    const auto index = [&](const std::string& name) {
        return static_cast<std::size_t>(std::lower_bound(labels.names.begin(), labels.names.end(), name) - labels.names.begin());
    };
    p.group_a = p.pair ? index(job.pair->first) : job.group;
    p.group_b = p.pair ? index(job.pair->second) : 0;
    p.position.assign(static_cast<std::size_t>(C), -1);
    std::vector<Index> cells;
    std::vector<char> in;
    for (Index c = 0; c < C; ++c) {
        const Index g = labels.of_cell[static_cast<std::size_t>(c)];
        if (g < 0) continue; // no group: in no comparison
        const bool a = static_cast<std::size_t>(g) == p.group_a;
        if (p.pair && !a && static_cast<std::size_t>(g) != p.group_b) continue;
        p.position[static_cast<std::size_t>(c)] = static_cast<Index>(cells.size());
        cells.push_back(c);
        in.push_back(a);
    }
    const Index n = static_cast<Index>(cells.size());
    p.cells_in = static_cast<Index>(std::count(in.begin(), in.end(), 1));
    p.cells_out = n - p.cells_in;
    p.labellings = permutations + 1;
    p.words = (p.labellings + 63) / 64;
    p.bits.assign(static_cast<std::size_t>(n * p.words), 0);
    MatrixD h(U, n);
    for (Index i = 0; i < n; ++i) h.col(i) = rep.col(cells[static_cast<std::size_t>(i)]);
    const MatrixD h2 = h.array().square().matrix();
    const VectorD total_h = h.rowwise().sum(), total_h2 = h2.rowwise().sum();
    p.weights.resize(U, p.labellings);
    Rng rng(seed);
    std::vector<char> labels_now(in);
    // 64 labellings at a time: one word per cell (bit j: labelling l0 + j), built while the
    // labellings are drawn (a cell's word stays in cache, where its word of `bits` would not), then
    // the in-sums of r and r^2 of each labelling, the cells added in order from zero.
    std::vector<std::uint64_t> word(static_cast<std::size_t>(n));
    MatrixD sum_h(U, 64), sum_h2(U, 64);
    for (Index l0 = 0; l0 < p.labellings; l0 += 64) {
        const Index L = std::min<Index>(64, p.labellings - l0);
        std::fill(word.begin(), word.end(), std::uint64_t(0));
        for (Index j = 0; j < L; ++j) {
            if (l0 + j > 0)
                for (Index i = n - 1; i > 0; --i)
                    std::swap(labels_now[static_cast<std::size_t>(i)],
                              labels_now[static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i + 1)))]);
            for (Index i = 0; i < n; ++i)
                word[static_cast<std::size_t>(i)] |= static_cast<std::uint64_t>(labels_now[static_cast<std::size_t>(i)] != 0) << j;
        }
        sum_h.setZero();
        sum_h2.setZero();
        for (Index i = 0; i < n; ++i) {
            const std::uint64_t bits_i = word[static_cast<std::size_t>(i)];
            p.bits[static_cast<std::size_t>(i * p.words + l0 / 64)] = bits_i;
            const double* x = h.col(i).data();
            const double* x2 = h2.col(i).data();
            Index u0 = 0;
#if defined(__AVX512F__)
            for (; u0 + 64 <= U; u0 += 64) { // the cell's 64 values of r and r^2 held in registers
                __m512d r[8], r2[8];
                for (int v = 0; v < 8; ++v) {
                    r[v] = _mm512_loadu_pd(x + u0 + 8 * v);
                    r2[v] = _mm512_loadu_pd(x2 + u0 + 8 * v);
                }
                for (std::uint64_t b = bits_i; b != 0; b &= b - 1) {
                    const Index j = __builtin_ctzll(b);
                    double* s1 = sum_h.col(j).data() + u0;
                    double* s2 = sum_h2.col(j).data() + u0;
                    for (int v = 0; v < 8; ++v) {
                        _mm512_storeu_pd(s1 + 8 * v, _mm512_add_pd(_mm512_loadu_pd(s1 + 8 * v), r[v]));
                        _mm512_storeu_pd(s2 + 8 * v, _mm512_add_pd(_mm512_loadu_pd(s2 + 8 * v), r2[v]));
                    }
                }
            }
#endif
            if (u0 < U)
                for (std::uint64_t b = bits_i; b != 0; b &= b - 1) {
                    const Index j = __builtin_ctzll(b);
                    double* s1 = sum_h.col(j).data();
                    double* s2 = sum_h2.col(j).data();
                    for (Index u = u0; u < U; ++u) {
                        s1[u] += x[u];
                        s2[u] += x2[u];
                    }
                }
        }
        for (Index j = 0; j < L; ++j)
            unit_weights(sum_h.col(j), sum_h2.col(j), total_h, total_h2, static_cast<double>(p.cells_in),
                         static_cast<double>(p.cells_out), active, p.weights.col(l0 + j));
    }
    p.weights_f = p.weights.cast<float>();
    return p;
}

// Sums of the gradient pass, per thread for one block and, merged in cell order, for all cells.
struct ProgrammeSums {
    std::vector<MatrixD> labelled; // per comparison: S x labellings, sum over its cells c and units u of
                                   // w_u(l) B(c, u, S) for the cells in under labelling l
    std::vector<VectorD> gene_in, gene_out; // per comparison: G sums over its in (out) cells under the
                                            // observed labelling of sum_u w_u J_c(u, g) (x_cg - xbar_g)
    std::vector<MatrixD> set;      // per group: U x S sums of B(c, u, S)
    std::vector<VectorD> input;    // per group: G sums of the input
    std::vector<bool> plan_touched, group_touched; // per thread: has a cell in the current block

    void zero(std::size_t plans, std::size_t groups, Index S, Index G, Index U, const std::vector<ComparisonPlan>& p) {
        labelled.resize(plans);
        for (std::size_t k = 0; k < plans; ++k) labelled[k].setZero(S, p[k].labellings);
        gene_in.assign(plans, VectorD::Zero(G));
        gene_out.assign(plans, VectorD::Zero(G));
        set.assign(groups, MatrixD::Zero(U, S));
        input.assign(groups, VectorD::Zero(G));
        plan_touched.assign(plans, false);
        group_touched.assign(groups, false);
    }
    // Adds the touched parts of a thread's block sums. An untouched part would add +0 to totals that
    // start at +0 and so are never -0: skipping it changes no bit.
    void add(const ProgrammeSums& block) {
        for (std::size_t k = 0; k < labelled.size(); ++k)
            if (block.plan_touched[k]) {
                labelled[k] += block.labelled[k];
                gene_in[k] += block.gene_in[k];
                gene_out[k] += block.gene_out[k];
            }
        for (std::size_t g = 0; g < set.size(); ++g)
            if (block.group_touched[g]) {
                set[g] += block.set[g];
                input[g] += block.input[g];
            }
    }
};

// Adds the pass's totals of every process, and throws on every process when the pass failed on
// any (one sum).
inline void sum_programmes(ProcessGroup& processes, const std::exception_ptr& error, ProgrammeSums& total) {
    std::vector<double*> data;
    std::vector<Index> sizes;
    const auto add = [&](auto& m) {
        data.push_back(m.data());
        sizes.push_back(m.size());
    };
    for (auto& m : total.labelled) add(m);
    for (auto& v : total.gene_in) add(v);
    for (auto& v : total.gene_out) add(v);
    for (auto& m : total.set) add(m);
    for (auto& v : total.input) add(v);
    Index n = 1;
    for (Index k : sizes) n += k;
    std::vector<double> buffer(static_cast<std::size_t>(n));
    std::size_t at = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::copy(data[i], data[i] + sizes[i], buffer.begin() + static_cast<std::ptrdiff_t>(at));
        at += static_cast<std::size_t>(sizes[i]);
    }
    buffer[at] = error ? 1.0 : 0.0;
    processes.sum(buffer.data(), n);
    rethrow_if_any_failed(processes, error, "exsal::group_programmes", static_cast<std::int64_t>(buffer[at]));
    at = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const auto from = buffer.begin() + static_cast<std::ptrdiff_t>(at);
        std::copy(from, from + sizes[i], data[i]);
        at += static_cast<std::size_t>(sizes[i]);
    }
}

// Per-thread scratch of the programmes' gradient pass.
template <typename Scalar>
struct ProgrammeScratch {
    Matrix<Scalar> reduced;     // U x S: B(c, ., .) of one cell
    MatrixF attributions;       // (U S) x block: B of the block's cells, cell j in column j (entry u + U s)
    MatrixF product;            // S x labellings
    std::vector<std::pair<Index, Index>> terms; // (cell in the block, comparison): the gene terms a chunk's cells need
    Matrix<Scalar> gene_terms;  // G x terms: sum_u w_u J_c(u, g) of those cells, observed w
    Matrix<Scalar> weighted;    // first hidden width x terms: its M_0 w
    std::vector<Index> grouped; // the chunk's cells that have a group
    Matrix<Scalar> gene_total;  // U x G: sum over the block's cells with a group of J_c(u, g) (x_cg - xbar_g)
    Matrix<Scalar> rest_terms;  // G x (comparisons against the rest): gene_total^T w
    Matrix<Scalar> centred_chunk; // G x n: x_c - xbar of a chunk's cells
    Matrix<Scalar> sums_chunk;    // (U S) x n: the attribution sums of a chunk's cells, tile by tile
    std::vector<std::pair<Index, Index>> members; // (cell in the block, index in the comparison)
    std::vector<Index> in_cells, in_start, in_next; // per labelling l: the block's cells in under l,
                                                  // in_cells[in_start[l] .. in_start[l + 1])
    ProgrammeSums sums;
};

// B(c, u, S) of one cell (see the top of this header) from the cell's saliency J_c (U x G, units
// contiguous per gene) and centred = x_c - xbar: reduced(u, s) = (sum over the genes g of s, in
// the set's order, of J_c(u, g) (x_cg - xbar_g), each term added by one fused multiply-add) x
// (1 / |s|). A gene's U units are one contiguous run of the saliency, added as one vector.
template <typename Scalar>
void cell_attributions(const ConstMatrixRef<Scalar>& saliency, const Vector<Scalar>& centred,
                       const std::vector<std::vector<Index>>& set_rows, Matrix<Scalar>& reduced) {
    const Index U = saliency.rows(), ld = saliency.outerStride();
    const Scalar* base = saliency.data();
    constexpr Index W = 64; // units summed in registers at a time with AVX-512 (the others in memory)
    for (std::size_t s = 0; s < set_rows.size(); ++s) {
        Scalar* sum = reduced.col(static_cast<Index>(s)).data();
        const Scalar inv = Scalar(1) / static_cast<Scalar>(set_rows[s].size());
        for (Index u0 = 0; u0 < U; u0 += W) {
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<Scalar, float>) {
                if (U - u0 >= W) { // the same fused multiply-adds, in registers
                    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                    for (Index g : set_rows[s]) {
                        const float* v = base + g * ld + u0;
                        const __m512 d = _mm512_set1_ps(centred(g));
                        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(v), d, a0);
                        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 16), d, a1);
                        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 32), d, a2);
                        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 48), d, a3);
                    }
                    const __m512 f = _mm512_set1_ps(inv);
                    _mm512_storeu_ps(sum + u0, _mm512_mul_ps(a0, f));
                    _mm512_storeu_ps(sum + u0 + 16, _mm512_mul_ps(a1, f));
                    _mm512_storeu_ps(sum + u0 + 32, _mm512_mul_ps(a2, f));
                    _mm512_storeu_ps(sum + u0 + 48, _mm512_mul_ps(a3, f));
                    continue;
                }
            }
#endif
            {
                const Index end = std::min(U, u0 + W);
                std::fill(sum + u0, sum + end, Scalar(0));
                for (Index g : set_rows[s]) {
                    const Scalar* v = base + g * ld;
                    const Scalar d = centred(g);
                    for (Index u = u0; u < end; ++u) sum[u] = std::fma(v[u], d, sum[u]);
                }
                for (Index u = u0; u < end; ++u) sum[u] *= inv;
            }
        }
    }
}

// out(s) for sets s0 .. s1 - 1 = sum over the `count` cells `cells` (columns of b, entry u + U s) of
// sum_u b(u + U s) w(u): the cells' entries added first, 16 units at a time in registers, then
// multiplied by w (the same operations in the same order for any thread count). 0 without cells.
inline void in_cells_dot(const MatrixF& b, const Index* cells, Index count, const float* w, Index U, Index s0, Index s1,
                         float* out) {
    using V16 = Eigen::Matrix<float, 16, 1>;
    const Index full = U / 16 * 16;
    if (count == 0) {
        std::fill(out + s0, out + s1, 0.0f);
        return;
    }
    for (Index s = s0; s < s1; ++s) {
        const Index at = U * s;
        V16 dot = V16::Zero();
        Index q = 0;
        for (; q + 64 <= full; q += 64) { // four independent sums at a time
            V16 a0 = Eigen::Map<const V16>(b.col(cells[0]).data() + at + q), a1 = Eigen::Map<const V16>(b.col(cells[0]).data() + at + q + 16),
                a2 = Eigen::Map<const V16>(b.col(cells[0]).data() + at + q + 32), a3 = Eigen::Map<const V16>(b.col(cells[0]).data() + at + q + 48);
            for (Index i = 1; i < count; ++i) {
                const float* c = b.col(cells[i]).data() + at + q;
                a0 += Eigen::Map<const V16>(c);
                a1 += Eigen::Map<const V16>(c + 16);
                a2 += Eigen::Map<const V16>(c + 32);
                a3 += Eigen::Map<const V16>(c + 48);
            }
            dot += a0.cwiseProduct(Eigen::Map<const V16>(w + q));
            dot += a1.cwiseProduct(Eigen::Map<const V16>(w + q + 16));
            dot += a2.cwiseProduct(Eigen::Map<const V16>(w + q + 32));
            dot += a3.cwiseProduct(Eigen::Map<const V16>(w + q + 48));
        }
        for (; q < full; q += 16) {
            V16 sum = Eigen::Map<const V16>(b.col(cells[0]).data() + at + q);
            for (Index i = 1; i < count; ++i) sum += Eigen::Map<const V16>(b.col(cells[i]).data() + at + q);
            dot += sum.cwiseProduct(Eigen::Map<const V16>(w + q));
        }
        float total = dot.sum();
        for (Index u = full; u < U; ++u) {
            float sum = b(at + u, cells[0]);
            for (Index i = 1; i < count; ++i) sum += b(at + u, cells[i]);
            total += sum * w[u];
        }
        out[s] = total;
    }
}

#if defined(__AVX512F__)
// out[i] = the sum of the 16 lanes of v[i], i = 0..7 (halves first, then pairs: a fixed order).
inline __m256 lane_sums8(const __m512* v) {
    __m256 h[8];
    for (int i = 0; i < 8; ++i)
        h[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[i]), 1)));
    const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}
#endif

// product(s, l) for sets s0 .. s1 - 1 and every labelling l (columns of w, U x labellings) =
// in_cells_dot over the cells in under l (in_cells[in_start[l] .. in_start[l + 1])). With
// AVX-512 and U a multiple of 16: the same sums of the cells' entries, 16 units per register,
// times w(l), and the lane sums of eight (set, labelling) pairs at a time (one order for any
// thread count).
inline void in_cells_dots(const MatrixF& b, const std::vector<Index>& in_cells, const std::vector<Index>& in_start, const MatrixF& w,
                          Index U, Index s0, Index s1, MatrixF& product) {
    const Index L = w.cols();
#if defined(__AVX512F__)
    if (U % 16 == 0) {
        const Index ld = b.rows();
        __m512 pending[8];
        Index at_s[8], at_l[8];
        int held = 0;
        alignas(32) float sums[8];
        const auto flush = [&] {
            for (int i = held; i < 8; ++i) pending[i] = _mm512_setzero_ps();
            _mm256_store_ps(sums, lane_sums8(pending));
            for (int i = 0; i < held; ++i) product(at_s[i], at_l[i]) = sums[i];
            held = 0;
        };
        for (Index l = 0; l < L; ++l) {
            const Index* cells = in_cells.data() + in_start[static_cast<std::size_t>(l)];
            const Index count = in_start[static_cast<std::size_t>(l + 1)] - in_start[static_cast<std::size_t>(l)];
            const float* wl = w.col(l).data();
            for (Index s = s0; s < s1; ++s) {
                const float* base = b.data() + U * s;
                __m512 dot = _mm512_setzero_ps();
                Index q = 0;
                for (; q + 64 <= U; q += 64) { // four independent sums at a time
                    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                    for (Index i = 0; i < count; ++i) {
                        const float* c = base + cells[i] * ld + q;
                        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(c));
                        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(c + 16));
                        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(c + 32));
                        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(c + 48));
                    }
                    dot = _mm512_fmadd_ps(a0, _mm512_loadu_ps(wl + q), dot);
                    dot = _mm512_fmadd_ps(a1, _mm512_loadu_ps(wl + q + 16), dot);
                    dot = _mm512_fmadd_ps(a2, _mm512_loadu_ps(wl + q + 32), dot);
                    dot = _mm512_fmadd_ps(a3, _mm512_loadu_ps(wl + q + 48), dot);
                }
                for (; q < U; q += 16) {
                    __m512 a = _mm512_setzero_ps();
                    for (Index i = 0; i < count; ++i) a = _mm512_add_ps(a, _mm512_loadu_ps(base + cells[i] * ld + q));
                    dot = _mm512_fmadd_ps(a, _mm512_loadu_ps(wl + q), dot);
                }
                pending[held] = dot;
                at_s[held] = s;
                at_l[held] = l;
                if (++held == 8) flush();
            }
        }
        if (held > 0) flush();
        return;
    }
#endif
    for (Index l = 0; l < L; ++l) {
        const Index from = in_start[static_cast<std::size_t>(l)], to = in_start[static_cast<std::size_t>(l + 1)];
        in_cells_dot(b, in_cells.data() + from, to - from, w.col(l).data(), U, s0, s1, product.col(l).data());
    }
}

#if defined(__AVX512F__)
// 64 float sums in four registers, while terms v[0 .. 64) d are added by fused multiply-adds.
struct Sums64 {
    __m512 a[4];
    void zero() {
        for (__m512& x : a) x = _mm512_setzero_ps();
    }
    void load(const float* p) {
        for (int i = 0; i < 4; ++i) a[i] = _mm512_loadu_ps(p + 16 * i);
    }
    void fma(const float* v, float d) {
        const __m512 b = _mm512_set1_ps(d);
        for (int i = 0; i < 4; ++i) a[i] = _mm512_fmadd_ps(_mm512_loadu_ps(v + 16 * i), b, a[i]);
    }
    void store(float* p) const {
        for (int i = 0; i < 4; ++i) _mm512_storeu_ps(p + 16 * i, a[i]);
    }
};
#endif

// Adds one gene tile's terms of B's sums for a chunk's cells: sums (U S x n), column j, entries
// u + U s += J_j(u, g) (x_jg - xbar_g) for each (s, g) of `members` (g among all genes, in the
// tile g0 ..), one fused multiply-add each, in the members' order. tile: (U n) x genes of the
// tile, units contiguous per gene; centred: G x n. A set's members are consecutive: its sums are
// read once, held in registers while its genes of the tile are added, and written once.
template <typename Scalar>
void tile_attribution_sums(const ConstMatrixRef<Scalar>& tile, Index U, const Matrix<Scalar>& centred,
                           const std::vector<std::pair<Index, Index>>& members, Index g0, Matrix<Scalar>& sums) {
    const Index n = tile.rows() / U, ld = tile.outerStride(), count = static_cast<Index>(members.size());
    for (Index r0 = 0, r1 = 0; r0 < count; r0 = r1) {
        const Index s = members[static_cast<std::size_t>(r0)].first;
        while (r1 < count && members[static_cast<std::size_t>(r1)].first == s) ++r1;
        for (Index j = 0; j < n; ++j) {
            Scalar* a = sums.col(j).data() + U * s;
            const Scalar* cell = tile.data() + j * U;
            Index u = 0;
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<Scalar, float>) {
                for (; u + 64 <= U; u += 64) {
                    Sums64 sum;
                    sum.load(a + u);
                    for (Index r = r0; r < r1; ++r) {
                        const Index g = members[static_cast<std::size_t>(r)].second;
                        sum.fma(cell + (g - g0) * ld + u, centred(g, j));
                    }
                    sum.store(a + u);
                }
                for (; u + 16 <= U; u += 16) {
                    __m512 a0 = _mm512_loadu_ps(a + u);
                    for (Index r = r0; r < r1; ++r) {
                        const Index g = members[static_cast<std::size_t>(r)].second;
                        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(cell + (g - g0) * ld + u), _mm512_set1_ps(centred(g, j)), a0);
                    }
                    _mm512_storeu_ps(a + u, a0);
                }
            }
#endif
            for (; u < U; ++u) {
                Scalar sum = a[u];
                for (Index r = r0; r < r1; ++r) {
                    const Index g = members[static_cast<std::size_t>(r)].second;
                    sum = std::fma(cell[(g - g0) * ld + u], centred(g, j), sum);
                }
                a[u] = sum;
            }
        }
    }
}

// total(u, g) = (or, start false: +=) the sum over the chunk's cells j in `cells`, in order, of
// J_j(u, g) (x_jg - xbar_g), for the tile's genes g0 .. (tile: (U n) x genes, units contiguous
// per gene; centred: G x n; total: U x G), one fused multiply-add per term; a gene's sums are held
// in registers while its cells are added.
template <typename Scalar>
void tile_gene_totals(const ConstMatrixRef<Scalar>& tile, Index U, const Matrix<Scalar>& centred, const std::vector<Index>& cells,
                      Index g0, bool start, Matrix<Scalar>& total) {
    const Index ld = tile.outerStride();
    for (Index i = 0; i < tile.cols(); ++i) {
        const Index g = g0 + i;
        const Scalar* column = tile.data() + i * ld;
        Scalar* t = total.col(g).data();
        Index u = 0;
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<Scalar, float>) {
            for (; u + 64 <= U; u += 64) {
                Sums64 sum;
                if (start)
                    sum.zero();
                else
                    sum.load(t + u);
                for (Index j : cells) sum.fma(column + j * U + u, centred(g, j));
                sum.store(t + u);
            }
            for (; u + 16 <= U; u += 16) {
                __m512 a0 = start ? _mm512_setzero_ps() : _mm512_loadu_ps(t + u);
                for (Index j : cells) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(column + j * U + u), _mm512_set1_ps(centred(g, j)), a0);
                _mm512_storeu_ps(t + u, a0);
            }
        }
#endif
        for (; u < U; ++u) {
            Scalar a = start ? Scalar(0) : t[u];
            for (Index j : cells) a = std::fma(column[j * U + u], centred(g, j), a);
            t[u] = a;
        }
    }
}

// Per set: the in minus out mean input (its sign is the direction) and the units that carry it
// (largest positive contributions first, at most top_units).
inline void directions_and_units(const VectorD& input_difference, const MatrixD& contribution, Index top_units,
                                 GroupProgrammes& r) {
    const Index S = input_difference.size(), U = contribution.rows();
    r.input_difference = input_difference;
    r.direction.resize(static_cast<std::size_t>(S));
    r.units.resize(static_cast<std::size_t>(S));
    for (Index s = 0; s < S; ++s) {
        r.direction[static_cast<std::size_t>(s)] =
            r.input_difference(s) > 0.0 ? ProgrammeDirection::higher : ProgrammeDirection::lower;
        std::vector<Index> units;
        for (Index u = 0; u < U; ++u)
            if (contribution(u, s) > 0.0) units.push_back(u);
        std::stable_sort(units.begin(), units.end(), [&](Index x, Index y) { return contribution(x, s) > contribution(y, s); });
        if (static_cast<Index>(units.size()) > top_units) units.resize(static_cast<std::size_t>(top_units));
        r.units[static_cast<std::size_t>(s)] = std::move(units);
    }
}

// Competitive test: T against random sets of the same size from the model's genes, by the mean
// and variance of the per-gene t_g (sampling without replacement). t_gene: G, per-gene t_g.
inline void competitive_test(const VectorD& t_gene, const std::vector<std::vector<Index>>& set_rows, GroupProgrammes& r) {
    const Index S = r.score.size();
    const Index G = t_gene.size();
    const double m = t_gene.mean(), var = (t_gene.array() - m).square().mean();
    r.competitive_z.resize(S);
    r.competitive_p.resize(S);
    for (Index s = 0; s < S; ++s) {
        const double k = static_cast<double>(set_rows[static_cast<std::size_t>(s)].size());
        const double v = G > 1 ? var / k * (static_cast<double>(G) - k) / static_cast<double>(G - 1) : 0.0;
        r.competitive_z(s) = v > 0.0 ? (r.score(s) - m) / std::sqrt(v) : 0.0;
        r.competitive_p(s) = 0.5 * std::erfc(r.competitive_z(s) / std::sqrt(2.0));
    }
    const std::vector<double> qc = benjamini_hochberg(std::vector<double>(r.competitive_p.data(), r.competitive_p.data() + S));
    r.competitive_q = Eigen::Map<const VectorD>(qc.data(), S);
}

// Ranks within each direction (by score, then p), of the sets that stand out from random sets
// (competitive q <= 0.05); 0 for the others.
inline void rank_programmes(GroupProgrammes& r) {
    const Index S = r.score.size();
    r.rank.assign(static_cast<std::size_t>(S), 0);
    for (ProgrammeDirection d : {ProgrammeDirection::higher, ProgrammeDirection::lower}) {
        std::vector<Index> order;
        for (Index s = 0; s < S; ++s)
            if (r.direction[static_cast<std::size_t>(s)] == d && r.competitive_q(s) <= 0.05) order.push_back(s);
        std::stable_sort(order.begin(), order.end(), [&](Index x, Index y) {
            if (r.score(x) != r.score(y)) return r.score(x) > r.score(y);
            return r.p_value(x) < r.p_value(y);
        });
        for (std::size_t i = 0; i < order.size(); ++i) r.rank[static_cast<std::size_t>(order[i])] = static_cast<Index>(i + 1);
    }
}

// Per-thread scratch of set_attributions.
template <typename Scalar>
struct AttributionScratch {
    Vector<Scalar> centred;          // G: x_c - xbar of one cell
    Matrix<Scalar> scaled;           // U x G: J_c(u, g) (x_cg - xbar_g) of one cell
    Matrix<Scalar> reduced;          // U x S: the mean of `scaled` over each set's genes
    std::vector<MatrixD> group_sums; // per group: G x U sums of `scaled` over the block's cells
    std::vector<bool> touched;       // per group: has a cell in the current block
    void reserve(Index G, Index U, Index S, Index groups) {
        centred.resize(G);
        scaled.resize(U, G);
        reduced.resize(U, S);
        group_sums.assign(static_cast<std::size_t>(groups), MatrixD(G, U));
        touched.assign(static_cast<std::size_t>(groups), false);
    }
};

} // namespace detail

// Per cell, unit and set the attribution B(c, u, S) (see the top of this header): a (U S) x cells
// float matrix, column c holding entry u + U s. input: the network input (genes x cells);
// set_rows: rows of each set's genes (e.g. UsableGeneSets::rows). Blocks of cells run in parallel;
// every column is computed by one thread alone, so the result does not depend on the thread count.
// With `gene_sums` (and group_of_cell, one group index in [0, n_groups) per cell) it also returns
// per group the G x U sums over its cells of J_c(u, g) (x_cg - xbar_g), added in cell order.
template <typename Scalar>
MatrixF set_attributions(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                         const std::vector<std::vector<Index>>& set_rows, Index block_cells = 64,
                         const std::function<void(Index, Index)>& on_progress = {},
                         const std::vector<Index>* group_of_cell = nullptr, Index n_groups = 0,
                         std::vector<MatrixD>* gene_sums = nullptr) {
    const char* where = "exsal::set_attributions";
    detail::check_saliency_arguments(where, model.n_genes(), input.rows(), block_cells);
    const Index G = model.n_genes(), U = model.units(), C = input.cols(), S = static_cast<Index>(set_rows.size());
    for (std::size_t s = 0; s < set_rows.size(); ++s) {
        if (set_rows[s].empty()) throw ArgumentError(where, "set " + std::to_string(s) + " has no genes");
        for (Index r : set_rows[s])
            if (r < 0 || r >= G) throw ArgumentError(where, "set " + std::to_string(s) + " holds row " + std::to_string(r) + ", outside 0.." + std::to_string(G - 1));
    }
    // a lazy cast: the row means read the input, no double copy of it is made (checked by peak RSS)
    const Vector<Scalar> centre = input.template cast<double>().rowwise().mean().template cast<Scalar>();
    MatrixF out(U * S, C);
    const bool sums = gene_sums != nullptr && group_of_cell != nullptr;
    if (sums && static_cast<Index>(group_of_cell->size()) != C) throw ArgumentError(where, "one group per cell needed");
    const std::size_t T = static_cast<std::size_t>(threads());
    std::vector<detail::AttributionScratch<Scalar>> scratch(T);
    for (auto& w : scratch) w.reserve(G, U, S, sums ? n_groups : 0);
    if (sums) gene_sums->assign(static_cast<std::size_t>(n_groups), MatrixD::Zero(G, U));
    Index done = 0;
    // Called a chunk of a block's cells at a time (read while in cache); the group sums start at
    // the block's first chunk and take its cells in order, as whole blocks would.
    auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& chunk, const ConstMatrixRef<Scalar>&,
                     const detail::CellSpan& block) {
        detail::AttributionScratch<Scalar>& w = scratch[static_cast<std::size_t>(t)];
        if (first == block.first) std::fill(w.touched.begin(), w.touched.end(), false);
        for (Index j = 0; j < chunk.rows() / U; ++j) {
            const Index c = first + j;
            w.centred = input.col(c) - centre;
            detail::cell_attributions<Scalar>(chunk.middleRows(j * U, U), w.centred, set_rows, w.reduced);
            Eigen::Map<MatrixF>(out.col(c).data(), U, S) = w.reduced.template cast<float>();
            if (!sums) continue;
            w.scaled.noalias() = chunk.middleRows(j * U, U) * w.centred.asDiagonal();
            const std::size_t g = static_cast<std::size_t>((*group_of_cell)[static_cast<std::size_t>(c)]);
            if (!w.touched[g]) w.group_sums[g].setZero();
            w.touched[g] = true;
            w.group_sums[g] += w.scaled.transpose().template cast<double>();
        }
    };
    auto merge = [&](int t, Index, Index n) {
        detail::AttributionScratch<Scalar>& w = scratch[static_cast<std::size_t>(t)];
        // A group without cells in the block would add +0 to totals that start at +0 and so are never
        // -0: skipping it changes no bit.
        for (std::size_t g = 0; g < w.touched.size(); ++g)
            if (w.touched[g]) (*gene_sums)[g] += w.group_sums[g];
        done += n;
        if (on_progress) on_progress(done, C);
    };
    SaliencyOptions so;
    so.kind = SaliencyKind::vanilla;
    so.block_cells = block_cells;
    so.layout = SaliencyLayout::units_by_genes;
    detail::saliency_blocks<Scalar>(model, input, so, visit, &merge, detail::saliency_chunk_cells);
    return out;
}

namespace detail {

// The programmes of one comparison from the pass's totals (see group_programmes).
inline GroupProgrammes finish_comparison(const ComparisonPlan& p, std::size_t k, const ProgrammeSums& total,
                                         const GroupLabels& labels, const std::vector<std::vector<Index>>& set_rows,
                                         Index top_units) {
    const double di = static_cast<double>(p.cells_in), dout = static_cast<double>(p.cells_out);
    const std::size_t a = p.group_a;
    MatrixD in_b = total.set[a], total_b; // U x S here, S x U below
    VectorD in_x = total.input[a], total_x; // G here, the sets' means below
    if (p.pair) {
        total_b = in_b + total.set[p.group_b];
        total_x = in_x + total.input[p.group_b];
    } else { // every group, in group order
        total_b = MatrixD::Zero(in_b.rows(), in_b.cols());
        total_x = VectorD::Zero(in_x.size());
        for (std::size_t g = 0; g < labels.names.size(); ++g) {
            total_b += total.set[g];
            total_x += total.input[g];
        }
    }
    in_b.transposeInPlace();
    total_b.transposeInPlace();
    const Eigen::SparseMatrix<double, Eigen::RowMajor> mean_op = set_mean_operator<double>(set_rows, in_x.size());
    in_x = mean_op * in_x;
    total_x = mean_op * total_x;
    GroupProgrammes r;
    r.cells_in = p.cells_in;
    r.cells_out = p.cells_out;
    // T of every labelling: with A(S, l) the sum over its in cells of sum_u w_u(l) B(c, u, S),
    //   T(S, l) = sum_u w_u(l) (in_sum / n_in - (total - in_sum) / n_out) = (1/n_in + 1/n_out) A - (total_b w(l)) / n_out
    const MatrixD t = (1.0 / di + 1.0 / dout) * total.labelled[k] - (total_b * p.weights) / dout; // S x labellings
    const Index S = t.rows(), P = p.labellings - 1;
    r.score = t.col(0);
    r.z_score.resize(S);
    r.p_value.resize(S);
    for (Index s = 0; s < S; ++s) {
        double sum = 0.0, sum2 = 0.0;
        Index exceed = 0;
        for (Index l = 1; l <= P; ++l) {
            const double v = t(s, l);
            sum += v;
            sum2 += v * v;
            // A permutation ties the observed value up to the float rounding of the products.
            if (v >= r.score(s) - 1e-6 * std::abs(r.score(s))) ++exceed;
        }
        const double mean = sum / static_cast<double>(P), var = std::max(0.0, sum2 / static_cast<double>(P) - mean * mean);
        r.z_score(s) = var > 0.0 ? (r.score(s) - mean) / std::sqrt(var) : 0.0;
        r.p_value(s) = (1.0 + static_cast<double>(exceed)) / (static_cast<double>(P) + 1.0);
    }
    const std::vector<double> q = benjamini_hochberg(std::vector<double>(r.p_value.data(), r.p_value.data() + S));
    r.q_value = Eigen::Map<const VectorD>(q.data(), S);
    const VectorD w = p.weights.col(0);
    const MatrixD d = (in_b / di - (total_b - in_b) / dout).transpose();    // U x S: D(u, S) observed
    const MatrixD contribution = w.asDiagonal() * d;                         // U x S: w_u D(u, S)
    directions_and_units(in_x / di - (total_x - in_x) / dout, contribution, top_units, r);
    competitive_test(total.gene_in[k] / di - total.gene_out[k] / dout, set_rows, r);
    rank_programmes(r);
    if (p.pair) {
        r.group_a = labels.names[a];
        r.group_b = labels.names[p.group_b];
        r.group = r.group_a + "_vs_" + r.group_b;
    } else {
        r.group = r.group_a = labels.names[a];
    }
    return r;
}

} // namespace detail

// Group programmes of every group against the other grouped cells (sorted labels), then of each
// compare pair, for cells with labels `cell_groups` (one per cell; empty: no comparisons; a cell
// labelled "" belongs to no group: it is in no comparison, but still in xbar). input: the network
// input of the cells, block by block; representation: units x cells (the encoder's output for
// `input`); activity: unit_activity(representation).
//
// One gradient pass over the cells holds no per-cell attributions: the unit weights w of every
// labelling (observed and permuted) depend on the representation alone, so they are drawn first,
// and the pass adds per comparison and labelling l the sum over its in cells of
// sum_u w_u(l) B(c, u, S): per block of cells, comparison and labelling, the B of the block's
// cells in under l added, then one dot product with w(l), in float (see in_cells_dots); block
// sums added in double in cell order, so the result does not depend on the thread count. With it, the per-group sums of B, of the
// sets' mean input and of the per-gene terms give T, D, the direction and the competitive test.
// Memory: the labellings as bits (cells x labellings per comparison) and per thread the B of a
// block ((units x sets) x block_cells floats), instead of units x sets x cells floats.
// B is summed from the saliency a tile of genes at a time (see saliency_tile_genes), so the sum
// over S's genes is taken in ascending gene (row) order, one fused multiply-add per term; it
// equals set_attributions bit for bit where a set's rows are ascending.
//
// cell_scores (cells x sets, float): a cell's sum_u w_u B(c, u, S) with the observed weights of
// its own group's comparison against the rest: how far S's genes move the cell along the
// direction in which the representation separates its group (the mean over a group's cells,
// minus the mean over the other cells with the same weights, is T(S)). NaN for cells without a
// group, or whose group has no comparison.
// Throws ArgumentError on mismatched sizes, unknown pair labels, permutations < 1 or a
// non-finite input.
template <typename Scalar>
ProgrammeAnalysis group_programmes(const Autoencoder<Scalar>& model, const CellBlockSource<Scalar>& input,
                                   const MatrixF& representation, const std::vector<std::vector<Index>>& set_rows,
                                   const std::vector<std::string>& cell_groups, const UnitActivity& activity,
                                   const ProgrammeOptions& o) {
    const char* where = "exsal::group_programmes";
    ProcessGroup* processes = o.processes;
    const Index C = input.cells(), U = model.units(), G = model.n_genes(), S = static_cast<Index>(set_rows.size());
    const Index first = processes ? o.first_cell : 0; // this process's first cell among all cells
    if (processes) { // every process must describe the same cells, or the sums below would not match
        const auto shapes = all_gather(*processes, {std::to_string(representation.rows()) + " x " + std::to_string(representation.cols()) +
                                                    ", " + std::to_string(cell_groups.size()) + " labels"});
        for (std::size_t r = 1; r < shapes.size(); ++r)
            if (shapes[r] != shapes[0])
                throw ArgumentError(where, "process " + std::to_string(r) + " passes a representation of " + shapes[r][0] +
                                               ", process 0 " + shapes[0][0] + "; every process passes those of all cells");
    }
    on_every_process(processes, where, [&] {
        detail::check_saliency_arguments(where, model.n_genes(), input.genes(), o.block_cells);
        if (o.permutations < 1) throw ArgumentError(where, "permutations must be >= 1, got " + std::to_string(o.permutations));
        if (o.top_units < 0) throw ArgumentError(where, "top_units must be >= 0, got " + std::to_string(o.top_units));
        if (processes && (first < 0 || first + C > representation.cols()))
            throw ArgumentError(where, "this process's cells " + std::to_string(first) + " .. " + std::to_string(first + C - 1) +
                                           " are not among the representation's " + std::to_string(representation.cols()) + " cells");
        const Index all = processes ? representation.cols() : C;
        if (representation.rows() != U || representation.cols() != all)
            throw ArgumentError(where, "the representation is " + std::to_string(representation.rows()) + " x " +
                                           std::to_string(representation.cols()) + ", expected units x cells = " +
                                           std::to_string(U) + " x " + std::to_string(all));
        if (static_cast<Index>(activity.active.size()) != U) throw ArgumentError(where, "the unit activity has another unit count");
        if (!cell_groups.empty() && static_cast<Index>(cell_groups.size()) != all)
            throw ArgumentError(where, std::to_string(cell_groups.size()) + " group labels for " + std::to_string(all) + " cells");
        for (std::size_t s = 0; s < set_rows.size(); ++s) {
            if (set_rows[s].empty()) throw ArgumentError(where, "set " + std::to_string(s) + " has no genes");
            for (Index r : set_rows[s])
                if (r < 0 || r >= G)
                    throw ArgumentError(where, "set " + std::to_string(s) + " holds row " + std::to_string(r) + ", outside 0.." +
                                                   std::to_string(G - 1));
        }
    });
    ProgrammeAnalysis a;
    a.permutations = o.permutations;
    if (cell_groups.empty()) return a;
    const GroupLabels labels = group_labels(cell_groups);
    for (const auto& [x, y] : o.compare_pairs)
        for (const std::string* g : {&x, &y})
            if (g->empty() || !std::binary_search(labels.names.begin(), labels.names.end(), *g))
                throw ArgumentError(where, "compare pair " + x + ":" + y + ": no cell has the group label '" + *g + "'");

    // The labellings and their unit weights, every comparison on one thread, all in parallel
    // (each comparison's sums on one thread: the same bits for any thread count).
    const std::vector<detail::Comparison> jobs = detail::list_comparisons(labels, o.compare_pairs);
    const MatrixD rep = representation.cast<double>();
    std::vector<detail::ComparisonPlan> plans(jobs.size());
    {
        std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
        for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(jobs.size()); ++i) {
            try {
                const detail::Comparison& job = jobs[static_cast<std::size_t>(i)];
                plans[static_cast<std::size_t>(i)] =
                    detail::plan_comparison(job, labels, rep, activity.active, o.permutations, derive_seed(o.seed, job.stream));
            } catch (...) {
#pragma omp critical(exsal_programmes_error)
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
    }
    // The comparison of each group against the rest, for the cell scores (-1: none).
    std::vector<Index> own_plan(labels.names.size(), -1);
    for (std::size_t k = 0; k < plans.size(); ++k)
        if (!plans[k].pair) own_plan[plans[k].group_a] = static_cast<Index>(k);

    const VectorD mean = detail::input_mean(input, processes); // over all cells
    if (!mean.allFinite()) throw ArgumentError(where, "the input contains a non-finite value");
    const Vector<Scalar> centre = mean.cast<Scalar>();
    const std::size_t n_groups = labels.names.size(), n_plans = plans.size();
    const Index block_cells = std::max<Index>(1, std::min(o.block_cells, C));
    MatrixF observed(U, static_cast<Index>(n_plans)); // the observed labelling's unit weights of every comparison
    for (std::size_t k = 0; k < n_plans; ++k) observed.col(static_cast<Index>(k)) = plans[k].weights_f.col(0);
    const Matrix<Scalar> observed_s = observed.template cast<Scalar>();
    // The comparisons against the rest hold every cell with a group: their per-gene terms over the
    // out cells are those over all such cells (sum_u w_u gene_total(u, g), one U x G sum per
    // block for all of them) less those over the in cells. The pairs' terms come cell by cell.
    std::vector<Index> rest_plans, pair_plans;
    for (std::size_t k = 0; k < n_plans; ++k) (plans[k].pair ? pair_plans : rest_plans).push_back(static_cast<Index>(k));
    Matrix<Scalar> rest_weights(U, static_cast<Index>(rest_plans.size()));
    for (std::size_t i = 0; i < rest_plans.size(); ++i) rest_weights.col(static_cast<Index>(i)) = observed_s.col(rest_plans[i]);
    a.cell_scores = MatrixF::Constant(C, S, std::numeric_limits<float>::quiet_NaN());
    std::vector<detail::ProgrammeScratch<Scalar>> scratch(static_cast<std::size_t>(threads()));
    for (auto& w : scratch) {
        w.reduced.resize(U, S);
        w.attributions.resize(U * S, block_cells);
        w.sums.zero(n_plans, n_groups, S, G, U, plans);
        if (!rest_plans.empty()) w.gene_total.resize(U, G);
    }
    detail::ProgrammeSums total;
    total.zero(n_plans, n_groups, S, G, U, plans);
    // The chunks' saliency comes tile genes at a time (a tile's product output stays in L2); per
    // tile, its genes in every set (set, row), sets in order and each set's rows ascending.
    const Index tile = std::min<Index>(G, detail::saliency_tile_genes);
    std::vector<std::vector<std::pair<Index, Index>>> tile_members(static_cast<std::size_t>((G + tile - 1) / tile));
    std::vector<Scalar> inverse_size(static_cast<std::size_t>(S));
    for (Index s = 0; s < S; ++s) {
        std::vector<Index> rows = set_rows[static_cast<std::size_t>(s)];
        std::sort(rows.begin(), rows.end());
        for (Index r : rows) tile_members[static_cast<std::size_t>(r / tile)].emplace_back(s, r);
        inverse_size[static_cast<std::size_t>(s)] = Scalar(1) / static_cast<Scalar>(rows.size());
    }
    Index done = 0;
    // Called a chunk of a block's cells at a time (saliency: (U n) x G, units contiguous per gene);
    // the label products run once the block's last chunk is in.
    auto visit = [&](int t, Index chunk_first, const ConstMatrixRef<Scalar>& saliency, const ConstMatrixRef<Scalar>& x,
                     const detail::CellSpan& block, const detail::SaliencyWorkspace<Scalar>& ws) {
        detail::ProgrammeScratch<Scalar>& w = scratch[static_cast<std::size_t>(t)];
        detail::ProgrammeSums& sums = w.sums;
        const Index n = saliency.rows() / U, offset = chunk_first - block.first; // offset: in the block
        if (block.gene_first == 0) { // a chunk's first tile
            if (chunk_first == block.first) {
                std::fill(sums.plan_touched.begin(), sums.plan_touched.end(), false);
                std::fill(sums.group_touched.begin(), sums.group_touched.end(), false);
            }
            w.centred_chunk = x.colwise() - centre;
            w.sums_chunk.setZero(U * S, n);
            w.grouped.clear();
            for (Index j = 0; j < n; ++j)
                if (labels.of_cell[static_cast<std::size_t>(first + chunk_first + j)] >= 0) w.grouped.push_back(j);
        }
        // B's sums over this tile's genes of each set (ascending rows, as the sets' sorted rows)
        detail::tile_attribution_sums<Scalar>(saliency, U, w.centred_chunk, tile_members[static_cast<std::size_t>(block.gene_first / tile)],
                                              block.gene_first, w.sums_chunk);
        if (!rest_plans.empty())
            detail::tile_gene_totals<Scalar>(saliency, U, w.centred_chunk, w.grouped, block.gene_first, chunk_first == block.first,
                                             w.gene_total);
        if (block.gene_first + block.genes < G) return; // more tiles of this chunk to come
        // The per-gene terms of the competitive test under the observed labelling that go cell by
        // cell: of each cell in its group's comparison against the rest, and in the pairs that hold
        // it. Each is the saliency of sum_u w_u r_u (a product over the first hidden layer, not a
        // U-term sum per gene).
        w.terms.clear();
        for (Index j : w.grouped) {
            const Index c = first + chunk_first + j;
            const Index own = own_plan[static_cast<std::size_t>(labels.of_cell[static_cast<std::size_t>(c)])];
            if (own >= 0) w.terms.emplace_back(offset + j, own);
            for (Index k : pair_plans)
                if (plans[static_cast<std::size_t>(k)].position[static_cast<std::size_t>(c)] >= 0) w.terms.emplace_back(offset + j, k);
        }
        ws.weighted_saliency(model, w.terms, observed_s, w.weighted, w.gene_terms);
        for (Index j = 0; j < n; ++j) {
            const Index local = chunk_first + j, c = first + local; // c: among all cells
            for (Index s = 0; s < S; ++s) w.reduced.col(s) = w.sums_chunk.col(j).segment(U * s, U) * inverse_size[static_cast<std::size_t>(s)];
            auto b = w.attributions.col(offset + j); // B(c, u, S) at u + U s
            Eigen::Map<MatrixF>(b.data(), U, S) = w.reduced.template cast<float>();
            const Index g = labels.of_cell[static_cast<std::size_t>(c)];
            if (g < 0) continue;
            const auto gi = static_cast<std::size_t>(g);
            if (!sums.group_touched[gi]) {
                sums.set[gi].setZero();
                sums.input[gi].setZero();
                sums.group_touched[gi] = true;
            }
            sums.set[gi] += w.reduced.template cast<double>();
            sums.input[gi] += x.col(j).template cast<double>();
            if (own_plan[gi] >= 0)
                a.cell_scores.row(local) =
                    (Eigen::Map<const MatrixF>(b.data(), U, S).transpose() * observed.col(own_plan[gi])).transpose();
            for (std::size_t k = 0; k < n_plans; ++k)
                if (!sums.plan_touched[k] && plans[k].position[static_cast<std::size_t>(c)] >= 0) {
                    // (labelled is written at the block's end, a comparison against the rest's gene_out there too)
                    sums.gene_in[k].setZero();
                    if (plans[k].pair) sums.gene_out[k].setZero();
                    sums.plan_touched[k] = true;
                }
        }
        for (std::size_t t = 0; t < w.terms.size(); ++t) { // (x_cg - xbar_g) sum_u w_u J_c(u, g), cells in order
            const auto [cell, k] = w.terms[t];
            const Index j = cell - offset;
            const detail::ComparisonPlan& p = plans[static_cast<std::size_t>(k)];
            const bool in = p.in(p.position[static_cast<std::size_t>(first + chunk_first + j)], 0);
            (in ? sums.gene_in : sums.gene_out)[static_cast<std::size_t>(k)] +=
                (w.gene_terms.col(static_cast<Index>(t)).array() * w.centred_chunk.col(j).array()).template cast<double>().matrix();
        }
        if (chunk_first + n < block.first + block.count) return;
        // The comparisons against the rest: out = all the block's cells with a group, less the in ones.
        if (!rest_plans.empty() && sums.plan_touched[static_cast<std::size_t>(rest_plans[0])]) {
            w.rest_terms.noalias() = w.gene_total.transpose() * rest_weights;
            for (std::size_t i = 0; i < rest_plans.size(); ++i) {
                const auto k = static_cast<std::size_t>(rest_plans[i]);
                sums.gene_out[k] = w.rest_terms.col(static_cast<Index>(i)).template cast<double>() - sums.gene_in[k];
            }
        }
        // Per comparison and labelling l: the sum over the block's cells in under l of
        // sum_u w_u(l) B(c, u, S) = (sum over those cells of B(c, ., S)) . w(l): the in cells' B
        // added first (a share of the block's cells), then one product with w(l).
        for (std::size_t k = 0; k < n_plans; ++k) {
            const detail::ComparisonPlan& p = plans[k];
            w.members.clear();
            for (Index j = 0; j < block.count; ++j) {
                const Index i = p.position[static_cast<std::size_t>(first + block.first + j)];
                if (i >= 0) w.members.emplace_back(j, i);
            }
            if (w.members.empty()) continue;
            const Index L = p.labellings;
            // Per labelling, its in cells among the block's (ascending): counted from the cells'
            // words of bits, then placed.
            w.in_start.assign(static_cast<std::size_t>(L + 1), 0);
            for (const auto& m : w.members)
                for (Index c = 0; c < p.words; ++c)
                    for (std::uint64_t b = p.bits[static_cast<std::size_t>(m.second * p.words + c)]; b != 0; b &= b - 1)
                        ++w.in_start[static_cast<std::size_t>(64 * c + __builtin_ctzll(b) + 1)];
            for (Index l = 0; l < L; ++l) w.in_start[static_cast<std::size_t>(l + 1)] += w.in_start[static_cast<std::size_t>(l)];
            w.in_cells.resize(static_cast<std::size_t>(w.in_start[static_cast<std::size_t>(L)]));
            w.in_next.assign(w.in_start.begin(), w.in_start.end() - 1);
            for (const auto& [j, i] : w.members)
                for (Index c = 0; c < p.words; ++c)
                    for (std::uint64_t b = p.bits[static_cast<std::size_t>(i * p.words + c)]; b != 0; b &= b - 1)
                        w.in_cells[static_cast<std::size_t>(w.in_next[static_cast<std::size_t>(64 * c + __builtin_ctzll(b))]++)] = j;
            // A few sets at a time (128 entries of B per cell), so that the block's cells' entries
            // of them stay in L1 across the labellings.
            w.product.resize(S, L);
            const Index per_tile = std::max<Index>(1, 128 / U);
            for (Index s0 = 0; s0 < S; s0 += per_tile)
                detail::in_cells_dots(w.attributions, w.in_cells, w.in_start, p.weights_f, U, s0, std::min(S, s0 + per_tile), w.product);
            sums.labelled[k] = w.product.template cast<double>();
        }
    };
    auto merge = [&](int t, Index, Index n) {
        total.add(scratch[static_cast<std::size_t>(t)].sums);
        done += n;
        if (o.on_progress) o.on_progress(done, C);
    };
    SaliencyOptions so;
    so.kind = SaliencyKind::vanilla;
    so.block_cells = block_cells;
    so.layout = SaliencyLayout::units_by_genes;
    if (!processes) {
        detail::saliency_blocks<Scalar>(model, input, so, visit, &merge, detail::saliency_chunk_cells, tile);
    } else {
        std::exception_ptr error;
        try {
            detail::saliency_blocks<Scalar>(model, input, so, visit, &merge, detail::saliency_chunk_cells, tile);
        } catch (...) {
            error = std::current_exception();
        }
        detail::sum_programmes(*processes, error, total);
    }
    scratch.clear();

    for (std::size_t k = 0; k < n_plans; ++k)
        a.comparisons.push_back(detail::finish_comparison(plans[k], k, total, labels, set_rows, o.top_units));
    return a;
}

// The same for a genes x cells input matrix.
template <typename Scalar>
ProgrammeAnalysis group_programmes(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                                   const MatrixF& representation, const std::vector<std::vector<Index>>& set_rows,
                                   const std::vector<std::string>& cell_groups, const UnitActivity& activity,
                                   const ProgrammeOptions& o) {
    return group_programmes<Scalar>(model, DenseCellBlocks<Scalar>(input), representation, set_rows, cell_groups, activity, o);
}

// The consensus of several models' programmes (an ensemble trained from derived seeds), per
// comparison and set (Meinshausen and Buehlmann 2010 select by such stability):
//   direction      the sign of the models' mean input difference (the same data, so they agree)
//   mean_rank      mean over models of the set's rank within that direction; a model that
//                  does not rank the set there (other direction, or the set does not stand out)
//                  counts it after all its ranked sets of this direction
//   top5_fraction  share of models with the set in this direction at rank <= 5
//   p_value        the k-th smallest of the K models' p-values times K / k, k = ceil(K / 2)
//                  (about twice the median): a valid p-value whatever the dependence between
//                  the models (Rueschendorf 1982; Vovk and Wang 2020, Biometrika 107:791), which
//                  models of the same cells have. A combination that assumes independence
//                  (Fisher's) would be far too small; one that averages tangents (Cauchy) is
//                  swamped by a single model with p near 1.
//   q_value        Benjamini-Hochberg over the comparison's sets
//   rank           the sets that at least half of the models rank (in this direction), by mean
//                  rank (ties: smaller p, then collection order); 0 (no rank) for the others
struct ConsensusProgrammes {
    std::string group;
    VectorD mean_rank, top5_fraction, p_value, q_value; // per set
    VectorD mean_score;                                // per set: mean of the models' scores
    std::vector<ProgrammeDirection> direction;         // per set
    std::vector<Index> rank;                           // per set
};

// Throws ArgumentError when the models disagree in comparisons or sets, or there are none.
inline std::vector<ConsensusProgrammes> consensus_programmes(const std::vector<ProgrammeAnalysis>& models) {
    const char* where = "exsal::consensus_programmes";
    if (models.empty()) throw ArgumentError(where, "no models");
    const std::size_t K = models.size(), n_comp = models[0].comparisons.size();
    std::vector<ConsensusProgrammes> out;
    for (std::size_t i = 0; i < n_comp; ++i) {
        const GroupProgrammes& first = models[0].comparisons[i];
        const Index S = first.score.size();
        for (const auto& m : models)
            if (m.comparisons.size() != n_comp || m.comparisons[i].group != first.group || m.comparisons[i].score.size() != S)
                throw ArgumentError(where, "the models differ in their comparisons or gene sets");
        ConsensusProgrammes c;
        c.group = first.group;
        c.mean_rank = VectorD::Zero(S);
        c.top5_fraction = VectorD::Zero(S);
        c.mean_score = VectorD::Zero(S);
        c.p_value.resize(S);
        c.direction.resize(static_cast<std::size_t>(S));
        std::vector<bool> ranked; // per set: ranked by at least half of the models
        for (Index s = 0; s < S; ++s) {
            double diff = 0.0;
            std::size_t ranked_by = 0;
            std::vector<double> ps;
            for (const auto& m : models) diff += m.comparisons[i].input_difference(s);
            const ProgrammeDirection d = diff > 0.0 ? ProgrammeDirection::higher : ProgrammeDirection::lower;
            c.direction[static_cast<std::size_t>(s)] = d;
            for (const auto& m : models) {
                const GroupProgrammes& g = m.comparisons[i];
                Index same = 0; // sets ranked in direction d by this model
                for (std::size_t i = 0; i < g.rank.size(); ++i) same += g.direction[i] == d && g.rank[i] > 0;
                const bool agrees = g.direction[static_cast<std::size_t>(s)] == d && g.rank[static_cast<std::size_t>(s)] > 0;
                const Index rank = agrees ? g.rank[static_cast<std::size_t>(s)] : same + 1;
                c.mean_rank(s) += static_cast<double>(rank) / static_cast<double>(K);
                c.mean_score(s) += g.score(s) / static_cast<double>(K);
                ranked_by += agrees;
                if (agrees && rank <= 5) c.top5_fraction(s) += 1.0 / static_cast<double>(K);
                ps.push_back(g.p_value(s));
            }
            const std::size_t k = (K + 1) / 2;
            std::nth_element(ps.begin(), ps.begin() + static_cast<std::ptrdiff_t>(k - 1), ps.end());
            c.p_value(s) = std::min(1.0, ps[k - 1] * static_cast<double>(K) / static_cast<double>(k));
            ranked.push_back(2 * ranked_by >= K);
        }
        const std::vector<double> q = benjamini_hochberg(std::vector<double>(c.p_value.data(), c.p_value.data() + S));
        c.q_value = Eigen::Map<const VectorD>(q.data(), S);
        c.rank.assign(static_cast<std::size_t>(S), 0);
        for (ProgrammeDirection d : {ProgrammeDirection::higher, ProgrammeDirection::lower}) {
            std::vector<Index> order;
            for (Index s = 0; s < S; ++s)
                if (c.direction[static_cast<std::size_t>(s)] == d && ranked[static_cast<std::size_t>(s)]) order.push_back(s);
            std::stable_sort(order.begin(), order.end(), [&](Index x, Index y) {
                if (c.mean_rank(x) != c.mean_rank(y)) return c.mean_rank(x) < c.mean_rank(y);
                return c.p_value(x) < c.p_value(y);
            });
            for (std::size_t k = 0; k < order.size(); ++k) c.rank[static_cast<std::size_t>(order[k])] = static_cast<Index>(k + 1);
        }
        out.push_back(std::move(c));
    }
    return out;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_PROGRAMMES_HPP
