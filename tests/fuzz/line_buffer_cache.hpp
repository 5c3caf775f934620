#ifndef EXSAL_TESTS_FUZZ_LINE_BUFFER_CACHE_HPP
#define EXSAL_TESTS_FUZZ_LINE_BUFFER_CACHE_HPP

// Include in exactly one translation unit of a fuzz target that reads text files.
//
// Every file opened costs two large allocations: io::LineReader's 48 MiB line buffer
// (new char[3 << 24]) and FileByteSource's 256 KiB input chunk (a zero-filled std::vector).
// Under AddressSanitizer each is a fresh mapping whose shadow is poisoned on free, about 20 ms per
// input: the fuzzer ran ~50 inputs a second. This replacement of operator new / delete keeps one
// block of each of these two sizes and hands it out again; everything else goes to malloc / free
// (still checked by ASan). The cost: a use of such a block after its owner is destroyed is not
// reported; overruns past its ends still are (ASan's redzones around the block). A side effect
// that turned out useful: the line buffer keeps stale text of earlier inputs, as it does in one
// large file past 48 MiB, which is how io::LineReader's missing-final-newline bug showed up.

#include <cstddef>
#include <cstdlib>
#include <new>

namespace exsal_fuzz::detail {

struct CachedBlock {
    std::size_t size;
    void* block = nullptr;
    bool in_use = false;
};
inline CachedBlock cached_blocks[2] = {{std::size_t(3) << 24}, {std::size_t(1) << 18}};

inline void* allocate(std::size_t n) {
    for (auto& c : cached_blocks)
        if (n == c.size && !c.in_use) {
            if (!c.block) c.block = std::malloc(n);
            if (!c.block) throw std::bad_alloc();
            c.in_use = true;
            return c.block;
        }
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}

inline void deallocate(void* p) noexcept {
    for (auto& c : cached_blocks)
        if (p && p == c.block) {
            c.in_use = false;
            return;
        }
    std::free(p);
}

} // namespace exsal_fuzz::detail

// Every non-aligned form, so that no block is allocated by one allocator and freed by the other
// (the aligned forms are left to ASan as a pair).
void* operator new(std::size_t n) { return exsal_fuzz::detail::allocate(n); }
void* operator new[](std::size_t n) { return exsal_fuzz::detail::allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return exsal_fuzz::detail::allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { exsal_fuzz::detail::deallocate(p); }
void operator delete[](void* p) noexcept { exsal_fuzz::detail::deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { exsal_fuzz::detail::deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { exsal_fuzz::detail::deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { exsal_fuzz::detail::deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { exsal_fuzz::detail::deallocate(p); }

#endif // EXSAL_TESTS_FUZZ_LINE_BUFFER_CACHE_HPP
