// Memory-bandwidth bench: how fast this machine streams bytes from DRAM, with 1 thread and with all cores, so
// decode speed can be stated as a fraction of the read bound (decode reads every active weight once per token).
//
// The bound is the best figure of the Read* benchmarks with all threads: a bound is what some way of reading
// reaches, and each method below leaves something on the table on some CPU.
// Read: a 1 GiB buffer (far beyond any L3), each thread sums its own contiguous half
// with the widest loads the CPU has (512-bit on AVX-512) into 8 independent accumulators, so neither the add chain
// nor the load width limits it. Every pass is timed on its own and the best of kPasses is reported, since a
// shared machine only ever makes a pass slower.
// ReadPlain: the cross-check, a plain `s += p[i]` loop over uint64 that the compiler vectorises on its own.
// ReadPrefetch/<threads>/<distance>: the AVX-512 (or AVX2) sum asking for the line `distance` bytes ahead of every
// line it loads, as the decode kernels do (tensor/tiles_avx512-inl.h, 8 KiB): the hardware prefetchers stop at each
// 4 KiB page, so without it every page starts with stalls. ReadPlainPrefetch: the second method for the same figure,
// the plain loop with one __builtin_prefetch per 64 bytes, 4 KiB ahead.
// Copy and triad (STREAM-like) for reference: they also write, which decode does not.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <sys/mman.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "tensor/thread_pool.h"

namespace {

constexpr size_t kReadBytes = size_t{1} << 30;       // 1 GiB read buffer
constexpr size_t kElements = size_t{64} << 20;       // 64 Mi doubles = 512 MiB per copy/triad array
constexpr int kPasses = 5;                           // best of this many passes per benchmark iteration

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// 1 GiB, 2 MiB-aligned and asking for huge pages (as fabula does for its weight mapping), filled (first touch
// outside the timed loop) in parallel so its pages spread like a weight mapping's do.
const uint64_t* read_buffer() {
  static std::unique_ptr<uint64_t, FreeDeleter> buf = [] {
    auto* p = static_cast<uint64_t*>(std::aligned_alloc(size_t{2} << 20, kReadBytes));
#ifdef MADV_HUGEPAGE
    ::madvise(p, kReadBytes, MADV_HUGEPAGE);
#endif
    const size_t n = kReadBytes / sizeof(uint64_t);
    fabula::ThreadPool pool(0);
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) p[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
    });
    return std::unique_ptr<uint64_t, FreeDeleter>(p);
  }();
  return buf.get();
}

#if defined(__x86_64__)
// 8 independent 512-bit accumulators, 512 bytes per iteration. [p, p + bytes) with bytes % 512 == 0. kDistance > 0:
// a prefetch of every line that many bytes ahead (prefetching past the end of a thread's range is harmless: a
// prefetch never faults).
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

using SumFn = uint64_t (*)(const uint64_t*, size_t);

// The widest sum this CPU has; kDistance > 0: with prefetches that far ahead (the plain loop's are fixed 4 KiB).
template <size_t kDistance = 0>
SumFn widest_sum() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return sum_avx512<kDistance>;
  if (__builtin_cpu_supports("avx2")) return sum_avx2<kDistance>;
#endif
  return kDistance > 0 ? sum_plain_prefetch : sum_plain;
}

const char* widest_sum_name() {
  const SumFn f = widest_sum();
#if defined(__x86_64__)
  if (f == sum_avx512<0>) return "avx512";
  if (f == sum_avx2<0>) return "avx2";
#endif
  return "plain";
}

int threads_of(const benchmark::State& state) { return static_cast<int>(state.range(0)); }

// Times kPasses full reads of the buffer with `sum` on every thread of the pool and reports the best pass.
void read_best_of(benchmark::State& state, SumFn sum) {
  const uint64_t* buf = read_buffer();
  fabula::ThreadPool pool(threads_of(state));
  const int nth = pool.size();
  std::vector<uint64_t> partial(static_cast<size_t>(nth) * 8, 0);  // a cache line per thread
  double best_s = 1e30;
  for (auto _ : state) {
    double iter_best = 1e30;
    for (int pass = 0; pass < kPasses; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.run_on_all([&](int t) {
        // Contiguous halves, each a multiple of 512 bytes.
        const size_t chunks = kReadBytes / 512;
        const size_t c0 = chunks * static_cast<size_t>(t) / static_cast<size_t>(nth);
        const size_t c1 = chunks * static_cast<size_t>(t + 1) / static_cast<size_t>(nth);
        partial[static_cast<size_t>(t) * 8] += sum(buf + c0 * 64, (c1 - c0) * 512);
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      iter_best = std::min(iter_best, s);
    }
    benchmark::DoNotOptimize(partial.data());
    state.SetIterationTime(iter_best);
    best_s = std::min(best_s, iter_best);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kReadBytes));
  state.counters["best_GB/s"] = static_cast<double>(kReadBytes) / best_s / 1e9;
  state.counters["threads"] = nth;
}

void BM_Read(benchmark::State& state) {
  state.SetLabel(widest_sum_name());
  read_best_of(state, widest_sum());
}

void BM_ReadPlain(benchmark::State& state) {
  state.SetLabel("plain loop");
  read_best_of(state, sum_plain);
}

// range(1): the prefetch distance in bytes.
void BM_ReadPrefetch(benchmark::State& state) {
  state.SetLabel(std::string(widest_sum_name()) + " + prefetch " + std::to_string(state.range(1)) + " B ahead");
  SumFn sum = nullptr;
  switch (state.range(1)) {
    case 1024: sum = widest_sum<1024>(); break;
    case 2048: sum = widest_sum<2048>(); break;
    case 4096: sum = widest_sum<4096>(); break;
    case 8192: sum = widest_sum<8192>(); break;
    default: state.SkipWithError("no kernel for this prefetch distance"); return;
  }
  read_best_of(state, sum);
}

void BM_ReadPlainPrefetch(benchmark::State& state) {
  state.SetLabel("plain loop + prefetch 4096 B ahead");
  read_best_of(state, sum_plain_prefetch);
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
BENCHMARK(BM_Copy)->Apply(thread_counts);
BENCHMARK(BM_Triad)->Apply(thread_counts);

}  // namespace
