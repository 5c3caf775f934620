#ifndef EXSAL_TESTS_FUZZ_COMMON_HPP
#define EXSAL_TESTS_FUZZ_COMMON_HPP

// Shared by the libFuzzer targets: the readers take paths, so each input is written to one
// scratch file per process (in /dev/shm when it exists: memory, no disk traffic), removed at exit.
// A finding is anything but a clean exsal::Error: a crash, a sanitizer report, a leak, a hang, an
// exception of another type escaping (libFuzzer reports it as a deadly signal), or a broken
// invariant (reported through fuzz_check, which aborts).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace exsal_fuzz {

// A scratch file "<dir>/exsal-fuzz-<tag>-<pid>", dir /dev/shm when writable, else $TMPDIR or
// /tmp; removed when the object is destroyed (at exit for a static).
struct ScratchFile {
    std::string path;
    explicit ScratchFile(const std::string& tag) {
        std::string dir = "/dev/shm";
        if (::access(dir.c_str(), W_OK) != 0) {
            const char* t = std::getenv("TMPDIR");
            dir = t && *t ? t : "/tmp";
        }
        path = dir + "/exsal-fuzz-" + tag + "-" + std::to_string(::getpid());
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;
    ~ScratchFile() { std::remove(path.c_str()); }
};

inline void write_scratch(const std::string& path, const unsigned char* data, std::size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
        std::fprintf(stderr, "fuzz harness: cannot write %s\n", path.c_str());
        std::abort();
    }
}

// An invariant the library promises; a violation is a finding.
#define fuzz_check(cond)                                                                              \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                                             \
        }                                                                                             \
    } while (0)

} // namespace exsal_fuzz

#endif // EXSAL_TESTS_FUZZ_COMMON_HPP
