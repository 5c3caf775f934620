#ifndef EXSAL_CORE_DENORMALS_HPP
#define EXSAL_CORE_DENORMALS_HPP

// Subnormal ("denormal") floats - magnitudes below 1.2e-38 in float, 2.2e-308 in double - are
// handled by x86 CPUs in microcode, about a hundred times slower than normal numbers: a matrix
// product whose operands or results are subnormal runs at a fraction of a per cent of its speed
// (measured: 0.4 against 60 GFLOP/s for a 4000 x 128 x 4096 float product on one core). Saliency
// maps of an untrained or weakly active network and the training step's small gradients do
// produce them: exsal's gradient passes ran 6-9 times and the built-in pipeline's training twice
// as slow as with them flushed, for the same bits in every output file (values that small vanish
// when added to anything of normal size).
//
// So exsal's compute runs with subnormals flushed to zero: FTZ (results that would be subnormal
// are 0) and DAZ (subnormal inputs read as 0) in SSE's MXCSR on x86-64, FZ in FPCR on AArch64.
// These are per-thread settings. exsal sets them on each thread of its own parallel regions and on
// the calling thread of train(), of the model's forward() and loss_and_gradient() and of the
// saliency passes, for the duration of the region or the call, and puts back what the thread had:
// a host program's floating-point mode is not changed.
// set_flush_denormals(false) keeps IEEE subnormals (slower, and different only in values below
// the thresholds above).

#include <atomic>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE2__)
#include <xmmintrin.h>
#define EXSAL_DENORMALS_X86 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define EXSAL_DENORMALS_AARCH64 1
#endif

namespace exsal {

namespace detail::denormals {

inline std::atomic<bool>& setting() {
    static std::atomic<bool> flush{true};
    return flush;
}

#if defined(EXSAL_DENORMALS_X86)
using Mode = unsigned int;
constexpr Mode flush_bits = 0x8040u; // MXCSR: FTZ (bit 15) | DAZ (bit 6)
inline Mode get() { return _mm_getcsr(); }
inline void set(Mode m) { _mm_setcsr(m); }
constexpr bool supported = true;
#elif defined(EXSAL_DENORMALS_AARCH64)
using Mode = unsigned long long;
constexpr Mode flush_bits = 1ull << 24; // FPCR.FZ
inline Mode get() {
    Mode m;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(m));
    return m;
}
inline void set(Mode m) { __asm__ __volatile__("msr fpcr, %0" : : "r"(m)); }
constexpr bool supported = true;
#else
using Mode = unsigned int;
constexpr Mode flush_bits = 0;
inline Mode get() { return 0; }
inline void set(Mode) {}
constexpr bool supported = false;
#endif

// Starts OpenMP's threads (an empty region of the current thread count) so that they exist
// before a calling thread's guard: a thread inherits its creator's mode, and one created while
// the caller flushes would keep flushing after the guards ended.
inline void start_threads() {
#ifdef _OPENMP
    if (!omp_in_parallel()) {
#pragma omp parallel
        {
        }
    }
#endif
}

} // namespace detail::denormals

// Whether exsal flushes subnormals to zero in its compute (default: true). Thread-safe; takes
// effect for regions and calls that start after it.
inline void set_flush_denormals(bool flush) { detail::denormals::setting().store(flush, std::memory_order_relaxed); }
inline bool flush_denormals() { return detail::denormals::setting().load(std::memory_order_relaxed); }

// Whether the calling thread flushes subnormals to zero right now.
inline bool denormals_flushed_here() {
    namespace d = detail::denormals;
    return d::supported && (d::get() & d::flush_bits) == d::flush_bits;
}

// What exsal's compute does with subnormals on this machine, for run records.
inline const char* denormals_mode() {
    if (!detail::denormals::supported) return "kept (no flush-to-zero control on this CPU)";
    return flush_denormals() ? "flushed to zero" : "kept (IEEE)";
}

// Scoped: the calling thread flushes subnormals to zero (when set_flush_denormals allows) until the
// guard ends, then gets its previous mode back. One per thread: create it inside each thread of a
// parallel region. A guard on a thread that opens parallel regions itself (outside any region)
// first starts OpenMP's threads, so that none is created with the flushing mode. A guard on a
// thread that already flushes (an outer guard, or the host's own choice) changes nothing.
class FlushDenormals {
public:
    FlushDenormals() {
        namespace d = detail::denormals;
        if (!d::supported || !flush_denormals()) return;
        if ((d::get() & d::flush_bits) == d::flush_bits) return; // already flushing: nothing to set or give back
        d::start_threads();
        m_saved = d::get();
        m_active = true;
        d::set(m_saved | d::flush_bits);
    }
    ~FlushDenormals() { // the previous flush bits; the exception flags raised meanwhile stay
        namespace d = detail::denormals;
        if (m_active) d::set((d::get() & ~d::flush_bits) | (m_saved & d::flush_bits));
    }
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

private:
    detail::denormals::Mode m_saved = 0;
    bool m_active = false;
};

} // namespace exsal

#endif // EXSAL_CORE_DENORMALS_HPP
