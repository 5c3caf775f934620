#ifndef EXSAL_INTERPRET_SALIENCY_HPP
#define EXSAL_INTERPRET_SALIENCY_HPP

// Saliency maps of the representation units (Simonyan et al. 2014; guided backprop: Springenberg et al. 2015): for unit u and cell c the
// gradient of r_u(x_c) with respect to the input genes, through the encoder layers
// 0..R (R = model.representation_layer()), computed for all units of a cell at once.
//
// Per cell, with z_l = W_l h_l + b_l, h_{l+1} = f_l(z_l), h_0 = x, D_l = f_l'(z_l):
//   M_R  = clamp(diag(D_R))                         U x U      (seed e_u at r = h_{R+1}, all u)
//   M_l  = clamp(diag(D_l) W_{l+1}^T M_{l+1})       width_l x U, l = R-1 .. 0
//   S    = W_0^T M_0                                G x U      (signed saliency, genes x units)
// clamp(.) = max(., 0) for guided backprop (the paper's choice: the gradient with respect to
// every activation's INPUT z is set to zero where negative) and the identity for the vanilla
// gradient. For a block of B cells the M's of its cells are laid side by side
// (width x (U * B), column j * U + u = cell j, unit u), so every step is one matrix product and
// the last one, G x width times width x (U B), costs U x H1 x G multiply-adds per cell.
//
// Two layouts of a block's saliency: genes x (U B) (column j U + u, a unit's map over the genes
// contiguous; for_each_saliency_block's default), or (U B) x genes (row j U + u: the U units of a
// gene and cell contiguous, which the per-cell statistics over gene sets read: a gene of a set is
// one run of U values instead of U values G apart). The last product is then M_0^T W_0.
//
// Streaming: blocks of cells run in parallel (OpenMP, one block per iteration, per-thread scratch
// sized once), memory O(threads x G x U x block_cells) scalars, never O(cells x U x G).
// Everything is computed in the model's Scalar (float in production).

#include "exsal/core/denormals.hpp"
#include "exsal/core/error.hpp"
#include "exsal/core/process_group.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/autoencoder.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace exsal {

enum class SaliencyKind { guided, vanilla };

inline const char* to_string(SaliencyKind k) { return k == SaliencyKind::guided ? "guided" : "vanilla"; }

// "guided" or "vanilla"; throws ArgumentError otherwise.
inline SaliencyKind saliency_kind_from_string(const std::string& s) {
    if (s == "guided") return SaliencyKind::guided;
    if (s == "vanilla") return SaliencyKind::vanilla;
    throw ArgumentError("exsal::saliency_kind_from_string", "unknown saliency '" + s + "' (guided, vanilla)");
}

enum class SaliencyLayout {
    genes_by_units, // G x (U n): column j U + u = unit u of cell j, over the genes
    units_by_genes  // (U n) x G: row j U + u = unit u of cell j; column g = gene g
};

struct SaliencyOptions {
    SaliencyKind kind = SaliencyKind::guided;
    // Cells per block; scratch per thread is G x (U * block_cells) scalars. 16 keeps a block (16 MB
    // at 64 units x 4,000 genes) nearer the cache than 64 did: the saliency passes 14-19 % faster
    // on 2 threads at 1,000-4,000 genes, the same at 20,000.
    Index block_cells = 16;
    SaliencyLayout layout = SaliencyLayout::genes_by_units;
};

namespace detail {
// Cells of the block a chunk of saliency belongs to (internal visitors: see saliency_blocks).
struct CellSpan {
    Index first = 0, count = 0;
    Index gene_first = 0, genes = 0; // the genes of the saliency handed out (a tile of them, or all)
};
// Cells per chunk of the interpretation's saliency: 8 cells x 64 units x 4,000 genes are 8 MB of
// floats, which stay in the last-level cache between the product that writes them and the
// statistics that read them (a whole block of 64 cells, 65 MB, went to memory and back).
constexpr Index saliency_chunk_cells = 8;
// Genes per tile where a statistic can take a chunk's saliency a tile at a time: 8 cells x 64 units
// x 256 genes are 512 KiB, which stay in L2 between the product that writes them and the statistic
// that reads them (group_programmes: 8-15 % faster than whole chunks; 256 measured a little ahead
// of 512 and 1,024).
constexpr Index saliency_tile_genes = 256;
} // namespace detail

// The network input of the cells to interpret, handed out block by block, so that it need not be
// held as one genes x cells matrix: a dense matrix (DenseCellBlocks), or cells gathered from
// sparse storage and transformed on demand (the pipeline's). block() is called by several
// threads at once and must not change the source.
template <typename Scalar>
class CellBlockSource {
public:
    virtual ~CellBlockSource() = default;
    virtual Index genes() const = 0;
    virtual Index cells() const = 0;
    // The input of cells first .. first + n - 1, genes x n: a view of the source's own storage,
    // or `scratch` (the calling thread's) filled. Valid until the next call with that scratch.
    virtual ConstMatrixRef<Scalar> block(Index first, Index n, Matrix<Scalar>& scratch) const = 0;
};

// Cells first .. first + count - 1 of another source (which must outlive it): a process's share
// of the cells in a data-parallel interpretation.
template <typename Scalar>
class CellRangeBlocks final : public CellBlockSource<Scalar> {
public:
    CellRangeBlocks(const CellBlockSource<Scalar>& cells, Index first, Index count) : m_cells(cells), m_first(first), m_count(count) {
        if (first < 0 || count < 0 || first + count > cells.cells())
            throw ArgumentError("exsal::CellRangeBlocks", "cells " + std::to_string(first) + " .. " + std::to_string(first + count - 1) +
                                                              " are not among the source's " + std::to_string(cells.cells()));
    }
    Index genes() const override { return m_cells.genes(); }
    Index cells() const override { return m_count; }
    ConstMatrixRef<Scalar> block(Index first, Index n, Matrix<Scalar>& scratch) const override {
        return m_cells.block(m_first + first, n, scratch);
    }

private:
    const CellBlockSource<Scalar>& m_cells;
    Index m_first, m_count;
};

// A genes x cells matrix as a block source (views, no copies).
template <typename Scalar>
class DenseCellBlocks final : public CellBlockSource<Scalar> {
public:
    explicit DenseCellBlocks(const ConstMatrixRef<Scalar>& input) : m_input(input) {}
    Index genes() const override { return m_input.rows(); }
    Index cells() const override { return m_input.cols(); }
    ConstMatrixRef<Scalar> block(Index first, Index n, Matrix<Scalar>&) const override { return m_input.middleCols(first, n); }

private:
    ConstMatrixRef<Scalar> m_input;
};

namespace detail {

// T in a non-deduced context: functions templated on the model's Scalar take the input as
// ConstMatrixRef<Scalar> and still accept a Matrix, a Map or a block without <Scalar>.
template <typename T>
struct NonDeduced {
    using type = T;
};
template <typename Scalar>
using InputRef = typename NonDeduced<ConstMatrixRef<Scalar>>::type;

// Per-thread scratch for the saliency of one block of cells; sized once by reserve().
template <typename Scalar>
class SaliencyWorkspace {
public:
    using Mat = Matrix<Scalar>;

    // Sizes every buffer for blocks of up to `block` cells, whose saliency is formed `chunk` cells
    // at a time (chunk <= block).
    void reserve(const Autoencoder<Scalar>& model, Index block, Index chunk) {
        const Index R = model.representation_layer(), U = model.units();
        m_z.resize(static_cast<std::size_t>(R + 1));
        m_y.resize(static_cast<std::size_t>(R + 1));
        m_d.resize(static_cast<std::size_t>(R + 1));
        Index widest_hidden = 1;
        for (Index l = 0; l <= R; ++l) {
            const Index out = model.layer(l).out_size();
            m_z[static_cast<std::size_t>(l)].resize(out, block);
            m_y[static_cast<std::size_t>(l)].resize(out, block);
            m_d[static_cast<std::size_t>(l)].resize(out, block);
            if (l < R) widest_hidden = std::max(widest_hidden, out);
        }
        m_a.resize(widest_hidden, U * block);
        m_b.resize(widest_hidden, U * block);
        m_out.resize(model.n_genes() * U * chunk, 1); // either layout
        m_wt = model.layer(R).weights().transpose();
        m_block = block;
        m_chunk = chunk;
    }
    void reserve(const Autoencoder<Scalar>& model, Index block) { reserve(model, block, block); }
    Index capacity() const noexcept { return m_block; }

    // Signed saliency of the cells x (G x n, n <= capacity()): returns G x (U n), column j U + u =
    // cell j, unit u, or its transpose (U n) x G for units_by_genes. The view stays valid until
    // the next call.
    Eigen::Map<const Mat> compute(const Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& x, SaliencyKind kind,
                                  SaliencyLayout layout = SaliencyLayout::genes_by_units) {
        backward(model, x, kind);
        return saliency(model, 0, x.cols(), layout);
    }

    // The two halves of compute(): backward() takes the block down to the first layer's input
    // gradient (M_0 of every cell), saliency() then forms the saliency of cells first ..
    // first + n - 1 of the block (n <= the chunk of reserve()), so that a block's saliency can be
    // used a few cells at a time while it is in cache.
    void backward(const Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& x, SaliencyKind kind) {
        const Index R = model.representation_layer(), U = model.units(), n = x.cols();
        const bool guided = kind == SaliencyKind::guided;
        m_guided = guided;
        // Forward through the encoder: z_l, y_l = f(z_l), D_l = f'(z_l), each out_l x n.
        for (Index l = 0; l <= R; ++l) {
            const auto s = static_cast<std::size_t>(l);
            Mat& z = m_z[s];
            Mat& y = m_y[s];
            if (z.cols() != n) { // only the last, shorter block reallocates
                z.resize(z.rows(), n);
                y.resize(y.rows(), n);
                m_d[s].resize(m_d[s].rows(), n);
            }
            if (l == 0)
                model.layer(0).apply(x, z, y);
            else
                model.layer(l).apply(m_y[s - 1], z, y);
            model.layer(l).derivative(z, y, m_d[s]);
        }
        m_cur = nullptr;
        if (R == 0) return; // the representation layer reads the input: saliency() does it all
        // First step: dr_u/dh_R for all u = W_R^T clamp(diag(D_R)), in_R x (U n); column j U + u =
        // W_R(u, :)^T * clamp(D_R(u, j)).
        Mat* cur = &m_a;
        Mat* spare = &m_b;
        const Mat& d_top = m_d[static_cast<std::size_t>(R)];
        for (Index j = 0; j < n; ++j) {
            auto cols = cur->block(0, j * U, m_wt.rows(), U);
            if (guided)
                cols.noalias() = m_wt * d_top.col(j).cwiseMax(Scalar(0)).asDiagonal();
            else
                cols.noalias() = m_wt * d_top.col(j).asDiagonal();
        }
        // Down the encoder: g_z = clamp(g_h * f'(z_l)) per cell, then g_h_l = W_l^T g_z; for l = 0
        // only the clamp (the last product is saliency()'s).
        for (Index l = R - 1; l >= 0; --l) {
            const Mat& d = m_d[static_cast<std::size_t>(l)];
            const Index width = d.rows();
            for (Index j = 0; j < n; ++j) {
                auto cols = cur->block(0, j * U, width, U);
                cols.array().colwise() *= d.col(j).array(); // width x U, g_y * f'(z)
                if (guided) cols = cols.cwiseMax(Scalar(0));
            }
            if (l == 0) break;
            const auto& w = model.layer(l).weights(); // width x in_l
            spare->topLeftCorner(w.cols(), U * n).noalias() = w.transpose() * cur->topLeftCorner(width, U * n);
            std::swap(cur, spare);
        }
        m_cur = cur;
    }

    Eigen::Map<const Mat> saliency(const Autoencoder<Scalar>& model, Index first, Index n, SaliencyLayout layout) {
        const Index U = model.units(), G = model.n_genes();
        if (layout == SaliencyLayout::units_by_genes) return saliency_tile(model, first, n, 0, G); // all genes
        Eigen::Map<Mat> out_g(m_out.data(), G, U * n);
        if (!m_cur) { // R = 0: S = W_R^T clamp(diag(D_R)) per cell
            for (Index j = 0; j < n; ++j) {
                const Vector<Scalar> d = top_factor(first + j);
                out_g.middleCols(j * U, U).noalias() = m_wt * d.asDiagonal();
            }
        } else {
            const auto& w = model.layer(0).weights(); // H_1 x G
            out_g.noalias() = w.transpose() * m_cur->block(0, first * U, w.rows(), U * n);
        }
        return Eigen::Map<const Mat>(m_out.data(), G, U * n);
    }

    // After backward(): the saliency of cells first .. first + n - 1 of the block for genes g0 ..
    // g0 + w - 1 only, units_by_genes ((U n) x w): a tile whose product output stays in L2
    // (saliency() in that layout is the tile of all genes). R = 0: W_R^T clamp(diag(D_R)) per cell.
    Eigen::Map<const Mat> saliency_tile(const Autoencoder<Scalar>& model, Index first, Index n, Index g0, Index w) {
        const Index U = model.units();
        Eigen::Map<Mat> out(m_out.data(), U * n, w);
        if (!m_cur) {
            for (Index j = 0; j < n; ++j) {
                const Vector<Scalar> d = top_factor(first + j);
                out.middleRows(j * U, U).noalias() = d.asDiagonal() * m_wt.middleRows(g0, w).transpose();
            }
        } else {
            const auto& W = model.layer(0).weights(); // H_1 x G
            out.noalias() = m_cur->block(0, first * U, W.rows(), U * n).transpose() * W.middleCols(g0, w);
        }
        return Eigen::Map<const Mat>(m_out.data(), U * n, w);
    }

    // After backward(): the saliency of weighted sums of the units, sum_u weights(u, k) r_u, one
    // per column (j, k) of `columns` (cell j of the block, weights column k): out (G x columns),
    // row g = sum_u weights(u, k) dr_u/dx_g of that cell. Formed as W_0^T (M_0 weights), a product
    // with K = the first hidden width instead of a U-term sum per gene over the cell's G x U
    // saliency. v: scratch (resized here).
    void weighted_saliency(const Autoencoder<Scalar>& model, const std::vector<std::pair<Index, Index>>& columns,
                           const ConstMatrixRef<Scalar>& weights, Mat& v, Mat& out) const {
        const Index U = model.units(), G = model.n_genes(), n = static_cast<Index>(columns.size());
        out.resize(G, n);
        if (!m_cur) { // R = 0: sum_u w_k(u) clamp(D_R(u)) W_R(u, g)
            v.resize(U, n);
            for (Index i = 0; i < n; ++i) {
                const auto [j, k] = columns[static_cast<std::size_t>(i)];
                v.col(i) = top_factor(j).cwiseProduct(weights.col(k));
            }
            out.noalias() = m_wt * v;
            return;
        }
        const auto& w = model.layer(0).weights(); // H_1 x G
        v.resize(w.rows(), n);
        for (Index i = 0; i < n; ++i) {
            const auto [j, k] = columns[static_cast<std::size_t>(i)];
            v.col(i).noalias() = m_cur->block(0, j * U, w.rows(), U) * weights.col(k);
        }
        out.noalias() = w.transpose() * v;
    }

    // The saliency of a cell factors as F_c^T W_0 (F_c: M_0 of the cell, first hidden width x U;
    // W_0: the first layer's weights), or as diag(F_c) W_R when the representation layer reads the
    // input (F_c: the cell's D_R, clamped for guided saliency, as a 1 x U row). So the sum of the
    // cells' saliency is factor_saliency() of the sum of their F_c: a product the size of one
    // cell's saliency instead of a G x U addition per cell.
    static Index factor_rows(const Autoencoder<Scalar>& model) {
        return model.representation_layer() == 0 ? 1 : model.layer(0).weights().rows();
    }
    // After backward(): adds F_c of cells first .. first + n - 1 of the block to sum
    // (factor_rows x U), in double, the cells in order.
    void add_factor_sum(const Autoencoder<Scalar>& model, Index first, Index n, MatrixD& sum) const {
        const Index U = model.units();
        if (!m_cur) {
            for (Index j = 0; j < n; ++j) sum.row(0) += top_factor(first + j).transpose().template cast<double>();
            return;
        }
        const Index H = model.layer(0).weights().rows();
        for (Index j = 0; j < n; ++j) sum += m_cur->block(0, (first + j) * U, H, U).template cast<double>();
    }
    // U x G: the sum of the saliency of the cells whose F_c add up to sum.
    static MatrixD factor_saliency(const Autoencoder<Scalar>& model, const MatrixD& sum) {
        const MatrixD w = model.layer(0).weights().template cast<double>();
        if (model.representation_layer() == 0) return sum.row(0).transpose().asDiagonal() * w;
        return sum.transpose() * w;
    }

private:
    // R = 0: cell j of the block's D_R (U), clamped at 0 for guided saliency; its saliency is
    // diag(D_R) W_R.
    Vector<Scalar> top_factor(Index j) const {
        const auto d = m_d[0].col(j);
        return m_guided ? Vector<Scalar>(d.cwiseMax(Scalar(0))) : Vector<Scalar>(d);
    }

    std::vector<Mat> m_z, m_y, m_d; // per encoder layer l: out_l x block; z, f(z), f'(z)
    Mat m_a, m_b;                   // widest hidden width x (U block): backward ping-pong buffers
    Mat m_out;                      // G U block scalars: the saliency block, in either layout
    Mat m_wt;                       // in_R x U: W_R^T (the representation layer's weights)
    Mat* m_cur = nullptr;           // after backward(): M_0 of the block (null when R = 0)
    bool m_guided = true;
    Index m_block = 0, m_chunk = 0;
};

inline void check_saliency_arguments(const char* where, Index model_genes, Index rows, Index block_cells) {
    if (rows != model_genes)
        throw ArgumentError(where, "input has " + std::to_string(rows) + " genes (rows), the model " +
                                       std::to_string(model_genes));
    if (block_cells < 1) throw ArgumentError(where, "block_cells must be >= 1, got " + std::to_string(block_cells));
}

inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Shared driver: visitor(thread, first_cell, saliency, input, block) in parallel, with `input` the
// network input of the saliency's cells (genes x n) and `block` the block they belong to;
// merge(thread, first_cell, n) in block order, one at a time. With chunk > 0 the saliency of a
// block is handed out `chunk` cells at a time (consecutive calls of one thread, in cell order), so
// that it is read while still in cache; 0: the whole block at once. With tile > 0 each chunk's
// saliency comes `tile` genes at a time, in gene order (units_by_genes, (U n) x genes; the block
// argument's gene_first and genes say which), else all G genes at once (gene_first 0, genes G). A
// visitor that takes a sixth argument gets the thread's workspace too (after backward() of the
// block: weighted_saliency()).
// Exceptions thrown by either (or by the source) are caught and the first is rethrown after the
// parallel region (remaining blocks are skipped).
template <typename Scalar, typename Visitor, typename Merge>
void saliency_blocks(const Autoencoder<Scalar>& model, const CellBlockSource<Scalar>& source,
                     const SaliencyOptions& options, Visitor& visitor, Merge* merge, Index chunk = 0, Index tile = 0) {
    const Index C = source.cells();
    if (C == 0) return;
    const Index block = std::min(options.block_cells, C);
    chunk = chunk > 0 ? std::min(chunk, block) : block;
    const Index n_blocks = (C + block - 1) / block;
    const int n_threads = static_cast<int>(std::min<Index>(threads(), n_blocks));
    std::exception_ptr error;
    std::atomic<bool> failed{false};
#pragma omp parallel num_threads(n_threads)
    {
        const FlushDenormals flush;
        SaliencyWorkspace<Scalar> ws;
        Matrix<Scalar> scratch;
        try {
            ws.reserve(model, block, chunk);
        } catch (...) {
#pragma omp critical(exsal_saliency_error)
            if (!error) error = std::current_exception();
            failed = true;
        }
        const int t = thread_id();
#pragma omp for ordered schedule(static, 1)
        for (Index b = 0; b < n_blocks; ++b) {
            const Index c0 = b * block, n = std::min(block, C - c0);
            if (!failed) {
                try {
                    const ConstMatrixRef<Scalar> x = source.block(c0, n, scratch);
                    ws.backward(model, x, options.kind);
                    for (Index j0 = 0; j0 < n; j0 += chunk) {
                        const Index m = std::min(chunk, n - j0), G = model.n_genes();
                        const ConstMatrixRef<Scalar> cells_x(x.middleCols(j0, m));
                        for (Index g0 = 0; g0 < G; g0 += tile > 0 ? tile : G) { // gene tiles in order
                            const Index w = tile > 0 ? std::min(tile, G - g0) : G;
                            const ConstMatrixRef<Scalar> saliency(tile > 0 ? ws.saliency_tile(model, j0, m, g0, w)
                                                                           : ws.saliency(model, j0, m, options.layout));
                            const CellSpan span{c0, n, g0, w};
                            if constexpr (std::is_invocable_v<Visitor&, int, Index, const ConstMatrixRef<Scalar>&, const ConstMatrixRef<Scalar>&,
                                                              const CellSpan&, const SaliencyWorkspace<Scalar>&>)
                                visitor(t, c0 + j0, saliency, cells_x, span, std::as_const(ws));
                            else
                                visitor(t, c0 + j0, saliency, cells_x, span);
                        }
                    }
                } catch (...) {
#pragma omp critical(exsal_saliency_error)
                    if (!error) error = std::current_exception();
                    failed = true;
                }
            }
#pragma omp ordered
            {
                if (merge && !failed) {
                    try {
                        (*merge)(t, c0, n);
                    } catch (...) {
#pragma omp critical(exsal_saliency_error)
                        if (!error) error = std::current_exception();
                        failed = true;
                    }
                }
            }
        }
    }
    if (error) std::rethrow_exception(error);
}

template <typename Scalar, typename Visitor, typename Merge>
void saliency_blocks(const Autoencoder<Scalar>& model, const ConstMatrixRef<Scalar>& input, const SaliencyOptions& options,
                     Visitor& visitor, Merge* merge, Index chunk = 0) {
    saliency_blocks<Scalar>(model, DenseCellBlocks<Scalar>(input), options, visitor, merge, chunk);
}

// Sum of the network input over the cells of `input` (genes), in double: blocks of 256 cells
// summed in parallel and added in cell order (the same bits for any thread count).
template <typename Scalar>
VectorD input_sum(const CellBlockSource<Scalar>& input) {
    const Index C = input.cells(), G = input.genes(), block = 256;
    VectorD total = VectorD::Zero(G);
    if (C == 0) return total;
    const Index n_blocks = (C + block - 1) / block;
    std::exception_ptr error;
    std::atomic<bool> failed{false};
#pragma omp parallel num_threads(static_cast<int>(std::min<Index>(threads(), n_blocks)))
    {
        Matrix<Scalar> scratch;
        VectorD part(G);
#pragma omp for ordered schedule(static, 1)
        for (Index b = 0; b < n_blocks; ++b) {
            const Index c0 = b * block, n = std::min(block, C - c0);
            if (!failed) {
                try {
                    const ConstMatrixRef<Scalar> x = input.block(c0, n, scratch);
                    part.setZero();
                    for (Index j = 0; j < n; ++j) part += x.col(j).template cast<double>();
                } catch (...) {
#pragma omp critical(exsal_saliency_error)
                    if (!error) error = std::current_exception();
                    failed = true;
                }
            }
#pragma omp ordered
            if (!failed) total += part;
        }
    }
    if (error) std::rethrow_exception(error);
    return total;
}

// Mean network input over the cells of `input` (genes; zero without cells), or with `processes`
// over the cells of every process (collective: a failure to read on one process throws on all).
template <typename Scalar>
VectorD input_mean(const CellBlockSource<Scalar>& input, ProcessGroup* processes = nullptr) {
    const Index G = input.genes();
    if (!processes) {
        const VectorD total = input_sum(input);
        return input.cells() > 0 ? VectorD(total / static_cast<double>(input.cells())) : total;
    }
    VectorD buffer = VectorD::Zero(G + 2); // sums, cells, failures
    std::exception_ptr error;
    try {
        buffer.head(G) = input_sum(input);
    } catch (...) {
        error = std::current_exception();
        buffer.head(G).setZero();
    }
    buffer(G) = static_cast<double>(input.cells());
    buffer(G + 1) = error ? 1.0 : 0.0;
    processes->sum(buffer.data(), buffer.size());
    rethrow_if_any_failed(*processes, error, "exsal::interpret: reading the cells", static_cast<std::int64_t>(buffer(G + 1)));
    return buffer(G) > 0.0 ? VectorD(buffer.head(G) / buffer(G)) : VectorD(buffer.head(G));
}

struct NoMerge {
    void operator()(int, Index, Index) const {}
};

} // namespace detail

// Streams signed saliency maps block by block. For each block of up to options.block_cells
// consecutive cells, calls
//   visitor(int thread, Index first_cell, const ConstMatrixRef<Scalar>& block)
// where block is G x (U * n) for the n = block.cols() / U cells first_cell .. first_cell + n - 1,
// column j * U + u = d r_u / d x of cell first_cell + j (signed); with options.layout =
// units_by_genes its transpose, (U * n) x G, row j * U + u. Blocks run in parallel: thread
// is in [0, exsal::threads()) and identifies the calling thread, for per-thread scratch the
// visitor owns; the block view is only valid during the call. Throws ArgumentError when input
// rows != model genes or block_cells < 1; an exception from the visitor stops the stream and is
// rethrown.
template <typename Scalar, typename Visitor>
void for_each_saliency_block(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                             const SaliencyOptions& options, Visitor&& visitor) {
    detail::check_saliency_arguments("exsal::for_each_saliency_block", model.n_genes(), input.rows(), options.block_cells);
    auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& block, const ConstMatrixRef<Scalar>&, const detail::CellSpan&) { visitor(t, first, block); };
    detail::saliency_blocks<Scalar>(model, input, options, visit, static_cast<detail::NoMerge*>(nullptr));
}

// The same with an in-order reduction step: after the visitor of a block has run,
//   merge(int thread, Index first_cell, Index n_cells)
// is called for the blocks in cell order, one call at a time (so merging per-thread partial
// results into totals there gives results independent of the thread count).
template <typename Scalar, typename Visitor, typename Merge>
void for_each_saliency_block(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                             const SaliencyOptions& options, Visitor&& visitor, Merge&& merge) {
    detail::check_saliency_arguments("exsal::for_each_saliency_block", model.n_genes(), input.rows(), options.block_cells);
    auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& block, const ConstMatrixRef<Scalar>&, const detail::CellSpan&) { visitor(t, first, block); };
    detail::saliency_blocks<Scalar>(model, input, options, visit, &merge);
}

// Mean over cells of |saliency|: genes x units, accumulated in double (per block, then blocks
// added in cell order: the same result for any thread count at a given block size). The block's
// saliency comes detail::saliency_chunk_cells cells at a time, read while it is in cache; its
// cells are still added in order from zero at the block's start, so the chunks change no bit.
// options.layout does not apply (the result is genes x units either way).
template <typename Scalar>
MatrixD mean_abs_saliency(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input,
                          SaliencyOptions options = {}) {
    const char* where = "exsal::mean_abs_saliency";
    detail::check_saliency_arguments(where, model.n_genes(), input.rows(), options.block_cells);
    if (input.cols() < 1) throw ArgumentError(where, "no cells");
    const Index G = model.n_genes(), U = model.units();
    std::vector<MatrixD> partial(static_cast<std::size_t>(threads()), MatrixD::Zero(G, U)); // per thread, G x U
    MatrixD total = MatrixD::Zero(G, U);
    auto visit = [&](int t, Index first, const ConstMatrixRef<Scalar>& chunk, const ConstMatrixRef<Scalar>&,
                     const detail::CellSpan& block) {
        MatrixD& p = partial[static_cast<std::size_t>(t)];
        if (first == block.first) p.setZero();
        const Index n = chunk.cols() / U;
        for (Index j = 0; j < n; ++j) p += chunk.middleCols(j * U, U).cwiseAbs().template cast<double>();
    };
    auto merge = [&](int t, Index, Index) { total += partial[static_cast<std::size_t>(t)]; };
    options.layout = SaliencyLayout::genes_by_units; // the visitor reads genes x (U n) chunks
    detail::saliency_blocks<Scalar>(model, input, options, visit, &merge, detail::saliency_chunk_cells);
    return total / static_cast<double>(input.cols());
}

// Signed saliency of one cell (column `cell` of input): genes x units, column u = d r_u / d x.
template <typename Scalar>
Matrix<Scalar> cell_saliency(const Autoencoder<Scalar>& model, const detail::InputRef<Scalar>& input, Index cell,
                             SaliencyKind kind = SaliencyKind::guided) {
    const char* where = "exsal::cell_saliency";
    detail::check_saliency_arguments(where, model.n_genes(), input.rows(), 1);
    if (cell < 0 || cell >= input.cols())
        throw ArgumentError(where, "cell " + std::to_string(cell) + " is outside 0.." + std::to_string(input.cols() - 1));
    detail::SaliencyWorkspace<Scalar> ws;
    ws.reserve(model, 1);
    return ws.compute(model, input.middleCols(cell, 1), kind);
}

} // namespace exsal

#endif // EXSAL_INTERPRET_SALIENCY_HPP
