// Data-parallel training over MPI ranks (run by CTest as mpiexec -n 2): the communicator's sums,
// broadcasts and errors, then the checks of data_parallel_checks.hpp against the one-process run
// (first step, 20-epoch loss curves, repeats, uneven shares, early stopping, failures), and the
// checks of interpret_parallel_checks.hpp (interpretation of each rank's cells).
#define DOCTEST_CONFIG_IMPLEMENT
#include "data_parallel_checks.hpp"
#include "interpret_parallel_checks.hpp"

#include "exsal/core/threads.hpp"
#include "exsal/mpi/mpi.hpp"

#include <numeric>

using namespace exsal;

namespace {
mpi::Communicator* world = nullptr; // set by main
}

TEST_CASE("MPI communicator: sums and broadcasts on every rank; errors thrown as MpiError") {
    mpi::Communicator& comm = *world;
    const int p = comm.size(), r = comm.rank();
    std::vector<float> f{1.0f, static_cast<float>(r)};
    std::vector<double> d{0.5, static_cast<double>(r)};
    std::vector<std::int64_t> i{std::int64_t(1) << 40, r};
    comm.sum(f.data(), 2);
    comm.sum(d.data(), 2);
    comm.sum(i.data(), 2);
    const double ranks = p * (p - 1) / 2.0;
    CHECK(f == std::vector<float>{static_cast<float>(p), static_cast<float>(ranks)});
    CHECK(d == std::vector<double>{0.5 * p, ranks});
    CHECK(i == std::vector<std::int64_t>{p * (std::int64_t(1) << 40), static_cast<std::int64_t>(ranks)});
    std::vector<double> b{static_cast<double>(r), 7.0};
    comm.broadcast(b.data(), 2, p - 1);
    CHECK(b == std::vector<double>{static_cast<double>(p - 1), 7.0});
    CHECK_THROWS_AS(comm.broadcast(b.data(), 2, p), ArgumentError);
    // MPI_ERRORS_RETURN: a bad argument comes back as a code, thrown as MpiError naming the call.
    // The null operation: Open MPI and MPICH both check it on every rank (MPICH 4.0.2 does not
    // check a negative count with MPI_IN_PLACE and crashes in its packing code instead).
    float x = 0.0f;
    try {
        EXSAL_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_FLOAT, MPI_OP_NULL, comm.get()));
        FAIL("a null operation must fail");
    } catch (const mpi::MpiError& e) {
        const std::string m = e.what();
        CHECK(m.find("exsal::mpi: MPI_Allreduce failed: ") == 0);
        CHECK(e.code() != MPI_SUCCESS);
    }
    // A duplicate communicator has the same processes.
    mpi::Communicator dup = mpi::Communicator::duplicate(comm.get());
    CHECK(dup.rank() == r);
    CHECK(dup.size() == p);
}

TEST_CASE("MPI: the first step agrees with one process to rounding") { exsal_test::check_first_step(*world); }

TEST_CASE("MPI: 20 epochs' losses within 1 % of one process; ranks agree; runs repeat bit for bit") {
    exsal_test::check_loss_curves_and_repeats(*world);
}

TEST_CASE("MPI: early stopping decides alike on every rank") { exsal_test::check_early_stopping(*world); }

TEST_CASE("MPI: a rank with no cells, or with few") { exsal_test::check_uneven_shares(*world); }

TEST_CASE("MPI: an error on one rank ends train() on every rank") { exsal_test::check_failures(*world); }

TEST_CASE("MPI: interpretation of each rank's cells equals one process over all cells") {
    exsal_test::check_interpretation(*world);
    exsal_test::check_interpretation_uneven(*world);
}

TEST_CASE("MPI: group programmes of each rank's cells equal one process over all cells") {
    exsal_test::check_programmes(*world);
}

TEST_CASE("MPI: an error or a mismatch on one rank ends interpret() on every rank") {
    exsal_test::check_interpretation_failures(*world);
}

TEST_CASE("MPI: maximum and string gathering across ranks") {
    mpi::Communicator& comm = *world;
    double m[2] = {static_cast<double>(comm.rank()), -static_cast<double>(comm.rank())};
    comm.max(m, 2);
    CHECK(m[0] == comm.size() - 1);
    CHECK(m[1] == 0.0);
    const auto all = all_gather(comm, {"rank " + std::to_string(comm.rank())});
    REQUIRE(static_cast<int>(all.size()) == comm.size());
    for (int r = 0; r < comm.size(); ++r) CHECK(all[static_cast<std::size_t>(r)] == std::vector<std::string>{"rank " + std::to_string(r)});
}

int main(int argc, char** argv) {
    mpi::Environment environment(argc, argv);
    mpi::Communicator comm;
    world = &comm;
    set_threads(1);
    doctest::Context context(argc, argv);
    if (comm.rank() != 0) context.setOption("minimal", true); // rank 0 reports; the others only failures
    const int failed = context.run();
    int any = failed != 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, comm.get());
    return any;
}
