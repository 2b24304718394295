// Quantized matmul: activations quantized once (blocks split across threads), then every output comes from one
// tile kernel call; output rows are split into contiguous chunks per thread. Each output element is computed the
// same way whatever the thread count, so results do not depend on the number of threads. A single product is a
// one-job matmul_jobs.
#include "tensor/matmul.h"

#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "tensor/blocks.h"
#include "tensor/decode_stream.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

// Below this many elements a quantize or matmul runs on the calling thread: waking workers costs more.
constexpr int64_t kMinParallelQuantize = 16384;
constexpr int64_t kMinParallelMacs = 65536;
// Rows per tile when several tokens share a weight tile (the tile stays in L1/L2 across the tokens).
constexpr int64_t kRowTile = 16;
// The unpack of a weight row in a tile call, in tokens' worth of multiply-adds (for matmul_jobs' balance): on the
// 512-bit Q4_K kernel 1 token ran at 24 and 8 tokens at 54 G MAC/s, so a call costs about 2 + nt tokens.
constexpr int64_t kUnpackTokens = 2;
// Fewest tokens of one product for the int8 GEMM: below it, repacking a weight tile costs more than it saves.
// A routed expert of a 512-token prompt gets about 32 tokens, so this decides the experts' path: synth 26B-A4B
// Q4_K_M pp512, 2 threads, alternating runs: 77.7 / 84.9 t/s from 32 tokens, 96.9 / 86.9 from 16, 100.8 / 96.7
// from 8.
constexpr int64_t kDefaultGemmMinTokens = 8;
// Row tiles the int8 GEMM repacks before each token group passes over them all (matmul_rows_gemm): a prefill
// product's packed activations (1,500 tokens of 2816 columns: 4.7 MB) no longer fit in L2, so each pass over a tile
// read them from L3 again; over four tiles at once, a quarter as often. A prefill chunk holds at least this many
// tiles. Synth 26B Q4_K_M pp1500 on the 2-core Xeon (AMX), with matmul_rows_gemm's prefetches: 1 tile 105.5, 2
// tiles 108.3, 4 tiles 112.3 and 116.5, 8 tiles 112.1 t/s.
constexpr int64_t kTilesPerPass = 4;
// Weight rows per pass when a job's tokens take both paths: the GEMM, then the tiles, over rows still in L2
// (64 rows of 2816 Q6_K columns: 148 KB).
constexpr int64_t kMixedRows = 64;
// The most tokens of one product for which a step is split by weight bytes, with stealing (run_stealing): a
// batched decode step of 4 sequences gives each routed expert 1 or 2 tokens and the dense products 4, and split by
// multiply-adds an expert with 2 tokens counted a third more than one with 1 for the same bytes.
constexpr int64_t kMaxStreamTokens = 4;
// The most threads that share a decode product's rows by stealing (run_stealing); more take the static split.
constexpr int kMaxStealThreads = 64;
// Bytes of a thread's next chunk it prefetches when that chunk belongs to another product (the kernels' own
// prefetch distance, tensor/tiles_avx512-inl.h).
constexpr int64_t kPrefetchNextBytes = 16384;

// Activation rows: act0 + t * astride for t < n_tokens, with their Q8_0 block scales and sums.
struct ActRows {
  const uint8_t* act0;
  size_t astride;
  int64_t n_tokens;
  const float* scales0;  // QuantizedActivations::block_scales of the first row, or nullptr
  const int32_t* sums0;  // QuantizedActivations::block_sums of the first row, or nullptr
  int64_t scales_stride;
  const float* widened0;  // QuantizedActivations::widened of the first row, or nullptr
  int64_t cols;
  const uint8_t* row(int64_t t) const { return act0 + static_cast<size_t>(t) * astride; }
  const float* scales(int64_t t) const { return scales0 == nullptr ? nullptr : scales0 + t * scales_stride; }
  const int32_t* sums(int64_t t) const { return sums0 == nullptr ? nullptr : sums0 + t * scales_stride; }
};

ActRows act_rows(const QuantizedActivations& xq, int64_t begin, int64_t count) {
  const size_t stride = xq.n_tokens() > 1 ? static_cast<size_t>(xq.row(1) - xq.row(0)) : 0;
  return {xq.row(begin), stride,           count, xq.block_scales(begin), xq.block_sums(begin), xq.cols() / 32,
          xq.widened(begin),     xq.cols()};
}

// y[t][r] for r in [r0, r1), all tokens. Each weight row is unpacked once per group of up to tile_tokens tokens,
// and a tile of kRowTile rows stays in L1/L2 while the token groups pass over it. One token goes through the type's
// gemv kernel where it has one (the same numbers as the tile, one call for all rows).
void matmul_rows(const MatrixView& w, const ActRows& xq, float* y, int64_t ldy, TileFn tile, int tile_tokens,
                 int64_t r0, int64_t r1) {
  const int64_t n_tokens = xq.n_tokens;
  const bool q8_0_sums = xq.scales0 != nullptr && xq.sums0 != nullptr;  // what the Q8_0 family's gemv reads
  const KernelTable& kt = best_kernels();
  const GemvFn gemv = q8_0_sums || vec_dot_type(w.type) != GgmlType::kQ8_0 ? kt.gemv[kernel_slot(w.type)] : nullptr;
  if (gemv != nullptr && n_tokens == 1) {
    gemv(w.cols, w.data + static_cast<size_t>(r0) * w.row_stride, w.row_stride, r1 - r0, xq.row(0), xq.scales0,
         xq.sums0, y + r0);
    return;
  }
  const bool every_token = gemv != nullptr && kt.gemv_every_token[kernel_slot(w.type)] && tile_tokens > 1;
  const GemvTokensFn gemv_tokens = gemv != nullptr ? kt.gemv_tokens[kernel_slot(w.type)] : nullptr;
  FABULA_CHECK(!every_token || gemv_tokens != nullptr);  // the table gives such a type both
  // The multi-token gemv: every product of a type whose gemv sums in its own order, and for the others (the same
  // numbers as the tiles) a batched decode step's few tokens (prefill keeps the tiles, 8 tokens a call).
  if (gemv_tokens != nullptr && tile_tokens > 1 && (every_token || n_tokens <= kTokensPerGemvCall)) {
    // Groups of tokens (each weight block unpacked once per group); with more tokens than one call takes, over
    // blocks of rows still in L2 (one read from memory).
    const int64_t block_rows = n_tokens <= kTokensPerGemvCall ? r1 - r0 : kMixedRows;
    for (int64_t rb = r0; rb < r1; rb += block_rows) {
      const int64_t rows = std::min(r1, rb + block_rows) - rb;
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokensPerGemvCall) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokensPerGemvCall, n_tokens - t0));
        gemv_tokens(w.cols, w.data + static_cast<size_t>(rb) * w.row_stride, w.row_stride, rows, xq.row(t0),
                    xq.astride, xq.scales(t0), xq.sums(t0), nt, y + t0 * ldy + rb, ldy);
      }
    }
    return;
  }
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t rt_end = std::min(r1, rt + kRowTile);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += tile_tokens) {
      const int nt = static_cast<int>(std::min<int64_t>(tile_tokens, n_tokens - t0));
      const uint8_t* act = xq.row(t0);
      float* yt = y + t0 * ldy;
      for (int64_t r = rt; r < rt_end; ++r) {
        tile(w.cols, w.data + static_cast<size_t>(r) * w.row_stride, act, xq.astride, xq.scales(t0), nt, yt + r, ldy);
      }
    }
  }
}

// A thread's growable buffer, 64-byte aligned: an AMX tile row that straddles two cache lines loads both.
class AlignedScratch {
 public:
  uint8_t* get(size_t bytes) {
    if (capacity_ < bytes) {
      data_ = hwy::AllocateAligned<uint8_t>(bytes);
      capacity_ = bytes;
    }
    return data_.get();
  }

 private:
  hwy::AlignedFreeUniquePtr<uint8_t[]> data_;
  size_t capacity_ = 0;
};

// Numbers the matmul_jobs calls. Activations do not change during a call, so a thread's packed activations serve
// every chunk of rows it takes of that call's products with the same input and weight type.
uint64_t next_matmul_call() {
  static std::atomic<uint64_t> calls{0};
  return calls.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Share `part` of `parts` of the cache lines of [p, p + bytes), asked for into L2.
void prefetch_share_l2(const uint8_t* p, size_t bytes, int64_t part, int64_t parts) {
  const size_t lines = (bytes + 63) / 64;
  const size_t begin = lines * static_cast<size_t>(part) / static_cast<size_t>(parts);
  const size_t end = lines * static_cast<size_t>(part + 1) / static_cast<size_t>(parts);
  for (size_t line = begin; line < end; ++line) __builtin_prefetch(p + 64 * line, 0, 2);
}

struct PackedActsKey {
  uint64_t call = 0;
  const uint8_t* act0 = nullptr;
  int64_t n_tokens = 0;
  GgmlType weight_type = GgmlType::kF32;
  int64_t cols = 0;
  bool operator==(const PackedActsKey&) const = default;
};

// The same through the int8 GEMM: kTilesPerPass groups of gemm_rows weight rows at a time are repacked once into
// this thread's tile buffer, then every group of gemm_tokens tokens passes over them (converted first where the
// table packs activations: once per thread, call and input).
void matmul_rows_gemm(const MatrixView& w, const ActRows& xq, float* y, int64_t ldy, const KernelTable& kt,
                      int64_t r0, int64_t r1, uint64_t call) {
  thread_local AlignedScratch tile_buffer, packed_buffer;
  thread_local PackedActsKey packed_key;
  const RepackFn repack = kt.repack[kernel_slot(w.type)];
  const GemmFn gemm = kt.gemm[kernel_slot(w.type)];
  const auto group_acts = [&](int64_t t0) {
    return xq.widened0 != nullptr ? GemmActs{reinterpret_cast<const uint8_t*>(xq.widened0 + t0 * xq.cols),
                                             static_cast<size_t>(xq.cols) * sizeof(float), nullptr, nullptr}
                                  : GemmActs{xq.row(t0), xq.astride, xq.scales(t0), xq.sums(t0)};
  };
  const auto group_tokens = [&](int64_t t0) {
    return static_cast<int>(std::min<int64_t>(kt.gemm_tokens, xq.n_tokens - t0));
  };
  const int64_t groups = (xq.n_tokens + kt.gemm_tokens - 1) / kt.gemm_tokens;
  const size_t packed_bytes = gemm_packed_bytes(kt, w.type, w.cols);
  uint8_t* packed = nullptr;
  if (packed_bytes > 0) {
    const PackedActsKey key{call, xq.act0, xq.n_tokens, w.type, w.cols};
    // The buffer grows (and moves) only for more bytes than it held, so never under the key it already packed.
    packed = packed_buffer.get(packed_bytes * static_cast<size_t>(groups));
    if (key != packed_key) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t t0 = g * kt.gemm_tokens;
        kt.gemm_pack_acts(w.type, w.cols, group_acts(t0), group_tokens(t0), packed + g * packed_bytes);
      }
      packed_key = key;
    }
  }
  const size_t tile_bytes = (kt.gemm_tile_bytes(w.type, w.cols) + 63) / 64 * 64;
  uint8_t* const tiles = tile_buffer.get(tile_bytes * static_cast<size_t>(kTilesPerPass));
  const int64_t pass_rows = kTilesPerPass * kt.gemm_rows;
  for (int64_t p0 = r0; p0 < r1; p0 += pass_rows) {
    const int64_t p1 = std::min(r1, p0 + pass_rows);
    const int64_t n_tiles = (p1 - p0 + kt.gemm_rows - 1) / kt.gemm_rows;
    for (int64_t i = 0; i < n_tiles; ++i) {
      const int64_t rt = p0 + i * kt.gemm_rows;
      const int rows = static_cast<int>(std::min<int64_t>(kt.gemm_rows, p1 - rt));
      repack(w.cols, w.data + static_cast<size_t>(rt) * w.row_stride, w.row_stride, rows, tiles + i * tile_bytes);
    }
    // While this pass's GEMM runs, a share before each token group's calls: the next pass's weight rows into L2
    // (else every repack waits on memory) and that group's output lines of the next pass (else every output line
    // waits on memory for its owner's copy; the tokens' rows are far apart). Past r1 too: a thread's next chunk of a
    // product is the rows after its last one. A synth 26B layer's expert downs (128 x 2816 x 704 Q5_0, 12,000 rows
    // grouped by expert) on the 2-core Xeon (AMX), one tile a pass: 97.4, 89.9 ms -> 86.3, 83.3 with the weights ->
    // 63.2 with the output lines too.
    const int64_t next = p1;
    const int64_t next_rows = next < w.rows ? std::min<int64_t>(pass_rows, w.rows - next) : 0;
    for (int64_t t0 = 0; t0 < xq.n_tokens; t0 += kt.gemm_tokens) {
      GemmActs act = group_acts(t0);
      if (packed != nullptr) act.packed = packed + (t0 / kt.gemm_tokens) * packed_bytes;
      prefetch_share_l2(w.data + static_cast<size_t>(next) * w.row_stride,
                        static_cast<size_t>(next_rows) * w.row_stride, t0 / kt.gemm_tokens, groups);
      for (int t = 0; t < group_tokens(t0); ++t) {
        for (int64_t r = 0; r < next_rows; r += 16) __builtin_prefetch(y + (t0 + t) * ldy + next + r, 1, 3);
      }
      for (int64_t i = 0; i < n_tiles; ++i) {
        gemm(w.cols, tiles + i * tile_bytes, act, group_tokens(t0), y + t0 * ldy + p0 + i * kt.gemm_rows, ldy);
      }
    }
  }
}

}  // namespace

namespace {
bool& use_tiles_flag() {
  static bool flag = [] {
    const char* env = std::getenv("FABULA_NO_TILES");  // A/B switch for benchmarks: 1 = one token per tile call
    return env == nullptr || env[0] == '\0' || env[0] == '0';
  }();
  return flag;
}
}  // namespace

bool matmul_use_tiles() { return use_tiles_flag(); }
void set_matmul_use_tiles(bool on) { use_tiles_flag() = on; }

namespace {
int64_t& gemm_min_tokens() {
  static int64_t n = [] {
    const char* env = std::getenv("FABULA_GEMM_MIN_TOKENS");
    return env != nullptr && env[0] != '\0' ? std::atoll(env) : kDefaultGemmMinTokens;
  }();
  return n;
}
}  // namespace

int64_t matmul_gemm_min_tokens() { return gemm_min_tokens(); }
void set_matmul_gemm_min_tokens(int64_t n) { gemm_min_tokens() = n; }

void QuantizedActivations::quantize(GgmlType type, const float* x, int64_t n_tokens, int64_t cols,
                                    ThreadPool* pool) {
  const TypeTraits& tr = type_traits(type);
  FABULA_CHECK(cols % tr.block_size == 0);
  const QuantizeFn q = best_kernels().quantize_act[kernel_slot(type)];
  FABULA_CHECK(q != nullptr && "QuantizedActivations: unsupported activation type");
  type_ = type;
  n_tokens_ = n_tokens;
  cols_ = cols;
  row_bytes_ = row_bytes(type, static_cast<uint64_t>(cols));
  const size_t need = row_bytes_ * static_cast<size_t>(n_tokens);
  if (buffer_.size() < need) buffer_.resize(need);

  const int64_t blocks_per_row = cols / tr.block_size;
  const int64_t total_blocks = blocks_per_row * n_tokens;
  const bool with_scales = type == GgmlType::kQ8_0;
  if (with_scales && scales_.size() < static_cast<size_t>(total_blocks)) {
    scales_.resize(total_blocks);
    sums_.resize(total_blocks);
  }
  if (!with_scales) {
    scales_.clear();
    sums_.clear();
  }
  auto run = [&](int64_t b0, int64_t b1, int) {
    // [b0, b1) may span rows: quantize the piece of each row it covers.
    while (b0 < b1) {
      const int64_t t = b0 / blocks_per_row;
      const int64_t jb = b0 % blocks_per_row;
      const int64_t nb = std::min(b1 - b0, blocks_per_row - jb);
      uint8_t* dst = buffer_.data() + t * row_bytes_ + jb * tr.block_bytes;
      q(x + t * cols + jb * tr.block_size, dst, nb * tr.block_size);
      if (with_scales) {
        const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(dst);
        for (int64_t k = 0; k < nb; ++k) {
          scales_[t * blocks_per_row + jb + k] = fp16_to_fp32(blocks[k].d);
          int32_t sum = 0;
          for (int8_t v : blocks[k].qs) sum += v;
          sums_[t * blocks_per_row + jb + k] = -128 * sum;
        }
      }
      b0 += nb;
    }
  };
  const bool widen = (type == GgmlType::kF16 || type == GgmlType::kBF16) && matmul_gemm_min_tokens() > 0 &&
                     n_tokens >= matmul_gemm_min_tokens();
  if (widen && widened_.size() < static_cast<size_t>(n_tokens * cols)) widened_.resize(n_tokens * cols);
  if (!widen) widened_.clear();
  const DequantizeFn widen_fn = best_kernels().dequantize[kernel_slot(type)];
  auto run_all = [&](int64_t b0, int64_t b1, int thread) {
    run(b0, b1, thread);
    if (widen) {  // plain types: one block per element
      widen_fn(buffer_.data() + b0 * tr.block_bytes, widened_.data() + b0, b1 - b0);
    }
  };
  if (pool == nullptr || pool->size() == 1 || n_tokens * cols < kMinParallelQuantize) {
    run_all(0, total_blocks, 0);
  } else {
    pool->parallel_for(total_blocks, run_all);
  }
}

void QuantizedActivations::gather(const QuantizedActivations& src, std::span<const int32_t> rows, ThreadPool* pool) {
  type_ = src.type_;
  cols_ = src.cols_;
  row_bytes_ = src.row_bytes_;
  n_tokens_ = static_cast<int64_t>(rows.size());
  const int64_t blocks_per_row = cols_ / 32;  // Q8_0: scales and sums per row
  const bool with_scales = !src.scales_.empty();
  const bool widen = (type_ == GgmlType::kF16 || type_ == GgmlType::kBF16) && matmul_gemm_min_tokens() > 0 &&
                     n_tokens_ >= matmul_gemm_min_tokens();
  if (buffer_.size() < row_bytes_ * static_cast<size_t>(n_tokens_)) buffer_.resize(row_bytes_ * n_tokens_);
  if (!with_scales) {
    scales_.clear();
    sums_.clear();
  } else if (scales_.size() < static_cast<size_t>(n_tokens_ * blocks_per_row)) {
    scales_.resize(n_tokens_ * blocks_per_row);
    sums_.resize(n_tokens_ * blocks_per_row);
  }
  if (!widen) widened_.clear();
  else if (widened_.size() < static_cast<size_t>(n_tokens_ * cols_)) widened_.resize(n_tokens_ * cols_);
  const DequantizeFn widen_fn = best_kernels().dequantize[kernel_slot(type_)];
  auto run = [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = rows[static_cast<size_t>(i)];
      FABULA_CHECK(r >= 0 && r < src.n_tokens_);
      std::memcpy(buffer_.data() + i * row_bytes_, src.buffer_.data() + r * row_bytes_, row_bytes_);
      if (with_scales) {
        std::copy_n(src.scales_.data() + r * blocks_per_row, blocks_per_row, scales_.data() + i * blocks_per_row);
        std::copy_n(src.sums_.data() + r * blocks_per_row, blocks_per_row, sums_.data() + i * blocks_per_row);
      }
      if (widen && !src.widened_.empty()) {
        std::copy_n(src.widened_.data() + r * cols_, cols_, widened_.data() + i * cols_);
      } else if (widen) {  // the source had too few rows for the GEMM: widen the copied row
        widen_fn(buffer_.data() + i * row_bytes_, widened_.data() + i * cols_, cols_);
      }
    }
  };
  if (pool == nullptr || pool->size() == 1 || n_tokens_ * cols_ < kMinParallelQuantize) {
    run(0, n_tokens_, 0);
  } else {
    pool->parallel_for(n_tokens_, run);
  }
}

namespace {

// Decode (one token per product): the rows go in chunks of about decode_chunk_bytes() of weights (each chunk is one
// kernel call, whose streams restart where it starts: 256 KiB on Intel, 64 KiB elsewhere). Each thread starts on its
// share of the cost split (contiguous, so its stream stays one stream), and when its share is done it takes chunks
// from the far end of the share with the most chunks left. So the threads finish together although their products
// stream at different speeds per byte (the Q8_0 gemv is faster than the Q4_K tile, and the split counts bytes) and
// a worker starts some µs after the caller; every row is still computed by one kernel call as before, so the
// results do not depend on which thread takes it.
// Prefill (more tokens) goes in chunks of about this many multiply-adds (matmul_jobs' row costs), taken the same
// way: the static split by cost left one thread waiting for the other at the end of most regions (the GEMM, the
// tiles of an expert with few tokens and the repacks run at different speeds per multiply-add; synth 26B pp512 on
// a 2-core Zen 3: 13% of the run). 4 M is ~0.1 ms on one AVX2 core, and never less than kTilesPerPass row tiles.
constexpr int64_t kChunkMacs = int64_t{4} << 20;

// Chunks [front, back) of one thread's share, packed in one word so that taking from either end is one CAS.
struct alignas(64) ChunkRange {
  std::atomic<uint64_t> front_back{0};  // front: low 32 bits, back: high 32 bits
  void set(uint32_t front, uint32_t back) {
    front_back.store(static_cast<uint64_t>(back) << 32 | front, std::memory_order_relaxed);
  }
  int64_t left() const {
    const uint64_t v = front_back.load(std::memory_order_relaxed);
    return static_cast<int64_t>(v >> 32) - static_cast<int64_t>(static_cast<uint32_t>(v));
  }
  // The next chunk from the front (the owner) or from the back (a thread that has finished its own), or -1.
  int64_t take(bool from_front) {
    uint64_t v = front_back.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t f = static_cast<uint32_t>(v), b = static_cast<uint32_t>(v >> 32);
      if (f >= b) return -1;
      const uint64_t next = from_front ? (static_cast<uint64_t>(b) << 32 | (f + 1)) : (static_cast<uint64_t>(b - 1) << 32 | f);
      if (front_back.compare_exchange_weak(v, next, std::memory_order_relaxed)) return from_front ? f : b - 1;
    }
  }
};

template <typename RunRows>
void run_stealing(std::span<const MatmulJob> jobs, const std::array<int64_t, kMaxMatmulJobs>& row_costs,
                  const std::array<int64_t, kMaxMatmulJobs + 1>& prefix, int64_t chunk_cost, int64_t min_tiles,
                  ThreadPool& pool, const RunRows& run_rows) {
  // Job j's rows in chunks of chunk_rows[j] (whole row tiles, at least min_tiles, so every GEMM row group and tile
  // call is the one a single thread would make); chunk c of the step is chunk c - first[j] of job j.
  std::array<int64_t, kMaxMatmulJobs> chunk_rows{};
  std::array<int64_t, kMaxMatmulJobs + 1> first{};
  for (size_t j = 0; j < jobs.size(); ++j) {
    const int64_t rows = row_costs[j] > 0 ? jobs[j].w.rows : 0;
    const int64_t tiles = std::max(min_tiles, chunk_cost / std::max<int64_t>(1, row_costs[j] * kRowTile));
    chunk_rows[j] = tiles * kRowTile;
    first[j + 1] = first[j] + (rows + chunk_rows[j] - 1) / chunk_rows[j];
  }
  const size_t n_jobs = jobs.size();
  const int64_t n_chunks = first[n_jobs];
  auto job_of = [&](int64_t c) {
    return static_cast<size_t>(std::upper_bound(first.begin() + 1, first.begin() + n_jobs + 1, c) - first.begin() - 1);
  };
  // Thread i's share begins at the first chunk whose first row's cost is >= total * i / nth (the static split).
  const int nth = pool.size();
  const int64_t total = prefix[n_jobs];
  std::array<ChunkRange, kMaxStealThreads> ranges;
  auto chunk_at_cost = [&](int64_t c) -> int64_t {
    if (c >= total) return n_chunks;
    const size_t j = static_cast<size_t>(std::upper_bound(prefix.begin() + 1, prefix.begin() + n_jobs + 1, c) - prefix.begin() - 1);
    const int64_t per_chunk = chunk_rows[j] * row_costs[j];
    return std::min(first[j + 1], first[j] + (c - prefix[j] + per_chunk - 1) / per_chunk);
  };
  for (int i = 0; i < nth; ++i) {
    ranges[static_cast<size_t>(i)].set(static_cast<uint32_t>(chunk_at_cost(total * i / nth)),
                                       static_cast<uint32_t>(chunk_at_cost(total * (i + 1) / nth)));
  }
  auto run_chunk = [&](int64_t c) {
    const size_t j = job_of(c);
    const int64_t r0 = (c - first[j]) * chunk_rows[j];
    run_rows(j, r0, std::min(jobs[j].w.rows, r0 + chunk_rows[j]));
  };
  pool.run_on_all([&](int thread) {
    ChunkRange& own = ranges[static_cast<size_t>(thread)];
    for (int64_t c = own.take(true); c >= 0; c = own.take(true)) {
      // The kernels prefetch ahead within a job's rows; a next chunk of another job starts elsewhere in memory.
      if (own.left() > 0 && job_of(c + 1) != job_of(c)) {
        const size_t j = job_of(c + 1);
        const uint8_t* next = jobs[j].w.data + static_cast<size_t>((c + 1 - first[j]) * chunk_rows[j]) * jobs[j].w.row_stride;
        for (int64_t off = 0; off < kPrefetchNextBytes; off += 64) __builtin_prefetch(next + off);
      }
      run_chunk(c);
    }
    for (;;) {
      ChunkRange* victim = nullptr;
      int64_t most = 0;
      for (int i = 0; i < nth; ++i) {
        const int64_t left = ranges[static_cast<size_t>(i)].left();
        if (i != thread && left > most) {
          most = left;
          victim = &ranges[static_cast<size_t>(i)];
        }
      }
      if (victim == nullptr) break;
      const int64_t c = victim->take(false);
      if (c >= 0) run_chunk(c);
    }
  });
}

}  // namespace

void matmul(const MatrixView& w, const QuantizedActivations& xq, float* y, ThreadPool* pool, int64_t y_stride) {
  const MatmulJob job{w, &xq, y, y_stride};
  matmul_jobs(std::span<const MatmulJob>(&job, 1), pool);
}

void matmul_jobs(std::span<const MatmulJob> jobs, ThreadPool* pool) {
  const KernelTable& kt = best_kernels();
  const int tile_tokens = matmul_use_tiles() ? kt.tile_tokens : 1;
  const int64_t gemm_min = matmul_gemm_min_tokens();
  const uint64_t call = next_matmul_call();
  // Cost of one output row of each job, and the prefix sums over whole jobs. With at most kMaxStreamTokens tokens
  // per job (decode, alone or batched) a row costs its bytes, since streaming the weights is the time (a Q6_K row
  // is 1.46x a Q4_K row of the same length: q/k/v split by MACs left one thread 20% more bytes); with more tokens it
  // costs its MACs plus the unpack of each tile group (MoE prefill: an expert gets 0 to 100+ tokens).
  std::array<int64_t, kMaxMatmulJobs + 1> prefix{};
  std::array<int64_t, kMaxMatmulJobs> row_costs{};
  FABULA_CHECK(jobs.size() <= kMaxMatmulJobs);
  int64_t max_tokens = 0;
  for (const MatmulJob& job : jobs) {
    FABULA_CHECK(job.x != nullptr && job.x->type() == vec_dot_type(job.w.type) && job.x->cols() == job.w.cols);
    FABULA_CHECK(job.w.row_stride >= row_bytes(job.w.type, static_cast<uint64_t>(job.w.cols)) || job.w.rows <= 1);
    FABULA_CHECK(kt.tile[kernel_slot(job.w.type)] != nullptr && "matmul: unsupported weight type");
    const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
    FABULA_CHECK(job.token_begin >= 0 && job.token_begin + nt <= job.x->n_tokens());
    max_tokens = std::max(max_tokens, nt);
  }
  // A decode step of up to kMaxStreamTokens tokens per product (one sequence, or one token of each of a few) reads
  // every weight once: its time is the weights' bytes, whatever the number of tokens.
  const bool streaming = max_tokens <= kMaxStreamTokens;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
    const int64_t groups = (nt + tile_tokens - 1) / tile_tokens;
    row_costs[j] = streaming ? static_cast<int64_t>(row_bytes(job.w.type, static_cast<uint64_t>(job.w.cols))) *
                                   std::min<int64_t>(nt, 1)
                             : job.w.cols * (nt + kUnpackTokens * groups);
    prefix[j + 1] = prefix[j] + job.w.rows * row_costs[j];
  }
  const int64_t total = prefix[jobs.size()];
  if (total == 0) return;
  // Rows [r0, r1) of job j on the calling thread.
  auto run_rows = [&](size_t j, int64_t r0, int64_t r1) {
    const MatmulJob& job = jobs[j];
    const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
    if (nt == 0 || r0 >= r1) return;
    const ActRows act = act_rows(*job.x, job.token_begin, nt);
    const int64_t ldy = job.y_stride > 0 ? job.y_stride : job.w.rows;
    const bool half = job.w.type == GgmlType::kF16 || job.w.type == GgmlType::kBF16;
    const bool has_gemm = kt.gemm[kernel_slot(job.w.type)] != nullptr && (!half || act.widened0 != nullptr);
    const int64_t n_gemm = !has_gemm            ? 0
                           : job.gemm_tokens < 0 ? (gemm_min > 0 && nt >= gemm_min ? nt : 0)
                                                 : std::min(job.gemm_tokens, nt);
    const TileFn tile = kt.tile[kernel_slot(job.w.type)];
    if (n_gemm == nt) {
      matmul_rows_gemm(job.w, act, job.y, ldy, kt, r0, r1, call);
    } else if (n_gemm == 0) {
      matmul_rows(job.w, act, job.y, ldy, tile, tile_tokens, r0, r1);
    } else {
      // Both paths over each group of rows while its weights are in cache (one read from memory).
      const ActRows gemm_act = act_rows(*job.x, job.token_begin, n_gemm);
      const ActRows tile_act = act_rows(*job.x, job.token_begin + n_gemm, nt - n_gemm);
      for (int64_t rc = r0; rc < r1; rc += kMixedRows) {
        const int64_t rc_end = std::min(r1, rc + kMixedRows);
        matmul_rows_gemm(job.w, gemm_act, job.y, ldy, kt, rc, rc_end, call);
        matmul_rows(job.w, tile_act, job.y + n_gemm * ldy, ldy, tile, tile_tokens, rc, rc_end);
      }
    }
    if (job.after_rows != nullptr) (*job.after_rows)(r0, r1);
  };
  // Thread `thread` of nth takes the cost range [total*thread/nth, total*(thread+1)/nth), mapped to whole rows:
  // row r of job j belongs to the thread whose range holds the row's first MAC. Every output row is computed by
  // exactly one thread, whatever nth.
  auto run = [&](int thread, int nth) {
    const int64_t c0 = total * thread / nth, c1 = total * (thread + 1) / nth;
    for (size_t j = 0; j < jobs.size(); ++j) {
      const int64_t row_cost = row_costs[j];
      if (row_cost == 0 || prefix[j + 1] <= c0 || prefix[j] >= c1) continue;  // no tokens, or not this share
      auto first_row_at = [&](int64_t c) {  // first row whose start cost is >= c, rounded up to a whole tile
        if (c <= prefix[j]) return int64_t{0};
        const int64_t r = (c - prefix[j] + row_cost - 1) / row_cost;
        return std::min(jobs[j].w.rows, (r + kRowTile - 1) / kRowTile * kRowTile);
      };
      run_rows(j, first_row_at(c0), first_row_at(c1));
    }
  };
  FABULA_CHECK(kt.gemm_rows <= 0 || kRowTile % kt.gemm_rows == 0);  // chunks hold whole GEMM row groups
  if (pool != nullptr && pool->size() > 1 && pool->size() <= kMaxStealThreads && total >= kMinParallelMacs) {
    run_stealing(jobs, row_costs, prefix, streaming ? decode_chunk_bytes() : kChunkMacs, streaming ? 1 : kTilesPerPass,
                 *pool, run_rows);
    return;
  }
  if (pool == nullptr || pool->size() == 1 || total < kMinParallelMacs) {
    run(0, 1);
    return;
  }
  const int nth = pool->size();
  pool->run_on_all([&](int thread) { run(thread, nth); });
}

void matmul_row_range(const MatrixView& w, const QuantizedActivations& xq, float* y, int64_t r0, int64_t r1,
                      int64_t y_stride) {
  FABULA_CHECK(xq.type() == vec_dot_type(w.type) && xq.cols() == w.cols);
  FABULA_CHECK(0 <= r0 && r0 <= r1 && r1 <= w.rows);
  const KernelTable& kt = best_kernels();
  const TileFn tile = kt.tile[kernel_slot(w.type)];
  FABULA_CHECK(tile != nullptr && "matmul: unsupported weight type");
  matmul_rows(w, act_rows(xq, 0, xq.n_tokens()), y, y_stride > 0 ? y_stride : w.rows, tile,
              matmul_use_tiles() ? kt.tile_tokens : 1, r0, r1);
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, QuantizedActivations& scratch,
            ThreadPool* pool) {
  scratch.quantize(vec_dot_type(w.type), x, n_tokens, w.cols, pool);
  matmul(w, scratch, y, pool);
}

}  // namespace fabula
