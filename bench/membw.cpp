// STREAM-like memory-bandwidth bench: read, copy, scale, triad over arrays far larger than the caches,
// single- and multi-threaded, so decode speed can be stated as a fraction of the machine's bandwidth.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "tensor/thread_pool.h"

namespace {

constexpr size_t kElements = size_t{64} << 20;  // 64 Mi doubles = 512 MiB per array, >> L3

struct Arrays {
  std::vector<double> a, b, c;
  Arrays() : a(kElements, 1.0), b(kElements, 2.0), c(kElements, 0.0) {}
};

Arrays& arrays() {
  static Arrays instance;  // allocated once; first touch happens here, not inside the timed loop
  return instance;
}

int threads_of(const benchmark::State& state) { return static_cast<int>(state.range(0)); }

// Read-only sum: the pattern of a GEMV streaming weights.
void BM_Read(benchmark::State& state) {
  auto& arr = arrays();
  fabula::ThreadPool pool(threads_of(state));
  std::vector<double> partial(pool.size(), 0.0);
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(kElements), [&](int64_t begin, int64_t end, int t) {
      // Integer sums of the bit patterns, 8 independent lanes: the compiler vectorises this into wide loads and
      // adds, so the loop is limited by memory, not by a floating-point add chain (a scalar double sum measured
      // a third of the real read bandwidth).
      const uint64_t* p = reinterpret_cast<const uint64_t*>(arr.a.data());
      uint64_t s[8] = {};
      int64_t i = begin;
      for (; i + 8 <= end; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += p[i + k];
      for (; i < end; ++i) s[0] += p[i];
      uint64_t total = 0;
      for (uint64_t v : s) total += v;
      partial[t] += static_cast<double>(total);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kElements * sizeof(double)));
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

void thread_counts(benchmark::internal::Benchmark* b) {
  int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  b->Arg(1);
  if (hw > 1) b->Arg(hw);
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Read)->Apply(thread_counts);
BENCHMARK(BM_Copy)->Apply(thread_counts);
BENCHMARK(BM_Triad)->Apply(thread_counts);

}  // namespace
