// Two ways a process can leave the others waiting in a collective call, both of which must end
// every process (tests/mpi/CMakeLists.txt runs each with a timeout):
//   mpi_abort_check          process 1 throws before a barrier that process 0 waits in;
//                            run_or_abort prints its error and calls MPI_Abort
//   mpi_abort_check kill     process 1 is killed (SIGKILL) instead; the launcher must notice
#include "exsal/mpi/mpi.hpp"

#include <csignal>
#include <string>

int main(int argc, char** argv) {
    exsal::mpi::Environment mpi(argc, argv);
    exsal::mpi::Communicator world;
    const bool kill = argc > 1 && std::string(argv[1]) == "kill";
    return exsal::mpi::run_or_abort(world, [&] {
        if (world.rank() == 1) {
            if (kill) std::raise(SIGKILL);
            throw exsal::FileError("cells.csv", 5, 1, "not a number: 'x'");
        }
        world.barrier();
        return 0;
    });
}
