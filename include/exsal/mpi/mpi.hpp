#ifndef EXSAL_MPI_MPI_HPP
#define EXSAL_MPI_MPI_HPP

// exsal over MPI (link exsal::mpi): Environment (MPI's lifetime), Communicator (the ProcessGroup
// of a data-parallel exsal::train), run_or_abort and EXSAL_MPI_CHECK.

#include "exsal/mpi/communicator.hpp"
#include "exsal/mpi/environment.hpp"

#endif // EXSAL_MPI_MPI_HPP
