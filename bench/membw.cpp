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
// Copy and triad (STREAM-like) for reference: they also write, which decode does not.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

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

void BM_ReadPlainPrefetch(benchmark::State& state) {
  state.SetLabel("plain loop + prefetch 4096 B ahead");
  read_best_of(state, fabula::read_sum(fabula::ReadIsa::kScalar, 4096));
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
