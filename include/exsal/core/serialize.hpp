#ifndef EXSAL_CORE_SERIALIZE_HPP
#define EXSAL_CORE_SERIALIZE_HPP

// Little-endian binary encoding for model files and the state stored with them.

#include "exsal/core/error.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace exsal::detail {

class ByteWriter {
public:
    void u8(std::uint8_t v) { m_bytes.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { put(&v, 4); }
    void u64(std::uint64_t v) { put(&v, 8); }
    void i64(std::int64_t v) { put(&v, 8); }
    void f64(double v) { put(&v, 8); }
    void str(std::string_view s) {
        u64(s.size());
        m_bytes.append(s.data(), s.size());
    }
    void strings(const std::vector<std::string>& v) {
        u64(v.size());
        for (const auto& s : v) str(s);
    }
    template <typename T>
    void f64s(const T* data, std::size_t n) {
        u64(n);
        for (std::size_t i = 0; i < n; ++i) f64(static_cast<double>(data[i]));
    }
    template <typename Vec>
    void f64s(const Vec& v) {
        f64s(v.data(), static_cast<std::size_t>(v.size()));
    }
    const std::string& bytes() const noexcept { return m_bytes; }
    std::string take() { return std::move(m_bytes); }

private:
    void put(const void* p, std::size_t n) {
        static_assert(sizeof(double) == 8, "exsal's file format needs 8-byte doubles.");
        m_bytes.append(static_cast<const char*>(p), n); // the targets are little-endian
    }
    std::string m_bytes;
};

// Reads what ByteWriter wrote; any overrun or implausible size throws FileError naming `origin`.
class ByteReader {
public:
    ByteReader(std::string_view bytes, std::string origin)
        : m_bytes(bytes), m_origin(std::move(origin)) {}

    std::uint8_t u8() { std::uint8_t v; get(&v, 1, "u8"); return v; }
    std::uint32_t u32() { std::uint32_t v; get(&v, 4, "u32"); return v; }
    std::uint64_t u64() { std::uint64_t v; get(&v, 8, "u64"); return v; }
    std::int64_t i64() { std::int64_t v; get(&v, 8, "i64"); return v; }
    double f64() { double v; get(&v, 8, "f64"); return v; }
    std::string str() {
        const std::uint64_t n = count(1, "string");
        std::string s(m_bytes.substr(m_pos, n));
        m_pos += n;
        return s;
    }
    std::vector<std::string> strings() {
        const std::uint64_t n = count(8, "string list");
        std::vector<std::string> v;
        v.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i) v.push_back(str());
        return v;
    }
    std::vector<double> f64s() {
        const std::uint64_t n = count(8, "number list");
        std::vector<double> v(n);
        for (auto& x : v) x = f64();
        return v;
    }
    std::size_t remaining() const noexcept { return m_bytes.size() - m_pos; }
    std::size_t position() const noexcept { return m_pos; }
    const std::string& origin() const noexcept { return m_origin; }
    [[noreturn]] void fail(const std::string& what) const {
        throw FileError(m_origin, "corrupt or truncated data at byte " + std::to_string(m_pos) + ": " + what);
    }

private:
    // Reads an element count and checks that that many elements of at least `min_size` bytes fit.
    std::uint64_t count(std::size_t min_size, const char* what) {
        const std::uint64_t n = u64();
        if (n > remaining() / min_size) fail(std::string(what) + " of " + std::to_string(n) + " elements exceeds the data left");
        return n;
    }
    void get(void* p, std::size_t n, const char* what) {
        if (remaining() < n) fail(std::string("unexpected end while reading ") + what);
        std::memcpy(p, m_bytes.data() + m_pos, n);
        m_pos += n;
    }
    std::string_view m_bytes;
    std::string m_origin;
    std::size_t m_pos = 0;
};

// FNV-1a, 64 bit: the checksum of model files.
inline std::uint64_t fnv1a64(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

} // namespace exsal::detail

#endif // EXSAL_CORE_SERIALIZE_HPP
