#ifndef EXSAL_CORE_CPU_HPP
#define EXSAL_CORE_CPU_HPP

// Instruction sets of this CPU that the code was compiled without. A binary built without
// -march=native (CMake: -DEXSAL_NATIVE=OFF, or exsal::native not linked) runs Eigen's SSE2 kernels
// only, about half the speed of AVX2 with FMA on the training step's products; a program can say
// so once at start-up.

#include <string>
#include <vector>

namespace exsal {

inline std::vector<std::string> unused_cpu_features() {
    std::vector<std::string> unused;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
#ifndef __AVX2__
    if (__builtin_cpu_supports("avx2")) unused.push_back("AVX2");
#endif
#ifndef __FMA__
    if (__builtin_cpu_supports("fma")) unused.push_back("FMA");
#endif
#ifndef __AVX512F__
    if (__builtin_cpu_supports("avx512f")) unused.push_back("AVX-512");
#endif
#endif
    return unused;
}

#if EXSAL_WITH_OPENBLAS
extern "C" char* openblas_get_config(void); // OpenBLAS's own: version and build options
extern "C" int openblas_get_parallel(void); // 0 sequential, 1 pthreads, 2 OpenMP
#endif

// Who runs the dense matrix products: Eigen's own kernels, or a BLAS library through Eigen's
// EIGEN_USE_BLAS (CMake: -DEXSAL_BLAS=ON links Debian's OpenBLAS into exsal's own programs), with
// OpenBLAS's version and threading as the library loaded at run time says.
inline std::string gemm_backend() {
#if EXSAL_WITH_OPENBLAS
    const int parallel = openblas_get_parallel();
    return std::string("OpenBLAS (") + openblas_get_config() + "; threads: " +
           (parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "none") + ")";
#elif defined(EIGEN_USE_BLAS)
    return "BLAS (EIGEN_USE_BLAS)";
#else
    return "Eigen";
#endif
}

} // namespace exsal

#endif // EXSAL_CORE_CPU_HPP
