// Memory-bandwidth bench: how fast this machine streams bytes from DRAM, with 1 thread and with all cores, so
// decode speed can be stated as a fraction of the read bound (decode reads every active weight once per token).
//
// The bound is the best figure of the Read* benchmarks with all threads: a bound is what some way of reading
// reaches, and each method below leaves something on the table on some CPU.
// Read: a 1 GiB buffer (far beyond any L3), each thread sums its own contiguous half
// with the widest loads the CPU has (512-bit on AVX-512) into 8 independent accumulators, so neither the add chain
// nor the load width limits it. Every pass is timed on its own and the best of kPasses is reported, since a
// shared machine only ever makes a pass slower. The buffer and the kernels are tensor/read_probe.h's, which
// `fabula bench --bound-probe` also reads between decode steps: the same method for the bound in both.
// ReadPlain: the cross-check, a plain `s += p[i]` loop over uint64 that the compiler vectorises on its own.
// ReadPrefetch/<threads>/<distance>: the AVX-512 (or AVX2) sum asking for the line `distance` bytes ahead of every
// line it loads, as the decode kernels do (tensor/tiles_avx512-inl.h, 8 KiB): the hardware prefetchers stop at each
// 4 KiB page, so without it every page starts with stalls. ReadPlainPrefetch: the second method for the same figure,
// the plain loop with one __builtin_prefetch per 64 bytes, 4 KiB ahead.
// PageChase/<MiB>: not a bandwidth but what a miss in a footprint of that size costs: a chain of dependent loads,
// one line of every 4 KiB page of the buffer, the pages in a random order, in ns per load. It grows with the
// footprint as the page translations stop fitting the TLB and the caches; on the Xeon VM of BENCHMARKS.md (session
// 22) it reached most of a microsecond at 4 GiB, which decode over the synth 26B's 16 GB of weights pays and no
// Read* figure over 1 GiB shows.
// Copy and triad (STREAM-like) for reference: they also write, which decode does not.
//
// Walk*: how a weight layout's walk streams apart from any kernel's arithmetic (BENCHMARKS.md, "Where the rest of
// the read goes"), as decode walks: each thread its share in calls of 256 KiB (decode_chunk_bytes() on Intel), each
// call as two streams (its halves, as the one-token gemvs' two row streams), every line asked for 1 KiB ahead, and
// three vpdpbusd per 128 bytes read (about the Q4_K gemv's integer work). WalkDense: 128-byte steps, the streams
// alternating every step. WalkBlocks/<threads>/144: the Q4_K layout, 144-byte blocks in groups of four (576 bytes,
// nine lines prefetched at the group's start), the streams alternating every group, two 64-byte loads of each
// block's last 128 bytes (its quants, across lines) and a 16-byte load of its header; /128: the same walk over
// 128-byte blocks. AVX-512 VNNI only. Their names do not start with Read: run_all.sh takes the bound from those.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "base/huge_page_allocator.h"
#include "enough_memory.h"
#include "tensor/read_probe.h"
#include "tensor/thread_pool.h"

namespace {

constexpr size_t kElements = size_t{64} << 20;       // 64 Mi doubles = 512 MiB per copy/triad array
constexpr int kPasses = 5;                           // best of this many passes per benchmark iteration

// The 1 GiB read buffer (tensor/read_probe.h), first touched by all cores.
const fabula::ReadProbeBuffer& read_buffer() {
  static const fabula::ReadProbeBuffer buf = [] {
    fabula::ThreadPool pool(0);
    return fabula::ReadProbeBuffer(pool);
  }();
  return buf;
}

int threads_of(const benchmark::State& state) { return static_cast<int>(state.range(0)); }

// Times kPasses full reads of the buffer with `sum` on every thread of the pool and reports the best pass.
void read_best_of(benchmark::State& state, fabula::ReadSumFn sum) {
  const fabula::ReadProbeBuffer& buf = read_buffer();
  fabula::ThreadPool pool(threads_of(state));
  double best_s = 1e30;
  uint64_t total = 0;
  for (auto _ : state) {
    double iter_best = 1e30;
    for (int pass = 0; pass < kPasses; ++pass) {
      const fabula::ReadPass p = fabula::read_pass(pool, buf, sum);
      total += p.sum;
      iter_best = std::min(iter_best, p.seconds);
    }
    benchmark::DoNotOptimize(total);
    state.SetIterationTime(iter_best);
    best_s = std::min(best_s, iter_best);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.bytes()));
  state.counters["best_GB/s"] = static_cast<double>(buf.bytes()) / best_s / 1e9;
  state.counters["threads"] = pool.size();
}

void BM_Read(benchmark::State& state) {
  const fabula::ReadIsa isa = fabula::widest_read_isa();
  state.SetLabel(fabula::read_isa_name(isa));
  read_best_of(state, fabula::read_sum(isa));
}

void BM_ReadPlain(benchmark::State& state) {
  state.SetLabel("plain loop");
  read_best_of(state, fabula::read_sum(fabula::ReadIsa::kScalar));
}

// range(1): the prefetch distance in bytes.
void BM_ReadPrefetch(benchmark::State& state) {
  const fabula::ReadIsa isa = fabula::widest_read_isa();
  state.SetLabel(std::string(fabula::read_isa_name(isa)) + " + prefetch " + std::to_string(state.range(1)) +
                 " B ahead");
  const fabula::ReadSumFn sum = fabula::read_sum(isa, static_cast<size_t>(state.range(1)));
  if (sum == nullptr) {
    state.SkipWithError("no kernel for this prefetch distance");
    return;
  }
  read_best_of(state, sum);
}

#if defined(__x86_64__)
#define FABULA_WALK_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
constexpr size_t kWalkCallBytes = size_t{256} << 10;
constexpr size_t kWalkAheadBytes = 1024;

// The lanes of a + b added up (stored and summed: GCC 12 warns inside _mm512_reduce_add_epi64).
FABULA_WALK_TARGET uint64_t lanes_sum(__m512i a, __m512i b) {
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(reinterpret_cast<void*>(lanes), _mm512_add_epi64(a, b));
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  return s;
}

FABULA_WALK_TARGET uint64_t walk_dense_call(const uint8_t* p) {
  const __m512i k = _mm512_set1_epi8(3);
  __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  constexpr size_t kHalf = kWalkCallBytes / 2;
  for (size_t off = 0; off < kHalf; off += 128) {
    for (int s = 0; s < 2; ++s) {
      const uint8_t* q = p + s * kHalf + off;
      _mm_prefetch(reinterpret_cast<const char*>(q + kWalkAheadBytes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(q + kWalkAheadBytes + 64), _MM_HINT_T0);
      const __m512i a = _mm512_loadu_si512(q), b = _mm512_loadu_si512(q + 64);
      acc[s] = _mm512_dpbusd_epi32(acc[s], a, k);
      acc[s] = _mm512_dpbusd_epi32(acc[s], b, k);
      acc[s] = _mm512_dpbusd_epi32(acc[s], _mm512_xor_si512(a, b), k);
    }
  }
  return lanes_sum(acc[0], acc[1]);
}

template <size_t kBlock>
FABULA_WALK_TARGET uint64_t walk_blocks_call(const uint8_t* p) {
  constexpr size_t kGroup = 4 * kBlock;
  constexpr int kLines = static_cast<int>((kGroup + 63) / 64);
  constexpr size_t kHalf = kWalkCallBytes / 2 / kGroup * kGroup;
  const __m512i k = _mm512_set1_epi8(3);
  __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
  for (size_t off = 0; off + kGroup <= kHalf; off += kGroup) {
    for (int s = 0; s < 2; ++s) {
      const uint8_t* g = p + s * kHalf + off;
      const uintptr_t first = (reinterpret_cast<uintptr_t>(g) + kWalkAheadBytes + 63) & ~uintptr_t{63};
      for (int j = 0; j < kLines; ++j) _mm_prefetch(reinterpret_cast<const char*>(first + 64 * j), _MM_HINT_T0);
      __m512i headers = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));  // 1-3 next
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

// A thread's share (read_pass gives each thread whole kReadChunkBytes chunks) in calls of kWalkCallBytes; a last
// part shorter than a call is left out, so bytes/s counts a few KiB that were not read (under 0.1% of the buffer).
template <uint64_t (*kCall)(const uint8_t*)>
uint64_t walk_share(const uint64_t* p, size_t bytes) {
  const auto* c = reinterpret_cast<const uint8_t*>(p);
  uint64_t s = 0;
  for (size_t off = 0; off + kWalkCallBytes <= bytes; off += kWalkCallBytes) s += kCall(c + off);
  return s;
}
#endif

bool walk_supported() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

void BM_WalkDense(benchmark::State& state) {
  if (!walk_supported()) return state.SkipWithError("needs AVX-512 VNNI");
  state.SetLabel("128-byte steps");
#if defined(__x86_64__)
  read_best_of(state, walk_share<walk_dense_call>);
#endif
}

// range(1): the block bytes, 144 (Q4_K) or 128.
void BM_WalkBlocks(benchmark::State& state) {
  if (!walk_supported()) return state.SkipWithError("needs AVX-512 VNNI");
  state.SetLabel(std::to_string(state.range(1)) + "-byte blocks in groups of four");
#if defined(__x86_64__)
  read_best_of(state, state.range(1) == 144 ? walk_share<walk_blocks_call<144>> : walk_share<walk_blocks_call<128>>);
#endif
}

void BM_ReadPlainPrefetch(benchmark::State& state) {
  state.SetLabel("plain loop + prefetch 4096 B ahead");
  read_best_of(state, fabula::read_sum(fabula::ReadIsa::kScalar, 4096));
}

// range(0): the footprint in MiB. The buffer is allocated as the model's weights are (huge pages asked for) and
// first touched by the chain's own writes.
void BM_PageChase(benchmark::State& state) {
  constexpr size_t kPage = 4096, kLine = 64, kLinesPerPage = kPage / kLine;
  constexpr int kSteps = 1 << 20;
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20, pages = bytes / kPage;
  if (!fabula::enough_memory_for(state, bytes)) return;
  const std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(fabula::allocate_huge_pages(bytes)),
                                                          &std::free);
  std::vector<uint32_t> order(pages);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(22));
  // The i-th page of the order holds, in its line i % 64 (so the chain does not always hit the same cache set), the
  // offset of the next page's line; the last one closes the cycle.
  const auto slot = [&](size_t i) { return size_t{order[i % pages]} * kPage + (i % pages) % kLinesPerPage * kLine; };
  for (size_t i = 0; i < pages; ++i) *reinterpret_cast<uint64_t*>(buf.get() + slot(i)) = slot(i + 1);
  double best_ns = 1e30;
  uint64_t at = slot(0);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kSteps; ++i) at = *reinterpret_cast<const uint64_t*>(buf.get() + at);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(at);
    state.SetIterationTime(s);
    best_ns = std::min(best_ns, s * 1e9 / kSteps);
  }
  state.counters["best_ns_per_load"] = best_ns;
  state.SetLabel(std::to_string(pages) + " pages");
}

struct Arrays {
  std::vector<double> a, b, c;
  Arrays() : a(kElements, 1.0), b(kElements, 2.0), c(kElements, 0.0) {}
};

Arrays& arrays() {
  static Arrays instance;  // allocated once; first touch happens here, not inside the timed loop
  return instance;
}

void BM_Copy(benchmark::State& state) {
  auto& arr = arrays();
  fabula::ThreadPool pool(threads_of(state));
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(kElements), [&](int64_t begin, int64_t end, int) {
      std::copy(arr.a.begin() + begin, arr.a.begin() + end, arr.c.begin() + begin);
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kElements * 2 * sizeof(double)));
}

void BM_Triad(benchmark::State& state) {
  auto& arr = arrays();
  fabula::ThreadPool pool(threads_of(state));
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(kElements), [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) arr.a[i] = arr.b[i] + 3.0 * arr.c[i];
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kElements * 3 * sizeof(double)));
}

int hardware_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// 1 thread, and all of them where there are more.
void one_and_all_threads(benchmark::internal::Benchmark* b) {
  b->Arg(1);
  if (hardware_threads() > 1) b->Arg(hardware_threads());
}

void thread_counts(benchmark::internal::Benchmark* b) {
  one_and_all_threads(b);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void read_settings(benchmark::internal::Benchmark* b) {
  b->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);  // 3 x best of kPasses: 15 passes of 1 GiB
}

void read_thread_counts(benchmark::internal::Benchmark* b) {
  one_and_all_threads(b);
  read_settings(b);
}

// Threads x prefetch distance.
void read_prefetch_args(benchmark::internal::Benchmark* b) {
  const int hw = hardware_threads();
  for (int distance : {1024, 2048, 4096, 8192}) {
    b->Args({1, distance});
    if (hw > 1) b->Args({hw, distance});
  }
  read_settings(b);
}

BENCHMARK(BM_Read)->Apply(read_thread_counts);
BENCHMARK(BM_ReadPlain)->Apply(read_thread_counts);
BENCHMARK(BM_ReadPrefetch)->Apply(read_prefetch_args);
BENCHMARK(BM_ReadPlainPrefetch)->Apply(read_thread_counts);
BENCHMARK(BM_WalkDense)->Apply([](benchmark::internal::Benchmark* b) {
  b->Arg(hardware_threads());
  read_settings(b);
});
BENCHMARK(BM_WalkBlocks)->Apply([](benchmark::internal::Benchmark* b) {
  for (int block : {144, 128}) b->Args({hardware_threads(), block});
  read_settings(b);
});
BENCHMARK(BM_PageChase)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(3);  // best of 3 chains of 2^20 loads
BENCHMARK(BM_Copy)->Apply(thread_counts);
BENCHMARK(BM_Triad)->Apply(thread_counts);

}  // namespace
