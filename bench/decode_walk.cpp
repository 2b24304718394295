// Where decode's read goes: a Gemma 4 model's decode weight walk replayed on its loaded weights, four ways, each pass
// of every way one after another in the same process (the host's bandwidth drifts by minutes; ratios within a pass
// do not):
//   probe:  the read probe's 1 GiB buffer (tensor/read_probe.h, the prefetching sum), as many bytes as the walk;
//   read:   the walk's bytes with the same sum: per token and layer the regions of a decode step (q/k/v; attention
//           output; router, dense gate and up; dense down and the 8 chosen experts' gate_up; their downs), then the
//           output head, each region one parallel region whose bytes the threads split evenly, in calls of decode's
//           chunk (decode_chunk_bytes(): 256 KiB on Intel);
//   rows:   the same split with the real one-token gemvs (matmul_row_range) over whole rows;
//   matmul: each region as matmul_jobs, decode's own scheduling (chunks, stealing at the end).
// So read / probe is what the walk's shape costs (pieces of 1-2 MB, 151 product regions a token), rows / read what
// the kernels cost over a pure read of the same bytes, matmul / rows the scheduling; a decode step adds its serial
// work (norms, attention, routing) to matmul. Experts are drawn at random per token and layer (fixed seed).
// Benchmarks: DecodeWalk/all, and DecodeWalk/<type> with only that weight type's matrices (the walk's other regions
// left out), to see each kernel against the read of its own bytes.
//   build/bench/bench_decode_walk     (env: FABULA_MODEL, default /tmp/perf/synth-26b-q4km.gguf; FABULA_THREADS)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_env.h"
#include "model/gemma4/model.h"
#include "model/model.h"
#include "tensor/decode_stream.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/read_probe.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

constexpr int kTokens = 12;                          // tokens per pass
constexpr size_t kSumAlign = kReadChunkBytes;        // the read sums take whole 512-byte chunks
constexpr size_t kProbePrefetch = kProbePrefetchBytes;

// The read's and the rows' call size: decode's chunk, one gemv call between threads (256 KiB on Intel).
size_t call_bytes() { return static_cast<size_t>(decode_chunk_bytes()); }

size_t matrix_bytes(const MatrixView& m) { return m.data != nullptr ? m.row_stride * static_cast<size_t>(m.rows) : 0; }

// One parallel region of a decode step: its matrices, and their bytes.
struct Region {
  std::vector<MatrixView> matrices;
  size_t bytes = 0;
};

// The loaded model, its walk (kTokens tokens of regions) and one quantized activation per (type, columns).
struct Walk {
  std::unique_ptr<Model> model;
  std::vector<Region> regions;  // every region of every token, in decode's order
  std::map<std::pair<GgmlType, int64_t>, std::unique_ptr<QuantizedActivations>> acts;
  std::string error;
};

Walk load_walk(const std::string& path, std::mt19937_64& rng) {
  Walk walk;
  auto loaded = Model::load(path);
  if (!loaded.ok()) {
    walk.error = loaded.error().message + " (set FABULA_MODEL to a Gemma 4 GGUF)";
    return walk;
  }
  walk.model = std::move(*loaded);
  const auto* g = dynamic_cast<const Gemma4Model*>(walk.model.get());
  if (g == nullptr) {
    walk.error = path + ": not a Gemma 4 model";
    return walk;
  }
  const Gemma4Weights& w = g->weights();
  const Gemma4HParams& hp = g->hparams();
  std::vector<int64_t> experts(static_cast<size_t>(hp.n_expert));
  for (int t = 0; t < kTokens; ++t) {
    for (const Gemma4LayerWeights& L : w.layers) {
      std::vector<Region> step(5);
      auto add = [&](size_t r, const MatrixView& m) {
        if (m.data != nullptr) step[r].matrices.push_back(m);
      };
      add(0, L.attn_q), add(0, L.attn_k), add(0, L.attn_v);
      add(1, L.attn_output);
      if (L.has_moe) add(2, L.ffn_gate_inp);
      add(2, L.ffn_gate), add(2, L.ffn_up);
      add(3, L.ffn_down);
      if (L.has_moe) {
        for (size_t e = 0; e < experts.size(); ++e) experts[e] = static_cast<int64_t>(e);
        std::shuffle(experts.begin(), experts.end(), rng);
        std::sort(experts.begin(), experts.begin() + hp.n_expert_used);
        for (int64_t j = 0; j < hp.n_expert_used; ++j) {
          const int64_t e = experts[static_cast<size_t>(j)];
          if (L.fused_gate_up) {
            add(3, L.gate_up_exps.expert(e));
          } else {
            add(3, L.gate_exps.expert(e)), add(3, L.up_exps.expert(e));
          }
        }
        for (int64_t j = 0; j < hp.n_expert_used; ++j) add(4, L.down_exps.expert(experts[static_cast<size_t>(j)]));
      }
      for (Region& r : step) walk.regions.push_back(std::move(r));
    }
    walk.regions.push_back(Region{{w.token_embd}, 0});
  }
  for (Region& r : walk.regions) {
    for (const MatrixView& m : r.matrices) {
      r.bytes += matrix_bytes(m);
      auto& act = walk.acts[{m.type, m.cols}];
      if (act == nullptr) {
        std::vector<float> x(static_cast<size_t>(m.cols));
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (float& v : x) v = u(rng);
        act = std::make_unique<QuantizedActivations>();
        act->quantize(vec_dot_type(m.type), x.data(), 1, m.cols);
      }
    }
  }
  return walk;
}

const Walk& shared_walk() {
  static std::mt19937_64 rng(29);
  static const Walk walk = load_walk(env_or("FABULA_MODEL", "/tmp/perf/synth-26b-q4km.gguf"), rng);
  return walk;
}

// The regions keeping only matrices of `type` (every matrix when `all`), empty regions left out.
std::vector<Region> regions_of(const Walk& walk, GgmlType type, bool all) {
  std::vector<Region> out;
  for (const Region& r : walk.regions) {
    Region kept;
    for (const MatrixView& m : r.matrices) {
      if (all || m.type == type) {
        kept.matrices.push_back(m);
        kept.bytes += matrix_bytes(m);
      }
    }
    if (!kept.matrices.empty()) out.push_back(std::move(kept));
  }
  return out;
}

// Thread `thread` of `nth` takes bytes [total * thread / nth, total * (thread + 1) / nth) of a region's matrices in
// order; calls fn(matrix, begin, end) with byte offsets into each matrix it overlaps.
template <typename Fn>
void for_thread_share(const Region& region, int thread, int nth, const Fn& fn) {
  const size_t lo = region.bytes * static_cast<size_t>(thread) / static_cast<size_t>(nth);
  const size_t hi = region.bytes * static_cast<size_t>(thread + 1) / static_cast<size_t>(nth);
  size_t offset = 0;
  for (const MatrixView& m : region.matrices) {
    const size_t n = matrix_bytes(m);
    const size_t begin = std::max(lo, offset), end = std::min(hi, offset + n);
    if (begin < end) fn(m, begin - offset, end - offset);
    offset += n;
  }
}

void walk_read(const std::vector<Region>& regions, ThreadPool& pool, ReadSumFn sum, uint64_t& sink) {
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()) * 8, 0);  // a line per thread: no shared writes
  for (const Region& region : regions) {
    pool.run_on_all([&](int thread) {
      const size_t call = call_bytes();
      uint64_t s = 0;
      for_thread_share(region, thread, pool.size(), [&](const MatrixView& m, size_t begin, size_t end) {
        // The sums read 64-byte aligned whole chunks: each call's start rounds up, its length down (a few hundred
        // bytes of each call left out; the rate counts the walk's full bytes, so read errs low).
        for (size_t at = begin; at < end; at += call) {
          const uintptr_t p = reinterpret_cast<uintptr_t>(m.data) + at;
          const uintptr_t aligned = (p + 63) & ~uintptr_t{63};
          const size_t n = std::min(call, end - at);
          if (n > aligned - p + kSumAlign) {
            s += sum(reinterpret_cast<const uint64_t*>(aligned), (n - (aligned - p)) / kSumAlign * kSumAlign);
          }
        }
      });
      sums[static_cast<size_t>(thread) * 8] += s;
    });
  }
  for (uint64_t s : sums) sink += s;
}

void walk_rows(const std::vector<Region>& regions, const Walk& walk, ThreadPool& pool, std::vector<float>& y) {
  const size_t per_thread = y.size() / static_cast<size_t>(pool.size());
  for (const Region& region : regions) {
    pool.run_on_all([&](int thread) {
      float* out = y.data() + per_thread * static_cast<size_t>(thread);
      for_thread_share(region, thread, pool.size(), [&](const MatrixView& m, size_t begin, size_t end) {
        const auto row_at = [&](size_t byte) { return static_cast<int64_t>((byte + m.row_stride / 2) / m.row_stride); };
        const int64_t r0 = row_at(begin), r1 = row_at(end);
        const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(call_bytes() / m.row_stride));
        const QuantizedActivations& act = *walk.acts.at({m.type, m.cols});
        for (int64_t r = r0; r < r1; r += step) matmul_row_range(m, act, out, r, std::min(r1, r + step));
      });
    });
  }
}

void walk_matmul(const std::vector<Region>& regions, const Walk& walk, ThreadPool& pool, std::vector<float>& y) {
  std::vector<MatmulJob> jobs;
  for (const Region& region : regions) {
    jobs.clear();
    float* out = y.data();  // each job its own outputs (y holds every region's rows)
    for (const MatrixView& m : region.matrices) {
      jobs.push_back(MatmulJob{m, walk.acts.at({m.type, m.cols}).get(), out});
      out += m.rows;
    }
    matmul_jobs(jobs, &pool);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// range: the weight type's enum value, or -1 for every matrix.
void BM_DecodeWalk(benchmark::State& state) {
  const Walk& walk = shared_walk();
  if (!walk.error.empty()) {
    state.SkipWithError(walk.error.c_str());
    return;
  }
  const bool all = state.range(0) < 0;
  const std::vector<Region> regions = regions_of(walk, static_cast<GgmlType>(all ? 0 : state.range(0)), all);
  size_t total = 0;
  int64_t max_rows = 0;  // of a region's matrices together
  for (const Region& r : regions) {
    total += r.bytes;
    int64_t rows = 0;
    for (const MatrixView& m : r.matrices) rows += m.rows;
    max_rows = std::max(max_rows, rows);
  }
  if (total == 0) {
    state.SkipWithError("the model has no weights of this type");
    return;
  }
  ThreadPool pool(env_int("FABULA_THREADS", 0));
  ReadProbeBuffer probe(pool);
  const ReadSumFn sum = read_sum(widest_read_isa(), kProbePrefetch);
  std::vector<float> y(static_cast<size_t>(max_rows) * static_cast<size_t>(pool.size()));
  uint64_t sink = 0;
  const char* kModes[] = {"probe", "read", "rows", "matmul"};
  // The ways' order per pass, a balanced Latin square (Williams): over four passes each way runs once in every
  // position and follows each other way exactly once. What ran just before matters: in a run with one fixed cyclic
  // order, the same matmul_jobs code measured as two ways differed by 1.7% (the one after the probe slower), as much
  // as some effects measured here (BENCHMARKS.md, session 30).
  constexpr int kOrder[4][4] = {{0, 1, 3, 2}, {1, 2, 0, 3}, {2, 3, 1, 0}, {3, 0, 2, 1}};
  std::map<std::string, std::vector<double>> rates;
  int pass = 0;
  for (auto _ : state) {
    for (int k = 0; k < 4; ++k) {
      const std::string mode = kModes[kOrder[pass % 4][k]];
      const auto t0 = std::chrono::steady_clock::now();
      size_t bytes = total;
      if (mode == "probe") {
        bytes = 0;
        while (bytes < total) {
          sink += read_pass(pool, probe, sum).sum;
          bytes += probe.bytes();
        }
      } else if (mode == "read") {
        walk_read(regions, pool, sum, sink);
      } else if (mode == "rows") {
        walk_rows(regions, walk, pool, y);
      } else {
        walk_matmul(regions, walk, pool, y);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rates[mode].push_back(static_cast<double>(bytes) / s / 1e9);
      if (mode == "matmul") state.SetIterationTime(s);
    }
    ++pass;
  }
  benchmark::DoNotOptimize(sink);
  const double probe_gbs = median(rates["probe"]), read_gbs = median(rates["read"]);
  const double rows_gbs = median(rates["rows"]), matmul_gbs = median(rates["matmul"]);
  state.counters["probe_GB/s"] = probe_gbs;
  state.counters["read_GB/s"] = read_gbs;
  state.counters["rows_GB/s"] = rows_gbs;
  state.counters["matmul_GB/s"] = matmul_gbs;
  state.counters["read/probe"] = read_gbs / probe_gbs;
  state.counters["rows/read"] = rows_gbs / read_gbs;
  state.counters["matmul/read"] = matmul_gbs / read_gbs;
  state.SetLabel(std::to_string(regions.size() / kTokens) + " regions a token, " +
                 std::to_string(total / kTokens / 1000000) + " MB a token, " + std::to_string(pool.size()) +
                 " threads; medians of " + std::to_string(rates["matmul"].size()) + " passes");
}

void register_walks() {
  const std::pair<const char*, int> kTypes[] = {{"all", -1},
                                                {"q4_K", static_cast<int>(GgmlType::kQ4_K)},
                                                {"q6_K", static_cast<int>(GgmlType::kQ6_K)},
                                                {"q8_0", static_cast<int>(GgmlType::kQ8_0)},
                                                {"q5_0", static_cast<int>(GgmlType::kQ5_0)},
                                                {"f32", static_cast<int>(GgmlType::kF32)}};
  for (const auto& [name, type] : kTypes) {
    benchmark::RegisterBenchmark((std::string("DecodeWalk/") + name).c_str(), BM_DecodeWalk)
        ->Arg(type)
        ->Iterations(8)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}
const int kRegistered = (register_walks(), 0);

}  // namespace
}  // namespace fabula
