// Process 1 throws before a barrier that process 0 waits in; run_or_abort prints its error and
// ends both processes with MPI_Abort. Without it process 0 would wait forever (CTest's timeout
// then fails the test).
#include "exsal/mpi/mpi.hpp"

int main(int argc, char** argv) {
    exsal::mpi::Environment mpi(argc, argv);
    exsal::mpi::Communicator world;
    return exsal::mpi::run_or_abort(world, [&] {
        if (world.rank() == 1) throw exsal::FileError("cells.csv", 5, 1, "not a number: 'x'");
        world.barrier();
        return 0;
    });
}
