#ifndef EXSAL_CORE_PROCESS_GROUP_HPP
#define EXSAL_CORE_PROCESS_GROUP_HPP

// The processes of a data-parallel run, as far as the trainer needs them: sums and broadcasts of
// buffers across all processes. Every process calls the same members in the same order with the
// same sizes (collective calls). exsal/mpi/communicator.hpp implements it over an MPI
// communicator; this header needs no MPI.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <cstdint>
#include <string>

namespace exsal {

class ProcessGroup {
public:
    virtual ~ProcessGroup() = default;

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
};

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
