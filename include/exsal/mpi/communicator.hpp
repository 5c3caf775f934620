#ifndef EXSAL_MPI_COMMUNICATOR_HPP
#define EXSAL_MPI_COMMUNICATOR_HPP

// An MPI communicator as the ProcessGroup of a data-parallel train(): rank, size, in-place sums
// (MPI_Allreduce) and broadcasts of float, double and int64 buffers. Errors are returned by MPI
// (MPI_ERRORS_RETURN on the communicator) and thrown as MpiError. Call it from the thread that
// initialised MPI only (funneled).

#include "exsal/core/process_group.hpp"
#include "exsal/mpi/environment.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

namespace exsal {
namespace mpi {

class Communicator final : public ProcessGroup {
public:
    // MPI_COMM_WORLD (not owned).
    Communicator() : Communicator(MPI_COMM_WORLD, false) {}
    // A new communicator with the processes of `comm` (MPI_Comm_dup; collective), owned and freed
    // on destruction: exsal's messages cannot meet the caller's own on `comm`.
    static Communicator duplicate(MPI_Comm comm) {
        MPI_Comm copy = MPI_COMM_NULL;
        EXSAL_MPI_CHECK(MPI_Comm_dup(comm, &copy));
        return Communicator(copy, true);
    }
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;
    Communicator(Communicator&& other) noexcept
        : m_comm(std::exchange(other.m_comm, MPI_COMM_NULL)), m_owned(std::exchange(other.m_owned, false)),
          m_rank(other.m_rank), m_size(other.m_size) {}
    Communicator& operator=(Communicator&&) = delete;
    ~Communicator() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (m_owned && !finalized) MPI_Comm_free(&m_comm);
    }

    MPI_Comm get() const noexcept { return m_comm; }
    int rank() const override { return m_rank; }
    int size() const override { return m_size; }

    void sum(float* data, Index n) override { allreduce(data, n, MPI_FLOAT); }
    void sum(double* data, Index n) override { allreduce(data, n, MPI_DOUBLE); }
    void sum(std::int64_t* data, Index n) override { allreduce(data, n, MPI_INT64_T); }
    void max(double* data, Index n) override { allreduce(data, n, MPI_DOUBLE, MPI_MAX); }
    void broadcast(float* data, Index n, int root) override { bcast(data, n, MPI_FLOAT, root); }
    void broadcast(double* data, Index n, int root) override { bcast(data, n, MPI_DOUBLE, root); }
    void barrier() { EXSAL_MPI_CHECK(MPI_Barrier(m_comm)); }

    // Prints "exsal: process r of p: message" to stderr and ends every process of the
    // communicator (MPI_Abort with `code`); for errors after which the others cannot go on.
    [[noreturn]] void abort(const std::string& message, int code = 1) const noexcept {
        std::fprintf(stderr, "exsal: process %d of %d: %s\n", m_rank, m_size, message.c_str());
        std::fflush(stderr);
#ifdef MPICH
        // MPICH's launcher (hydra) forwards stderr through a pipe and, told of the abort, ends
        // every process and itself at once: what is still in the pipe is lost (5 runs in 30 here,
        // MPICH 4.0.2). A moment lets it pass the message on first; Open MPI does not lose it.
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
#endif
        MPI_Abort(m_comm, code);
        std::abort(); // MPI_Abort does not return; if it did, this process still ends
    }

private:
    Communicator(MPI_Comm comm, bool owned) : m_comm(comm), m_owned(owned) {
        EXSAL_MPI_CHECK(MPI_Comm_set_errhandler(m_comm, MPI_ERRORS_RETURN));
        EXSAL_MPI_CHECK(MPI_Comm_rank(m_comm, &m_rank));
        EXSAL_MPI_CHECK(MPI_Comm_size(m_comm, &m_size));
    }

    // MPI counts are int: longer buffers go in pieces of at most INT_MAX elements (every process
    // cuts them alike, so the calls match).
    template <typename T>
    void allreduce(T* data, Index n, MPI_Datatype type, MPI_Op op = MPI_SUM) {
        for (Index done = 0; done < n;) {
            const int len = static_cast<int>(std::min<Index>(n - done, INT_MAX));
            EXSAL_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + done, len, type, op, m_comm));
            done += len;
        }
    }
    template <typename T>
    void bcast(T* data, Index n, MPI_Datatype type, int root) {
        if (root < 0 || root >= m_size)
            throw ArgumentError("exsal::mpi::Communicator::broadcast",
                                "root " + std::to_string(root) + " is not a process of the " +
                                    std::to_string(m_size));
        for (Index done = 0; done < n;) {
            const int len = static_cast<int>(std::min<Index>(n - done, INT_MAX));
            EXSAL_MPI_CHECK(MPI_Bcast(data + done, len, type, root, m_comm));
            done += len;
        }
    }

    MPI_Comm m_comm;
    bool m_owned;
    int m_rank = 0, m_size = 1;
};

// Runs body() (returning the program's exit code) and returns its result. An exception that
// escapes body() ends every process: it prints "exsal: process r of p: <what()>" and calls
// MPI_Abort, since the other processes may be waiting for this one in a collective call.
template <class F>
int run_or_abort(const Communicator& comm, F&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        comm.abort(std::string("error: ") + e.what());
    } catch (...) {
        comm.abort("error: an unknown exception");
    }
}

} // namespace mpi
} // namespace exsal

#endif // EXSAL_MPI_COMMUNICATOR_HPP
