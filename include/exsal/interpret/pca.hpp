#ifndef EXSAL_INTERPRET_PCA_HPP
#define EXSAL_INTERPRET_PCA_HPP

// Principal component analysis of features x samples data (genes x cells, or units x cells),
// for the 2-D maps of the input and of the representation.
//
// Computed in double: features are centred (X_c = X - mean 1^T), then the eigen-decomposition of
// the smaller Gram matrix: X_c X_c^T (features x features) when features <= samples, otherwise
// X_c^T X_c (samples x samples), whose eigenvectors u_k give the loadings v_k = X_c u_k / s_k.
// Scores are V^T X_c. Explained variance ratio of component k: s_k^2 / ||X_c||_F^2.
// Sign convention: in each loading vector the entry of largest magnitude (first one on ties)
// is positive. Components with a negligible singular value (s_k^2 <= 1e-12 s_1^2, or all data
// constant) have zero loadings and scores and ratio 0.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <string>

namespace exsal {

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
        MatrixD gram = MatrixD::Zero(p, p);                           // p x p, X_c X_c^T
        gram.selfadjointView<Eigen::Lower>().rankUpdate(xc);
        const Eigen::SelfAdjointEigenSolver<MatrixD> solver(gram.selfadjointView<Eigen::Lower>());
        for (Index j = 0; j < k; ++j) {                               // ascending -> take from the end
            eigenvalues(j) = std::max(0.0, solver.eigenvalues()(p - 1 - j));
            loadings.col(j) = solver.eigenvectors().col(p - 1 - j);
        }
    } else {
        MatrixD gram = MatrixD::Zero(n, n);                           // n x n, X_c^T X_c
        gram.selfadjointView<Eigen::Lower>().rankUpdate(xc.transpose());
        const Eigen::SelfAdjointEigenSolver<MatrixD> solver(gram.selfadjointView<Eigen::Lower>());
        for (Index j = 0; j < k; ++j) {
            eigenvalues(j) = std::max(0.0, solver.eigenvalues()(n - 1 - j));
            if (eigenvalues(j) > 0.0)                                 // v_j = X_c u_j / s_j
                loadings.col(j) = xc * solver.eigenvectors().col(n - 1 - j) / std::sqrt(eigenvalues(j));
        }
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
