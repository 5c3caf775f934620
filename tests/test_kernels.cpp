// Kernels (nn/kernels.hpp) against their scalar references: softplus on packets and as Eigen
// expressions, the product, row-sum and column splitters, in float and double, on sizes that are
// not multiples of the packet width.
#include "test_numeric.hpp"

#include <doctest/doctest.h>

#include "exsal/core/random.hpp"
#include "exsal/core/threads.hpp"
#include "exsal/nn/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

using namespace exsal;
using exsal_test::relative_error;

namespace {

template <typename Scalar>
Matrix<Scalar> random_matrix(Index r, Index c, std::uint64_t seed, double lo, double hi) {
    Rng rng(seed);
    Matrix<Scalar> m(r, c);
    for (Index j = 0; j < c; ++j)
        for (Index i = 0; i < r; ++i) m(i, j) = static_cast<Scalar>(rng.uniform(lo, hi));
    return m;
}

// Pre-activations for sharpness `beta`: uniform over b z in [-60, 60] (both flush regions, the
// smooth part and the linear part), with the first entries of each column set to the edge cases:
// b z = 20 exactly and just either side, 0, -0, and far out on both sides.
template <typename Scalar>
Matrix<Scalar> softplus_inputs(Index rows, Index cols, double beta, std::uint64_t seed) {
    Matrix<Scalar> z = random_matrix<Scalar>(rows, cols, seed, -60.0 / beta, 60.0 / beta);
    const Scalar t = static_cast<Scalar>(Softplus::threshold / beta);
    const Scalar edges[] = {t,
                            std::nextafter(t, Scalar(0)),
                            std::nextafter(t, std::numeric_limits<Scalar>::max()),
                            Scalar(0),
                            -Scalar(0),
                            static_cast<Scalar>(19.99 / beta),
                            static_cast<Scalar>(20.01 / beta),
                            static_cast<Scalar>(-1e3 / beta),
                            static_cast<Scalar>(1e3 / beta)};
    for (Index c = 0; c < cols; ++c)
        for (Index i = 0; i < rows && i < Index(std::size(edges)); ++i) z((i + c) % rows, c) = edges[i];
    return z;
}

// |got - want| <= rtol |want| + atol. atol covers the packet path's flush of terms below
// e * (smallest normal number) to 0, which libm may return as tiny or subnormal numbers.
template <typename Scalar>
bool close(Scalar got, Scalar want) {
    const double rtol = std::is_same<Scalar, float>::value ? 16 * 1.2e-7 : 16 * 2.3e-16;
    const double atol = 4.0 * static_cast<double>(std::numeric_limits<Scalar>::min());
    const double g = static_cast<double>(got), w = static_cast<double>(want);
    return std::abs(g - w) <= rtol * std::abs(w) + atol;
}

template <typename Scalar>
bool same_bits(Scalar a, Scalar b) {
    return std::memcmp(&a, &b, sizeof(Scalar)) == 0;
}

// Packet width of the softplus kernels for Scalar (1 when it takes the expression path).
template <typename Scalar>
constexpr Index softplus_width() {
    return kernels::uses_packets<Softplus, Scalar> ? kernels::detail::SoftplusPackets<Scalar>::width : 1;
}

} // namespace

TEST_CASE_TEMPLATE("softplus kernels equal the scalar reference", Scalar, float, double) {
    constexpr Index w = softplus_width<Scalar>();
    const Index cols = 3;
    for (double beta : {0.01, 1.0, 7.5, 64.0, 1000.0, 20000.0}) {
        for (Index rows : {Index(1), w + 1, 3 * w + 3, Index(37), Index(64)}) {
            CAPTURE(beta);
            CAPTURE(rows);
            const Softplus act{beta};
            const Matrix<Scalar> z0 = softplus_inputs<Scalar>(rows, cols, beta, 11 + static_cast<std::uint64_t>(rows));
            const Vector<Scalar> bias = random_matrix<Scalar>(rows, 1, 5, -0.5 / beta, 0.5 / beta);

            // Forward: Z += b ; Y = f(Z), on all columns and on one column range.
            Matrix<Scalar> z = z0, y(rows, cols);
            kernels::bias_activate(act, z, y, bias, 0, cols);
            int bad_value = 0;
            for (Index c = 0; c < cols; ++c)
                for (Index i = 0; i < rows; ++i) {
                    bad_value += z(i, c) != Scalar(z0(i, c) + bias(i));
                    bad_value += !close(y(i, c), kernels::softplus_reference(z(i, c), beta));
                }
            CHECK(bad_value == 0);
            Matrix<Scalar> z_part = z0, y_part = Matrix<Scalar>::Zero(rows, cols);
            kernels::bias_activate(act, z_part, y_part, bias, 1, 1);
            CHECK(z_part.col(1) == z.col(1));
            CHECK(y_part.col(1) == y.col(1));
            CHECK(z_part.col(0) == z0.col(0));
            CHECK(y_part.col(2).isZero());

            // Derivative: d = f'(Z).
            Matrix<Scalar> d(rows, cols);
            kernels::activation_derivative<Softplus, Scalar>(act, z, y, d);
            int bad_slope = 0;
            for (Index c = 0; c < cols; ++c)
                for (Index i = 0; i < rows; ++i)
                    bad_slope += !close(d(i, c), kernels::softplus_derivative_reference(z(i, c), beta));
            CHECK(bad_slope == 0);

            // Backward: dZ = dY * f'(Z), dY a block with an outer stride.
            const Matrix<Scalar> dy_store = random_matrix<Scalar>(rows + 5, cols, 7, -2.0, 2.0);
            const ConstMatrixRef<Scalar> dy = dy_store.topRows(rows);
            Matrix<Scalar> dz(rows, cols);
            kernels::backprop_activation(act, dy, z, y, dz, 0, cols);
            int bad_backprop = 0;
            for (Index c = 0; c < cols; ++c)
                for (Index i = 0; i < rows; ++i)
                    bad_backprop +=
                        !close(dz(i, c), Scalar(dy(i, c) * kernels::softplus_derivative_reference(z(i, c), beta)));
            CHECK(bad_backprop == 0);
        }
    }
}

TEST_CASE_TEMPLATE("softplus kernels give an entry the same bits in a full packet and in a padded tail", Scalar, float,
                   double) {
    // A column of 2 w + 3 entries: its first 2 w go through full packets, the last 3 through the
    // padded tail. Each entry is compared with the same value computed alone (a one-entry tail).
    constexpr Index w = softplus_width<Scalar>();
    const Index rows = 2 * w + 3;
    for (double beta : {1.0, 300.0}) {
        const Softplus act{beta};
        Matrix<Scalar> z = softplus_inputs<Scalar>(rows, 1, beta, 3), y(rows, 1);
        const Vector<Scalar> no_bias = Vector<Scalar>::Zero(rows);
        kernels::bias_activate(act, z, y, no_bias, 0, 1);
        Matrix<Scalar> d(rows, 1), dz(rows, 1);
        kernels::activation_derivative<Softplus, Scalar>(act, z, y, d);
        const Matrix<Scalar> ones = Matrix<Scalar>::Ones(rows, 1);
        kernels::backprop_activation<Softplus, Scalar>(act, ones, z, y, dz, 0, 1);
        int differ = 0;
        for (Index i = 0; i < rows; ++i) {
            Matrix<Scalar> zi(1, 1), yi(1, 1), di(1, 1);
            zi(0, 0) = z(i, 0);
            kernels::bias_activate(act, zi, yi, Vector<Scalar>::Zero(1).eval(), 0, 1);
            kernels::activation_derivative<Softplus, Scalar>(act, zi, yi, di);
            differ += !same_bits(yi(0, 0), y(i, 0)) + !same_bits(di(0, 0), d(i, 0)) + !same_bits(dz(i, 0), d(i, 0));
        }
        CHECK(differ == 0);
    }
}

TEST_CASE("softplus packets whose lanes are all flat skip exp and log1p with the same bits") {
    // A packet whose lanes all sit in the linear region (b z > 20) or below the tail's floor
    // returns early. Each such packet is computed twice: alone (the shortcut) and with one lane
    // set to 0 (a lane on the curve, so the full formula runs for every lane); the other lanes must
    // agree bit for bit, value and slope. A NaN lane is never flat: it keeps the full formula.
    constexpr Index w = softplus_width<float>();
    if (w == 1) return; // no packets for float in this build
    int shortcut_differs = 0, nan_lost = 0;
    for (double beta : {1.0, 64.0, 4000.0}) {
        const Softplus act{beta};
        const Vector<float> no_bias = Vector<float>::Zero(w);
        Rng rng(17);
        for (int trial = 0; trial < 200; ++trial) {
            Matrix<float> flat(w, 1);
            for (Index i = 0; i < w; ++i) {
                // Linear (b z in (20, 400]) or flat (b z in [-400, -88.5)): the two kinds of flat lane.
                const double bz = rng.uniform() < 0.5 ? 20.0 + 380.0 * rng.uniform() + 1e-3 : -88.5 - 311.5 * rng.uniform();
                flat(i, 0) = static_cast<float>(bz / beta);
            }
            Matrix<float> mixed = flat;
            const Index curve_lane = trial % w;
            mixed(curve_lane, 0) = 0.0f;
            Matrix<float> zf = flat, yf(w, 1), zm = mixed, ym(w, 1), df(w, 1), dm(w, 1);
            kernels::bias_activate(act, zf, yf, no_bias, 0, 1);
            kernels::bias_activate(act, zm, ym, no_bias, 0, 1);
            kernels::activation_derivative<Softplus, float>(act, zf, yf, df);
            kernels::activation_derivative<Softplus, float>(act, zm, ym, dm);
            for (Index i = 0; i < w; ++i)
                if (i != curve_lane)
                    shortcut_differs += !same_bits(yf(i, 0), ym(i, 0)) + !same_bits(df(i, 0), dm(i, 0));
            // The same flat packet with a NaN lane: the NaN comes out, the other lanes keep their bits.
            Matrix<float> zn = flat, yn(w, 1), dn(w, 1);
            zn(curve_lane, 0) = std::numeric_limits<float>::quiet_NaN();
            kernels::bias_activate(act, zn, yn, no_bias, 0, 1);
            kernels::activation_derivative<Softplus, float>(act, zn, yn, dn);
            nan_lost += !std::isnan(yn(curve_lane, 0)) + !std::isnan(dn(curve_lane, 0));
            for (Index i = 0; i < w; ++i)
                if (i != curve_lane) shortcut_differs += !same_bits(yf(i, 0), yn(i, 0)) + !same_bits(df(i, 0), dn(i, 0));
        }
    }
    CHECK(shortcut_differs == 0);
    CHECK(nan_lost == 0);
}

TEST_CASE("the softplus packet path is taken for float") {
    // The packets are the reason the kernel exists; if an Eigen upgrade drops packet log1p for
    // float, the layer silently falls back to one libm call per element.
#ifdef EIGEN_VECTORIZE
    CHECK((kernels::uses_packets<Softplus, float>));
#endif
    CHECK_FALSE((kernels::uses_packets<Relu, float>));
}

TEST_CASE_TEMPLATE("split_product equals the reference product", Scalar, float, double) {
    set_threads(2); // the split needs at least two threads
    const double tol = std::is_same<Scalar, float>::value ? 1e-6 : 1e-14;
    struct Shape {
        Index m, n, k;
    };
    // Split by rows (m >= n), by columns, and a product too small to split; none a multiple of 16.
    for (Shape s : {Shape{301, 70, 129}, Shape{50, 333, 97}, Shape{33, 9, 21}}) {
        CAPTURE(s.m);
        CAPTURE(s.n);
        const Matrix<Scalar> a = random_matrix<Scalar>(s.m, s.k, 1, -1, 1);
        const Matrix<Scalar> b = random_matrix<Scalar>(s.k, s.n, 2, -1, 1);
        const Matrix<Scalar> want = kernels::product_reference<Scalar>(a, b);
        Matrix<Scalar> got(s.m, s.n);
        kernels::split_product(got, a, b);
        CHECK(relative_error(got.template cast<double>(), want.template cast<double>()) < tol);
        // Transposed operands, as the layer's gradients use them, into a block with an outer stride.
        const Matrix<Scalar> at = a.transpose(), bt = b.transpose();
        Matrix<Scalar> store(s.m + 3, s.n);
        kernels::split_product(store.topRows(s.m), at.transpose(), bt.transpose());
        CHECK(relative_error(store.topRows(s.m).template cast<double>(), want.template cast<double>()) < tol);
        // Reproducible for a thread count.
        Matrix<Scalar> again(s.m, s.n);
        kernels::split_product(again, a, b);
        CHECK(again == got);
    }
}

TEST_CASE_TEMPLATE("row_sums equals the reference sums in the same order", Scalar, float, double) {
    set_threads(2);
    // 150 x 300 takes the threaded row split (>= 2^15 entries, >= 64 rows); 37 x 5 does not.
    for (Index rows : {Index(150), Index(37)}) {
        const Matrix<Scalar> m = random_matrix<Scalar>(rows, 310, 9, -1, 1);
        for (Index n : {Index(0), Index(1), Index(5), Index(300)}) {
            CAPTURE(rows);
            CAPTURE(n);
            Vector<Scalar> sums = Vector<Scalar>::Constant(rows, Scalar(7));
            kernels::row_sums(m, n, sums);
            CHECK(sums == kernels::row_sums_reference(m, n)); // same additions in the same order
        }
    }
}

TEST_CASE("split_columns covers every column once") {
    set_threads(2);
    CHECK_FALSE(kernels::parallel_worthwhile(kernels::parallel_min_elements - 1));
    CHECK(kernels::parallel_worthwhile(kernels::parallel_min_elements));
    for (Index rows : {Index(1), Index(1000)}) {
        for (Index n : {Index(0), Index(1), Index(2), Index(7), Index(331)}) {
            std::vector<int> seen(static_cast<std::size_t>(n), 0);
            kernels::split_columns(rows, n, [&](Index c0, Index nc) {
                for (Index c = c0; c < c0 + nc; ++c) ++seen[static_cast<std::size_t>(c)]; // disjoint ranges
            });
            CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<std::ptrdiff_t>(n));
        }
    }
}
