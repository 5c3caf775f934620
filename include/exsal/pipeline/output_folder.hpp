#ifndef EXSAL_PIPELINE_OUTPUT_FOLDER_HPP
#define EXSAL_PIPELINE_OUTPUT_FOLDER_HPP

// An output folder that is filled completely or not at all. Files are written into a hidden
// staging folder next to the target (".<name>.exsal-staging-<pid>", same file system) and only
// commit() moves them into place:
//   - target absent or empty: the staging folder is renamed to the target (one atomic rename);
//   - target not empty (only with force): each staged file is renamed over the file of the same
//     name in the target. Files of the target that the run does not write are never touched or
//     deleted, so inputs kept there, notes and earlier results under other names survive.
// If the run fails (or commit() is never called) the destructor removes the staging folder and
// the target is exactly as before. Refusal happens in open(), before any work.
//
// Termination: creating, committing and discarding a staging folder each happen under one
// process-wide lock, which also guards the list of staging folders this process has open.
// remove_staging_folders_for_exit() takes that lock for good and removes every folder on the
// list, so a program that ends on a signal (velten_pipeline does, from a thread that waits for
// SIGINT, SIGTERM and SIGHUP) leaves either the target as it was or the complete output in it.

#include "exsal/core/error.hpp"

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace exsal {

namespace detail {
// The staging folders this process has open, and the lock that orders their creation, commit and
// removal. Allocated once and never freed: a thread may still take the lock while the process
// exits, after static objects have been destroyed.
struct StagingRegistry {
    std::mutex lock;
    std::vector<std::filesystem::path> open;
    void add(const std::filesystem::path& p) { open.push_back(p); }
    void remove(const std::filesystem::path& p) noexcept {
        open.erase(std::remove(open.begin(), open.end(), p), open.end());
    }
};
inline StagingRegistry& staging_registry() {
    static StagingRegistry* registry = new StagingRegistry;
    return *registry;
}
} // namespace detail

class OutputFolder {
public:
    // Checks the target and creates the staging folder. Throws ArgumentError (subject
    // Setting::output_folder) when `target` is empty, exists and is not a folder, or is a non-empty
    // folder and `force` is false (with a hint to set force); FileError when the staging folder
    // cannot be created (e.g. no write permission).
    static OutputFolder open(const std::string& target, bool force) {
        namespace fs = std::filesystem;
        const std::string where = "OutputFolder::open";
        if (target.empty()) throw ArgumentError(where, "the folder name must not be empty", Setting::output_folder);
        const fs::path path = fs::absolute(fs::path(target)).lexically_normal();
        const fs::path clean = path.has_filename() ? path : path.parent_path(); // drop a trailing '/'
        std::error_code ec;
        const fs::file_status st = fs::status(clean, ec);
        bool non_empty = false;
        if (fs::exists(st)) {
            if (!fs::is_directory(st))
                throw ArgumentError(where, "'" + target + "' exists and is not a folder", Setting::output_folder);
            non_empty = fs::directory_iterator(clean, ec) != fs::directory_iterator();
            if (ec) throw FileError(target, "cannot list the output folder: " + ec.message());
            if (non_empty && !force)
                throw ArgumentError(where, "'" + target + "' exists and is not empty; choose a new folder",
                                    Setting::output_folder,
                                    {{Setting::output_force, "to replace the files this run writes (other files are kept)"}});
        }
        const fs::path parent = clean.parent_path();
        fs::create_directories(parent, ec);
        if (ec) throw FileError(parent.string(), "cannot create the parent of the output folder: " + ec.message());
        OutputFolder f;
        f.m_target = clean;
        f.m_merge = non_empty;
        f.m_staging = parent / ("." + clean.filename().string() + ".exsal-staging-" + std::to_string(::getpid()));
        detail::StagingRegistry& registry = detail::staging_registry();
        const std::lock_guard<std::mutex> hold(registry.lock);
        fs::remove_all(f.m_staging, ec); // a leftover of an earlier process with the same id
        if (!fs::create_directory(f.m_staging, ec) || ec)
            throw FileError(f.m_staging.string(), "cannot create the staging folder: " +
                                                      (ec ? ec.message() : std::string("it already exists")));
        registry.add(f.m_staging);
        f.m_active = true;
        return f;
    }

    OutputFolder(OutputFolder&& other) noexcept { *this = std::move(other); }
    OutputFolder& operator=(OutputFolder&& other) noexcept {
        if (this != &other) {
            discard();
            m_target = std::move(other.m_target);
            m_staging = std::move(other.m_staging);
            m_files = std::move(other.m_files);
            m_merge = other.m_merge;
            m_active = other.m_active;
            other.m_active = false;
        }
        return *this;
    }
    OutputFolder(const OutputFolder&) = delete;
    OutputFolder& operator=(const OutputFolder&) = delete;
    ~OutputFolder() { discard(); }

    // Where to write the output file `name` now; records the name. `name` is a file name or a
    // relative path inside the folder ("models/model_2/units.csv"; its folders are created).
    // Throws ArgumentError for "", an absolute path, a part that is empty, "." or "..", or a name
    // used twice.
    std::string file(const std::string& name) {
        bool plain = !name.empty() && name.front() != '/' && name.back() != '/';
        for (std::size_t start = 0; plain && start <= name.size();) {
            const std::size_t end = std::min(name.find('/', start), name.size());
            const std::string part = name.substr(start, end - start);
            plain = !part.empty() && part != "." && part != "..";
            start = end + 1;
        }
        if (!plain) throw ArgumentError("OutputFolder::file", "'" + name + "' is not a file name inside the folder");
        for (const auto& f : m_files)
            if (f == name) throw ArgumentError("OutputFolder::file", "the file name '" + name + "' is used twice");
        const std::filesystem::path path = m_staging / name;
        if (name.find('/') != std::string::npos) {
            std::error_code ec;
            std::filesystem::create_directories(path.parent_path(), ec);
            if (ec) throw FileError(path.parent_path().string(), "cannot create the folder: " + ec.message());
        }
        m_files.push_back(name);
        return path.string();
    }
    // The final path of `name` inside the target folder (for messages and input checks).
    std::string final_path(const std::string& name) const { return (m_target / name).string(); }

    const std::vector<std::string>& files() const noexcept { return m_files; }
    std::string target() const { return m_target.string(); }
    std::string staging() const { return m_staging.string(); }
    bool merging() const noexcept { return m_merge; }

    // Moves every staged file into the target (see the top of this header). Throws FileError
    // naming the file that could not be moved; files moved before it stay in place.
    void commit() {
        namespace fs = std::filesystem;
        if (!m_active) throw ArgumentError("OutputFolder::commit", "nothing to commit");
        detail::StagingRegistry& registry = detail::staging_registry();
        const std::lock_guard<std::mutex> hold(registry.lock);
        std::error_code ec;
        if (!m_merge) {
            // An empty target folder is replaced by the rename; a target created meanwhile is not.
            if (fs::exists(m_target, ec)) fs::remove(m_target, ec);
            fs::rename(m_staging, m_target, ec);
            if (ec) {
                m_active = false; // keep the staged output: the message points to it
                registry.remove(m_staging);
                throw FileError(m_target.string(), "cannot move the finished output into place: " + ec.message() +
                                                       " (the complete output is in " + m_staging.string() + ")");
            }
        } else {
            for (const auto& name : m_files) {
                if (name.find('/') != std::string::npos) fs::create_directories((m_target / name).parent_path(), ec);
                fs::rename(m_staging / name, m_target / name, ec);
                if (ec) throw FileError((m_target / name).string(), "cannot move the file into place: " + ec.message());
            }
            fs::remove_all(m_staging, ec);
        }
        registry.remove(m_staging);
        m_active = false;
    }

    // For a program about to end on a termination signal; call it from an ordinary thread (it
    // uses the file system, so not from a signal handler), then end the process at once. Takes
    // the staging lock and never releases it, and removes every staging folder this process has
    // open: a commit under way finishes first (the target then holds the complete output), and
    // no thread can create, commit or discard a staging folder afterwards - such a thread waits
    // for the lock until the process ends. Each folder is first renamed (same hidden prefix,
    // suffix ".removing"), so a thread still writing into it cannot create new entries there.
    static void remove_staging_folders_for_exit() noexcept {
        namespace fs = std::filesystem;
        detail::StagingRegistry& registry = detail::staging_registry();
        registry.lock.lock(); // never unlocked (see above)
        for (const fs::path& staging : registry.open) {
            std::error_code ec;
            fs::path doomed = staging;
            doomed += ".removing";
            fs::rename(staging, doomed, ec);
            if (ec) doomed = staging;
            fs::remove_all(doomed, ec);
            fs::remove_all(doomed, ec); // an entry created by a write that was already under way
        }
        registry.open.clear();
    }

private:
    OutputFolder() = default;
    void discard() noexcept {
        if (!m_active) return;
        detail::StagingRegistry& registry = detail::staging_registry();
        const std::lock_guard<std::mutex> hold(registry.lock);
        std::error_code ec;
        std::filesystem::remove_all(m_staging, ec);
        registry.remove(m_staging);
        m_active = false;
    }

    std::filesystem::path m_target;  // absolute, normalised output folder
    std::filesystem::path m_staging; // hidden sibling folder that receives the files
    std::vector<std::string> m_files; // names handed out by file(), in order
    bool m_merge = false;            // target existed and was not empty (force): move files one by one
    bool m_active = false;           // staging folder exists and is ours
};

} // namespace exsal

#endif // EXSAL_PIPELINE_OUTPUT_FOLDER_HPP
