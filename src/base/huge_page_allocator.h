// allocate_huge_pages, and HugePageAllocator: a std allocator whose blocks of 2 MiB and more come from it (2 MiB
// aligned, asked to be backed by transparent huge pages before the container first touches them). For buffers read in strided
// passes (the KV cache: one kv head's rows sit a slot of all heads apart), where 4 KiB pages cost a TLB miss, in a
// VM a two-level page walk, for every row.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace fabula {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// A block of at least `bytes`, in whole 2 MiB pages and 2 MiB aligned, asked to be backed by transparent huge pages
// before anything touches it (MADV_HUGEPAGE). Free it with std::free. Throws std::bad_alloc.
inline void* allocate_huge_pages(size_t bytes) {
  const size_t whole = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(kHugePageBytes, whole > 0 ? whole : kHugePageBytes);
  if (p == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  ::madvise(p, whole, MADV_HUGEPAGE);
#endif
  return p;
}

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: allocators convert implicitly

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes >= kHugePageBytes) return static_cast<T*>(allocate_huge_pages(bytes));
    void* p = std::malloc(bytes > 0 ? bytes : 1);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace fabula
