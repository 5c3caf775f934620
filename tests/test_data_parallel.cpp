// Data-parallel training without MPI: threads stand in for the processes (ThreadGroup sums and
// broadcasts through shared memory, adding the processes' buffers in rank order as MPI's sum
// does), so the checks of data_parallel_checks.hpp also run in builds without MPI and under the
// sanitisers. tests/mpi/test_mpi.cpp runs the same checks over MPI ranks.
#include "data_parallel_checks.hpp"
#include "interpret_parallel_checks.hpp"

#include "exsal/core/threads.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

using namespace exsal;

namespace {

// What the threads of a ThreadGroup share: each call's buffers, met at a barrier.
class SharedCalls {
public:
    explicit SharedCalls(int size) : m_size(size), m_buffers(static_cast<std::size_t>(size)) {}
    int size() const { return m_size; }

    // Every thread's data[0..n) := the sum over the threads (added in rank order), or root's.
    template <typename T>
    void sum(int rank, T* data, Index n) {
        exchange(rank, data, [&] {
            std::vector<T> total(static_cast<std::size_t>(n), T(0));
            for (void* b : m_buffers)
                for (Index i = 0; i < n; ++i) total[static_cast<std::size_t>(i)] += static_cast<T*>(b)[i];
            for (void* b : m_buffers) std::copy(total.begin(), total.end(), static_cast<T*>(b));
        });
    }
    template <typename T>
    void broadcast(int rank, T* data, Index n, int root) {
        exchange(rank, data, [&] {
            const T* from = static_cast<T*>(m_buffers[static_cast<std::size_t>(root)]);
            for (void* b : m_buffers)
                if (b != from) std::copy(from, from + n, static_cast<T*>(b));
        });
    }

private:
    // All threads leave their buffer; the last to arrive runs `combine` on all of them; then all go on.
    template <typename F>
    void exchange(int rank, void* data, F&& combine) {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_buffers[static_cast<std::size_t>(rank)] = data;
        const std::uint64_t generation = m_generation;
        if (++m_arrived == m_size) {
            combine();
            m_arrived = 0;
            ++m_generation;
            m_done.notify_all();
        } else {
            m_done.wait(lock, [&] { return m_generation != generation; });
        }
    }

    int m_size;
    std::vector<void*> m_buffers;
    std::mutex m_mutex;
    std::condition_variable m_done;
    int m_arrived = 0;
    std::uint64_t m_generation = 0;
};

class ThreadGroup final : public ProcessGroup {
public:
    ThreadGroup(SharedCalls& shared, int rank) : m_shared(shared), m_rank(rank) {}
    int rank() const override { return m_rank; }
    int size() const override { return m_shared.size(); }
    void sum(float* data, Index n) override { m_shared.sum(m_rank, data, n); }
    void sum(double* data, Index n) override { m_shared.sum(m_rank, data, n); }
    void sum(std::int64_t* data, Index n) override { m_shared.sum(m_rank, data, n); }
    void broadcast(float* data, Index n, int root) override { m_shared.broadcast(m_rank, data, n, root); }
    void broadcast(double* data, Index n, int root) override { m_shared.broadcast(m_rank, data, n, root); }

private:
    SharedCalls& m_shared;
    int m_rank;
};

// Runs check(group) on `size` threads, each a process of one group, with one OpenMP thread each.
void on_threads(int size, const std::function<void(ProcessGroup&)>& check) {
    SharedCalls shared(size);
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r)
        threads.emplace_back([&, r] {
            set_threads(1);
            ThreadGroup group(shared, r);
            check(group);
        });
    for (auto& t : threads) t.join();
}

} // namespace

TEST_CASE("data-parallel training in one process equals train() without a group, bit for bit") {
    // One process holds all cells: the same gradient (times 1), the penalty added after it as
    // train() adds it, the same steps.
    set_threads(1);
    const MatrixF all = exsal_test::parallel_test_data(80, 690, 3), data = all.leftCols(600), validation = all.rightCols(90);
    const TrainOptions o = exsal_test::parallel_test_options(4);
    const auto one = exsal_test::parallel_train(nullptr, data, {0, data.cols()}, validation, {0, validation.cols()}, o);
    SharedCalls shared(1);
    ThreadGroup group(shared, 0);
    const auto grouped = exsal_test::parallel_train(&group, data, {0, data.cols()}, validation, {0, validation.cols()}, o);
    CHECK(grouped.first_gradient == one.first_gradient);
    CHECK(grouped.parameters == one.parameters);
    CHECK(exsal_test::same_bits(grouped.history.validation_loss, one.history.validation_loss));
    // The batch losses pass through the float sum: equal to float rounding.
    for (std::size_t e = 0; e < one.history.train_loss.size(); ++e)
        CHECK(grouped.history.train_loss[e] == doctest::Approx(one.history.train_loss[e]).epsilon(1e-6));
}

TEST_CASE("data-parallel training on 2 and 3 threads as processes: first step, loss curves, repeats") {
    for (int size : {2, 3}) {
        on_threads(size, exsal_test::check_first_step);
        on_threads(size, exsal_test::check_loss_curves_and_repeats);
    }
}

TEST_CASE("data-parallel training: early stopping decides alike on every process") {
    on_threads(2, exsal_test::check_early_stopping);
}

TEST_CASE("data-parallel training: a process with no cells, or with few") {
    on_threads(2, exsal_test::check_uneven_shares);
    on_threads(3, exsal_test::check_uneven_shares);
}

TEST_CASE("data-parallel training: an error on one process ends every process") {
    on_threads(2, exsal_test::check_failures);
}

TEST_CASE("data-parallel interpretation in one process equals interpret() without a group, bit for bit") {
    const auto problem = exsal_test::interpret_problem();
    const Interpretation one = interpret<float>(problem.model, problem.input, problem.genes, problem.labels, problem.sets,
                                                problem.options);
    SharedCalls shared(1);
    ThreadGroup group(shared, 0);
    const Interpretation grouped = exsal_test::interpret_share(problem, group, {0, problem.input.cols()});
    CHECK(exsal_test::same_bits(exsal_test::flat(grouped), exsal_test::flat(one)));
    CHECK(grouped.groups == one.groups);
    CHECK(grouped.group_sizes == one.group_sizes);
}

TEST_CASE("data-parallel interpretation on 2 and 3 threads as processes equals one process over all cells") {
    for (int size : {2, 3}) {
        on_threads(size, [](ProcessGroup& g) { exsal_test::check_interpretation(g); });
        on_threads(size, exsal_test::check_interpretation_uneven);
    }
}

TEST_CASE("data-parallel group programmes on 2 and 3 threads as processes equal one process over all cells") {
    for (int size : {2, 3}) on_threads(size, [](ProcessGroup& g) { exsal_test::check_programmes(g); });
    on_threads(2, [](ProcessGroup& g) { // one process without cells
        const Index C = exsal_test::interpret_problem().input.cols();
        exsal_test::check_programmes(g, g.rank() == 0 ? CellRange{0, C} : CellRange{C, 0});
    });
}

TEST_CASE("data-parallel interpretation: an error or a mismatch on one process ends every process") {
    on_threads(2, exsal_test::check_interpretation_failures);
    on_threads(3, exsal_test::check_interpretation_failures);
}

TEST_CASE("ProcessGroup helpers: all_gather of strings, the default max") {
    on_threads(3, [](ProcessGroup& g) {
        std::vector<std::string> mine;
        for (int i = 0; i < g.rank(); ++i) mine.push_back(std::string(static_cast<std::size_t>(i), 'x') + std::to_string(g.rank()));
        const auto all = all_gather(g, mine);
        REQUIRE(all.size() == 3);
        CHECK(all[0].empty());
        CHECK(all[1] == std::vector<std::string>{"1"});
        CHECK(all[2] == std::vector<std::string>{"2", "x2"});
        double m[2] = {static_cast<double>(g.rank()), -static_cast<double>(g.rank())};
        g.max(m, 2);
        CHECK(m[0] == 2.0);
        CHECK(m[1] == 0.0);
    });
}
