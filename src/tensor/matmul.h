// Matrix products of a (possibly quantized) weight matrix with f32 activations, the way llama.cpp computes them:
// activations are quantized once to vec_dot_type(weight type), then each output is one tile kernel dot (kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/function_ref.h"
#include "tensor/types.h"

namespace fabula {

class ThreadPool;

// A 2-D weight in ggml layout: `rows` rows (out features, ne1) of `cols` elements (in features, ne0).
struct MatrixView {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;               // ne0: elements per row
  int64_t rows = 0;               // ne1
  size_t row_stride = 0;          // bytes between rows (row_bytes(type, cols) for a dense tensor)
};

// Activations of n_tokens rows of `cols` floats, quantized to one activation type. Reused across every weight
// that reads the same input (q/k/v; expert gate_up; shared gate/up), so the input is quantized once.
class QuantizedActivations {
 public:
  // Quantizes x [n_tokens][cols] to `type` (Q8_0, Q8_K, F16, BF16 or F32). Reuses its buffer (no allocation
  // once it has grown to the largest size seen).
  void quantize(GgmlType type, const float* x, int64_t n_tokens, int64_t cols, ThreadPool* pool = nullptr);

  // Row i = row rows[i] of src, with its scales, sums and widened row (the same type and columns): the routed
  // experts' inputs, each token quantized once and copied to every expert that chose it.
  void gather(const QuantizedActivations& src, std::span<const int32_t> rows, ThreadPool* pool = nullptr);

  GgmlType type() const { return type_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t cols() const { return cols_; }
  const uint8_t* row(int64_t token) const { return buffer_.data() + static_cast<size_t>(token) * row_bytes_; }
  // Q8_0 only (else nullptr): every block's scale as f32, cols / 32 per token, so the tile kernels do not convert
  // them once per weight row.
  const float* block_scales(int64_t token) const {
    return scales_.empty() ? nullptr : scales_.data() + static_cast<size_t>(token * (cols_ / 32));
  }
  // Q8_0 only (else nullptr): -128 * the sum of every block's qs, indexed as block_scales (the GEMM stores Q8_0
  // family weights as q + 128 for vpdpbusd's unsigned operand and subtracts this).
  const int32_t* block_sums(int64_t token) const {
    return sums_.empty() ? nullptr : sums_.data() + static_cast<size_t>(token * (cols_ / 32));
  }
  // F16/BF16 with at least matmul_gemm_min_tokens() tokens (else nullptr): the rounded activations widened back to
  // f32, cols per token, for the GEMM (the same products as the tiles').
  const float* widened(int64_t token) const {
    return widened_.empty() ? nullptr : widened_.data() + static_cast<size_t>(token * cols_);
  }

 private:
  GgmlType type_ = GgmlType::kF32;
  int64_t n_tokens_ = 0;
  int64_t cols_ = 0;
  size_t row_bytes_ = 0;
  std::vector<uint8_t> buffer_;
  std::vector<float> scales_;
  std::vector<int32_t> sums_;
  std::vector<float> widened_;
};

// y[t][r] = dot(W row r, x[t]) for t < xq.n_tokens(), r < w.rows. xq.type() must be vec_dot_type(w.type).
// y is [n_tokens][w.rows] with row stride y_stride floats (w.rows when 0).
void matmul(const MatrixView& w, const QuantizedActivations& xq, float* y, ThreadPool* pool = nullptr,
            int64_t y_stride = 0);

// Rows [r0, r1) of matmul(w, xq, y) on the calling thread, through the tiles whatever the token count (bench_quant's
// DecodeTokens measures the multi-token gemv with it). Same results as matmul() where that takes the tiles. A caller
// that needs each row range on its thread right after it uses MatmulJob::after_rows.
void matmul_row_range(const MatrixView& w, const QuantizedActivations& xq, float* y, int64_t r0, int64_t r1,
                      int64_t y_stride = 0);

// Convenience: quantizes x into `scratch` and multiplies.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, QuantizedActivations& scratch,
            ThreadPool* pool = nullptr);

// One product of a batch: y[t][r] = dot(W row r, x row token_begin + t) for t < n_tokens (-1: to x's end).
struct MatmulJob {
  MatrixView w;
  const QuantizedActivations* x = nullptr;
  float* y = nullptr;
  int64_t y_stride = 0;  // floats between token rows of y (0: w.rows)
  int64_t token_begin = 0;
  int64_t n_tokens = -1;
  // -1: every token takes the path its count picks (the int8 GEMM from matmul_gemm_min_tokens() tokens, else the
  // tiles). Else the first gemm_tokens tokens take the GEMM and the rest the tiles, whatever their counts: a batched
  // step (model/model.h Batch) gives each sequence's rows the path they take alone, and reads the weight once.
  int64_t gemm_tokens = -1;
  // Called on the thread that computed output rows [r0, r1) of every token, right after them, while they are in its
  // cache (the output head's softcap); each row of the job is in exactly one call.
  const FunctionRef<void(int64_t r0, int64_t r1)>* after_rows = nullptr;
};
constexpr size_t kMaxMatmulJobs = 512;

// Runs all jobs in ONE parallel region (one wake-up and one barrier instead of one per product): the cost of all
// jobs (weight bytes when every job has at most 4 tokens, else MACs) is split evenly across the threads by whole
// output rows; in the first case (decode, alone or batched) a thread that finishes its share early takes chunks of
// rows from the end of another's. For products that read inputs ready together:
// q/k/v, gate/up, a layer's routed experts. Results equal matmul()'s for each job.
void matmul_jobs(std::span<const MatmulJob> jobs, ThreadPool* pool = nullptr);

// Whether matmul uses the multi-token tile kernels where the CPU has them (default on; the environment variable
// FABULA_NO_TILES=1 turns them off, for A/B benchmarks). Tests flip it to compare both paths.
bool matmul_use_tiles();
void set_matmul_use_tiles(bool on);

// Products with at least this many tokens go through the row-interleaved int8 GEMM where the CPU has one
// (FABULA_GEMM_MIN_TOKENS overrides it, for measurements; 0 turns the GEMM off). Tests set it to reach both paths.
int64_t matmul_gemm_min_tokens();
void set_matmul_gemm_min_tokens(int64_t n);

}  // namespace fabula
