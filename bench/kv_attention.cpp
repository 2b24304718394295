// Decode attention on one thread, as a decode step gives it: one thread's 8 query heads of the 26B's shape against
// a cache of 30 layers (far beyond L2, in 2 MiB pages as a session's cache), each call one layer's, in turn.
// range(0): the cache type (KvType); range(1): 0 = a sliding layer (8 kv heads of 256, 1024 positions; the
// thread's heads read 4 of them), 1 = a global layer (2 kv heads of 512, 1500 positions; the thread's heads read
// one). Time is one call (one layer); bytes/s counts the K and V bytes the thread's heads read.
//   build/bench/bench_kv_attention
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "base/huge_page_allocator.h"
#include "tensor/kv_attention.h"
#include "tensor/kv_types.h"

namespace fabula {
namespace {

using CacheBytes = std::vector<uint8_t, HugePageAllocator<uint8_t>>;

void BM_DecodeAttention(benchmark::State& state) {
  const auto type = static_cast<KvType>(state.range(0));
  const bool global = state.range(1) == 1;
  const int64_t d = global ? 512 : 256, n_kv = global ? 2 : 8, rows = global ? 1500 : 1024;
  constexpr int64_t kHeads = 8, kLayers = 30;
  const int64_t group = kHeads * 2 / n_kv;  // the thread's 8 heads are half of the layer's 16
  const size_t head_bytes = kv_head_bytes(type, d);
  const auto stride = static_cast<int64_t>(head_bytes) * n_kv;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(d));
  // Layer 0's values are random; the other layers copy its bytes (speed does not depend on the values).
  std::vector<CacheBytes> k(kLayers), v(kLayers);
  k[0].resize(static_cast<size_t>(stride * rows));
  v[0].resize(k[0].size());
  for (int64_t j = 0; j < rows; ++j) {
    for (int64_t h = 0; h < n_kv; ++h) {
      for (auto& e : x) e = normal(rng);
      kv_quantize_head(type, x.data(), d, k[0].data() + j * stride + h * static_cast<int64_t>(head_bytes));
      for (auto& e : x) e = normal(rng);
      kv_quantize_head(type, x.data(), d, v[0].data() + j * stride + h * static_cast<int64_t>(head_bytes));
    }
  }
  for (int64_t l = 1; l < kLayers; ++l) {
    k[l] = k[0];
    v[l] = v[0];
  }
  std::vector<float> q(static_cast<size_t>(kHeads * d)), out(q.size()), scores(static_cast<size_t>(kHeads * rows));
  for (auto& e : q) e = 0.05f * normal(rng);
  const float* qs[kHeads];
  float* outs[kHeads];
  int64_t offset[kHeads];
  for (int64_t h = 0; h < kHeads; ++h) {
    qs[h] = q.data() + h * d;
    outs[h] = out.data() + h * d;
    offset[h] = h / group * static_cast<int64_t>(head_bytes);
  }
  const KvHeadFormat format{type, type, stride, stride};
  int64_t layer = 0;
  for (auto _ : state) {
    const KvRun run{k[layer].data(), v[layer].data(), rows};
    attend_heads_kv(qs, offset, offset, kHeads, &run, 1, format, d, scores.data(), outs);
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % kLayers;
  }
  const double read = 2.0 * static_cast<double>(rows) * static_cast<double>(head_bytes) * static_cast<double>(kHeads / group);
  state.SetBytesProcessed(static_cast<int64_t>(read) * state.iterations());
  state.SetLabel(std::string(kv_type_name(type)) + (global ? ", global layer" : ", sliding layer"));
}

void attention_args(benchmark::internal::Benchmark* b) {
  for (KvType t : kAllKvTypes)
    for (int64_t global : {0, 1}) b->Args({static_cast<int64_t>(t), global});
}
BENCHMARK(BM_DecodeAttention)->Apply(attention_args)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fabula
