#ifndef EXSAL_CORE_THREADS_HPP
#define EXSAL_CORE_THREADS_HPP

#include "exsal/core/error.hpp"

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace exsal {

// Sets the thread count of exsal's OpenMP loops and of Eigen's products alike.
// n = 0 means "all cores" (OpenMP's default). Results are bit-identical for a given count.
inline void set_threads(int n) {
    if (n < 0) throw ArgumentError("exsal::set_threads", "thread count must be >= 0, got " + std::to_string(n));
#ifdef _OPENMP
    if (n == 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    n = 1;
#endif
    Eigen::setNbThreads(n);
}

// The thread count exsal's parallel loops use.
inline int threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

} // namespace exsal

#endif // EXSAL_CORE_THREADS_HPP
