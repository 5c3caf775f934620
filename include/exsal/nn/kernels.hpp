#ifndef EXSAL_NN_KERNELS_HPP
#define EXSAL_NN_KERNELS_HPP

// The speed tricks of the network in one place: when a loop is worth splitting over threads, how
// columns, rows and matrix products are split over them, and softplus on SIMD packets. Each kernel has a plain scalar
// reference beside it (the *_reference functions), and tests/test_kernels.cpp compares the two.
// The model code calls these by name; nothing outside this header touches Eigen::internal.

#include "exsal/core/denormals.hpp"
#include "exsal/core/types.hpp"
#include "exsal/nn/activations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace exsal {
namespace kernels {

// Elementwise loops over fewer entries than this run on one thread: below it, starting an OpenMP
// region costs more than the loop.
inline constexpr Index parallel_min_elements = Index(1) << 15;

inline bool parallel_worthwhile(Index elements) { return elements >= parallel_min_elements; }

namespace detail {
// The thread count of a parallel region opened here (1 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Opens a parallel region of `threads` threads; thread t of T runs f(begin, count) on the t-th of
// T contiguous shares of [0, size), cut on multiples of `quantum` (whole packets or whole kernel
// blocks), and skips an empty share. The shares depend only on size, quantum and T, so results
// are reproducible for a thread count.
template <typename F>
void thread_ranges(Index size, Index quantum, int threads, F&& f) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
        const FlushDenormals flush;
        const Index t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    (void)threads;
    {
        const Index t = 0, T = 1;
#endif
        const Index units = (size + quantum - 1) / quantum;
        const Index a = std::min(size, quantum * (units * t / T)), b = std::min(size, quantum * (units * (t + 1) / T));
        if (b > a) f(a, b - a);
    }
}
} // namespace detail

// Runs f(c0, count) over contiguous column ranges of a rows x n block that together cover [0, n)
// once: one range per OpenMP thread when the block is large, else f(0, n) on the calling thread.
// Its reference is f(0, n); an elementwise f gives the same result either way.
template <typename F>
void split_columns(Index rows, Index n, F&& f) {
    if (!parallel_worthwhile(rows * n) || n < 2) {
        f(0, n);
        return;
    }
    detail::thread_ranges(n, 1, detail::max_threads(), f);
}

// ---- Matrix product ---------------------------------------------------------------------------

// dst = lhs * rhs (no aliasing) with the output split over the OpenMP threads along its longer
// side: each thread runs one single-threaded Eigen product on its slice (Eigen does not thread a
// product inside a parallel region), so the threads meet once per product. Eigen's own threaded
// GEMM synchronises its threads many times per product by spinning, which costs little on idle
// cores but collapses when the machine has more runnable threads than cores. Small products, and
// calls from inside a parallel region, run as one product on the calling thread. The split only
// depends on the shapes and the thread count, so results are reproducible for a thread count.
template <typename Dst, typename Lhs, typename Rhs>
void split_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
    const Index m = dst.rows(), n = dst.cols(), k = lhs.cols();
#ifdef _OPENMP
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    const int nt = 1;
#endif
    constexpr Index min_work = Index(1) << 20; // multiply-adds
    const bool by_rows = m >= n;
    const Index side = by_rows ? m : n, quantum = by_rows ? 16 : 4; // rows: whole packets; cols: the kernel's nr
    if (nt < 2 || m * n * k < min_work || side < 2 * quantum) {
        dst.noalias() = lhs * rhs;
        return;
    }
    detail::thread_ranges(side, quantum, nt, [&](Index a, Index len) {
        if (by_rows)
            dst.middleRows(a, len).noalias() = lhs.middleRows(a, len) * rhs;
        else
            dst.middleCols(a, len).noalias() = lhs * rhs.middleCols(a, len);
    });
}

// Reference for split_product: the textbook triple loop, accumulated in double.
template <typename Scalar, typename Lhs, typename Rhs>
Matrix<Scalar> product_reference(const Lhs& lhs, const Rhs& rhs) {
    Matrix<Scalar> out(lhs.rows(), rhs.cols());
    for (Index j = 0; j < rhs.cols(); ++j)
        for (Index i = 0; i < lhs.rows(); ++i) {
            double s = 0.0;
            for (Index p = 0; p < lhs.cols(); ++p) s += static_cast<double>(lhs(i, p)) * static_cast<double>(rhs(p, j));
            out(i, j) = static_cast<Scalar>(s);
        }
    return out;
}

// sums = the row sums of the first n columns of m, each row added over the columns in column
// order (the same for any thread count); rows split over the OpenMP threads when the block is
// large, on multiples of 16 rows so that every thread's block stays packet-aligned.
template <typename Scalar, typename Sums>
void row_sums(const Matrix<Scalar>& m, Index n, Sums& sums) {
    const Index rows = m.rows();
    auto block = [&](Index r0, Index nr) {
        auto s = sums.segment(r0, nr);
        if (n == 0) {
            s.setZero();
            return;
        }
        s = m.col(0).segment(r0, nr);
        for (Index c = 1; c < n; ++c) s += m.col(c).segment(r0, nr);
    };
    if (!parallel_worthwhile(rows * n) || rows < 64) {
        block(0, rows);
        return;
    }
    detail::thread_ranges(rows, 16, detail::max_threads(), block);
}

// Reference for row_sums: one loop per entry, in the same column order.
template <typename Scalar>
Vector<Scalar> row_sums_reference(const Matrix<Scalar>& m, Index n) {
    Vector<Scalar> sums(m.rows());
    for (Index r = 0; r < m.rows(); ++r) {
        Scalar s = 0;
        for (Index c = 0; c < n; ++c) s += m(r, c);
        sums(r) = s;
    }
    return sums;
}

// ---- Softplus ---------------------------------------------------------------------------------

// Reference: Softplus::value and Softplus::derivative for one element, written out with libm.
//   y = (b z > 20) ? z : max(z, 0) + log1p(exp(-|b z|)) / b ;  y' = (b z > 20) ? 1 : 1 / (1 + exp(-b z))
template <typename Scalar>
Scalar softplus_reference(Scalar z, double beta) {
    const Scalar b = static_cast<Scalar>(beta), bz = z * b;
    if (bz > static_cast<Scalar>(Softplus::threshold)) return z;
    return std::max(z, Scalar(0)) + std::log1p(std::exp(-std::abs(bz))) * static_cast<Scalar>(1.0 / beta);
}
template <typename Scalar>
Scalar softplus_derivative_reference(Scalar z, double beta) {
    const Scalar bz = z * static_cast<Scalar>(beta);
    if (bz > static_cast<Scalar>(Softplus::threshold)) return Scalar(1);
    return Scalar(1) / (Scalar(1) + std::exp(-bz));
}

namespace detail {
// Softplus on SIMD packets. Eigen 3.4 evaluates select() one scalar at a time (libm exp and
// log1p per element), so the activation kernels below run these packets instead for softplus
// where the scalar type has packet exp and log1p (float). Same formulas as softplus_reference.
// A tail shorter than a packet is padded into one packet, so every element is computed by the
// same instructions wherever it sits (forward, apply and derivative agree bit for bit).
template <typename Scalar>
struct SoftplusPackets {
    using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
    static constexpr bool enabled = Eigen::internal::packet_traits<Scalar>::Vectorizable &&
                                    Eigen::internal::packet_traits<Scalar>::HasExp &&
                                    Eigen::internal::packet_traits<Scalar>::HasLog1p &&
                                    Eigen::internal::unpacket_traits<Packet>::size > 1;
    static constexpr Index width = Eigen::internal::unpacket_traits<Packet>::size;

    Packet b, inv_b, threshold, value_floor, slope_floor, one, zero;
    explicit SoftplusPackets(double beta)
        : b(Eigen::internal::pset1<Packet>(static_cast<Scalar>(beta))),
          inv_b(Eigen::internal::pset1<Packet>(static_cast<Scalar>(1.0 / beta))),
          threshold(Eigen::internal::pset1<Packet>(static_cast<Scalar>(Softplus::threshold))),
          value_floor(Eigen::internal::pset1<Packet>(
              static_cast<Scalar>(std::log(static_cast<double>(std::numeric_limits<Scalar>::min())) +
                                  std::log(std::max(beta, 1.0)) + 1.0))),
          slope_floor(Eigen::internal::pset1<Packet>(
              static_cast<Scalar>(std::log(static_cast<double>(std::numeric_limits<Scalar>::min())) + 1.0))),
          one(Eigen::internal::pset1<Packet>(Scalar(1))), zero(Eigen::internal::pzero(one)) {}

    // Terms that would fall below the smallest normal number are taken as 0 (libm's exp underflows
    // to 0 as well), and the arguments of exp are clamped so that no lane ever computes a
    // subnormal: subnormal intermediates make the packet exp and log several times slower.
    //   log1p(exp(-|b z|)) / b < e min_normal  <=>  -|b z| < log(min_normal) + log(b) + 1  (value_floor)
    //   sigmoid(b z) < e min_normal             <=>   b z   < log(min_normal) + 1           (slope_floor)
    EIGEN_STRONG_INLINE Packet value(const Packet& z) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet neg = pnegate(pabs(bz));
        const Packet tail = pmul(plog1p(pexp(pmax(neg, value_floor))), inv_b);
        const Packet smooth = padd(pmax(z, zero), pselect(pcmp_lt(neg, value_floor), zero, tail));
        return pselect(pcmp_lt(threshold, bz), z, smooth);
    }
    EIGEN_STRONG_INLINE Packet derivative(const Packet& z) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet sig = pdiv(one, padd(one, pexp(pnegate(pmin(pmax(bz, slope_floor), threshold)))));
        return pselect(pcmp_lt(threshold, bz), one, pselect(pcmp_lt(bz, slope_floor), zero, sig));
    }

    // value() and derivative() for a packet whose lanes are all flat (false: not all flat; the
    // caller then runs the full formula). Most entries of a trained layer sit in one of the two flat
    // regions (linear: b z > 20; zero: below the floor): with b = the layer's width, 98-99.8 % of the
    // 16-entry packets of a 4,000-gene output layer, and 50-94 % of the hidden layers' (measured on
    // the benchmark's counts after 10-300 Adam steps; 67 % and 10-32 % after the first step). Such a packet skips exp and
    // log1p; its result is what the full formula gives those lanes, bit for bit (z or 1 where
    // linear; max(z, 0) + 0 = +0 or 0 below the floor), so the shortcut changes no result. NaN
    // lanes are never flat.
    EIGEN_STRONG_INLINE bool flat_value(const Packet& z, Packet& y) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet linear = pcmp_lt(threshold, bz);
        if (predux_any(pandnot(ptrue(bz), por(linear, pcmp_lt(pnegate(pabs(bz)), value_floor))))) return false;
        y = pselect(linear, z, padd(pmax(z, zero), zero));
        return true;
    }
    EIGEN_STRONG_INLINE bool flat_derivative(const Packet& z, Packet& d) const {
        using namespace Eigen::internal;
        const Packet bz = pmul(z, b);
        const Packet linear = pcmp_lt(threshold, bz);
        if (predux_any(pandnot(ptrue(bz), por(linear, pcmp_lt(bz, slope_floor))))) return false;
        d = pselect(linear, one, zero);
        return true;
    }

    // One column of `rows` entries: z += bias (when given), y = f(z).
    void forward_column(Scalar* z, Scalar* y, const Scalar* bias, Index rows) const {
        using namespace Eigen::internal;
        Index i = 0;
        for (; i + width <= rows; i += width) {
            Packet zp = ploadu<Packet>(z + i);
            if (bias) zp = padd(zp, ploadu<Packet>(bias + i));
            pstoreu(z + i, zp);
            Packet yp;
            if (!flat_value(zp, yp)) yp = value(zp);
            pstoreu(y + i, yp);
        }
        if (i == rows) return;
        alignas(64) Scalar zt[width] = {}, yt[width];
        for (Index k = i; k < rows; ++k) zt[k - i] = bias ? z[k] + bias[k] : z[k];
        pstoreu(yt, value(ploadu<Packet>(zt)));
        for (Index k = i; k < rows; ++k) {
            z[k] = zt[k - i];
            y[k] = yt[k - i];
        }
    }
    // One column: d = dy * f'(z), or f'(z) when dy is null.
    void derivative_column(const Scalar* z, const Scalar* dy, Scalar* d, Index rows) const {
        using namespace Eigen::internal;
        Index i = 0;
        for (; i + width <= rows; i += width) {
            const Packet zp = ploadu<Packet>(z + i);
            Packet f;
            if (!flat_derivative(zp, f)) f = derivative(zp);
            pstoreu(d + i, dy ? pmul(ploadu<Packet>(dy + i), f) : f);
        }
        if (i == rows) return;
        alignas(64) Scalar zt[width] = {}, dt[width] = {}, ft[width];
        for (Index k = i; k < rows; ++k) {
            zt[k - i] = z[k];
            if (dy) dt[k - i] = dy[k];
        }
        const Packet f = derivative(ploadu<Packet>(zt));
        pstoreu(ft, dy ? pmul(ploadu<Packet>(dt), f) : f);
        for (Index k = i; k < rows; ++k) d[k] = ft[k - i];
    }
};
} // namespace detail

// Whether `Activation` on `Scalar` takes the packet path below: softplus where the scalar type
// has packet exp and log1p (float on SSE/AVX; Eigen 3.4 has none for double). Everything else is
// the activation's own Eigen expression.
template <typename Activation, typename Scalar>
inline constexpr bool uses_packets =
    std::is_same<Activation, Softplus>::value && detail::SoftplusPackets<Scalar>::enabled;

// The activation kernels of a Dense layer. Each runs the packet path or the expression path.

// Columns [c0, c0 + nc) of z (rows x n, holding W X): Z += bias ; Y = f(Z), in one pass.
template <typename Activation, typename Scalar, typename Bias>
void bias_activate(const Activation& act, Matrix<Scalar>& z, Matrix<Scalar>& y, const Bias& bias, Index c0,
                   Index nc) {
    if constexpr (uses_packets<Activation, Scalar>) {
        const detail::SoftplusPackets<Scalar> k(act.beta);
        for (Index c = c0; c < c0 + nc; ++c) k.forward_column(z.col(c).data(), y.col(c).data(), bias.data(), z.rows());
    } else {
        z.middleCols(c0, nc).colwise() += bias;
        y.middleCols(c0, nc).array() = act.value(z.middleCols(c0, nc).array());
    }
}

// Columns [c0, c0 + nc): dZ = dY * f'(Z), given Z and Y = f(Z). dy may have an outer stride.
template <typename Activation, typename Scalar>
void backprop_activation(const Activation& act, const ConstMatrixRef<Scalar>& dy, const Matrix<Scalar>& z,
                         const Matrix<Scalar>& y, Matrix<Scalar>& dz, Index c0, Index nc) {
    if constexpr (uses_packets<Activation, Scalar>) {
        const detail::SoftplusPackets<Scalar> k(act.beta);
        for (Index c = c0; c < c0 + nc; ++c)
            k.derivative_column(z.col(c).data(), dy.col(c).data(), dz.col(c).data(), z.rows());
    } else {
        dz.middleCols(c0, nc).array() =
            dy.middleCols(c0, nc).array() * act.derivative(z.middleCols(c0, nc).array(), y.middleCols(c0, nc).array());
    }
}

// d = f'(z) elementwise, given z and y = f(z).
template <typename Activation, typename Scalar>
void activation_derivative(const Activation& act, const ConstMatrixRef<Scalar>& z, const ConstMatrixRef<Scalar>& y,
                           Eigen::Ref<Matrix<Scalar>> d) {
    if constexpr (uses_packets<Activation, Scalar>) {
        const detail::SoftplusPackets<Scalar> k(act.beta);
        for (Index c = 0; c < z.cols(); ++c) k.derivative_column(z.col(c).data(), nullptr, d.col(c).data(), z.rows());
    } else {
        d.array() = act.derivative(z.array(), y.array());
    }
}

} // namespace kernels
} // namespace exsal

#endif // EXSAL_NN_KERNELS_HPP
