#ifndef EXSAL_IO_BYTE_SOURCE_HPP
#define EXSAL_IO_BYTE_SOURCE_HPP

// Bytes of a text file for fast-cpp-csv-parser's io::LineReader: plain files are passed through,
// gzip files (recognised by their magic bytes 1f 8b, not by their name) are inflated on the fly.
// TextLineReader wraps io::LineReader over that source and turns every failure (its own, the
// source's, including those raised in LineReader's reading thread) into exsal::FileError.

#include "exsal/core/error.hpp"
#include "exsal/core/text.hpp" // upper_case_ascii, for the readers

// csv.h's strncpy of file names trips GCC's -Wstringop-truncation once inlined into callers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-truncation"
#endif
#include <libfccp/csv.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <zlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace exsal {

namespace detail {

// `text` in double quotes for an error message, control bytes as \xNN, cut after `max_chars`
// characters with "..." appended.
inline std::string quote_excerpt(std::string_view text, std::size_t max_chars = 40) {
    static const char hex[] = "0123456789abcdef";
    std::string s = "\"";
    const std::size_t n = std::min(text.size(), max_chars);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) {
            s += "\\x";
            s += hex[c >> 4];
            s += hex[c & 15];
        } else {
            s += static_cast<char>(c);
        }
    }
    if (text.size() > max_chars) s += "...";
    return s + "\"";
}

// True for bytes no text table contains: C0 controls other than TAB LF VT FF CR, and DEL.
inline bool is_binary_byte(unsigned char c) noexcept {
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r') || c == 0x7f;
}

// Owns a POSIX file descriptor.
struct FileDescriptor {
    int fd = -1;
    FileDescriptor() = default;
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

// Owns a zlib inflate stream.
struct InflateStream {
    z_stream z{};
    bool initialised = false;
    InflateStream() = default;
    InflateStream(const InflateStream&) = delete;
    InflateStream& operator=(const InflateStream&) = delete;
    ~InflateStream() {
        if (initialised) inflateEnd(&z);
    }
};

} // namespace detail

// A file's text as io::ByteSourceBase: read() fills the whole requested buffer unless the text
// ends (io::LineReader takes a short read for the end of the file). Gzip input is inflated
// (concatenated members too). With check_text, the first 64 KiB are checked for bytes no text
// table holds and every block for NUL bytes, so a binary file fails early and clearly.
class FileByteSource final : public io::ByteSourceBase {
public:
    static constexpr std::size_t input_chunk = std::size_t(1) << 18;     // bytes per read(2) of compressed input
    static constexpr std::uint64_t text_check_bytes = std::uint64_t(1) << 16; // first block checked for control bytes

    // Opens `path`; throws FileError(path, "cannot open file: <strerror>") or for a directory.
    explicit FileByteSource(std::string path, bool check_text = true)
        : m_path(std::move(path)), m_check_text(check_text) {
        m_file.fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (m_file.fd < 0) throw FileError(m_path, std::string("cannot open file: ") + std::strerror(errno));
        struct stat st {};
        if (::fstat(m_file.fd, &st) != 0) throw FileError(m_path, std::string("cannot open file: ") + std::strerror(errno));
        if (S_ISDIR(st.st_mode)) throw FileError(m_path, "cannot open file: it is a directory");
        if (S_ISREG(st.st_mode)) m_file_size = static_cast<std::uint64_t>(st.st_size);
        m_in.resize(input_chunk);
        // Read enough to see the magic bytes (a pipe may deliver fewer bytes per read).
        while (m_in_end < 2 && !m_eof) refill_append();
        m_gzip = m_in_end >= 2 && static_cast<unsigned char>(m_in[0]) == 0x1f &&
                 static_cast<unsigned char>(m_in[1]) == 0x8b;
        if (m_gzip) {
            m_inflate.z.next_in = reinterpret_cast<Bytef*>(m_in.data());
            m_inflate.z.avail_in = static_cast<uInt>(m_in_end);
            if (inflateInit2(&m_inflate.z, 15 + 32) != Z_OK) throw FileError(m_path, "cannot initialise zlib");
            m_inflate.initialised = true;
        }
    }

    // Fills buffer[0, size) unless the text ends first; returns the byte count, 0 at the end.
    // Throws FileError for read errors, truncated or corrupt gzip data and (with check_text)
    // binary content.
    int read(char* buffer, int size) override {
        if (size <= 0) return 0;
        const std::size_t n = m_gzip ? read_gzip(buffer, static_cast<std::size_t>(size))
                                     : read_plain(buffer, static_cast<std::size_t>(size));
        if (m_check_text && n > 0) check_text(buffer, n);
        m_produced += n;
        return static_cast<int>(n);
    }

    const std::string& path() const noexcept { return m_path; }
    bool is_gzip() const noexcept { return m_gzip; }
    std::uint64_t file_size() const noexcept { return m_file_size; } // bytes on disk, 0 if not a regular file
    std::uint64_t bytes_produced() const noexcept { return m_produced; } // text bytes returned so far

private:
    enum class GzipState { in_member, between_members, finished };

    // Appends up to the free space of m_in from the file; sets m_eof at the end.
    void refill_append() {
        for (;;) {
            const ssize_t r = ::read(m_file.fd, m_in.data() + m_in_end, m_in.size() - m_in_end);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw FileError(m_path, std::string("read error: ") + std::strerror(errno));
            if (r == 0) m_eof = true;
            m_in_end += static_cast<std::size_t>(r);
            return;
        }
    }

    std::size_t read_plain(char* buffer, std::size_t size) {
        std::size_t n = 0;
        if (m_in_begin < m_in_end) { // bytes read while looking for the magic
            n = std::min(size, m_in_end - m_in_begin);
            std::memcpy(buffer, m_in.data() + m_in_begin, n);
            m_in_begin += n;
        }
        while (n < size && !m_eof) {
            const ssize_t r = ::read(m_file.fd, buffer + n, size - n);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw FileError(m_path, std::string("read error: ") + std::strerror(errno));
            if (r == 0) m_eof = true;
            n += static_cast<std::size_t>(r);
        }
        return n;
    }

    std::size_t read_gzip(char* buffer, std::size_t size) {
        z_stream& z = m_inflate.z;
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = static_cast<uInt>(size);
        while (z.avail_out > 0 && m_state != GzipState::finished) {
            if (z.avail_in == 0 && !m_eof) {
                m_in_end = 0;
                refill_append();
                z.next_in = reinterpret_cast<Bytef*>(m_in.data());
                z.avail_in = static_cast<uInt>(m_in_end);
            }
            if (m_state == GzipState::between_members) {
                if (z.avail_in == 0) { // the last member ended with the file
                    m_state = GzipState::finished;
                    break;
                }
                if (*z.next_in != 0x1f)
                    throw FileError(m_path, "corrupt gzip data: bytes after the end of the gzip stream are not another gzip member");
                inflateReset(&z);
                m_state = GzipState::in_member;
            }
            const int r = inflate(&z, Z_NO_FLUSH);
            if (r == Z_STREAM_END) {
                m_state = GzipState::between_members;
            } else if (r == Z_BUF_ERROR && z.avail_in == 0 && m_eof) {
                throw FileError(m_path, "truncated gzip stream (the file ends inside the compressed data)");
            } else if (r == Z_MEM_ERROR) {
                throw FileError(m_path, "out of memory while inflating gzip data");
            } else if (r != Z_OK) {
                throw FileError(m_path, std::string("corrupt gzip data: ") + (z.msg ? z.msg : zError(r)));
            }
        }
        return size - z.avail_out;
    }

    // Rejects UTF-16, control bytes in the first block (with line and column) and NUL anywhere.
    void check_text(const char* buffer, std::size_t n) {
        if (m_produced == 0 && n >= 2) {
            const auto b0 = static_cast<unsigned char>(buffer[0]), b1 = static_cast<unsigned char>(buffer[1]);
            if ((b0 == 0xff && b1 == 0xfe) || (b0 == 0xfe && b1 == 0xff))
                throw FileError(m_path, 1, 1, "UTF-16 text is not supported (save the file as UTF-8)");
        }
        if (m_produced < text_check_bytes) {
            const std::size_t limit = static_cast<std::size_t>(std::min<std::uint64_t>(n, text_check_bytes - m_produced));
            for (std::size_t i = 0; i < limit; ++i) {
                const auto c = static_cast<unsigned char>(buffer[i]);
                ++m_check_column;
                if (c == '\n') {
                    ++m_check_line;
                    m_check_column = 0;
                } else if (detail::is_binary_byte(c)) {
                    throw FileError(m_path, m_check_line, m_check_column,
                                    std::string("binary file, not a text table (") +
                                        (c == 0 ? std::string("NUL byte") : "control byte " + hex_byte(c)) + ")");
                }
            }
        }
        if (const void* z = std::memchr(buffer, 0, n)) {
            const auto offset = m_produced + static_cast<std::uint64_t>(static_cast<const char*>(z) - buffer);
            throw FileError(m_path, "binary file, not a text table (NUL byte at text offset " + std::to_string(offset) + ")");
        }
    }

    static std::string hex_byte(unsigned char c) {
        static const char hex[] = "0123456789abcdef";
        return std::string("0x") + hex[c >> 4] + hex[c & 15];
    }

    std::string m_path;
    bool m_check_text;
    detail::FileDescriptor m_file;
    std::uint64_t m_file_size = 0;
    std::vector<char> m_in;        // input_chunk bytes, [m_in_begin, m_in_end) not yet used (plain) / read (gzip)
    std::size_t m_in_begin = 0;
    std::size_t m_in_end = 0;
    bool m_eof = false;             // the file has no more bytes
    bool m_gzip = false;
    detail::InflateStream m_inflate;
    GzipState m_state = GzipState::in_member;
    std::uint64_t m_produced = 0;   // text bytes returned so far
    std::size_t m_check_line = 1;   // line and column of the last byte checked in the first block
    std::size_t m_check_column = 0;
};

namespace detail {

// The byte order mark that `text` begins with, as readers see it at the start of a file: "UTF-8
// byte order mark (EF BB BF)" (skipped by TextLineReader), "UTF-16 byte order mark (FF FE)" or
// "(FE FF)" (refused by FileByteSource); "" for none. Writers refuse a first field that begins
// with one, since it would not be read back as written (found by fuzzing the GMT round trip).
inline std::string leading_byte_order_mark(std::string_view text) {
    const auto byte = [&](std::size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
    if (byte(0) == 0xef && byte(1) == 0xbb && byte(2) == 0xbf) return "UTF-8 byte order mark (EF BB BF)";
    if (byte(0) == 0xff && byte(1) == 0xfe) return "UTF-16 byte order mark (FF FE)";
    if (byte(0) == 0xfe && byte(1) == 0xff) return "UTF-16 byte order mark (FE FF)";
    return "";
}

// Passes a FileByteSource's text through and ends it with '\n' when its last line has none, so
// that io::LineReader never takes its missing-final-newline path. That path tests the byte after
// the data, which past the first 48 MiB is stale text of an earlier block: where it was a '\n',
// next_line() went on past the end of the data and waited forever for its finished reading
// thread (found by fuzzing; regression test in tests/test_reliability.cpp).
class FinalNewlineSource final : public io::ByteSourceBase {
public:
    explicit FinalNewlineSource(std::unique_ptr<FileByteSource> source) : m_source(std::move(source)) {}

    int read(char* buffer, int size) override {
        if (size <= 0 || m_ended) return 0;
        int n = m_source->read(buffer, size);
        if (n > 0) m_last = buffer[n - 1];
        if (n < size) { // the text ended: FileByteSource fills every request until then
            m_ended = true;
            if (m_last != '\n') buffer[n++] = '\n';
        }
        return n;
    }

private:
    std::unique_ptr<FileByteSource> m_source;
    char m_last = '\n';   // last byte of the text so far ('\n' before any: an empty text stays empty)
    bool m_ended = false; // the text (and the added newline) has been returned
};

} // namespace detail

// Lines of a text file (plain or gzip) through io::LineReader: the UTF-8 BOM is skipped, CR LF
// and LF both end a line, lines are counted. Every failure is an exsal::FileError naming the
// path (and the line where one applies), including errors raised in LineReader's reading thread
// (it stores them as std::exception_ptr and rethrows them in next_line()).
class TextLineReader {
public:
    // Opens `path`; throws FileError (cannot open, read error, corrupt gzip, binary content).
    explicit TextLineReader(const std::string& path, bool check_text = true) : m_path(path) {
        auto source = std::make_unique<FileByteSource>(path, check_text);
        m_gzip = source->is_gzip();
        m_file_size = source->file_size();
        try {
            m_reader = std::make_unique<io::LineReader>(
                path, std::make_unique<detail::FinalNewlineSource>(std::move(source)));
        } catch (const io::error::base& e) {
            throw FileError(m_path, e.what());
        }
    }

    // The next line without its line break, NUL-terminated and writable until the next call;
    // nullptr after the last line. Throws FileError naming the path and line.
    char* next_line() {
        try {
            return m_reader->next_line();
        } catch (const io::error::line_length_limit_exceeded&) {
            throw FileError(m_path, m_reader->get_file_line(), 0,
                            "line longer than 16 MiB (2^24-1 bytes), the longest line the reader accepts");
        } catch (const io::error::base& e) {
            throw FileError(m_path, m_reader->get_file_line(), 0, e.what());
        }
    }

    std::size_t line_number() const noexcept { return m_reader->get_file_line(); } // of the last line returned, 1-based
    const std::string& path() const noexcept { return m_path; }
    bool is_gzip() const noexcept { return m_gzip; }
    std::uint64_t file_size() const noexcept { return m_file_size; } // bytes on disk, 0 if unknown

private:
    std::string m_path;
    bool m_gzip = false;
    std::uint64_t m_file_size = 0;
    std::unique_ptr<io::LineReader> m_reader;
};

} // namespace exsal

#endif // EXSAL_IO_BYTE_SOURCE_HPP
