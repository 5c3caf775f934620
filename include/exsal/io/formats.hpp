#ifndef EXSAL_IO_FORMATS_HPP
#define EXSAL_IO_FORMATS_HPP

// Which reader a path needs, from its content (never from its name):
//   a folder, or a file whose first line (after gunzip) starts "%%MatrixMarket"   -> 10x MTX
//   an HDF5 file with a 'matrix' group or a genome group with 'gene_names'        -> 10x HDF5
//   any other HDF5 file                                                            -> AnnData h5ad
//   anything else                                                                  -> CSV/TSV table
// The HDF5 formats need the library built with HDF5 (EXSAL_WITH_HDF5, set by linking the
// exsal::hdf5 CMake target); without it such a file is recognised and refused with a message.

#include "exsal/core/error.hpp"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#ifndef EXSAL_WITH_HDF5
#define EXSAL_WITH_HDF5 0
#endif
#if EXSAL_WITH_HDF5
#include "exsal/io/hdf5.hpp"
#endif

namespace exsal {

enum class ExpressionFormat { table, h5ad, tenx_h5, tenx_mtx };

inline const char* expression_format_name(ExpressionFormat f) noexcept {
    switch (f) {
    case ExpressionFormat::table: return "CSV/TSV table";
    case ExpressionFormat::h5ad: return "AnnData h5ad";
    case ExpressionFormat::tenx_h5: return "10x HDF5";
    case ExpressionFormat::tenx_mtx: return "10x MTX";
    }
    return "";
}

namespace detail::formats {

// The first `n` bytes of the file, inflated when it is gzip ("" when unreadable).
inline std::string first_bytes(const std::string& path, std::size_t n) {
    gzFile f = gzopen(path.c_str(), "rb"); // reads plain files as they are
    if (!f) return {};
    std::string s(n, '\0');
    const int got = gzread(f, s.data(), static_cast<unsigned>(n));
    gzclose(f);
    s.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return s;
}

inline bool has_hdf5_signature(const std::string& path) {
    static const char signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
    std::ifstream in(path, std::ios::binary);
    char head[8] = {0};
    in.read(head, 8);
    return in.gcount() == 8 && std::memcmp(head, signature, 8) == 0;
}

} // namespace detail::formats

inline ExpressionFormat detect_expression_format(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return ExpressionFormat::tenx_mtx;
    if (detail::formats::has_hdf5_signature(path)) {
#if EXSAL_WITH_HDF5
        const h5::Node root = h5::open_file(path);
        if (root.child_kind("X") != h5::Kind::missing) return ExpressionFormat::h5ad;
        if (root.child_kind("matrix") == h5::Kind::group) return ExpressionFormat::tenx_h5;
        for (const std::string& c : root.children())
            if (root.child_kind(c) == h5::Kind::group && root.open(c).has("gene_names")) return ExpressionFormat::tenx_h5;
        return ExpressionFormat::h5ad; // its reader says what is missing
#else
        throw FileError(path, "is an HDF5 file (h5ad or 10x .h5), and this build of exsal has no HDF5 support; "
                              "rebuild with HDF5 (Debian: libhdf5-dev) or convert the file to CSV");
#endif
    }
    if (detail::formats::first_bytes(path, 14) == "%%MatrixMarket") return ExpressionFormat::tenx_mtx;
    return ExpressionFormat::table;
}

} // namespace exsal

#endif // EXSAL_IO_FORMATS_HPP
