#include "tensor/read_probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "base/huge_page_allocator.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace fabula {
namespace {

#if defined(__x86_64__)
// 8 independent 512-bit accumulators, 512 bytes per iteration. kDistance > 0: a prefetch of every line that many
// bytes ahead (prefetching past the end of a thread's range is harmless: a prefetch never faults).
template <size_t kDistance>
__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint64_t* p, size_t bytes) {
  __m512i acc[8];
  for (auto& a : acc) a = _mm512_setzero_si512();
  const char* c = reinterpret_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 512) {
    for (int k = 0; k < 8; ++k) {
      if constexpr (kDistance > 0) _mm_prefetch(c + off + kDistance + 64 * k, _MM_HINT_T0);
      acc[k] = _mm512_add_epi64(acc[k], _mm512_load_si512(reinterpret_cast<const void*>(c + off + 64 * k)));
    }
  }
  for (int k = 1; k < 8; ++k) acc[0] = _mm512_add_epi64(acc[0], acc[k]);
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(reinterpret_cast<void*>(lanes), acc[0]);
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  return s;
}

// The same with 256-bit loads, for CPUs without AVX-512 (a prefetch per 128 bytes: two per iteration).
template <size_t kDistance>
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t bytes) {
  __m256i acc[8];
  for (auto& a : acc) a = _mm256_setzero_si256();
  const char* c = reinterpret_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 256) {
    if constexpr (kDistance > 0) {
      _mm_prefetch(c + off + kDistance, _MM_HINT_T0);
      _mm_prefetch(c + off + kDistance + 128, _MM_HINT_T0);
    }
    for (int k = 0; k < 8; ++k) {
      acc[k] = _mm256_add_epi64(acc[k], _mm256_load_si256(reinterpret_cast<const __m256i*>(c + off + 32 * k)));
    }
  }
  for (int k = 1; k < 8; ++k) acc[0] = _mm256_add_epi64(acc[0], acc[k]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// The kernel for a prefetch distance (0: none), nullptr for a distance without one.
template <uint64_t (*kSum0)(const uint64_t*, size_t), uint64_t (*k1)(const uint64_t*, size_t),
          uint64_t (*k2)(const uint64_t*, size_t), uint64_t (*k4)(const uint64_t*, size_t),
          uint64_t (*k8)(const uint64_t*, size_t)>
ReadSumFn by_distance(size_t distance) {
  switch (distance) {
    case 0: return kSum0;
    case 1024: return k1;
    case 2048: return k2;
    case 4096: return k4;
    case 8192: return k8;
    default: return nullptr;
  }
}
#endif

uint64_t sum_plain(const uint64_t* p, size_t bytes) {
  uint64_t s = 0;
  const size_t n = bytes / sizeof(uint64_t);
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

// The plain loop with one prefetch per 64-byte line, 4 KiB ahead.
uint64_t sum_plain_prefetch(const uint64_t* p, size_t bytes) {
  uint64_t s = 0;
  const size_t n = bytes / sizeof(uint64_t);
  for (size_t i = 0; i < n; i += 8) {
    __builtin_prefetch(p + i + 512);
    for (size_t k = 0; k < 8; ++k) s += p[i + k];
  }
  return s;
}

}  // namespace

const char* read_isa_name(ReadIsa isa) {
  switch (isa) {
    case ReadIsa::kAvx512: return "avx512";
    case ReadIsa::kAvx2: return "avx2";
    case ReadIsa::kScalar: break;
  }
  return "plain";
}

bool read_isa_supported(ReadIsa isa) {
  switch (isa) {
    case ReadIsa::kScalar: return true;
#if defined(__x86_64__)
    case ReadIsa::kAvx2: return __builtin_cpu_supports("avx2");
    case ReadIsa::kAvx512: return __builtin_cpu_supports("avx512f");
#else
    default: return false;
#endif
  }
  return false;
}

ReadIsa widest_read_isa() {
  for (ReadIsa isa : {ReadIsa::kAvx512, ReadIsa::kAvx2})
    if (read_isa_supported(isa)) return isa;
  return ReadIsa::kScalar;
}

ReadSumFn read_sum(ReadIsa isa, size_t prefetch_distance) {
  switch (isa) {
#if defined(__x86_64__)
    case ReadIsa::kAvx512:
      return by_distance<sum_avx512<0>, sum_avx512<1024>, sum_avx512<2048>, sum_avx512<4096>, sum_avx512<8192>>(
          prefetch_distance);
    case ReadIsa::kAvx2:
      return by_distance<sum_avx2<0>, sum_avx2<1024>, sum_avx2<2048>, sum_avx2<4096>, sum_avx2<8192>>(
          prefetch_distance);
#else
    case ReadIsa::kAvx512:
    case ReadIsa::kAvx2: return nullptr;
#endif
    case ReadIsa::kScalar: break;
  }
  return prefetch_distance > 0 ? sum_plain_prefetch : sum_plain;
}

void ReadProbeBuffer::Free::operator()(uint64_t* p) const { std::free(p); }

ReadProbeBuffer::ReadProbeBuffer(ThreadPool& pool, size_t bytes) : bytes_(bytes) {
  auto* p = static_cast<uint64_t*>(allocate_huge_pages(bytes));
  data_.reset(p);
  const size_t n = bytes / sizeof(uint64_t);
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) p[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
}

ReadPass read_pass(ThreadPool& pool, const ReadProbeBuffer& buf, ReadSumFn sum) {
  const int nth = pool.size();
  std::vector<uint64_t> partial(static_cast<size_t>(nth) * 8, 0);  // a cache line per thread
  const size_t chunks = buf.bytes() / kReadChunkBytes;
  constexpr size_t kChunkLanes = kReadChunkBytes / sizeof(uint64_t);
  const uint64_t* data = buf.data();
  const auto t0 = std::chrono::steady_clock::now();
  pool.run_on_all([&](int t) {
    const size_t c0 = chunks * static_cast<size_t>(t) / static_cast<size_t>(nth);
    const size_t c1 = chunks * static_cast<size_t>(t + 1) / static_cast<size_t>(nth);
    partial[static_cast<size_t>(t) * 8] = sum(data + c0 * kChunkLanes, (c1 - c0) * kReadChunkBytes);
  });
  ReadPass pass;
  pass.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int t = 0; t < nth; ++t) pass.sum += partial[static_cast<size_t>(t) * 8];
  return pass;
}

double read_probe_gbs(ThreadPool& pool, const ReadProbeBuffer& buf, int passes) {
  // Both methods every pass: which is faster depends on the machine. On the 2-core Xeon of BENCHMARKS.md the
  // prefetching read gave 35-38 GB/s in fabula's own process where the plain one gave about 30, so a probe with
  // the plain read alone put decode some 10 points nearer its bound than decode_bound.sh does.
  const ReadSumFn sums[] = {read_sum(widest_read_isa()), read_sum(widest_read_isa(), kProbePrefetchBytes)};
  double best_s = 1e30;
  for (int i = 0; i < std::max(1, passes); ++i) {
    for (const ReadSumFn sum : sums) best_s = std::min(best_s, read_pass(pool, buf, sum).seconds);
  }
  return static_cast<double>(buf.bytes()) / best_s / 1e9;
}

}  // namespace fabula
