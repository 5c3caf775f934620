#ifndef EXSAL_MPI_ENVIRONMENT_HPP
#define EXSAL_MPI_ENVIRONMENT_HPP

// MPI's lifetime as an object: Environment initialises MPI with funneled thread support (OpenMP
// threads inside each process, MPI calls from the main thread only) and finalises it. MPI errors
// become MpiError through EXSAL_MPI_CHECK. Needs exsal::mpi (configure with -DEXSAL_MPI=ON).

#ifndef EXSAL_WITH_MPI
#error "exsal/mpi/ needs MPI: link exsal::mpi beside exsal::exsal (exsal configured with -DEXSAL_MPI=ON)"
#endif

#include "exsal/core/error.hpp"

#include <mpi.h>

#include <cstdlib>
#include <exception>
#include <string>

namespace exsal {
namespace mpi {

// An MPI call returned an error code.
class MpiError : public Error {
public:
    MpiError(const std::string& message, int code) : Error("exsal::mpi: " + message), m_code(code) {}
    int code() const noexcept { return m_code; } // MPI's error code (MPI_SUCCESS when exsal found the fault)

private:
    int m_code;
};

namespace detail {
// MPI's text for an error code.
inline std::string error_string(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "unknown MPI error";
    return std::string(text, static_cast<std::size_t>(length));
}
// Throws MpiError naming the call ("MPI_Allreduce failed: ...") unless code is MPI_SUCCESS.
inline void check(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    std::string name(call);
    name = name.substr(0, name.find('('));
    throw MpiError(name + " failed: " + error_string(code) + " (error code " + std::to_string(code) + ")", code);
}
} // namespace detail

} // namespace mpi
} // namespace exsal

// Runs an MPI call and throws exsal::mpi::MpiError when it returns an error code. Only calls on a
// communicator whose error handler is MPI_ERRORS_RETURN return codes (Communicator sets it);
// under MPI's default handler an error aborts every process instead.
#define EXSAL_MPI_CHECK(call) ::exsal::mpi::detail::check((call), #call)

namespace exsal {
namespace mpi {

// Whether a launcher started this process as one of several (mpirun, mpiexec, srun): the
// variables Open MPI (OMPI_COMM_WORLD_SIZE), MPICH's and Slurm's PMI (PMI_SIZE, PMI_RANK), PMIx
// (PMIX_RANK) and Slurm (SLURM_PROCID) set for each process. A program that also runs alone can
// skip MPI then: started alone, MPI_Init makes a one-process world ("singleton"), which took 0.5 s
// here with Open MPI 4.1, a cost for a tool started often.
inline bool started_by_launcher() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"})
        if (std::getenv(name)) return true;
    return false;
}

// Initialises MPI for the lifetime of the object (one per program, before any other MPI call)
// with MPI_THREAD_FUNNELED, and makes MPI_COMM_WORLD return error codes instead of aborting.
// Destroyed while an exception propagates, it calls MPI_Abort instead of MPI_Finalize: the other
// processes may be waiting for this one in a collective call and would otherwise never return.
class Environment {
public:
    Environment(int& argc, char**& argv) { init(&argc, &argv); }
    Environment() { init(nullptr, nullptr); }
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;
    ~Environment() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized) return;
        if (std::uncaught_exceptions() > m_uncaught)
            MPI_Abort(MPI_COMM_WORLD, 1);
        else
            MPI_Finalize();
    }

    // The thread support MPI provides (at least MPI_THREAD_FUNNELED).
    int thread_support() const noexcept { return m_provided; }

private:
    void init(int* argc, char*** argv) {
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (initialized) throw MpiError("MPI is already initialised; create one exsal::mpi::Environment, first", MPI_SUCCESS);
        // Until MPI is initialised, MPI's default handler aborts on errors.
        EXSAL_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &m_provided));
        if (m_provided < MPI_THREAD_FUNNELED) {
            MPI_Finalize();
            throw MpiError("this MPI library provides thread support level " + std::to_string(m_provided) +
                               " only; exsal runs OpenMP threads inside each process and needs "
                               "MPI_THREAD_FUNNELED (" + std::to_string(MPI_THREAD_FUNNELED) + ")",
                           MPI_SUCCESS);
        }
        EXSAL_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        m_uncaught = std::uncaught_exceptions();
    }

    int m_provided = 0;
    int m_uncaught = 0; // exceptions in flight at construction
};

} // namespace mpi
} // namespace exsal

#endif // EXSAL_MPI_ENVIRONMENT_HPP
