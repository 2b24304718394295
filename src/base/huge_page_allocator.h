// HugePageAllocator: a std allocator whose blocks of 2 MiB and more are 2 MiB aligned and asked to be backed by
// transparent huge pages (MADV_HUGEPAGE, before the container first touches them). For buffers read in strided
// passes (the KV cache: one kv head's rows sit a slot of all heads apart), where 4 KiB pages cost a TLB miss, in a
// VM a two-level page walk, for every row.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace fabula {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: allocators convert implicitly

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    void* p = nullptr;
    if (bytes >= kHugePageBytes) {
      // Whole huge pages: aligned_alloc wants a multiple of the alignment.
      p = std::aligned_alloc(kHugePageBytes, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
#ifdef MADV_HUGEPAGE
      if (p != nullptr) ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
    } else {
      p = std::malloc(bytes > 0 ? bytes : 1);
    }
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
