// Google Benchmark of the tensor kernels: dequantize, activation quantize and the one-token dot per type (scalar
// reference vs the dispatched SIMD table), and matmul GEMV for 2816 rows of 2816 or 704 columns (Gemma 4's n_embd,
// an expert's down rows), in cache;
// the prefill inner loops, Tile and Gemm, for the best table and AVX2's.
#include <benchmark/benchmark.h>
#include <hwy/aligned_allocator.h>
#include <hwy/targets.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "base/huge_page_allocator.h"
#include "enough_memory.h"
#include "tensor/kernels.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/read_probe.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

constexpr int64_t kN = 2816;  // one Gemma 4 hidden row; a multiple of 256

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  return x;
}

std::vector<uint8_t> quantized(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(type, x.size()));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

// `rows` rows of `cols` gaussian values (row r from seed r), quantized to `type` back to back.
std::vector<uint8_t> gaussian_rows(GgmlType type, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(type, cols);
  std::vector<uint8_t> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, gaussian(cols, static_cast<uint32_t>(r)).data(), w.data() + r * rb, cols);
  }
  return w;
}

const KernelTable& table(bool simd) {
  static const KernelTable scalar = scalar_kernels();
  return simd ? best_kernels() : scalar;
}

void BM_VecDot(benchmark::State& state, GgmlType type, bool simd) {
  const auto w = quantized(type, gaussian(kN, 1));
  const auto a = quantized(vec_dot_type(type), gaussian(kN, 2));
  const TileFn dot = table(simd).tile[kernel_slot(type)];
  float y = 0;
  for (auto _ : state) {
    dot(kN, w.data(), a.data(), 0, nullptr, 1, &y, 1);
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));  // weight bytes streamed
  state.SetLabel(table(simd).target);
}

void BM_Dequantize(benchmark::State& state, GgmlType type, bool simd) {
  const auto w = quantized(type, gaussian(kN, 3));
  std::vector<float> y(kN);
  const DequantizeFn f = table(simd).dequantize[kernel_slot(type)];
  for (auto _ : state) {
    f(w.data(), y.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.SetLabel(table(simd).target);
}

void BM_QuantizeActivations(benchmark::State& state, GgmlType type, bool simd) {
  const auto x = gaussian(kN, 4);
  std::vector<uint8_t> q(row_bytes(type, kN));
  const QuantizeFn f = table(simd).quantize_act[kernel_slot(type)];
  for (auto _ : state) {
    f(x.data(), q.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * kN * 4);  // f32 input bytes
  state.SetLabel(table(simd).target);
}

// GEMV y = W x, W 2816 rows of `cols` (2816: the hidden size; 704: a routed expert's down rows), a few MB that stay
// in the caches: the kernel's speed without DRAM. range(0) = threads (0: scalar reference kernel, one thread).
void BM_Gemv(benchmark::State& state, GgmlType type, int64_t cols) {
  const int64_t rows = kN;
  std::vector<uint8_t> w(row_bytes(type, cols) * rows);
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = g(rng);
    quantize_row(type, row.data(), w.data() + r * row_bytes(type, cols), cols);
  }
  const MatrixView view{type, w.data(), cols, rows, row_bytes(type, cols)};
  const auto x = gaussian(cols, 6);
  std::vector<float> y(rows);
  QuantizedActivations xq;
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads > 0 ? threads : 1);
  const TileFn scalar_dot = table(false).tile[kernel_slot(type)];
  for (auto _ : state) {
    if (threads == 0) {
      xq.quantize(vec_dot_type(type), x.data(), 1, cols);
      for (int64_t r = 0; r < rows; ++r) scalar_dot(cols, w.data() + r * view.row_stride, xq.row(0), 0, nullptr, 1, &y[r], 1);
    } else {
      matmul(view, x.data(), 1, y.data(), xq, &pool);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.SetLabel(threads == 0 ? "scalar ref, 1 thread" : std::string(best_kernels().target) + ", " +
                                                              std::to_string(threads) + " threads");
}

// Decode's memory traffic: y = W x for one token over a 2816-column matrix of about 512 MB (far beyond any L3), so
// every weight byte comes from DRAM as in a decode step. Bytes/s against bench_membw's read bandwidth is how close
// a type's kernel comes to the bound. range(0) = threads, range(1) = columns (704: a routed expert's down rows).
//
// Each iteration also reads a buffer of the same size with the read probe's sum (untimed: bytes/s is the gemv's),
// and `of_read` is the median over iterations of the gemv's rate over that read's: a ratio of two passes a moment
// apart, which the host's drift between minutes (this VM's read: 16-29 GB/s within one run) leaves alone.
void BM_GemvStream(benchmark::State& state, GgmlType type) {
  const int64_t cols = state.range(1);
  const size_t rb = row_bytes(type, cols);
  const int64_t rows = static_cast<int64_t>((size_t{512} << 20) / rb) / 16 * 16;
  std::vector<uint8_t> one(rb);
  quantize_row(type, gaussian(cols, 7).data(), one.data(), cols);  // every row the same: speed only
  // 2 MiB pages, as the weight mapping gets them (the page cache's large folios, MADV_HUGEPAGE): with 4 KiB pages
  // every 4 KiB of weights costs a TLB miss that decode does not pay.
  const size_t bytes = (rb * static_cast<size_t>(rows) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  std::unique_ptr<uint8_t, decltype(&std::free)> w(static_cast<uint8_t*>(allocate_huge_pages(bytes)), &std::free);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(w.get() + static_cast<size_t>(r) * rb, one.data(), rb);
  const MatrixView view{type, w.get(), cols, rows, rb};
  const auto x = gaussian(cols, 6);
  std::vector<float> y(static_cast<size_t>(rows));
  QuantizedActivations xq;
  ThreadPool pool(static_cast<int>(state.range(0)));
  const ReadProbeBuffer read_buf(pool, bytes / kReadChunkBytes * kReadChunkBytes);
  const ReadSumFn read_sum_fn = read_sum(widest_read_isa());
  const double weight_bytes = static_cast<double>(rb) * static_cast<double>(rows);
  std::vector<double> of_read;
  uint64_t read_total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    matmul(view, x.data(), 1, y.data(), xq, &pool);
    benchmark::ClobberMemory();
    const double gemv_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(gemv_s);
    const ReadPass read = read_pass(pool, read_buf, read_sum_fn);
    read_total += read.sum;
    of_read.push_back((weight_bytes / gemv_s) / (static_cast<double>(read_buf.bytes()) / read.seconds));
  }
  benchmark::DoNotOptimize(read_total);
  std::nth_element(of_read.begin(), of_read.begin() + static_cast<std::ptrdiff_t>(of_read.size() / 2), of_read.end());
  state.counters["of_read"] = of_read.empty() ? 0.0 : of_read[of_read.size() / 2];
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rb) * rows);
  state.SetLabel(std::string(best_kernels().target) + ", " + std::to_string(state.range(0)) + " threads, " +
                 std::to_string(cols) + " columns");
}

// Decode's routed experts: `layers` layers of 128 experts of `rows` x `cols` back to back (the 26B's gate_up: 1408 x
// 2816; down: 2816 x 704), and per product call 8 experts of the next layer drawn at random, 8 one-token jobs in one
// matmul_jobs (as a decode step's experts), 16 calls per pass; each pass then reads a buffer of the pass's bytes, as
// GemvStream, and of_read is the median of the gemvs' rate over that read's. Against GemvStream (one long matrix) it
// shows what the routed pattern (short products at random places) costs. One layer is 285 MB (gate_up); 30 layers,
// the 26B's, are 8.6 GB: the same reads spread over the model's footprint, which costs more where a page
// translation does (bench_membw's PageChase; BENCHMARKS.md, session 22).
void BM_ExpertStream(benchmark::State& state, GgmlType type) {
  const int64_t rows = state.range(1), cols = state.range(2), layers = state.range(3);
  constexpr int kExperts = 128, kUsed = 8, kCalls = 16;
  const size_t rb = row_bytes(type, cols), expert_bytes = rb * static_cast<size_t>(rows);
  const size_t layer_bytes = expert_bytes * kExperts, total_bytes = layer_bytes * static_cast<size_t>(layers);
  if (!enough_memory_for(state, total_bytes)) return;
  std::unique_ptr<uint8_t, decltype(&std::free)> w(static_cast<uint8_t*>(allocate_huge_pages(total_bytes)), &std::free);
  std::vector<uint8_t> one(rb);
  quantize_row(type, gaussian(cols, 7).data(), one.data(), cols);
  for (size_t r = 0; r < total_bytes / rb; ++r) std::memcpy(w.get() + r * rb, one.data(), rb);
  ThreadPool pool(static_cast<int>(state.range(0)));
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), gaussian(cols, 6).data(), 1, cols, &pool);
  std::vector<float> y(static_cast<size_t>(rows * kUsed));
  const size_t pass_bytes = expert_bytes * kUsed * kCalls;
  const ReadProbeBuffer read_buf(pool, (pass_bytes + kReadChunkBytes - 1) / kReadChunkBytes * kReadChunkBytes);
  const ReadSumFn read_sum_fn = read_sum(widest_read_isa());
  std::mt19937 rng(42);
  std::vector<double> of_read;
  uint64_t read_total = 0;
  int64_t layer = 0;
  for (auto _ : state) {
    std::vector<MatmulJob> jobs;
    double seconds = 0.0;
    for (int c = 0; c < kCalls; ++c) {
      const uint8_t* layer_w = w.get() + static_cast<size_t>(layer) * layer_bytes;
      layer = (layer + 1) % layers;
      std::vector<int> picks(kExperts);
      std::iota(picks.begin(), picks.end(), 0);
      std::shuffle(picks.begin(), picks.end(), rng);
      std::sort(picks.begin(), picks.begin() + kUsed);  // route_experts goes through the experts in order
      jobs.clear();
      for (int k = 0; k < kUsed; ++k) {
        const MatrixView view{type, layer_w + static_cast<size_t>(picks[k]) * expert_bytes, cols, rows, rb};
        jobs.push_back({view, &xq, y.data() + k * rows});
      }
      const auto t0 = std::chrono::steady_clock::now();
      matmul_jobs(jobs, &pool);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    benchmark::ClobberMemory();
    state.SetIterationTime(seconds);
    const ReadPass read = read_pass(pool, read_buf, read_sum_fn);
    read_total += read.sum;
    of_read.push_back((static_cast<double>(pass_bytes) / seconds) / (static_cast<double>(read_buf.bytes()) / read.seconds));
  }
  benchmark::DoNotOptimize(read_total);
  std::nth_element(of_read.begin(), of_read.begin() + static_cast<std::ptrdiff_t>(of_read.size() / 2), of_read.end());
  state.counters["of_read"] = of_read.empty() ? 0.0 : of_read[of_read.size() / 2];
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(pass_bytes));
  state.SetLabel(std::string(best_kernels().target) + ", " + std::to_string(state.range(0)) + " threads, 8 of 128 experts of " +
                 std::to_string(rows) + " x " + std::to_string(cols) + " in " + std::to_string(layers) + " layer" +
                 (layers > 1 ? "s" : ""));
}

// The AVX2 target's table (what an AVX2-only CPU runs), for comparison with the best one.
const KernelTable& avx2_kernels() {
  static const KernelTable avx2 = [] {
    hwy::SetSupportedTargetsForTest(HWY_AVX2);
    KernelTable t = kernels_for_current_target();
    hwy::SetSupportedTargetsForTest(0);
    return t;
  }();
  return avx2;
}

// One tile kernel call per weight row of a 32 x 2816 matrix (L2-resident) against `nt` activation rows: the
// prefill inner loop without threads or memory traffic. MACs/s = items/s. Compares the best table with AVX2's.
void BM_Tile(benchmark::State& state, GgmlType type, bool best) {
  const int64_t rows = 32, cols = kN;
  const int nt = static_cast<int>(state.range(0));
  const KernelTable& kt = best ? best_kernels() : avx2_kernels();
  const TileFn tile = kt.tile[kernel_slot(type)];
  if (tile == nullptr || nt > kt.tile_tokens) {
    state.SkipWithError("no tile kernel for this type / token count");
    return;
  }
  std::vector<uint8_t> w(row_bytes(type, cols) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    const auto x = gaussian(cols, static_cast<uint32_t>(r));
    quantize_row(type, x.data(), w.data() + r * row_bytes(type, cols), cols);
  }
  const auto x = gaussian(cols * nt, 99);
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), x.data(), nt, cols);
  const size_t astride = nt > 1 ? static_cast<size_t>(xq.row(1) - xq.row(0)) : 0;
  std::vector<float> y(static_cast<size_t>(rows * nt));
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r)
      tile(cols, w.data() + r * row_bytes(type, cols), xq.row(0), astride, xq.block_scales(0), nt, y.data() + r, rows);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * nt);
  state.SetLabel(kt.target);
}

// The one-token kernel alone (the table's gemv, or the tile once per row where a type has none) over 128 rows of
// `cols` columns (L2-resident, at most 230 KB): decode's per-core compute speed per weight byte, without threads or
// DRAM. Decode is memory-bound only while this stays well above what one core can stream from DRAM.
void BM_GemvKernel(benchmark::State& state, GgmlType type, int64_t cols) {
  const int64_t rows = 128;
  const KernelTable& kt = best_kernels();
  const size_t rb = row_bytes(type, cols);
  const std::vector<uint8_t> w = gaussian_rows(type, rows, cols);
  const auto x = gaussian(cols, 99);
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), x.data(), 1, cols);
  std::vector<float> y(static_cast<size_t>(rows));
  const GemvFn gemv = kt.gemv[kernel_slot(type)];
  const TileFn tile = kt.tile[kernel_slot(type)];
  for (auto _ : state) {
    if (gemv != nullptr) {
      gemv(cols, w.data(), rb, rows, xq.row(0), xq.block_scales(0), xq.block_sums(0), y.data());
    } else {
      for (int64_t r = 0; r < rows; ++r) tile(cols, w.data() + r * rb, xq.row(0), 0, xq.block_scales(0), 1, &y[r], 1);
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.SetLabel(std::string(kt.target) + (gemv != nullptr ? ", gemv" : ", tile per row"));
}

// A product of a batched decode step on one core, in L2: `nt` tokens (one of each of nt sequences) against 128
// rows of `cols` columns through matmul's row path (matmul_row_range: the multi-token gemv where the type has one,
// else the tiles), as one thread's share of a step's product. MACs/s = items/s; bytes/s = the weights' bytes read
// per second, to hold against what a core streams from DRAM.
void BM_DecodeTokens(benchmark::State& state, GgmlType type, int64_t cols) {
  const int64_t rows = 128;
  const int nt = static_cast<int>(state.range(0));
  const size_t rb = row_bytes(type, cols);
  const std::vector<uint8_t> w = gaussian_rows(type, rows, cols);
  const auto x = gaussian(cols * nt, 99);
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), x.data(), nt, cols);
  std::vector<float> y(static_cast<size_t>(rows * nt));
  const MatrixView view{type, w.data(), cols, rows, rb};
  for (auto _ : state) {
    matmul_row_range(view, xq, y.data(), 0, rows);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * nt);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.SetLabel(best_kernels().target);
}

// A group's activations in the table's packed layout where it has one (AMX), as matmul converts them once per
// product; act->packed points into the returned buffer.
hwy::AlignedFreeUniquePtr<uint8_t[]> pack_group(const KernelTable& kt, GgmlType type, int64_t cols, GemmActs* act,
                                                int nt) {
  const size_t bytes = gemm_packed_bytes(kt, type, cols);
  if (bytes == 0) return nullptr;
  auto buffer = hwy::AllocateAligned<uint8_t>(bytes);
  *act = pack_gemm_acts(kt, type, cols, *act, nt, buffer.get());
  return buffer;
}

// One GEMM call per row tile of a 32 x 2816 matrix (repacked once, outside the timing: prefill repacks a tile once
// per matmul and passes every token group over it) against the table's gemm_tokens activation rows. MACs/s =
// items/s, to compare with Tile at the same token count. Compares the best table with AVX2's.
void BM_Gemm(benchmark::State& state, GgmlType type, bool best) {
  const int64_t rows = 32, cols = kN;
  const KernelTable& kt = best ? best_kernels() : avx2_kernels();
  const int nt = kt.gemm_tokens;
  if (kt.gemm[kernel_slot(type)] == nullptr) {
    state.SkipWithError("no GEMM kernel for this type");
    return;
  }
  const size_t rb = row_bytes(type, cols);
  const std::vector<uint8_t> w = gaussian_rows(type, rows, cols);
  const auto x = gaussian(cols * nt, 99);
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), x.data(), nt, cols);
  const size_t astride = nt > 1 ? static_cast<size_t>(xq.row(1) - xq.row(0)) : 0;
  GemmActs act{xq.row(0), astride, xq.block_scales(0), xq.block_sums(0)};
  const auto packed_acts = pack_group(kt, type, cols, &act, nt);  // once per product, outside the timing
  const int tiles = static_cast<int>(rows / kt.gemm_rows);
  std::vector<hwy::AlignedFreeUniquePtr<uint8_t[]>> packed;  // aligned as matmul's tile buffer
  for (int i = 0; i < tiles; ++i) {
    packed.push_back(hwy::AllocateAligned<uint8_t>(kt.gemm_tile_bytes(type, cols)));
    kt.repack[kernel_slot(type)](cols, w.data() + i * kt.gemm_rows * rb, rb, kt.gemm_rows, packed[i].get());
  }
  std::vector<float> y(static_cast<size_t>(rows * nt));
  const GemmFn gemm = kt.gemm[kernel_slot(type)];
  for (auto _ : state) {
    for (int i = 0; i < tiles; ++i) gemm(cols, packed[i].get(), act, nt, y.data() + i * kt.gemm_rows, rows);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * nt);
  state.SetLabel(std::string(kt.target) + (kt.amx ? " + AMX" : "") + ", " + std::to_string(kt.gemm_rows) + " rows x " + std::to_string(nt) +
                 " tokens");
}

// A prefill product's shape on one core: one tile of gemm_rows x 2816 (repacked once, outside the timing) against
// the activations of `tokens` tokens, every token group in turn, as matmul_rows_gemm passes them. Against Gemm (one
// group, its activations in L1) it shows what streaming a whole batch's activations costs. MACs/s = items/s.
void BM_GemmBatch(benchmark::State& state, GgmlType type) {
  const int64_t cols = kN, tokens = state.range(0);
  const KernelTable& kt = best_kernels();
  const int nt = kt.gemm_tokens, rows = kt.gemm_rows;
  const size_t rb = row_bytes(type, cols);
  const std::vector<uint8_t> w = gaussian_rows(type, rows, cols);
  const auto x = gaussian(cols * tokens, 99);
  QuantizedActivations xq;
  xq.quantize(vec_dot_type(type), x.data(), tokens, cols);
  const size_t astride = static_cast<size_t>(xq.row(1) - xq.row(0));
  const auto packed = hwy::AllocateAligned<uint8_t>(kt.gemm_tile_bytes(type, cols));  // as matmul's tile buffer
  kt.repack[kernel_slot(type)](cols, w.data(), rb, rows, packed.get());
  std::vector<float> y(static_cast<size_t>(rows * tokens));
  const GemmFn gemm = kt.gemm[kernel_slot(type)];
  std::vector<GemmActs> acts;  // every group's, packed once per product where the table packs (outside the timing)
  std::vector<hwy::AlignedFreeUniquePtr<uint8_t[]>> packed_acts;
  for (int64_t t0 = 0; t0 < tokens; t0 += nt) {
    acts.push_back({xq.row(t0), astride, xq.block_scales(t0), xq.block_sums(t0)});
    packed_acts.push_back(pack_group(kt, type, cols, &acts.back(), static_cast<int>(std::min<int64_t>(nt, tokens - t0))));
  }
  for (auto _ : state) {
    for (int64_t t0 = 0; t0 < tokens; t0 += nt) {
      const GemmActs& act = acts[static_cast<size_t>(t0 / nt)];
      gemm(cols, packed.get(), act, static_cast<int>(std::min<int64_t>(nt, tokens - t0)), y.data() + t0 * rows, rows);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * rows * cols * tokens);
  state.SetLabel(std::string(kt.target) + (kt.amx ? " + AMX" : "") + ", " + std::to_string(tokens) + " tokens");
}

// Repacking a 32 x 2816 matrix into GEMM tiles (prefill repacks every weight tile once per product): MACs/s of
// the tiles' work per token, to hold against Gemm's rate (a tile serves its product's tokens).
void BM_Repack(benchmark::State& state, GgmlType type) {
  const int64_t rows = 32, cols = kN;
  const KernelTable& kt = avx2_kernels();
  if (kt.repack[kernel_slot(type)] == nullptr) {
    state.SkipWithError("no GEMM kernel for this type");
    return;
  }
  const size_t rb = row_bytes(type, cols);
  const std::vector<uint8_t> w = gaussian_rows(type, rows, cols);
  std::vector<uint8_t> packed(kt.gemm_tile_bytes(type, cols));
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; r += kt.gemm_rows) {
      kt.repack[kernel_slot(type)](cols, w.data() + r * rb, rb, kt.gemm_rows, packed.data());
      benchmark::DoNotOptimize(packed.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
  state.SetLabel(kt.target);
}

const GgmlType kDotTypes[] = {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0, GgmlType::kQ4_K,
                              GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kF16,  GgmlType::kBF16,
                              GgmlType::kF32};
const GgmlType kDequantTypes[] = {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0, GgmlType::kQ4_K,
                                  GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kF16, GgmlType::kBF16};

int register_all() {
  for (GgmlType t : kDotTypes) {
    for (bool simd : {false, true}) {
      const std::string name = std::string("VecDot/") + std::string(type_name(t)) + (simd ? "/simd" : "/scalar");
      benchmark::RegisterBenchmark(name.c_str(), BM_VecDot, t, simd);
    }
  }
  for (GgmlType t : kDequantTypes) {
    for (bool simd : {false, true}) {
      const std::string name = std::string("Dequantize/") + std::string(type_name(t)) + (simd ? "/simd" : "/scalar");
      benchmark::RegisterBenchmark(name.c_str(), BM_Dequantize, t, simd);
    }
  }
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ8_K}) {
    for (bool simd : {false, true}) {
      const std::string name = std::string("QuantizeAct/") + std::string(type_name(t)) + (simd ? "/simd" : "/scalar");
      benchmark::RegisterBenchmark(name.c_str(), BM_QuantizeActivations, t, simd);
    }
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    for (bool best : {false, true}) {
      const std::string name = std::string("Tile/") + std::string(type_name(t)) + (best ? "/best" : "/avx2");
      benchmark::RegisterBenchmark(name.c_str(), BM_Tile, t, best)->Arg(1)->Arg(2)->Arg(4)->Arg(8);
    }
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    for (bool best : {false, true}) {
      const std::string name = std::string("Gemm/") + std::string(type_name(t)) + (best ? "/best" : "/avx2");
      benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, t, best);
    }
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ8_0}) {
    const std::string name = std::string("GemmBatch/") + std::string(type_name(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_GemmBatch, t)->Arg(4)->Arg(64)->Arg(512);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    benchmark::RegisterBenchmark((std::string("Repack/") + std::string(type_name(t))).c_str(), BM_Repack, t);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    const std::string name = std::string("GemvStream/") + std::string(type_name(t));
    const bool short_rows = type_traits(t).block_size == 32;  // 704 is no multiple of a K-quant's 256
    benchmark::RegisterBenchmark(name.c_str(), BM_GemvStream, t)
        ->ArgsProduct({{1, 2}, short_rows ? std::vector<int64_t>{kN, 704} : std::vector<int64_t>{kN}})
        ->UseManualTime()
        ->MinTime(1.0);
  }
  benchmark::RegisterBenchmark("ExpertStream/q4_K", BM_ExpertStream, GgmlType::kQ4_K)
      ->Args({2, 1408, kN, 1})->Args({1, 1408, kN, 1})->Args({2, 1408, kN, 30})->UseManualTime()->MinTime(1.0);
  for (GgmlType t : {GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    benchmark::RegisterBenchmark((std::string("ExpertStream/") + std::string(type_name(t))).c_str(), BM_ExpertStream, t)
        ->Args({2, kN, 704, 1})->UseManualTime()->MinTime(1.0);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    const std::string name = std::string("Gemv2816/") + std::string(type_name(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_Gemv, t, kN)->Arg(0)->Arg(1)->Arg(2)->UseRealTime();
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ5_0, GgmlType::kQ8_0, GgmlType::kF32}) {
    const bool short_rows = type_traits(t).block_size == 32;
    for (int64_t cols : short_rows ? std::vector<int64_t>{kN, 704} : std::vector<int64_t>{kN}) {
      const std::string name = "GemvKernel/" + std::string(type_name(t)) + "/" + std::to_string(cols);
      benchmark::RegisterBenchmark(name.c_str(), BM_GemvKernel, t, cols);
    }
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0}) {
    const std::string name = "DecodeTokens/" + std::string(type_name(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_DecodeTokens, t, kN)->Arg(1)->Arg(2)->Arg(3)->Arg(4);
  }
  // A routed expert's down rows (704 columns), which get 1 or 2 tokens in a batched step of 4 sequences.
  benchmark::RegisterBenchmark("DecodeTokens704/q8_0", BM_DecodeTokens, GgmlType::kQ8_0, int64_t{704})->Arg(1)->Arg(2);
  for (GgmlType t : {GgmlType::kQ5_0, GgmlType::kQ8_0}) {
    const std::string name = std::string("Gemv704/") + std::string(type_name(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_Gemv, t, int64_t{704})->Arg(1)->Arg(2)->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace
}  // namespace fabula
