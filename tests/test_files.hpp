#ifndef EXSAL_TESTS_TEST_FILES_HPP
#define EXSAL_TESTS_TEST_FILES_HPP

// File helpers shared by the tests that write inputs and look at outputs: a temporary folder,
// whole-file write and read, and one gzip member made with zlib directly (the oracle for the
// reader's inflate).

#include <doctest/doctest.h>

#include <errno.h> // program_invocation_short_name (glibc)
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace exsal_test {

// A fresh folder "exsal_<test program>_<tag>_<pid>" under the system temporary directory, removed
// with its content at scope exit. EXSAL_KEEP_TEST_FILES=1 keeps it, to look at a failing case.
struct TempDir {
    std::filesystem::path dir;
    explicit TempDir(const std::string& tag) {
        namespace fs = std::filesystem;
        dir = fs::temp_directory_path() /
              ("exsal_" + std::string(program_invocation_short_name) + "_" + tag + "_" + std::to_string(::getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        if (!std::getenv("EXSAL_KEEP_TEST_FILES")) std::filesystem::remove_all(dir, ec);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }
    // The names in the folder (not recursive), in directory order.
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
        return names;
    }
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

// The whole file; "" when it cannot be opened.
inline std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One gzip member holding `text`, deflated at `level`.
inline std::string gzip_member(const std::string& text, int level = 6) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, static_cast<uLong>(text.size())) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(&out[0]);
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

} // namespace exsal_test

#endif // EXSAL_TESTS_TEST_FILES_HPP
