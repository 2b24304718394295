// How the walk over a weight layout streams from DRAM, apart from any real kernel's arithmetic: the question behind
// decode's distance from the read bound (BENCHMARKS.md, "Where the rest of the read goes").
//
// Every benchmark reads tensor/read_probe.h's 1 GiB buffer the way decode reads weights: each thread its contiguous
// share, in calls of 256 KiB (decode_chunk_bytes() on Intel), each call as two streams (its two halves, as the
// one-token gemvs' two row streams), every line asked for 1 KiB ahead, and three vpdpbusd per 128 bytes read (about
// the Q4_K gemv's integer work; 3 of them leave a stream at the full read rate on the Intel Xeon of session 17).
// What differs is the walk:
// - Dense: 128-byte steps, the two streams alternating every step, two prefetches per step.
// - Blocks/144: the Q4_K layout, blocks of 144 bytes in groups of four (576 bytes, nine lines prefetched at the
//   group's start), the streams alternating every group, two 64-byte loads of each block's last 128 bytes (its
//   quants; these cross lines) and one 16-byte load of each block's header.
// - Blocks/128: the same walk over blocks of 128 bytes (aligned loads, groups of eight whole lines).
// Best of 5 passes per iteration, as bench_membw's reads; run them alternated (the host's bandwidth drifts), e.g.
//   for i in 1 2 3; do build/bench/bench_walk; build/bench/bench_membw --benchmark_filter='ReadPrefetch/2/1024'; done
// The names do not start with BM_Read: bench/run_all.sh takes the decode bound from those alone.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "tensor/read_probe.h"
#include "tensor/thread_pool.h"

namespace {

constexpr size_t kCallBytes = size_t{256} << 10;
constexpr size_t kAheadBytes = 1024;
constexpr int kPasses = 5;

using WalkFn = uint64_t (*)(const uint8_t* p, size_t bytes);

#if defined(__x86_64__)
#define FABULA_WALK_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

// The lanes of a + b added up (stored and summed: GCC 12 warns inside _mm512_reduce_add_epi64).
FABULA_WALK_TARGET uint64_t lanes_sum(__m512i a, __m512i b) {
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(reinterpret_cast<void*>(lanes), _mm512_add_epi64(a, b));
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  return s;
}

FABULA_WALK_TARGET uint64_t walk_dense(const uint8_t* p, size_t bytes) {
  const __m512i k = _mm512_set1_epi8(3);
  __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  const size_t half = bytes / 2;
  for (size_t off = 0; off < half; off += 128) {
    for (int s = 0; s < 2; ++s) {
      const uint8_t* q = p + s * half + off;
      _mm_prefetch(reinterpret_cast<const char*>(q + kAheadBytes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(q + kAheadBytes + 64), _MM_HINT_T0);
      const __m512i a = _mm512_loadu_si512(q), b = _mm512_loadu_si512(q + 64);
      acc[s] = _mm512_dpbusd_epi32(acc[s], a, k);
      acc[s] = _mm512_dpbusd_epi32(acc[s], b, k);
      acc[s] = _mm512_dpbusd_epi32(acc[s], _mm512_xor_si512(a, b), k);
    }
  }
  return lanes_sum(acc[0], acc[1]);
}

template <size_t kBlock>
FABULA_WALK_TARGET uint64_t walk_blocks(const uint8_t* p, size_t bytes) {
  constexpr size_t kGroup = 4 * kBlock;
  constexpr int kLines = static_cast<int>((kGroup + 63) / 64);
  const __m512i k = _mm512_set1_epi8(3);
  __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  const size_t half = bytes / 2 / kGroup * kGroup;
  for (size_t off = 0; off + kGroup <= half; off += kGroup) {
    for (int s = 0; s < 2; ++s) {
      const uint8_t* g = p + s * half + off;
      const uintptr_t first = (reinterpret_cast<uintptr_t>(g) + kAheadBytes + 63) & ~uintptr_t{63};
      for (int j = 0; j < kLines; ++j) _mm_prefetch(reinterpret_cast<const char*>(first + 64 * j), _MM_HINT_T0);
      __m512i headers = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));  // lanes 1-3 next
      headers = _mm512_inserti32x4(headers, _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kBlock)), 1);
      headers = _mm512_inserti32x4(headers, _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 2 * kBlock)), 2);
      headers = _mm512_inserti32x4(headers, _mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 3 * kBlock)), 3);
      for (size_t b = 0; b < 4; ++b) {
        const uint8_t* qs = g + kBlock * b + (kBlock - 128);
        const __m512i x = _mm512_loadu_si512(qs), y = _mm512_loadu_si512(qs + 64);
        acc[s] = _mm512_dpbusd_epi32(acc[s], x, k);
        acc[s] = _mm512_dpbusd_epi32(acc[s], y, headers);
        acc[s] = _mm512_dpbusd_epi32(acc[s], _mm512_xor_si512(x, y), k);
      }
    }
  }
  return lanes_sum(acc[0], acc[1]);
}
#undef FABULA_WALK_TARGET
#endif

bool walk_supported() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

const fabula::ReadProbeBuffer& walk_buffer() {
  static const fabula::ReadProbeBuffer buf = [] {
    fabula::ThreadPool pool(0);
    return fabula::ReadProbeBuffer(pool);
  }();
  return buf;
}

// One pass: every thread walks its contiguous share of the buffer in kCallBytes calls. Returns the seconds.
double walk_pass(fabula::ThreadPool& pool, const fabula::ReadProbeBuffer& buf, WalkFn walk, uint64_t* sink) {
  const int nth = pool.size();
  const size_t calls = buf.bytes() / kCallBytes;
  const auto* data = reinterpret_cast<const uint8_t*>(buf.data());
  std::vector<uint64_t> partial(static_cast<size_t>(nth) * 8, 0);  // a cache line per thread
  const auto t0 = std::chrono::steady_clock::now();
  pool.run_on_all([&](int t) {
    const size_t c0 = calls * static_cast<size_t>(t) / static_cast<size_t>(nth);
    const size_t c1 = calls * static_cast<size_t>(t + 1) / static_cast<size_t>(nth);
    uint64_t sum = 0;
    for (size_t c = c0; c < c1; ++c) sum += walk(data + c * kCallBytes, kCallBytes);
    partial[static_cast<size_t>(t) * 8] = sum;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int t = 0; t < nth; ++t) *sink += partial[static_cast<size_t>(t) * 8];
  return seconds;
}

void run_walk(benchmark::State& state, WalkFn walk) {
  if (!walk_supported() || walk == nullptr) {
    state.SkipWithError("needs AVX-512 VNNI");
    return;
  }
  const fabula::ReadProbeBuffer& buf = walk_buffer();
  fabula::ThreadPool pool(static_cast<int>(state.range(0)));
  double best_s = 1e30;
  uint64_t sink = 0;
  for (auto _ : state) {
    double iter_best = 1e30;
    for (int pass = 0; pass < kPasses; ++pass) iter_best = std::min(iter_best, walk_pass(pool, buf, walk, &sink));
    benchmark::DoNotOptimize(sink);
    state.SetIterationTime(iter_best);
    best_s = std::min(best_s, iter_best);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.bytes()));
  state.counters["best_GB/s"] = static_cast<double>(buf.bytes()) / best_s / 1e9;
  state.counters["threads"] = pool.size();
}

WalkFn dense_fn() {
#if defined(__x86_64__)
  return walk_dense;
#else
  return nullptr;
#endif
}

WalkFn blocks_fn(int64_t block) {
#if defined(__x86_64__)
  return block == 144 ? walk_blocks<144> : walk_blocks<128>;
#else
  (void)block;
  return nullptr;
#endif
}

void BM_WalkDense(benchmark::State& state) {
  state.SetLabel("128-byte steps");
  run_walk(state, dense_fn());
}

// range(1): the block bytes, 144 (Q4_K) or 128.
void BM_WalkBlocks(benchmark::State& state) {
  state.SetLabel(std::to_string(state.range(1)) + "-byte blocks in groups of four");
  run_walk(state, blocks_fn(state.range(1)));
}

int all_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void walk_settings(benchmark::internal::Benchmark* b) {
  b->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);  // 3 x best of kPasses
}

BENCHMARK(BM_WalkDense)->Apply([](benchmark::internal::Benchmark* b) {
  b->Arg(all_threads());
  walk_settings(b);
});
BENCHMARK(BM_WalkBlocks)->Apply([](benchmark::internal::Benchmark* b) {
  for (int block : {144, 128}) b->Args({all_threads(), block});
  walk_settings(b);
});

}  // namespace
