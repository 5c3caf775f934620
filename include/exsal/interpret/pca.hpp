#ifndef EXSAL_INTERPRET_PCA_HPP
#define EXSAL_INTERPRET_PCA_HPP

// Principal component analysis of features x samples data (genes x cells, or units x cells),
// for the 2-D maps of the input and of the representation.
//
// Computed in double: features are centred (X_c = X - mean 1^T), then the top eigenpairs of the
// smaller Gram matrix: X_c X_c^T (features x features) when features <= samples, otherwise
// X_c^T X_c (samples x samples), whose eigenvectors u_k give the loadings v_k = X_c u_k / s_k.
// Gram matrices up to 256 x 256 (or components > size / 8) use Eigen's dense
// SelfAdjointEigenSolver; larger ones a block subspace iteration with Rayleigh-Ritz from a fixed
// seed (cost ~ size^2 x block per step instead of ~ 9 size^3), converged to a residual
// ||G v - theta v|| <= 1e-10 theta_1, falling back to the dense solver when the spectrum is too
// flat to converge in a bounded number of steps. Both are deterministic.
// Scores are V^T X_c. Explained variance ratio of component k: s_k^2 / ||X_c||_F^2.
// Sign convention: in each loading vector the entry of largest magnitude (first one on ties)
// is positive. Components with a negligible singular value (s_k^2 <= 1e-12 s_1^2, or all data
// constant) have zero loadings and scores and ratio 0.

#include "exsal/core/error.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/types.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace exsal {

namespace detail {

// Top-k eigenpairs of a symmetric positive semi-definite matrix (only the lower triangle is
// read): eigenvalues descending in `values`, unit eigenvectors in the columns of `vectors`.
inline void top_eigenpairs(const MatrixD& gram, Index k, VectorD& values, MatrixD& vectors) {
    const Index m = gram.rows();
    const auto dense = [&] {
        const Eigen::SelfAdjointEigenSolver<MatrixD> solver(gram.selfadjointView<Eigen::Lower>());
        values.resize(k);
        vectors.resize(m, k);
        for (Index j = 0; j < k; ++j) { // ascending -> take from the end
            values(j) = solver.eigenvalues()(m - 1 - j);
            vectors.col(j) = solver.eigenvectors().col(m - 1 - j);
        }
    };
    if (m <= 256 || 8 * k > m) return dense();

    const MatrixD g = gram.selfadjointView<Eigen::Lower>();          // m x m, full symmetric
    const Index b = std::min(m, std::max(2 * k, k + 16));             // block size
    const int max_steps = static_cast<int>(std::max<Index>(60, m / (2 * b))); // <= ~10 % of a dense solve
    Rng rng(0x9ca5eedULL);
    MatrixD q(m, b);                                                  // m x b, orthonormal basis
    for (Index j = 0; j < b; ++j)
        for (Index i = 0; i < m; ++i) q(i, j) = rng.normal();
    q = Eigen::HouseholderQR<MatrixD>(q).householderQ() * MatrixD::Identity(m, b);
    MatrixD z(m, b);                                                  // m x b, G Q
    std::vector<double> history;                                      // relative residual per step
    for (int step = 0; step < max_steps; ++step) {
        z.noalias() = g * q;
        const MatrixD t = q.transpose() * z;                          // b x b, Q^T G Q
        const Eigen::SelfAdjointEigenSolver<MatrixD> ritz(t);
        // Ritz pairs, descending: vectors Q S, residuals Z S - Q S theta.
        const MatrixD s = ritz.eigenvectors().rowwise().reverse().leftCols(k); // b x k
        const VectorD theta = ritz.eigenvalues().reverse().head(k);
        if (!(theta(0) > 0.0)) break;                                 // G = 0: dense handles it
        const MatrixD residual = z * s - (q * s) * theta.asDiagonal();        // m x k
        const double relative = residual.colwise().norm().maxCoeff() / theta(0);
        if (relative <= 1e-10) {
            values = theta;
            vectors = q * s;
            return;
        }
        history.push_back(relative);
        // Give up early when the observed rate over the last 5 steps cannot reach the
        // tolerance within the step budget (flat spectrum): the dense solver is then cheaper.
        if (history.size() > 5) {
            const double rate = std::pow(relative / history[history.size() - 6], 0.2);
            if (!(rate < 1.0) || step + std::log(1e-10 / relative) / std::log(rate) > max_steps) break;
        }
        q = Eigen::HouseholderQR<MatrixD>(z).householderQ() * MatrixD::Identity(m, b);
    }
    dense();
}

} // namespace detail

struct PcaResult {
    MatrixF scores;                   // components x samples, V^T (X - mean)
    VectorF explained_variance_ratio; // components, s_k^2 / total sum of squares of X - mean
    MatrixF loadings;                 // features x components, orthonormal columns V
    VectorF mean;                     // features, the centre subtracted from X
};

// The first `components` principal components of `data` (features x samples). Throws
// ArgumentError (naming pca) unless 1 <= components <= min(features, samples) and all values
// are finite.
inline PcaResult pca(const ConstMatrixRef<float>& data, int components) {
    const Index p = data.rows(), n = data.cols();
    if (p < 1 || n < 1) throw ArgumentError("pca", "the data matrix is empty");
    if (components < 1 || components > std::min(p, n))
        throw ArgumentError("pca", "components must be in [1, " + std::to_string(std::min(p, n)) + "], got " +
                                       std::to_string(components));
    if (!data.allFinite()) throw ArgumentError("pca", "the data contain non-finite values");
    const Index k = components;

    const VectorD mean = data.cast<double>().rowwise().mean();        // p
    const MatrixD xc = data.cast<double>().colwise() - mean;          // p x n, centred
    const double total = xc.squaredNorm();                            // sum of all eigenvalues

    MatrixD loadings = MatrixD::Zero(p, k);                           // p x k, V
    VectorD eigenvalues = VectorD::Zero(k);                           // k, s_j^2 descending
    if (p <= n) {
        MatrixD gram = MatrixD::Zero(p, p);                           // p x p, X_c X_c^T (lower)
        gram.selfadjointView<Eigen::Lower>().rankUpdate(xc);
        detail::top_eigenpairs(gram, k, eigenvalues, loadings);
        eigenvalues = eigenvalues.cwiseMax(0.0);
    } else {
        MatrixD gram = MatrixD::Zero(n, n);                           // n x n, X_c^T X_c (lower)
        gram.selfadjointView<Eigen::Lower>().rankUpdate(xc.transpose());
        MatrixD u;                                                    // n x k, eigenvectors u_j
        detail::top_eigenpairs(gram, k, eigenvalues, u);
        eigenvalues = eigenvalues.cwiseMax(0.0);
        for (Index j = 0; j < k; ++j)                                 // v_j = X_c u_j / s_j
            if (eigenvalues(j) > 0.0) loadings.col(j) = xc * u.col(j) / std::sqrt(eigenvalues(j));
    }

    // Drop negligible components; fix signs (largest-|loading| entry positive).
    const double largest = eigenvalues(0);
    for (Index j = 0; j < k; ++j) {
        if (!(largest > 0.0) || eigenvalues(j) <= 1e-12 * largest) {
            eigenvalues(j) = 0.0;
            loadings.col(j).setZero();
            continue;
        }
        Index arg = 0;
        loadings.col(j).cwiseAbs().maxCoeff(&arg);
        if (loadings(arg, j) < 0.0) loadings.col(j) = -loadings.col(j);
    }

    PcaResult result;
    result.scores = (loadings.transpose() * xc).cast<float>();        // k x n
    result.explained_variance_ratio =
        (total > 0.0 ? VectorD(eigenvalues / total) : VectorD(VectorD::Zero(k))).cast<float>();
    result.loadings = loadings.cast<float>();
    result.mean = mean.cast<float>();
    return result;
}

} // namespace exsal

#endif // EXSAL_INTERPRET_PCA_HPP
