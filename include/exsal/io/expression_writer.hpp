#ifndef EXSAL_IO_EXPRESSION_WRITER_HPP
#define EXSAL_IO_EXPRESSION_WRITER_HPP

// Writes an ExpressionMatrix as a table read_expression reads back exactly: cells as rows
// (sample[,cluster],GENE1,... ; the group column only when the matrix has groups) or genes as
// rows (gene,CELL1,... ; groups have no place in that layout and are not written), comma or tab
// separated, plain or gzip. Numbers read back as the same float: integers (counts) as integers,
// other values in the shortest round-trip form of std::to_chars. Names holding the separator, a
// quote or surrounding spaces are quoted.
// The file is written under a temporary name and renamed into place (write_file_atomically).

#include "exsal/core/atomic_file.hpp"
#include "exsal/core/text.hpp"
#include "exsal/io/byte_source.hpp"
#include "exsal/io/expression_matrix.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace exsal {

enum class Compression {
    by_extension, // gzip when the path ends in ".gz", plain text otherwise
    none,
    gzip,
};

struct ExpressionWriteOptions {
    bool genes_in_rows = false;                    // false: one row per cell; true: one row per gene
    char separator = ',';                          // ',' or '\t' (any byte but a quote, space or line break)
    Compression compression = Compression::by_extension;
    int gzip_level = 1;                            // zlib level 1 (fast) .. 9 (small); on expression
                                                   // tables level 6 took 5-10x as long for 5-15 % less
    std::string id_column = "sample";              // cells as rows: header of the cell id column
    std::string group_column = "cluster";          // cells as rows: header of the group column (if groups exist)
    std::string gene_column = "gene";              // genes as rows: first header field
};

namespace detail {

// Buffered output to a stream, optionally through a gzip deflate stream (zlib, gzip wrapper).
class TextSink {
public:
    static constexpr std::size_t capacity = std::size_t(1) << 20; // bytes buffered before a flush

    TextSink(std::ostream& out, const std::string& path, bool gzip, int level)
        : m_out(out), m_path(path), m_gzip(gzip), m_buf(new char[capacity]) {
        if (m_gzip) {
            if (deflateInit2(&m_z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                throw FileError(m_path, "cannot initialise zlib");
            m_deflate_ready = true;
            m_zbuf.reset(new char[capacity]);
        }
    }
    TextSink(const TextSink&) = delete;
    TextSink& operator=(const TextSink&) = delete;
    ~TextSink() {
        if (m_deflate_ready) deflateEnd(&m_z);
    }

    // Makes room for n more bytes in the buffer (flushing it first if needed).
    char* reserve(std::size_t n) {
        if (m_pos + n > capacity) flush(false);
        return m_buf.get() + m_pos;
    }
    void advance(std::size_t n) noexcept { m_pos += n; }

    void put(char c) {
        *reserve(1) = c;
        ++m_pos;
    }
    void put(std::string_view s) {
        while (!s.empty()) {
            const std::size_t n = std::min(s.size(), capacity);
            std::memcpy(reserve(n), s.data(), n);
            m_pos += n;
            s.remove_prefix(n);
        }
    }
    // Text that reads back as exactly v: integers below 2^24 in magnitude (counts) as integers,
    // everything else as the shortest round-trip form of std::to_chars.
    void put(float v) {
        char* p = reserve(32);
        std::to_chars_result r;
        if (v > -16777216.0f && v < 16777216.0f && v == static_cast<float>(static_cast<std::int32_t>(v)) &&
            !(v == 0.0f && std::signbit(v)))
            r = std::to_chars(p, p + 32, static_cast<std::int32_t>(v));
        else
            r = std::to_chars(p, p + 32, v);
        m_pos += static_cast<std::size_t>(r.ptr - p);
    }
    // A name, quoted as CSV requires, and also when it has surrounding spaces, which
    // read_expression drops from unquoted fields. (Names never hold line breaks: refused before.)
    void put_name(std::string_view s, char sep) {
        const bool quote = csv_needs_quotes(s, sep) || (!s.empty() && (s.front() == ' ' || s.back() == ' '));
        if (quote)
            put(csv_quoted(s));
        else
            put(s);
    }

    // Writes out everything and ends the gzip stream.
    void finish() { flush(true); }

private:
    void flush(bool final) {
        if (!m_gzip) {
            m_out.write(m_buf.get(), static_cast<std::streamsize>(m_pos));
        } else {
            m_z.next_in = reinterpret_cast<Bytef*>(m_buf.get());
            m_z.avail_in = static_cast<uInt>(m_pos);
            int r;
            do {
                m_z.next_out = reinterpret_cast<Bytef*>(m_zbuf.get());
                m_z.avail_out = static_cast<uInt>(capacity);
                r = deflate(&m_z, final ? Z_FINISH : Z_NO_FLUSH);
                if (r == Z_STREAM_ERROR) throw FileError(m_path, "gzip compression failed");
                m_out.write(m_zbuf.get(), static_cast<std::streamsize>(capacity - m_z.avail_out));
            } while (m_z.avail_out == 0 || (final && r != Z_STREAM_END));
        }
        m_pos = 0;
        if (!m_out) throw FileError(m_path, "write failed (disk full?)");
    }

    std::ostream& m_out;
    const std::string& m_path;
    bool m_gzip;
    std::unique_ptr<char[]> m_buf;  // capacity bytes of text, [0, m_pos) filled
    std::size_t m_pos = 0;
    z_stream m_z{};
    bool m_deflate_ready = false;
    std::unique_ptr<char[]> m_zbuf; // capacity bytes of compressed output
};

inline void check_writable_name(const std::string& where, const std::string& what, const std::string& name,
                                bool allow_empty) {
    if (!allow_empty && name.empty()) throw ArgumentError(where, what + " is empty");
    if (name.find_first_of("\n\r", 0, 2) != std::string::npos || name.find('\0') != std::string::npos)
        throw ArgumentError(where, what + " \"" + name + "\" contains a line break or NUL byte");
}

inline bool ends_with(const std::string& s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace detail

// Writes `m` to `path` atomically. Throws ArgumentError("write_expression", ...) for an
// inconsistent or empty matrix, non-finite values, names with line breaks, an id_column (or
// gene_column) that begins with a byte order mark and invalid options; FileError for I/O failures.
inline void write_expression(const std::string& path, const ExpressionMatrix& m,
                             const ExpressionWriteOptions& options = {}) {
    const std::string where = "write_expression";
    m.check_consistent(where);
    const char sep = options.separator;
    if (sep == '"' || sep == ' ' || sep == '\n' || sep == '\r' || sep == '\0')
        throw ArgumentError(where, "separator cannot be a quote, space, line break or NUL");
    if (options.gzip_level < 1 || options.gzip_level > 9)
        throw ArgumentError(where, "gzip_level must be 1..9, got " + std::to_string(options.gzip_level));
    if (m.n_genes() == 0 || m.n_cells() == 0)
        throw ArgumentError(where, "the matrix is empty (" + std::to_string(m.n_genes()) + " genes x " +
                                       std::to_string(m.n_cells()) + " cells)");
    if (!m.values.allFinite()) {
        for (Index j = 0; j < m.n_cells(); ++j)
            for (Index i = 0; i < m.n_genes(); ++i)
                if (!std::isfinite(m.values(i, j)))
                    throw ArgumentError(where, "value of gene \"" + m.genes[static_cast<std::size_t>(i)] + "\" in cell \"" +
                                                   m.cells[static_cast<std::size_t>(j)] + "\" is not finite");
    }
    for (const auto& g : m.genes) detail::check_writable_name(where, "gene symbol", g, false);
    for (const auto& c : m.cells) detail::check_writable_name(where, "cell id", c, false);
    const bool write_groups = m.has_groups() && !options.genes_in_rows;
    if (write_groups)
        for (const auto& g : m.groups) detail::check_writable_name(where, "group label", g, true);
    if (options.genes_in_rows) {
        detail::check_writable_name(where, "gene_column", options.gene_column, true);
    } else {
        detail::check_writable_name(where, "id_column", options.id_column, false);
        if (write_groups) detail::check_writable_name(where, "group_column", options.group_column, false);
    }
    {
        const std::string& first = options.genes_in_rows ? options.gene_column : options.id_column;
        const std::string mark = detail::leading_byte_order_mark(first);
        if (!mark.empty())
            throw ArgumentError(where, std::string(options.genes_in_rows ? "gene_column" : "id_column") + " \"" + first +
                                           "\" begins with a " + mark +
                                           "; as the first bytes of the file it would not be read back as written");
    }
    const bool gzip = options.compression == Compression::gzip ||
                      (options.compression == Compression::by_extension && detail::ends_with(path, ".gz"));

    write_file_atomically(
        path,
        [&](std::ostream& out) {
            detail::TextSink sink(out, path, gzip, options.gzip_level);
            const Index G = m.n_genes(), N = m.n_cells();
            if (!options.genes_in_rows) {
                sink.put_name(options.id_column, sep);
                if (write_groups) {
                    sink.put(sep);
                    sink.put_name(options.group_column, sep);
                }
                for (const auto& g : m.genes) {
                    sink.put(sep);
                    sink.put_name(g, sep);
                }
                sink.put('\n');
                for (Index j = 0; j < N; ++j) {
                    sink.put_name(m.cells[static_cast<std::size_t>(j)], sep);
                    if (write_groups) {
                        sink.put(sep);
                        sink.put_name(m.groups[static_cast<std::size_t>(j)], sep);
                    }
                    const float* col = m.values.data() + j * G; // cell j, contiguous
                    for (Index i = 0; i < G; ++i) {
                        sink.put(sep);
                        sink.put(col[i]);
                    }
                    sink.put('\n');
                }
            } else {
                sink.put_name(options.gene_column, sep);
                for (const auto& c : m.cells) {
                    sink.put(sep);
                    sink.put_name(c, sep);
                }
                sink.put('\n');
                // Genes in blocks, each transposed once so a row reads contiguous memory.
                constexpr Index block = 64;
                Matrix<float> rows_block; // N x (block genes): column i = gene i0+i across cells
                for (Index i0 = 0; i0 < G; i0 += block) {
                    const Index nb = std::min(block, G - i0);
                    rows_block = m.values.middleRows(i0, nb).transpose();
                    for (Index i = 0; i < nb; ++i) {
                        sink.put_name(m.genes[static_cast<std::size_t>(i0 + i)], sep);
                        const float* row = rows_block.data() + i * N;
                        for (Index j = 0; j < N; ++j) {
                            sink.put(sep);
                            sink.put(row[j]);
                        }
                        sink.put('\n');
                    }
                }
            }
            sink.finish();
        },
        true);
}

} // namespace exsal

#endif // EXSAL_IO_EXPRESSION_WRITER_HPP
