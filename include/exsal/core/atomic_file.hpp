#ifndef EXSAL_CORE_ATOMIC_FILE_HPP
#define EXSAL_CORE_ATOMIC_FILE_HPP

// Every file exsal writes goes to a hidden temporary name in the target's folder and is renamed
// over the final name only when complete, so a crash or kill never leaves a partial file under
// the final name.

#include "exsal/core/error.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

namespace exsal {

namespace detail {
inline std::string temporary_name_for(const std::filesystem::path& target) {
    static std::atomic<unsigned> counter{0};
    const auto dir = target.parent_path();
    const std::string name = "." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) +
                             "-" + std::to_string(counter++);
    return (dir.empty() ? std::filesystem::path(name) : dir / name).string();
}
} // namespace detail

// Calls write(stream) on a temporary file, then renames it to `path`. Throws FileError naming
// `path` if the file cannot be written; the temporary is removed on any failure.
inline void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write,
                                  bool binary = false) {
    const std::string tmp = detail::temporary_name_for(path);
    try {
        {
            std::ofstream out(tmp, binary ? std::ios::binary | std::ios::trunc : std::ios::trunc);
            if (!out) throw FileError(path, std::string("cannot create file: ") + std::strerror(errno));
            write(out);
            out.flush();
            if (!out) throw FileError(path, "write failed (disk full?)");
        }
        if (std::rename(tmp.c_str(), path.c_str()) != 0)
            throw FileError(path, std::string("cannot rename temporary file into place: ") + std::strerror(errno));
    } catch (...) {
        std::remove(tmp.c_str());
        throw;
    }
}

inline void write_file_atomically(const std::string& path, const std::string& content, bool binary = false) {
    write_file_atomically(path, [&](std::ostream& out) { out.write(content.data(), static_cast<std::streamsize>(content.size())); },
                          binary);
}

} // namespace exsal

#endif // EXSAL_CORE_ATOMIC_FILE_HPP
