#ifndef EXSAL_REPORT_CLUSTER_HPP
#define EXSAL_REPORT_CLUSTER_HPP

// Hierarchical clustering to order the rows (or, on the transpose, the columns) of a heatmap so
// that similar profiles sit next to each other.
//
// Distance between items (rows) i and j: d(i, j) = 1 - r(i, j), r the Pearson correlation over
// the columns where both values are finite (pairwise; NaN and infinite entries are left out).
// With fewer than 2 shared finite values, or a constant profile over the shared values, d = 1
// (as for uncorrelated rows). d(i, i) = 0; d lies in [0, 2].
//
// Linkage: average (UPGMA). Each step merges the two clusters with the smallest distance, the
// distance of the merged cluster A u B to any other K being
//   d(A u B, K) = (|A| d(A, K) + |B| d(B, K)) / (|A| + |B|).
// Ties: the pair whose smaller, then larger, lowest member index is lowest (clusters are named by
// their lowest member index).
//
// Leaf order (deterministic, no optimal leaf ordering): every cluster keeps its leaves as a list.
// Merging A (the cluster with the lower lowest index) and B gives A then B, where either list may
// be reversed (a reversal is a flip of every node of that subtree, so the result is still a leaf
// order of the dendrogram): of A.B, A.rev(B), rev(A).B, rev(A).rev(B) the first one whose two
// adjoining leaves are closest is taken. At the end the whole order is reversed if its first leaf
// has a higher index than its last. Cost: O(n^2 m) for the distances (n items, m columns) and
// O(n^3) for the merges, fine for a few hundred items.

#include "exsal/core/types.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace exsal {

// n x n distances 1 - Pearson correlation between the rows of `rows_as_items` (rules above).
inline MatrixD correlation_distances(const MatrixD& rows_as_items) {
    const Index n = rows_as_items.rows(), m = rows_as_items.cols();
    MatrixD d = MatrixD::Zero(n, n);
    for (Index i = 0; i < n; ++i)
        for (Index j = i + 1; j < n; ++j) {
            // Pass 1: shared finite columns, their means and whether either profile is constant.
            Index shared = 0;
            double sum_i = 0.0, sum_j = 0.0;
            double lo_i = std::numeric_limits<double>::infinity(), hi_i = -lo_i, lo_j = lo_i, hi_j = -lo_i;
            for (Index k = 0; k < m; ++k) {
                const double a = rows_as_items(i, k), b = rows_as_items(j, k);
                if (!std::isfinite(a) || !std::isfinite(b)) continue;
                ++shared;
                sum_i += a;
                sum_j += b;
                lo_i = std::min(lo_i, a);
                hi_i = std::max(hi_i, a);
                lo_j = std::min(lo_j, b);
                hi_j = std::max(hi_j, b);
            }
            double dist = 1.0;
            if (shared >= 2 && lo_i < hi_i && lo_j < hi_j) {
                // Pass 2: r = sum (a - mean_a)(b - mean_b) / sqrt(sum (a - mean_a)^2 sum (b - mean_b)^2).
                const double mean_i = sum_i / static_cast<double>(shared), mean_j = sum_j / static_cast<double>(shared);
                double sxy = 0.0, sxx = 0.0, syy = 0.0;
                for (Index k = 0; k < m; ++k) {
                    const double a = rows_as_items(i, k), b = rows_as_items(j, k);
                    if (!std::isfinite(a) || !std::isfinite(b)) continue;
                    sxy += (a - mean_i) * (b - mean_j);
                    sxx += (a - mean_i) * (a - mean_i);
                    syy += (b - mean_j) * (b - mean_j);
                }
                const double r = sxy / std::sqrt(sxx * syy);
                if (std::isfinite(r)) dist = 1.0 - std::clamp(r, -1.0, 1.0);
            }
            d(i, j) = d(j, i) = dist;
        }
    return d;
}

// Leaf order of the average-linkage dendrogram of the rows of `rows_as_items` (items x features;
// rules at the top of this header): a permutation of 0 .. rows - 1. For columns pass the
// transpose. 0 rows give an empty order, 1 row gives {0}.
inline std::vector<Index> cluster_order(const MatrixD& rows_as_items) {
    const Index n = rows_as_items.rows();
    const MatrixD leaf_distance = correlation_distances(rows_as_items);
    MatrixD d = leaf_distance;                                    // cluster x cluster, valid between active slots
    std::vector<std::vector<Index>> leaves(static_cast<std::size_t>(n)); // per slot: its leaves in order
    std::vector<Index> size(static_cast<std::size_t>(n), 1);
    std::vector<bool> active(static_cast<std::size_t>(n), true);
    for (Index i = 0; i < n; ++i) leaves[static_cast<std::size_t>(i)] = {i};

    // Slot i holds the cluster whose lowest member is i: a merge of slots a < b lands in slot a.
    for (Index step = 1; step < n; ++step) {
        Index a = -1, b = -1;
        double best = std::numeric_limits<double>::infinity();
        for (Index i = 0; i < n; ++i) {
            if (!active[static_cast<std::size_t>(i)]) continue;
            for (Index j = i + 1; j < n; ++j)
                if (active[static_cast<std::size_t>(j)] && d(i, j) < best) {
                    best = d(i, j);
                    a = i;
                    b = j;
                }
        }
        const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);

        // Orientation: the first of A.B, A.rev(B), rev(A).B, rev(A).rev(B) with the closest join.
        std::vector<Index>& left = leaves[ia];
        std::vector<Index>& right = leaves[ib];
        const double joins[4] = {leaf_distance(left.back(), right.front()), leaf_distance(left.back(), right.back()),
                                 leaf_distance(left.front(), right.front()), leaf_distance(left.front(), right.back())};
        const int pick = static_cast<int>(std::min_element(joins, joins + 4) - joins); // first minimum
        if (pick >= 2) std::reverse(left.begin(), left.end());
        if (pick == 1 || pick == 3) std::reverse(right.begin(), right.end());
        left.insert(left.end(), right.begin(), right.end());
        right.clear();

        // Average linkage: d(A u B, K) = (|A| d(A, K) + |B| d(B, K)) / (|A| + |B|).
        const double na = static_cast<double>(size[ia]), nb = static_cast<double>(size[ib]);
        for (Index k = 0; k < n; ++k) {
            if (!active[static_cast<std::size_t>(k)] || k == a || k == b) continue;
            d(a, k) = d(k, a) = (na * d(a, k) + nb * d(b, k)) / (na + nb);
        }
        size[ia] += size[ib];
        active[ib] = false;
    }
    std::vector<Index> order = n > 0 ? std::move(leaves[0]) : std::vector<Index>{};
    if (!order.empty() && order.front() > order.back()) std::reverse(order.begin(), order.end());
    return order;
}

} // namespace exsal

#endif // EXSAL_REPORT_CLUSTER_HPP
