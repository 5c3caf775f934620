#ifndef EXSAL_INTERPRET_GENE_SET_IMPACT_HPP
#define EXSAL_INTERPRET_GENE_SET_IMPACT_HPP

// From gene saliency to gene-set impact (Kinalis et al. 2019), the reference statistic:
//   impact(u, S) over cells C = mean over c in C of  agg over g in S present of |saliency(c, u, g)|
// with agg the LOWER median (element of 0-based rank (k-1)/2 of the k genes of S present in the
// data) or the mean. Only the genes of S present in the data count; sets with fewer than
// min_genes present are skipped and listed.
//
// One streaming pass over the cells computes, for every usable set and unit: the impact over all
// cells and over each group, and per gene and unit the mean of |saliency| and of the signed
// saliency. Per-cell values go into per-thread sums that are added to the totals in block order,
// so results do not depend on the thread count. Impacts over "the rest" of a group are the other
// groups' sums, so nothing is computed twice.
//
// Cost. The medians were most of the interpretation's time: one nth_element per cell, unit and
// set (64 x 50 per cell) cost several times the cell's saliency products. The pass now takes the
// saliency as (units x cells) x genes, 8 cells at a time (so a gene of a set is one run of 64
// units, read while in cache), and with AVX-512 finds the medians of 16 units at once by counting
// (lane_lower_medians), of 32 at once where the search can run on 16-bit keys first (with AVX-512
// BW, sets of 32 genes or more: pair_lower_medians); otherwise by a branch-free quickselect per
// unit (select_rank). The
// element of a given rank is one value, whichever algorithm finds it, so the impacts are bit for
// bit those of nth_element.

#include "exsal/core/error.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/saliency.hpp"
#include "exsal/interpret/statistics.hpp"
#include "exsal/io/gene_set.hpp"
#include "exsal/io/gmt.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace exsal {

// The sets of a collection that the data covers well enough, in collection order.
struct UsableGeneSets {
    std::vector<std::string> names;        // usable sets (>= min_genes present)
    std::vector<std::string> descriptions;
    std::vector<Index> genes_in_set;       // distinct symbols in the set
    std::vector<Index> genes_found;        // of those, present in the data (= rows[s].size())
    std::vector<std::vector<Index>> rows;  // rows of the present genes, in the set's order
    std::vector<std::pair<std::string, Index>> skipped; // (name, genes found) below min_genes
};

// Matches the sets to the data's gene symbols (exact match, as gene_set_coverage) and keeps those
// with at least min_genes present. Throws ArgumentError when min_genes < 1.
inline UsableGeneSets usable_gene_sets(const GeneSetCollection& sets, const std::vector<std::string>& genes,
                                       Index min_genes) {
    if (min_genes < 1)
        throw ArgumentError("exsal::usable_gene_sets", "min_genes must be >= 1, got " + std::to_string(min_genes));
    const std::vector<GeneSetCoverage> coverage = gene_set_coverage(sets, genes);
    UsableGeneSets u;
    for (std::size_t s = 0; s < sets.size(); ++s) {
        const GeneSetCoverage& c = coverage[s];
        if (c.genes_found < min_genes) {
            u.skipped.emplace_back(c.name, c.genes_found);
            continue;
        }
        u.names.push_back(sets[s].name);
        u.descriptions.push_back(sets[s].description);
        u.genes_in_set.push_back(c.genes_in_set);
        u.genes_found.push_back(c.genes_found);
        u.rows.push_back(c.rows);
    }
    return u;
}

struct ImpactOptions {
    SaliencyKind saliency = SaliencyKind::guided;
    ImpactAggregator aggregator = ImpactAggregator::median;
    Index block_cells = 64;                                   // cells per saliency block
    std::function<void(Index done, Index total)> on_progress; // optional, cells done, in order, one call at a time
    // Data-parallel: the input holds this process's cells only, and the sums over the cells are
    // added across the processes (one sum), so every process gets the impacts over all of them.
    // groups then comes from group_labels(labels, processes). Null: one process.
    ProcessGroup* processes = nullptr;
};

struct GeneSetImpact {
    MatrixD impact;                       // sets x units, over all cells
    std::vector<MatrixD> impact_in_group; // per group: sets x units over its cells
    std::vector<MatrixD> impact_in_rest;  // per group: sets x units over the other grouped cells (NaN if none)
    MatrixD gene_saliency;                // genes x units, mean over cells of |saliency|
    MatrixD gene_saliency_signed;         // genes x units, mean over cells of the signed saliency
};

namespace detail {

// Per-thread sums over the cells of one block.
struct ImpactPartial {
    MatrixD abs_sum;                // U x G, sum of |saliency|
    MatrixD factor_sum;             // sum of the saliency factors (SaliencyWorkspace::add_factor_sum)
    MatrixD all;                    // S x U, sum over cells of the per-cell aggregate
    std::vector<MatrixD> group;     // per group: S x U, the same over the group's cells
    void reset_set_sums() {         // abs_sum starts in block_gene_sums, factor_sum in the visitor
        all.setZero();
        for (auto& g : group) g.setZero();
    }
};

// The lower median by selection, as nth_element selects it but several times faster on sets of
// tens to hundreds of genes: quickselect whose passes split the values three ways (< pivot,
// == pivot, > pivot) without branches that depend on the data, 16 values per instruction with
// AVX-512 (compress), one value per step otherwise. The element of a given rank is one value,
// whichever algorithm finds it, so the result is bit for bit nth_element's.

// Slack after each selection buffer: the vector split stores whole vectors past what it keeps.
constexpr Index selection_slack = 16;

// Splits v[0, k) into lo (the values < p, in order) and hi (the values > p) and returns their
// counts; lo and hi hold k + selection_slack values each and do not overlap v.
template <typename T>
std::pair<Index, Index> split_three_way(const T* v, Index k, T p, T* lo, T* hi) {
    Index n_lo = 0, n_hi = 0;
    for (Index i = 0; i < k; ++i) { // unconditional stores: no branch on the data
        const T x = v[i];
        lo[n_lo] = x;
        hi[n_hi] = x;
        n_lo += x < p;
        n_hi += p < x;
    }
    return {n_lo, n_hi};
}

#if defined(__AVX512F__)
inline std::pair<Index, Index> split_three_way(const float* v, Index k, float p, float* lo, float* hi) {
    const __m512 pivot = _mm512_set1_ps(p);
    Index n_lo = 0, n_hi = 0;
    for (Index i = 0; i < k; i += 16) {
        const __mmask16 valid = k - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (k - i)) - 1u);
        const __m512 x = _mm512_maskz_loadu_ps(valid, v + i);
        const __mmask16 below = _mm512_mask_cmp_ps_mask(valid, x, pivot, _CMP_LT_OQ);
        const __mmask16 above = _mm512_mask_cmp_ps_mask(valid, x, pivot, _CMP_GT_OQ);
        // compress into a register, then a plain store (compress to memory is slow on some CPUs)
        _mm512_storeu_ps(lo + n_lo, _mm512_maskz_compress_ps(below, x));
        _mm512_storeu_ps(hi + n_hi, _mm512_maskz_compress_ps(above, x));
        n_lo += __builtin_popcount(static_cast<unsigned>(below));
        n_hi += __builtin_popcount(static_cast<unsigned>(above));
    }
    return {n_lo, n_hi};
}
#endif

// Element of 0-based rank m among few values: the v[i] with #{v < v[i]} <= m < #{v <= v[i]}.
template <typename T>
T select_by_counting(const T* v, Index k, Index m) {
    for (Index i = 0; i < k; ++i) {
        Index less = 0, not_more = 0;
        for (Index j = 0; j < k; ++j) {
            less += v[j] < v[i];
            not_more += v[j] <= v[i];
        }
        if (less <= m && m < not_more) return v[i];
    }
    return v[m]; // not reached for values without NaN
}

#if defined(__AVX512F__)
inline float select_by_counting(const float* v, Index k, Index m) {
    const __mmask16 valid = k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << k) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(valid, v);
    for (Index i = 0; i < k; ++i) {
        const __m512 b = _mm512_set1_ps(v[i]);
        const Index less = __builtin_popcount(static_cast<unsigned>(_mm512_mask_cmp_ps_mask(valid, x, b, _CMP_LT_OQ)));
        const Index not_more = __builtin_popcount(static_cast<unsigned>(_mm512_mask_cmp_ps_mask(valid, x, b, _CMP_LE_OQ)));
        if (less <= m && m < not_more) return v[i];
    }
    return v[m];
}
#endif

// Element of 0-based rank m of v[0, k), 0 <= m < k: the value std::nth_element(v, v + m, v + k)
// leaves at v[m]; v is not changed. scratch: 3 (k + selection_slack) values. The pivot is the
// median of three spread elements; after 2 log2(k) + 8 passes (an adversarial order) the rest
// goes to nth_element.
template <typename T>
T select_rank(const T* v, Index k, Index m, T* scratch) {
    const Index room = k + selection_slack;
    T* const buffer[3] = {scratch, scratch + room, scratch + 2 * room};
    const T* data = v;
    int held = -1; // the buffer that holds data (-1: v)
    Index passes = 8;
    for (Index n = k; n > 1; n /= 2) passes += 2;
    while (k > 16) {
        const int x = held == 0 ? 1 : 0, y = held == 1 || held == 0 ? 2 : 1; // the two free buffers
        if (passes-- == 0) {
            std::copy_n(data, k, buffer[x]);
            std::nth_element(buffer[x], buffer[x] + m, buffer[x] + k);
            return buffer[x][m];
        }
        const T a = data[k / 4], b = data[k / 2], c = data[3 * k / 4];
        const T p = std::max(std::min(a, b), std::min(std::max(a, b), c));
        const auto [n_lo, n_hi] = split_three_way(data, k, p, buffer[x], buffer[y]);
        if (m < n_lo) {
            data = buffer[x];
            held = x;
            k = n_lo;
        } else if (m >= k - n_hi) {
            m -= k - n_hi;
            data = buffer[y];
            held = y;
            k = n_hi;
        } else {
            return p; // rank m falls among the values equal to the pivot
        }
    }
    return select_by_counting(data, k, m);
}

// Per-thread scratch of set_aggregates: one set's |saliency| (all units; AVX-512: 16 of them) and
// the selection's buffers.
template <typename Scalar>
struct AggregateScratch {
    std::vector<Scalar> lanes, values, selection;
    std::vector<std::int32_t> bits; // AVX-512: one cell's 16 or 32 units, k x 16 |saliency| as integers per 16
    std::vector<std::int16_t> keys; // AVX-512 BW: one cell's 32 units, k x 32 keys (KeyFirstPass::keys)
    void reserve(Index largest, Index units) {
        lanes.resize(static_cast<std::size_t>(largest * units));
        values.resize(static_cast<std::size_t>(largest));
        selection.resize(static_cast<std::size_t>(3 * (largest + selection_slack)));
        bits.resize(static_cast<std::size_t>(32 * largest));
        keys.resize(static_cast<std::size_t>(32 * largest));
    }
};

#if defined(__AVX512F__)
// Per lane, the number of the k rows (one register each) that count(c, row) counts: c plus 1 in
// the lanes where the row is at most the threshold; add(x, y) adds counts. Four chains of additions.
template <typename Element, typename Count, typename Add>
__m512i count_rows(const Element* rows, Index k, Count count, Add add) {
    constexpr Index W = 64 / static_cast<Index>(sizeof(Element)); // lanes per row
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
    Index i = 0;
    for (; i + 3 < k; i += 4) {
        c0 = count(c0, _mm512_loadu_si512(rows + W * i));
        c1 = count(c1, _mm512_loadu_si512(rows + W * i + W));
        c2 = count(c2, _mm512_loadu_si512(rows + W * i + 2 * W));
        c3 = count(c3, _mm512_loadu_si512(rows + W * i + 3 * W));
    }
    for (; i < k; ++i) c0 = count(c0, _mm512_loadu_si512(rows + W * i));
    return add(add(c0, c1), add(c2, c3));
}

// Number of the k rows of `bits` (16 lanes each) at most t, per lane.
inline __m512i count_at_most(const std::int32_t* bits, Index k, __m512i t) {
    const __m512i one = _mm512_set1_epi32(1);
    return count_rows(
        bits, k, [&](__m512i c, __m512i row) { return _mm512_mask_add_epi32(c, _mm512_cmple_epi32_mask(row, t), c, one); },
        [](__m512i x, __m512i y) { return _mm512_add_epi32(x, y); });
}

// Lower medians of |saliency| over one set's genes for 16 units at once (lanes; `lanes` marks the
// units that exist), from cell (U x G, units contiguous per gene) rows u0 .. u0 + 15. The values
// are non-negative floats, whose bit patterns order as integers do, so the element of rank m is
// found by counting: per lane a bracket lo < answer <= hi with c_lo = #{v <= lo} <= m < c_hi =
// #{v <= hi}, narrowed by counting the values at most a threshold t between them, t interpolated
// from the counts (every third pass halfway, so that the bracket at least halves then). It
// stops when c_lo = m (the answer is the smallest value above lo) or c_hi = m + 1 (the largest
// value at most hi), a few passes over the set's k values, 16 units per instruction. The answer
// is one of the values, so the element nth_element selects, bit for bit.
//
// In two parts, so that the first pass can ride along with the copy that makes `bits`:
// MedianFirstPass gathers each lane's minimum and maximum and, for k >= 32, the counts at two
// thresholds from a sorted sample of 15 of the values (their 6th and 10th smallest);
// finish_lane_medians narrows from there.
struct MedianFirstPass {
    __m512i lo = _mm512_set1_epi32(0x7FFFFFFF), hi = _mm512_setzero_si512(); // running min, max
    __m512i t1 = _mm512_setzero_si512(), t2 = t1, c1 = t1, c2 = t1;          // thresholds, counts
    bool sampled = false;

    // sample: the 15 rows (2 i + 1) k / 30, i = 0..14 (when k >= 32).
    void thresholds(__m512i* sample) {
        sort_fifteen(sample);
        t1 = sample[5];
        t2 = sample[9];
        sampled = true;
    }
    // Sorts 15 vectors lane by lane with the given lane-wise min and max: Batcher's odd-even merge
    // sort network for 16 values, less its compare-exchanges with a 16th, largest one: 59 that sort
    // 15 (an odd-even transposition sort took 105). The thresholds only steer the search; the
    // median is exact whatever they are.
    static void sort_fifteen(__m512i* sample) {
        constexpr __mmask16 all = 0xFFFF; // (the zero-masking forms: GCC 12 warns of the plain ones' undefined source)
        static constexpr int network[59][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {1, 2}, {5, 6}, {9, 10}, {13, 14}, {0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {2, 4}, {3, 5}, {10, 12}, {11, 13}, {1, 2}, {3, 4}, {5, 6}, {9, 10}, {11, 12}, {13, 14}, {0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {4, 8}, {5, 9}, {6, 10}, {7, 11}, {2, 4}, {3, 5}, {6, 8}, {7, 9}, {10, 12}, {11, 13}, {1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}, {13, 14}};
#pragma GCC unroll 64
        for (const auto& c : network) {
            const __m512i a = _mm512_maskz_min_epi32(all, sample[c[0]], sample[c[1]]);
            sample[c[1]] = _mm512_maskz_max_epi32(all, sample[c[0]], sample[c[1]]);
            sample[c[0]] = a;
        }
    }
    static Index sample_row(int i, Index k) { return (2 * i + 1) * k / 30; }
    void add(__m512i v) {
        lo = _mm512_min_epi32(lo, v);
        hi = _mm512_max_epi32(hi, v);
        if (sampled) {
            const __m512i one = _mm512_set1_epi32(1);
            c1 = _mm512_mask_add_epi32(c1, _mm512_cmple_epi32_mask(v, t1), c1, one);
            c2 = _mm512_mask_add_epi32(c2, _mm512_cmple_epi32_mask(v, t2), c2, one);
        }
    }
};

// The rest of lane_lower_medians after its first pass over the k rows of bits.
inline void finish_lane_medians(const std::int32_t* bits, Index k, __mmask16 lanes, const MedianFirstPass& first, float* out);

inline void lane_lower_medians(const std::int32_t* bits, Index k, __mmask16 lanes, float* out) {
    MedianFirstPass first;
    if (k >= 32) {
        __m512i sample[15];
        for (int i = 0; i < 15; ++i) sample[i] = _mm512_loadu_si512(bits + 16 * MedianFirstPass::sample_row(i, k));
        first.thresholds(sample);
    }
    for (Index i = 0; i < k; ++i) first.add(_mm512_loadu_si512(bits + 16 * i));
    finish_lane_medians(bits, k, lanes, first, out);
}

// finish_lane_medians from a bracket lo < answer <= hi per lane, c_lo = #{v <= lo} <= m < c_hi =
// #{v <= hi}.
inline void finish_bracket(const std::int32_t* bits, Index k, __mmask16 lanes, __m512i lo, __m512i c_lo, __m512i hi,
                           __m512i c_hi, float* out);

inline void finish_lane_medians(const std::int32_t* bits, Index k, __mmask16 lanes, const MedianFirstPass& first, float* out) {
    const __m512i one = _mm512_set1_epi32(1);
    __m512i lo = first.lo, hi = first.hi;
    const __m512i m = _mm512_set1_epi32(static_cast<int>((k - 1) / 2)), need = _mm512_add_epi32(m, one);
    lo = _mm512_sub_epi32(lo, one); // #{v <= min - 1} = 0
    __m512i c_lo = _mm512_setzero_si512(), c_hi = _mm512_set1_epi32(static_cast<int>(k));
    // Narrows the bracket with a threshold t and its count c, where that is narrower.
    const auto narrow = [&](__m512i t, __m512i c) {
        const __mmask16 enough = _mm512_cmpge_epi32_mask(c, need) & _mm512_cmplt_epi32_mask(t, hi);
        const __mmask16 short_ = _mm512_cmplt_epi32_mask(c, need) & _mm512_cmpgt_epi32_mask(t, lo);
        hi = _mm512_mask_mov_epi32(hi, enough, t);
        c_hi = _mm512_mask_mov_epi32(c_hi, enough, c);
        lo = _mm512_mask_mov_epi32(lo, short_, t);
        c_lo = _mm512_mask_mov_epi32(c_lo, short_, c);
    };
    if (first.sampled) {
        narrow(first.t1, first.c1);
        narrow(first.t2, first.c2);
    }
    finish_bracket(bits, k, lanes, lo, c_lo, hi, c_hi, out);
}

inline void finish_bracket(const std::int32_t* bits, Index k, __mmask16 lanes, __m512i lo, __m512i c_lo, __m512i hi,
                           __m512i c_hi, float* out) {
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i m = _mm512_set1_epi32(static_cast<int>((k - 1) / 2)), need = _mm512_add_epi32(m, one);
    const auto open_lanes = [&] {
        return static_cast<__mmask16>(lanes & _mm512_cmpgt_epi32_mask(_mm512_sub_epi32(hi, lo), one) &
                                      _mm512_cmpneq_epi32_mask(c_lo, m) & _mm512_cmpneq_epi32_mask(c_hi, need));
    };
    for (int pass = 0;; ++pass) {
        const __mmask16 open = open_lanes();
        if (!open) break;
        __m512i t;
        const __m512i gap = _mm512_sub_epi32(_mm512_sub_epi32(hi, lo), one); // >= 1 in open lanes
        if (pass >= 12) { // interpolation has not settled it: halve the bracket from here on
            t = _mm512_add_epi32(lo, _mm512_add_epi32(one, _mm512_srli_epi32(gap, 1)));
        } else { // lo + 1 + gap (m + 1/2 - c_lo) / (c_hi - c_lo), within lo + 1 .. hi - 1
            const __m512 frac = _mm512_div_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(m, c_lo)), _mm512_set1_ps(-0.5f)),
                                              _mm512_cvtepi32_ps(_mm512_sub_epi32(c_hi, c_lo)));
            __m512i step = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(gap), frac));
            step = _mm512_max_epi32(_mm512_setzero_si512(), _mm512_min_epi32(step, _mm512_sub_epi32(gap, one)));
            t = _mm512_add_epi32(lo, _mm512_add_epi32(one, step));
        }
        const __m512i c = count_at_most(bits, k, t);
        const __mmask16 enough = _mm512_mask_cmpge_epi32_mask(open, c, need), short_ = open & static_cast<__mmask16>(~enough);
        hi = _mm512_mask_mov_epi32(hi, enough, t);
        c_hi = _mm512_mask_mov_epi32(c_hi, enough, c);
        lo = _mm512_mask_mov_epi32(lo, short_, t);
        c_lo = _mm512_mask_mov_epi32(c_lo, short_, c);
    }
    // c_lo = m: the smallest value above lo; otherwise (c_hi = m + 1, or hi = lo + 1 and so hi is
    // a value) the largest value at most hi. One search for both: in the lanes that want the
    // smallest value above lo the keys are ~v (non-negative v, so ~v = -v - 1 orders them the other
    // way), and v > lo is ~v <= ~lo - 1; the largest key at or below the lane's bound, flipped back.
    const __mmask16 take_above = _mm512_cmpeq_epi32_mask(c_lo, m);
    const __m512i flip = _mm512_maskz_mov_epi32(take_above, _mm512_set1_epi32(-1));
    const __m512i bound = _mm512_mask_mov_epi32(hi, take_above, _mm512_sub_epi32(_mm512_xor_si512(lo, flip), one));
    __m512i best = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
    for (Index i = 0; i < k; ++i) {
        const __m512i key = _mm512_xor_si512(_mm512_loadu_si512(bits + 16 * i), flip);
        best = _mm512_mask_max_epi32(best, _mm512_cmple_epi32_mask(key, bound), best, key);
    }
    _mm512_storeu_ps(out, _mm512_castsi512_ps(_mm512_xor_si512(best, flip)));
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__)
// 32 units at once (k >= 32): the search first runs on 16-bit keys, 32 lanes per instruction
// where the values take 16. A lane's key of v is min(32767, (max(v, base) - base) >> shift),
// base the smallest of 15 sampled values and shift the least that maps the largest sampled value
// below 32768: non-decreasing in v (so the keys' order is the values') and, between the
// sampled extremes, as fine as 15 bits allow, however wide or narrow the lane's values are. The
// search narrows each lane to a bracket of keys lo < key of the answer <= hi with c_lo =
// #{key <= lo} <= m < c_hi = #{key <= hi} that either ends at the answer (c_lo = m or c_hi =
// m + 1) or is one key wide. In values, that is a bracket with the same counts (see
// KeyFirstPass::value_bound), from which finish_bracket takes each half of 16 lanes: usually
// straight to its last pass; more passes only where three or more values share the answer's key
// and the answer is not at either end of them (a key 2^shift values wide). Needs k <= 32767
// (16-bit counts).
struct KeyFirstPass {
    __m512i base[2], shift[2];                                      // per half (units 0-15, 16-31)
    __m512i t1 = _mm512_setzero_si512(), t2 = t1, c1 = t1, c2 = t1; // thresholds, counts (keys)

    // sample: per half the 15 rows (2 i + 1) k / 30, i = 0..14 (sorted here).
    void thresholds(__m512i (*sample)[15]) {
        for (int h = 0; h < 2; ++h) {
            MedianFirstPass::sort_fifteen(sample[h]);
            base[h] = sample[h][0];
            const __m512i bits = _mm512_sub_epi32(_mm512_set1_epi32(32), _mm512_lzcnt_epi32(_mm512_sub_epi32(sample[h][14], base[h])));
            shift[h] = _mm512_max_epi32(_mm512_setzero_si512(), _mm512_sub_epi32(bits, _mm512_set1_epi32(15)));
        }
        t1 = keys(sample[0][5], sample[1][5]);
        t2 = keys(sample[0][9], sample[1][9]);
    }
    // The keys of a row of each half: 32 lanes in the order of packs, per 128 bits 4 lanes of the
    // first half then 4 of the second (unpacklo / unpackhi take them back apart).
    __m512i keys(__m512i a, __m512i b) const {
        const __m512i ka = _mm512_srlv_epi32(_mm512_sub_epi32(_mm512_max_epi32(a, base[0]), base[0]), shift[0]);
        const __m512i kb = _mm512_srlv_epi32(_mm512_sub_epi32(_mm512_max_epi32(b, base[1]), base[1]), shift[1]);
        return _mm512_packs_epi32(ka, kb); // saturates at 32767
    }
    void add(__m512i key) {
        const __m512i one = _mm512_set1_epi16(1);
        c1 = _mm512_mask_add_epi16(c1, _mm512_cmple_epi16_mask(key, t1), c1, one);
        c2 = _mm512_mask_add_epi16(c2, _mm512_cmple_epi16_mask(key, t2), c2, one);
    }
    // The largest value whose key is at most K (K: one half's keys as 32-bit lanes, -1 .. 32767):
    // base + ((K + 1) << shift) - 1, -1 for K = -1 and every value (INT32_MAX) for K = 32767.
    __m512i value_bound(__m512i K, int h) const {
        constexpr __mmask16 all = 0xFFFF; // (zero-masking forms, as in MedianFirstPass)
        const __m512i top = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::max());
        __m512i v = _mm512_add_epi32(base[h], _mm512_sub_epi32(_mm512_maskz_sllv_epi32(all, _mm512_add_epi32(K, _mm512_set1_epi32(1)), shift[h]),
                                                               _mm512_set1_epi32(1))); // < 2^32 as unsigned
        v = _mm512_maskz_min_epu32(all, v, top);
        v = _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(K, _mm512_set1_epi32(-1)), _mm512_set1_epi32(-1));
        return _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(K, _mm512_set1_epi32(32767)), top);
    }
};

// Number of the k rows of `keys` (32 lanes each) at most t, per lane.
inline __m512i count_keys_at_most(const std::int16_t* keys, Index k, __m512i t) {
    const __m512i one = _mm512_set1_epi16(1);
    return count_rows(
        keys, k, [&](__m512i c, __m512i row) { return _mm512_mask_add_epi16(c, _mm512_cmple_epi16_mask(row, t), c, one); },
        [](__m512i x, __m512i y) { return _mm512_add_epi16(x, y); });
}

// Lower medians of 32 units: a and b hold the k rows of units 0-15 and 16-31 (as lane_lower_medians'
// bits), keys their keys, first the KeyFirstPass that made them; out: 32 values, unit order.
inline void finish_pair_medians(const std::int32_t* a, const std::int32_t* b, const std::int16_t* keys, Index k,
                                const KeyFirstPass& first, float* out) {
    const __m512i one = _mm512_set1_epi16(1);
    const __m512i m = _mm512_set1_epi16(static_cast<std::int16_t>((k - 1) / 2)), need = _mm512_add_epi16(m, one);
    __m512i lo = _mm512_set1_epi16(-1), hi = _mm512_set1_epi16(32767); // #{key <= -1} = 0, #{key <= 32767} = k
    __m512i c_lo = _mm512_setzero_si512(), c_hi = _mm512_set1_epi16(static_cast<std::int16_t>(k));
    const auto narrow = [&](__m512i t, __m512i c) {
        const __mmask32 enough = _mm512_cmpge_epi16_mask(c, need) & _mm512_cmplt_epi16_mask(t, hi);
        const __mmask32 short_ = _mm512_cmplt_epi16_mask(c, need) & _mm512_cmpgt_epi16_mask(t, lo);
        hi = _mm512_mask_mov_epi16(hi, enough, t);
        c_hi = _mm512_mask_mov_epi16(c_hi, enough, c);
        lo = _mm512_mask_mov_epi16(lo, short_, t);
        c_lo = _mm512_mask_mov_epi16(c_lo, short_, c);
    };
    narrow(first.t1, first.c1);
    narrow(first.t2, first.c2);
    // 16 lanes of 16 bits as 32 (h: which half of the register), and back.
    const auto widen = [](__m512i v, int h) { // (the extract's index must be a constant in unoptimised builds)
        return _mm512_cvtepi16_epi32(h == 0 ? _mm512_castsi512_si256(v) : _mm512_extracti64x4_epi64(v, 1));
    };
    const __m512i one32 = _mm512_set1_epi32(1);
    for (int pass = 0;; ++pass) {
        const __mmask32 open = _mm512_cmpgt_epi16_mask(_mm512_sub_epi16(hi, lo), one) & _mm512_cmpneq_epi16_mask(c_lo, m) &
                               _mm512_cmpneq_epi16_mask(c_hi, need);
        if (!open) break;
        __m512i t;
        if (pass >= 12) { // halve the bracket from here on
            t = _mm512_add_epi16(lo, _mm512_add_epi16(one, _mm512_srli_epi16(_mm512_sub_epi16(_mm512_sub_epi16(hi, lo), one), 1)));
        } else { // as finish_bracket's interpolation, in 32-bit halves
            __m256i half[2];
            for (int h = 0; h < 2; ++h) {
                const __m512i lo_h = widen(lo, h), c_lo_h = widen(c_lo, h);
                const __m512i gap = _mm512_sub_epi32(_mm512_sub_epi32(widen(hi, h), lo_h), one32);
                const __m512 frac =
                    _mm512_div_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(widen(m, h), c_lo_h)), _mm512_set1_ps(-0.5f)),
                                  _mm512_cvtepi32_ps(_mm512_sub_epi32(widen(c_hi, h), c_lo_h)));
                __m512i step = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(gap), frac));
                step = _mm512_max_epi32(_mm512_setzero_si512(), _mm512_min_epi32(step, _mm512_sub_epi32(gap, one32)));
                half[h] = _mm512_cvtepi32_epi16(_mm512_add_epi32(lo_h, _mm512_add_epi32(one32, step)));
            }
            t = _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
        }
        const __m512i c = count_keys_at_most(keys, k, t);
        const __mmask32 enough = _mm512_mask_cmpge_epi16_mask(open, c, need), short_ = open & ~enough;
        hi = _mm512_mask_mov_epi16(hi, enough, t);
        c_hi = _mm512_mask_mov_epi16(c_hi, enough, c);
        lo = _mm512_mask_mov_epi16(lo, short_, t);
        c_lo = _mm512_mask_mov_epi16(c_lo, short_, c);
    }
    // Per half (packs order: unpacklo the first, unpackhi the second): the keys sign-extended, the
    // counts zero-extended, to the values' bracket.
    const __m512i zero = _mm512_setzero_si512();
    const auto key = [&](__m512i v, int h) {
        return _mm512_maskz_srai_epi32(0xFFFF, h == 0 ? _mm512_unpacklo_epi16(zero, v) : _mm512_unpackhi_epi16(zero, v), 16);
    };
    const auto count = [&](__m512i v, int h) { return h == 0 ? _mm512_unpacklo_epi16(v, zero) : _mm512_unpackhi_epi16(v, zero); };
    for (int h = 0; h < 2; ++h)
        finish_bracket(h == 0 ? a : b, k, 0xFFFF, first.value_bound(key(lo, h), h), count(c_lo, h), first.value_bound(key(hi, h), h),
                       count(c_hi, h), out + 16 * h);
}

// Lower medians of 32 units (32 <= k <= 32767) whose row i of 16 values of half h (units 0-15,
// 16-31) is value(i, h): the rows are copied to a and b (16 k each) and their keys to keys (32 k)
// in the first pass, before which row(i) is called (set_aggregates prefetches there).
template <typename Value, typename Row>
void pair_medians(Value value, Row row, Index k, std::int32_t* a, std::int32_t* b, std::int16_t* keys, float* out) {
    KeyFirstPass first;
    __m512i sample[2][15];
    for (int i = 0; i < 15; ++i) {
        const Index r = MedianFirstPass::sample_row(i, k);
        sample[0][i] = value(r, 0);
        sample[1][i] = value(r, 1);
    }
    first.thresholds(sample);
    for (Index i = 0; i < k; ++i) {
        row(i);
        const __m512i va = value(i, 0), vb = value(i, 1);
        _mm512_storeu_si512(a + 16 * i, va);
        _mm512_storeu_si512(b + 16 * i, vb);
        const __m512i key = first.keys(va, vb);
        _mm512_storeu_si512(keys + 32 * i, key);
        first.add(key);
    }
    finish_pair_medians(a, b, keys, k, first, out);
}

// Lower medians of 32 units from their rows a and b (32 <= k <= 32767; keys: scratch of 32 k).
inline void pair_lower_medians(std::int32_t* a, std::int32_t* b, Index k, std::int16_t* keys, float* out) {
    pair_medians([&](Index i, int h) { return _mm512_loadu_si512((h == 0 ? a : b) + 16 * i); }, [](Index) {}, k, a, b, keys, out);
}
#endif

#if defined(__AVX512F__)
// The first `width` (1..16) lanes.
inline __mmask16 first_lanes(Index width) {
    return static_cast<__mmask16>(width >= 16 ? 0xFFFFu : (1u << width) - 1u);
}
#endif

// agg[j](s, u) = aggregator over the genes of set s of |saliency(u, g)| for cell j of a chunk
// (chunk: (U n) x G, row j U + u = cell j, unit u; a gene's n U values are one contiguous run):
// the lower median (the element of rank (k - 1) / 2, as lower_median selects it), or the mean
// (aggregate: the genes in the set's order, in double). agg: n matrices S x U, resized here.
template <typename Scalar>
void set_aggregates(const ConstMatrixRef<Scalar>& chunk, Index U, const std::vector<std::vector<Index>>& set_rows,
                    ImpactAggregator aggregator, AggregateScratch<Scalar>& scratch, std::vector<MatrixD>& agg) {
    const Index n = chunk.rows() / U, ld = chunk.outerStride(), S = static_cast<Index>(set_rows.size());
    if (static_cast<Index>(agg.size()) < n) agg.resize(static_cast<std::size_t>(n));
    for (Index j = 0; j < n; ++j) agg[static_cast<std::size_t>(j)].resize(S, U);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<Scalar, float>) {
        if (aggregator == ImpactAggregator::median) {
            alignas(64) float medians[16];
            const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
            const Index groups = (U + 15) / 16;
            std::int32_t* bits = scratch.bits.data();
            for (Index s = 0; s < S; ++s) {
                const std::vector<Index>& rows = set_rows[static_cast<std::size_t>(s)];
                const Index k = static_cast<Index>(rows.size());
#if defined(__AVX512BW__) && defined(__AVX512CD__)
                const Index pairs = k >= 32 && k <= 32767 ? U / 32 : 0; // 32 units at a time (pair_lower_medians)
#else
                const Index pairs = 0;
#endif
                for (Index j = 0; j < n; ++j) {
                    MatrixD& out = agg[static_cast<std::size_t>(j)];
                    const float* cell = chunk.data() + j * U;
#if defined(__AVX512BW__) && defined(__AVX512CD__)
                    for (Index p = 0; p < pairs; ++p) {
                        // As below, with 32 units: rows of 16 in bits (units 32 p ..) and
                        // bits + 16 k (units 32 p + 16 ..), their keys in keys.
                        const auto value = [&](Index i, int h) {
                            const float* from = cell + rows[static_cast<std::size_t>(i)] * ld + 32 * p + 16 * h;
                            return _mm512_and_si512(_mm512_loadu_si512(from), magnitude);
                        };
                        const auto row = [&](Index i) {
                            if (p == 0 && i + 8 < k) {
                                const char* ahead = reinterpret_cast<const char*>(cell + rows[static_cast<std::size_t>(i + 8)] * ld);
                                for (Index c = 0; c < U * Index(sizeof(float)); c += 64) _mm_prefetch(ahead + c, _MM_HINT_T0);
                            }
                        };
                        alignas(64) float pair[32];
                        pair_medians(value, row, k, bits, bits + 16 * k, scratch.keys.data(), pair);
                        for (Index u = 0; u < 32; ++u) out(s, 32 * p + u) = static_cast<double>(pair[u]);
                    }
#endif
                    for (Index q = 2 * pairs; q < groups; ++q) {
                        // |values| of cell j, units 16 q .. 16 q + 15 as integers: k rows of 16
                        // lanes in bits, the medians' first pass taken while they are copied.
                        // The chunk's cells are one run per gene: after the first cell (and
                        // group), the set's genes are in cache for the others.
                        const Index width = std::min<Index>(16, U - 16 * q);
                        const __mmask16 lanes = first_lanes(width);
                        const auto value = [&](Index i) {
                            const float* from = cell + rows[static_cast<std::size_t>(i)] * ld + 16 * q;
                            return _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(lanes, from)), magnitude);
                        };
                        MedianFirstPass first;
                        if (k >= 32) {
                            __m512i sample[15];
                            for (int i = 0; i < 15; ++i) sample[i] = value(MedianFirstPass::sample_row(i, k));
                            first.thresholds(sample);
                        }
                        for (Index i = 0; i < k; ++i) {
                            if (q == 0 && i + 8 < k) { // (with pairs, their first pass took it)
                                const char* ahead = reinterpret_cast<const char*>(cell + rows[static_cast<std::size_t>(i + 8)] * ld);
                                for (Index b = 0; b < U * Index(sizeof(float)); b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
                            }
                            const __m512i v = value(i);
                            _mm512_storeu_si512(bits + 16 * i, v);
                            first.add(v);
                        }
                        finish_lane_medians(bits, k, lanes, first, medians);
                        for (Index u = 0; u < width; ++u) out(s, 16 * q + u) = static_cast<double>(medians[u]);
                    }
                }
            }
            return;
        }
    }
#endif
    Scalar* lanes = scratch.lanes.data();
    Scalar* values = scratch.values.data();
    for (Index j = 0; j < n; ++j) {
        MatrixD& out = agg[static_cast<std::size_t>(j)];
        for (Index s = 0; s < S; ++s) {
            const std::vector<Index>& rows = set_rows[static_cast<std::size_t>(s)];
            const Index k = static_cast<Index>(rows.size());
            for (Index i = 0; i < k; ++i) {
                const Scalar* from = chunk.data() + rows[static_cast<std::size_t>(i)] * ld + j * U;
                for (Index u = 0; u < U; ++u) lanes[i * U + u] = std::abs(from[u]);
            }
            for (Index u = 0; u < U; ++u) {
                for (Index i = 0; i < k; ++i) values[i] = lanes[i * U + u];
                out(s, u) = aggregator == ImpactAggregator::median
                                ? static_cast<double>(select_rank(values, k, (k - 1) / 2, scratch.selection.data()))
                                : aggregate(values, k, aggregator);
            }
        }
    }
}

// Adds the per-gene |saliency| of a chunk's cells ((U n) x G, row j U + u = cell j, unit u) to
// abs_sum (U x G), the cells one by one in order; start: the block's first chunk, whose sums start
// from zero (abs_sum is written, not read). Entry (u, g) is ((0 + cell 0) + cell 1) + ..., the same
// bits for any block and chunk size. A gene's U sums stay in registers while its cells are added.
template <typename Scalar>
void block_gene_sums(const ConstMatrixRef<Scalar>& block, Index U, MatrixD& abs_sum, bool start) {
    const Index G = block.cols(), n = block.rows() / U;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<Scalar, float>) {
        // 16 units at a time: their 16 double sums in registers while the chunk's cells are added
        // (one rounding per addition, in cell order, as below).
        const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
        for (Index g = 0; g < G; ++g) {
            const float* column = block.data() + g * block.outerStride();
            double* a = abs_sum.col(g).data();
            for (Index u0 = 0; u0 < U; u0 += 16) {
                const Index width = std::min<Index>(16, U - u0);
                const __mmask16 lanes = first_lanes(width);
                const __mmask8 low = static_cast<__mmask8>(lanes & 0xFFu), high = static_cast<__mmask8>(lanes >> 8);
                __m512d a0 = _mm512_setzero_pd(), a1 = a0;
                if (!start) {
                    a0 = _mm512_maskz_loadu_pd(low, a + u0);
                    a1 = _mm512_maskz_loadu_pd(high, a + u0 + 8);
                }
                for (Index j = 0; j < n; ++j) {
                    const __m512 m = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(lanes, column + j * U + u0)), magnitude));
                    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(m)));
                    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1))));
                }
                _mm512_mask_storeu_pd(a + u0, low, a0);
                _mm512_mask_storeu_pd(a + u0 + 8, high, a1);
            }
        }
        return;
    }
#endif
    if (start) abs_sum.setZero();
    for (Index g = 0; g < G; ++g) {
        auto a = abs_sum.col(g);
        for (Index j = 0; j < n; ++j) a += block.col(g).segment(j * U, U).cwiseAbs().template cast<double>();
    }
}

// Adds the pass's totals and cell counts (cells) of every process, and throws on every process
// when the pass failed on any (one sum).
inline void sum_impacts(ProcessGroup& processes, const std::exception_ptr& error, ImpactPartial& total, Index& cells) {
    std::vector<MatrixD*> parts = {&total.abs_sum, &total.factor_sum, &total.all};
    for (auto& g : total.group) parts.push_back(&g);
    Index n = 2;
    for (const MatrixD* m : parts) n += m->size();
    VectorD buffer(n);
    Index at = 0;
    for (const MatrixD* m : parts) {
        buffer.segment(at, m->size()) = Eigen::Map<const VectorD>(m->data(), m->size());
        at += m->size();
    }
    buffer(at) = static_cast<double>(cells);
    buffer(at + 1) = error ? 1.0 : 0.0;
    processes.sum(buffer.data(), n);
    rethrow_if_any_failed(processes, error, "exsal::gene_set_impact", static_cast<std::int64_t>(buffer(at + 1)));
    at = 0;
    for (MatrixD* m : parts) {
        Eigen::Map<VectorD>(m->data(), m->size()) = buffer.segment(at, m->size());
        at += m->size();
    }
    cells = static_cast<Index>(buffer(at));
}

} // namespace detail

// Streams saliency over all cells and aggregates it per set (rows of the genes present, e.g.
// UsableGeneSets::rows) and per group (groups.of_cell empty = no groups). Throws ArgumentError
// naming gene_set_impact on mismatched sizes or rows out of range.
template <typename Scalar>
GeneSetImpact gene_set_impact(const Autoencoder<Scalar>& model, const CellBlockSource<Scalar>& input,
                              const std::vector<std::vector<Index>>& set_rows, const GroupLabels& groups,
                              const ImpactOptions& options = {}) {
    const char* where = "exsal::gene_set_impact";
    const Index G = model.n_genes(), U = model.units(), C = input.cells(), S = static_cast<Index>(set_rows.size());
    // Grouped when there are groups (names, on every process alike) or labels (cells labelled "" only).
    const bool grouped = !groups.names.empty() || !groups.of_cell.empty();
    const Index n_groups = static_cast<Index>(groups.names.size());
    detail::ImpactPartial total;
    total.abs_sum = MatrixD::Zero(U, G);
    total.factor_sum = MatrixD::Zero(detail::SaliencyWorkspace<Scalar>::factor_rows(model), U);
    total.all = MatrixD::Zero(S, U);
    total.group.assign(static_cast<std::size_t>(n_groups), MatrixD::Zero(S, U));
    std::exception_ptr error; // with processes: agreed on after the pass, so that no process waits alone
    try {
        detail::check_saliency_arguments(where, G, input.genes(), options.block_cells);
        if (C < 1 && !options.processes) throw ArgumentError(where, "no cells");
        if (grouped && static_cast<Index>(groups.of_cell.size()) != C)
            throw ArgumentError(where, std::to_string(groups.of_cell.size()) + " group labels for " + std::to_string(C) + " cells");
        Index largest = 1;
        for (std::size_t s = 0; s < set_rows.size(); ++s) {
            if (set_rows[s].empty()) throw ArgumentError(where, "set " + std::to_string(s) + " has no genes");
            largest = std::max(largest, static_cast<Index>(set_rows[s].size()));
            for (Index r : set_rows[s])
                if (r < 0 || r >= G)
                    throw ArgumentError(where, "set " + std::to_string(s) + " holds row " + std::to_string(r) +
                                                   ", outside 0.." + std::to_string(G - 1));
        }
        for (Index g : groups.of_cell)
            if (g >= n_groups) throw ArgumentError(where, "a cell's group " + std::to_string(g) + " is not one of the " +
                                                              std::to_string(n_groups) + " groups");

        const std::size_t T = static_cast<std::size_t>(threads());
        std::vector<detail::ImpactPartial> partial(T);
        std::vector<detail::AggregateScratch<Scalar>> scratch(T);
        std::vector<std::vector<MatrixD>> cell_agg(T); // per thread: the aggregates of a chunk's cells
        for (std::size_t t = 0; t < T; ++t) {
            partial[t].abs_sum.resize(U, G);
            partial[t].factor_sum.resize(total.factor_sum.rows(), U);
            partial[t].all.resize(S, U);
            partial[t].group.assign(static_cast<std::size_t>(n_groups), MatrixD(S, U));
            scratch[t].reserve(largest, U);
        }
        Index done = 0;

        auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& block, const ConstMatrixRef<Scalar>&,
                         const detail::CellSpan& span, const detail::SaliencyWorkspace<Scalar>& ws) {
            detail::ImpactPartial& p = partial[static_cast<std::size_t>(t)];
            std::vector<MatrixD>& a = cell_agg[static_cast<std::size_t>(t)];
            const bool start = first == span.first; // a block's first chunk
            if (start) {
                p.reset_set_sums();
                p.factor_sum.setZero();
            }
            const Index n = block.rows() / U;
            detail::block_gene_sums<Scalar>(block, U, p.abs_sum, start);
            ws.add_factor_sum(model, first - span.first, n, p.factor_sum); // the signed sums, factored
            detail::set_aggregates<Scalar>(block, U, set_rows, options.aggregator, scratch[static_cast<std::size_t>(t)], a); // agg over S of |saliency|
            for (Index j = 0; j < n; ++j) {
                const Index g = grouped ? groups.of_cell[static_cast<std::size_t>(first + j)] : -1;
                p.all += a[static_cast<std::size_t>(j)];
                if (g >= 0) p.group[static_cast<std::size_t>(g)] += a[static_cast<std::size_t>(j)]; // -1: no group
            }
        };
        auto merge = [&](int t, Index, Index n) {
            const detail::ImpactPartial& p = partial[static_cast<std::size_t>(t)];
            total.abs_sum += p.abs_sum;
            total.factor_sum += p.factor_sum;
            total.all += p.all;
            for (Index g = 0; g < n_groups; ++g) total.group[static_cast<std::size_t>(g)] += p.group[static_cast<std::size_t>(g)];
            done += n;
            if (options.on_progress) options.on_progress(done, C);
        };
        SaliencyOptions so;
        so.kind = options.saliency;
        so.block_cells = options.block_cells;
        so.layout = SaliencyLayout::units_by_genes;
        detail::saliency_blocks<Scalar>(model, input, so, visit, &merge, detail::saliency_chunk_cells);
    } catch (...) {
        if (!options.processes) throw;
        error = std::current_exception();
    }
    Index cells = C; // over all processes
    if (options.processes) detail::sum_impacts(*options.processes, error, total, cells);
    if (cells < 1) throw ArgumentError(where, "no cells on any of the " + std::to_string(options.processes->size()) + " processes");

    GeneSetImpact r;
    const double nc = static_cast<double>(cells);
    r.impact = total.all / nc;
    r.gene_saliency = total.abs_sum.transpose() / nc;
    r.gene_saliency_signed = detail::SaliencyWorkspace<Scalar>::factor_saliency(model, total.factor_sum).transpose() / nc;
    const Index grouped_cells = groups.grouped(); // cells without a group are in no group's rest
    for (Index g = 0; g < n_groups; ++g) {
        const Index n_in = groups.sizes[static_cast<std::size_t>(g)];
        MatrixD rest = MatrixD::Zero(S, U); // sum over the other groups, in group order
        for (Index h = 0; h < n_groups; ++h)
            if (h != g) rest += total.group[static_cast<std::size_t>(h)];
        r.impact_in_group.push_back(total.group[static_cast<std::size_t>(g)] / static_cast<double>(n_in));
        r.impact_in_rest.push_back(grouped_cells - n_in > 0 ? MatrixD(rest / static_cast<double>(grouped_cells - n_in))
                                                : MatrixD::Constant(S, U, std::numeric_limits<double>::quiet_NaN()));
    }
    return r;
}

// The same for a genes x cells input matrix.
template <typename Scalar>
GeneSetImpact gene_set_impact(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                              const std::vector<std::vector<Index>>& set_rows, const GroupLabels& groups,
                              const ImpactOptions& options = {}) {
    return gene_set_impact<Scalar>(model, DenseCellBlocks<Scalar>(input), set_rows, groups, options);
}

} // namespace exsal

#endif // EXSAL_INTERPRET_GENE_SET_IMPACT_HPP
