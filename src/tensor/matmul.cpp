// Quantized matmul: activations quantized once (blocks split across threads), then every output comes from one
// tile kernel call; output rows are split into contiguous chunks per thread. Each output element is computed the
// same way whatever the thread count, so results do not depend on the number of threads. A single product is a
// one-job matmul_jobs.
#include "tensor/matmul.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include "base/check.h"
#include "tensor/blocks.h"
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

// y[t][r] for r in [r0, r1), all tokens. Each weight row is unpacked once per group of up to tile_tokens tokens,
// and a tile of kRowTile rows stays in L1/L2 while the token groups pass over it.
// Activation rows: act0 + t * astride for t < n_tokens.
struct ActRows {
  const uint8_t* act0;
  size_t astride;
  int64_t n_tokens;
  const float* scales0;  // QuantizedActivations::block_scales of the first row, or nullptr
  int64_t scales_stride;
  const uint8_t* row(int64_t t) const { return act0 + static_cast<size_t>(t) * astride; }
  const float* scales(int64_t t) const { return scales0 == nullptr ? nullptr : scales0 + t * scales_stride; }
};

ActRows act_rows(const QuantizedActivations& xq, int64_t begin, int64_t count) {
  const size_t stride = xq.n_tokens() > 1 ? static_cast<size_t>(xq.row(1) - xq.row(0)) : 0;
  return {xq.row(begin), stride, count, xq.block_scales(begin), xq.cols() / 32};
}

void matmul_rows(const MatrixView& w, const ActRows& xq, float* y, int64_t ldy, TileFn tile, int tile_tokens,
                 int64_t r0, int64_t r1) {
  const int64_t n_tokens = xq.n_tokens;
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
  if (with_scales && scales_.size() < static_cast<size_t>(total_blocks)) scales_.resize(total_blocks);
  if (!with_scales) scales_.clear();
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
        for (int64_t k = 0; k < nb; ++k) scales_[t * blocks_per_row + jb + k] = fp16_to_fp32(blocks[k].d);
      }
      b0 += nb;
    }
  };
  if (pool == nullptr || pool->size() == 1 || n_tokens * cols < kMinParallelQuantize) {
    run(0, total_blocks, 0);
  } else {
    pool->parallel_for(total_blocks, run);
  }
}

void matmul(const MatrixView& w, const QuantizedActivations& xq, float* y, ThreadPool* pool, int64_t y_stride) {
  const MatmulJob job{w, &xq, y, y_stride};
  matmul_jobs(std::span<const MatmulJob>(&job, 1), pool);
}

void matmul_jobs(std::span<const MatmulJob> jobs, ThreadPool* pool) {
  const KernelTable& kt = best_kernels();
  const int tile_tokens = matmul_use_tiles() ? kt.tile_tokens : 1;
  // Cost of one output row of each job, and the prefix sums over whole jobs. With one token per job (decode) a
  // row costs its bytes, since streaming the weights is the time (a Q6_K row is 1.46x a Q4_K row of the same
  // length: q/k/v split by MACs left one thread 20% more bytes); with more tokens it costs its MACs plus the
  // unpack of each tile group (MoE prefill: an expert gets 0 to 100+ tokens).
  std::array<int64_t, kMaxMatmulJobs + 1> prefix{};
  std::array<int64_t, kMaxMatmulJobs> row_costs{};
  FABULA_CHECK(jobs.size() <= kMaxMatmulJobs);
  bool single_token = true;
  for (const MatmulJob& job : jobs) {
    FABULA_CHECK(job.x != nullptr && job.x->type() == vec_dot_type(job.w.type) && job.x->cols() == job.w.cols);
    FABULA_CHECK(job.w.row_stride >= row_bytes(job.w.type, static_cast<uint64_t>(job.w.cols)) || job.w.rows <= 1);
    FABULA_CHECK(kt.tile[kernel_slot(job.w.type)] != nullptr && "matmul: unsupported weight type");
    const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
    FABULA_CHECK(job.token_begin >= 0 && job.token_begin + nt <= job.x->n_tokens());
    single_token &= nt <= 1;
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
    const int64_t groups = (nt + tile_tokens - 1) / tile_tokens;
    row_costs[j] = single_token ? static_cast<int64_t>(row_bytes(job.w.type, static_cast<uint64_t>(job.w.cols))) * nt
                                : job.w.cols * (nt + kUnpackTokens * groups);
    prefix[j + 1] = prefix[j] + job.w.rows * row_costs[j];
  }
  const int64_t total = prefix[jobs.size()];
  if (total == 0) return;
  // Thread `thread` of nth takes the cost range [total*thread/nth, total*(thread+1)/nth), mapped to whole rows:
  // row r of job j belongs to the thread whose range holds the row's first MAC. Every output row is computed by
  // exactly one thread, whatever nth.
  auto run = [&](int thread, int nth) {
    const int64_t c0 = total * thread / nth, c1 = total * (thread + 1) / nth;
    for (size_t j = 0; j < jobs.size(); ++j) {
      if (prefix[j + 1] <= c0 || prefix[j] >= c1) continue;
      const MatmulJob& job = jobs[j];
      const int64_t nt = job.n_tokens < 0 ? job.x->n_tokens() - job.token_begin : job.n_tokens;
      if (nt == 0 || job.w.rows == 0) continue;
      const int64_t row_cost = row_costs[j];
      auto first_row_at = [&](int64_t c) {  // first row whose start cost is >= c
        if (c <= prefix[j]) return int64_t{0};
        return std::min(job.w.rows, (c - prefix[j] + row_cost - 1) / row_cost);
      };
      const int64_t r0 = first_row_at(c0), r1 = first_row_at(c1);
      if (r0 >= r1) continue;
      matmul_rows(job.w, act_rows(*job.x, job.token_begin, nt), job.y, job.y_stride > 0 ? job.y_stride : job.w.rows,
                  kt.tile[kernel_slot(job.w.type)], tile_tokens, r0, r1);
    }
  };
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

int64_t matmul_row_tile() { return kRowTile; }

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, QuantizedActivations& scratch,
            ThreadPool* pool) {
  scratch.quantize(vec_dot_type(w.type), x, n_tokens, w.cols, pool);
  matmul(w, scratch, y, pool);
}

}  // namespace fabula
