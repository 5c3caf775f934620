#ifndef EXSAL_CORE_PROCESS_GROUP_HPP
#define EXSAL_CORE_PROCESS_GROUP_HPP

// The processes of a data-parallel run, as far as the trainer needs them: sums and broadcasts of
// buffers across all processes. Every process calls the same members in the same order with the
// same sizes (collective calls). exsal/mpi/communicator.hpp implements it over an MPI
// communicator; this header needs no MPI.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <vector>

namespace exsal {

// Thrown on the processes that did not fail themselves when another process of a data-parallel
// step failed (see rethrow_if_any_failed): the failing process reports its own error.
class OtherProcessFailed : public Error {
public:
    using Error::Error;
};

class ProcessGroup {
public:
    virtual ~ProcessGroup() = default;

    // How many processes failed at the last agreement on failures (rethrow_if_any_failed) of this
    // group: 0 when it found none. A program that catches an error can tell by it whether every
    // process stops with it (> 0: the others are told, and every process with it) or the error
    // came outside an agreement (0: the other processes may wait for this one; end them all).
    std::int64_t last_failures() const noexcept { return m_last_failures; }
    void set_last_failures(std::int64_t n) noexcept { m_last_failures = n; }

    virtual int rank() const = 0; // 0-based, below size()
    virtual int size() const = 0; // processes in the group

    // data[0..n) := its elementwise sum over all processes, on every process. Every process must
    // get the same bits (MPI's built-in sums give them: each element is added up once, in one
    // order, and the result sent to all), since every process then takes the same optimiser step.
    virtual void sum(float* data, Index n) = 0;
    virtual void sum(double* data, Index n) = 0;
    virtual void sum(std::int64_t* data, Index n) = 0;
    // data[0..n) := process root's data[0..n), on every process.
    virtual void broadcast(float* data, Index n, int root) = 0;
    virtual void broadcast(double* data, Index n, int root) = 0;
    // data[0..n) := its elementwise maximum over all processes, on every process. This default
    // gathers every process's buffer through sum() (size() x n values on each process); an
    // implementation with a reduction of its own (MPI_MAX) overrides it.
    virtual void max(double* data, Index n) {
        const int p = size();
        std::vector<double> all(static_cast<std::size_t>(n) * static_cast<std::size_t>(p), 0.0);
        std::copy(data, data + n, all.begin() + static_cast<std::ptrdiff_t>(n) * rank());
        sum(all.data(), static_cast<Index>(all.size()));
        for (Index i = 0; i < n; ++i) {
            double m = -std::numeric_limits<double>::infinity();
            for (int r = 0; r < p; ++r) m = std::max(m, all[static_cast<std::size_t>(r) * static_cast<std::size_t>(n) + static_cast<std::size_t>(i)]);
            data[i] = m;
        }
    }

private:
    std::int64_t m_last_failures = 0;
};

// Every process's `local` strings, on every process (outer index: rank). Collective; for small
// lists such as group labels (each byte travels as one 8-byte integer of a sum).
inline std::vector<std::vector<std::string>> all_gather(ProcessGroup& group, const std::vector<std::string>& local) {
    const std::size_t p = static_cast<std::size_t>(group.size()), me = static_cast<std::size_t>(group.rank());
    std::string bytes; // each string, then a 0 byte
    for (const auto& s : local) {
        bytes += s;
        bytes.push_back('\0');
    }
    std::vector<std::int64_t> lengths(p, 0), counts(p, 0);
    lengths.insert(lengths.end(), counts.begin(), counts.end()); // [bytes per rank, strings per rank]
    lengths[me] = static_cast<std::int64_t>(bytes.size());
    lengths[p + me] = static_cast<std::int64_t>(local.size());
    group.sum(lengths.data(), static_cast<Index>(lengths.size()));
    std::int64_t total = 0, offset = 0;
    for (std::size_t r = 0; r < p; ++r) {
        if (r == me) offset = total;
        total += lengths[r];
    }
    std::vector<std::int64_t> all(static_cast<std::size_t>(total), 0);
    for (std::size_t i = 0; i < bytes.size(); ++i)
        all[static_cast<std::size_t>(offset) + i] = static_cast<unsigned char>(bytes[i]);
    group.sum(all.data(), static_cast<Index>(all.size()));
    std::vector<std::vector<std::string>> out(p);
    std::size_t at = 0;
    for (std::size_t r = 0; r < p; ++r) {
        for (std::int64_t k = 0; k < lengths[p + r]; ++k) {
            std::string s;
            while (all[at] != 0) s.push_back(static_cast<char>(all[at++]));
            ++at;
            out[r].push_back(std::move(s));
        }
    }
    return out;
}

// Throws, on every process alike, when any process failed: the failing processes rethrow their
// own `error`, the others an Error saying that `failures` processes failed in `what`. Collective
// (one sum) when `failures` is not given; give it when it was already summed with other data.
inline void rethrow_if_any_failed(ProcessGroup& group, const std::exception_ptr& error, const std::string& what,
                                  std::int64_t failures = -1) {
    if (failures < 0) {
        failures = error ? 1 : 0;
        group.sum(&failures, 1);
    }
    group.set_last_failures(failures);
    if (failures == 0) return;
    if (error) std::rethrow_exception(error);
    throw OtherProcessFailed(what + ": " + std::to_string(failures) + " of " + std::to_string(group.size()) +
                " processes failed (each reports its own error); process " + std::to_string(group.rank()) +
                " stops with them");
}

// Runs `work` on every process of `group` (on this one alone when group is null) and throws on
// every process alike when it threw on any (see rethrow_if_any_failed); collective with a group.
template <class F>
void on_every_process(ProcessGroup* group, const std::string& what, F&& work) {
    if (!group) {
        work();
        return;
    }
    std::exception_ptr error;
    try {
        work();
    } catch (...) {
        error = std::current_exception();
    }
    rethrow_if_any_failed(*group, error, what);
}

// A range of consecutive cells (rows of a file, columns of a matrix).
struct CellRange {
    std::int64_t first = 0;
    std::int64_t count = 0;
};

// Process `rank`'s share of `total` cells split as evenly as possible among `size` processes in
// rank order: the ranges a data-parallel train() expects.
inline CellRange even_share(std::int64_t total, int rank, int size) {
    if (size < 1 || rank < 0 || rank >= size || total < 0)
        throw ArgumentError("exsal::even_share", "needs 0 <= rank < size and total >= 0, got rank " +
                                                     std::to_string(rank) + ", size " + std::to_string(size) +
                                                     ", total " + std::to_string(total));
    const std::int64_t first = total * rank / size, next = total * (rank + 1) / size;
    return {first, next - first};
}

} // namespace exsal

#endif // EXSAL_CORE_PROCESS_GROUP_HPP
