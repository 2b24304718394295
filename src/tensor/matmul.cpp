// Quantized matmul: activations quantized once (blocks split across threads), then every output is one
// vec_dot; output rows are split into contiguous chunks per thread. Each output element is computed by exactly
// one vec_dot call whatever the thread count, so results do not depend on the number of threads.
#include "tensor/matmul.h"

#include <algorithm>

#include "base/check.h"
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

// y[t][r] for r in [r0, r1), all tokens. The seam for future multi-row / repacked kernels.
void matmul_rows(const MatrixView& w, const QuantizedActivations& xq, float* y, int64_t ldy, VecDotFn dot,
                 int64_t r0, int64_t r1) {
  const int64_t n_tokens = xq.n_tokens();
  if (n_tokens == 1) {  // GEMV: stream the weight rows once
    const uint8_t* act = xq.row(0);
    for (int64_t r = r0; r < r1; ++r) y[r] = dot(w.cols, w.data + static_cast<size_t>(r) * w.row_stride, act);
    return;
  }
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t rt_end = std::min(r1, rt + kRowTile);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const uint8_t* act = xq.row(t);
      float* yt = y + t * ldy;
      for (int64_t r = rt; r < rt_end; ++r) yt[r] = dot(w.cols, w.data + static_cast<size_t>(r) * w.row_stride, act);
    }
  }
}

}  // namespace

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
  auto run = [&](int64_t b0, int64_t b1, int) {
    // [b0, b1) may span rows: quantize the piece of each row it covers.
    while (b0 < b1) {
      const int64_t t = b0 / blocks_per_row;
      const int64_t jb = b0 % blocks_per_row;
      const int64_t nb = std::min(b1 - b0, blocks_per_row - jb);
      q(x + t * cols + jb * tr.block_size, buffer_.data() + t * row_bytes_ + jb * tr.block_bytes, nb * tr.block_size);
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
  FABULA_CHECK(xq.type() == vec_dot_type(w.type));
  FABULA_CHECK(xq.cols() == w.cols);
  FABULA_CHECK(w.row_stride >= row_bytes(w.type, static_cast<uint64_t>(w.cols)) || w.rows <= 1);
  const VecDotFn dot = best_kernels().vec_dot[kernel_slot(w.type)];
  FABULA_CHECK(dot != nullptr && "matmul: unsupported weight type");
  const int64_t ldy = y_stride > 0 ? y_stride : w.rows;
  const int64_t macs = w.rows * w.cols * xq.n_tokens();
  if (pool == nullptr || pool->size() == 1 || macs < kMinParallelMacs || w.rows < 2) {
    matmul_rows(w, xq, y, ldy, dot, 0, w.rows);
    return;
  }
  // Contiguous row chunks, rounded to the tile so threads never share a tile.
  const int64_t n_tiles = (w.rows + kRowTile - 1) / kRowTile;
  if (n_tiles >= pool->size()) {
    pool->parallel_for(n_tiles, [&](int64_t t0, int64_t t1, int) {
      matmul_rows(w, xq, y, ldy, dot, t0 * kRowTile, std::min(w.rows, t1 * kRowTile));
    });
  } else {
    pool->parallel_for(w.rows, [&](int64_t r0, int64_t r1, int) { matmul_rows(w, xq, y, ldy, dot, r0, r1); });
  }
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, QuantizedActivations& scratch,
            ThreadPool* pool) {
  scratch.quantize(vec_dot_type(w.type), x, n_tokens, w.cols, pool);
  matmul(w, scratch, y, pool);
}

}  // namespace fabula
