#ifndef EXSAL_REPORT_COLOUR_HPP
#define EXSAL_REPORT_COLOUR_HPP

// Colours and palettes for the figures: a sequential viridis-like map, a diverging
// blue-white-red map and a categorical palette of 20 distinguishable colours.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace exsal {

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;

    // "#rrggbb"
    std::string hex() const {
        static const char digits[] = "0123456789abcdef";
        std::string s = "#";
        for (const std::uint8_t v : {r, g, b}) {
            s += digits[v >> 4];
            s += digits[v & 0xF];
        }
        return s;
    }
};

namespace detail {
constexpr Rgb rgb_from_hex(std::uint32_t hex) {
    return Rgb{static_cast<std::uint8_t>((hex >> 16) & 0xFF), static_cast<std::uint8_t>((hex >> 8) & 0xFF),
               static_cast<std::uint8_t>(hex & 0xFF)};
}

// Piecewise-linear interpolation between equally spaced anchors; t clamped to [0, 1], NaN -> 0.
template <std::size_t N>
Rgb interpolate_anchors(const std::array<std::uint32_t, N>& anchors, double t) {
    static_assert(N >= 2, "A colour map needs at least two anchors.");
    if (!(t >= 0.0)) t = 0.0;
    if (t > 1.0) t = 1.0;
    const double position = t * static_cast<double>(N - 1);
    const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(position), N - 2);
    const double f = position - static_cast<double>(i);
    const Rgb a = rgb_from_hex(anchors[i]), b = rgb_from_hex(anchors[i + 1]);
    const auto mix = [f](std::uint8_t x, std::uint8_t y) {
        return static_cast<std::uint8_t>(std::lround((1.0 - f) * x + f * y));
    };
    return Rgb{mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}
} // namespace detail

// Sequential map for t in [0, 1]: dark purple (0) through blue and green to yellow (1),
// interpolated between nine samples of matplotlib's viridis.
inline Rgb viridis(double t) {
    static constexpr std::array<std::uint32_t, 9> anchors = {0x440154, 0x472c7a, 0x3b528b, 0x2c728e, 0x21918c,
                                                             0x28ae80, 0x5ec962, 0xaddc30, 0xfde725};
    return detail::interpolate_anchors(anchors, t);
}

// Diverging map for t in [-1, 1]: blue (-1), near-white (0), red (+1) (ColorBrewer RdBu anchors).
inline Rgb blue_white_red(double t) {
    static constexpr std::array<std::uint32_t, 7> anchors = {0x2166ac, 0x67a9cf, 0xd1e5f0, 0xf7f7f7,
                                                             0xfddbc7, 0xef8a62, 0xb2182b};
    return detail::interpolate_anchors(anchors, 0.5 * (t + 1.0));
}

// Categorical colour i (Tableau 10, then its 10 lighter partners; cycles after 20).
inline Rgb categorical(std::size_t i) {
    static constexpr std::array<std::uint32_t, 20> palette = {
        0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf,
        0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896, 0xc5b0d5, 0xc49c94, 0xf7b6d2, 0xc7c7c7, 0xdbdb8d, 0x9edae5};
    return detail::rgb_from_hex(palette[i % palette.size()]);
}

} // namespace exsal

#endif // EXSAL_REPORT_COLOUR_HPP
