// Internal to src/tensor: the per-type kernel table (one function pointer per type and operation), chosen once
// per process for the best Highway target. matmul fetches the pointer once per call, not per row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/types.h"

namespace fabula {

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// The one dot-product kernel signature: one weight row against nt (1..tile_tokens) activation rows
// act + t * act_stride, y[t * y_stride] = dot. The weight blocks are unpacked once for all nt tokens (prefill);
// nt = 1 is the single-token dot (a GEMV row), so decode and prefill run the same code.
// act_scales: for Q8_0 activations, the f32 value of every block's scale, token t's at act_scales + t * (n / 32)
// (QuantizedActivations::block_scales); nullptr makes the kernel convert them itself, with the same result.
using TileFn = void (*)(int64_t n, const void* weight_row, const uint8_t* act, size_t act_stride,
                        const float* act_scales, int nt, float* y, int64_t y_stride);

// Decode: one activation row against `rows` weight rows w + r * row_stride, y[r] = dot: the same integer block sums
// as tile(nt = 1) on each row, and bit for bit its result unless gemv_every_token is set for the type (its f32 steps
// differ: decode is compute-bound on them when memory is fast). For Q8_0 activations:
// act_scales and act_sums as QuantizedActivations::block_scales / block_sums (Q8_K activations: unused, nullptr).
// nullptr in the table: matmul calls the tile once per row.
using GemvFn = void (*)(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                        const float* act_scales, const int32_t* act_sums, float* y);
// A batched decode step: nt (1..kTokensPerGemvCall) activation rows act + t * act_stride against `rows` weight
// rows, y[t * y_stride + r] = dot, each weight block unpacked once for all nt tokens; every token's result equals
// gemv's for it alone, bit for bit. Q8_0 activations: act_scales and act_sums as for gemv, token t's at
// + t * (n / 32) (QuantizedActivations' layout). nullptr: the tiles serve (a type with gemv_every_token must have
// one).
using GemvTokensFn = void (*)(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                              size_t act_stride, const float* act_scales, const int32_t* act_sums, int nt, float* y,
                              int64_t y_stride);
constexpr int kTokensPerGemvCall = 4;

// Prefill GEMM (a batch of at least kMinGemmTokens tokens): repack converts gemm_rows (<= 16) weight rows into a
// tile of gemm_tile_bytes(type, n) bytes (row-interleaved 8-bit for the quantized types, f32 for F32/F16/BF16), once
// per matmul; gemm multiplies the tile with nt (1..gemm_tokens) activation rows, y[t * y_stride + r] for the tile's
// rows r.
struct GemmActs {
  const uint8_t* rows;    // token 0's activation row (F16/BF16 weights: the widened f32 rows; F32: its f32 rows);
                          // token t's at rows + t * stride
  size_t stride;
  const float* scales;    // Q8_0: every block's f32 scale, token t's block b at scales[t * (n / 32) + b]
  const int32_t* sums;    // Q8_0: -128 * Σ qs of every block, indexed as scales
  const uint8_t* packed = nullptr;  // tables with gemm_pack_acts: this group's activations in their layout
};
using RepackFn = void (*)(int64_t n, const uint8_t* weight_rows, size_t row_stride, int rows, uint8_t* tile);
using GemmFn = void (*)(int64_t n, const uint8_t* tile, const GemmActs& act, int nt, float* y, int64_t y_stride);
// Tables whose GEMM reads its activations in a layout of its own (AMX: 4 bytes of each token side by side) convert
// each group of nt (1..gemm_tokens) tokens once per product into gemm_packed_act_bytes(type, n) bytes, 64-byte
// aligned, and pass them as GemmActs::packed; the other fields stay as they are.
using GemmPackActsFn = void (*)(GgmlType weight_type, int64_t n, const GemmActs& act, int nt, uint8_t* out);

constexpr int kKernelTypeSlots = 32;  // indexed by the ggml type id (all ids fabula knows are < 32)

struct KernelTable {
  DequantizeFn dequantize[kKernelTypeSlots] = {};
  QuantizeFn quantize_act[kKernelTypeSlots] = {};  // activation quantizer (Q8_0 rounds half to even, as x86 ggml)
  TileFn tile[kKernelTypeSlots] = {};              // indexed by the weight type; every type with a dot product
  int tile_tokens = 1;                             // the most tokens one tile call takes
  GemvFn gemv[kKernelTypeSlots] = {};              // one token, many rows; nullptr: the tile serves
  // The gemv sums in another f32 order than the tile: every token of a product off the GEMM path takes the gemv
  // (one call per token), so that a token gets the same numbers alone and in a batch.
  bool gemv_every_token[kKernelTypeSlots] = {};
  GemvTokensFn gemv_tokens[kKernelTypeSlots] = {};
  RepackFn repack[kKernelTypeSlots] = {};          // nullptr: this type has no GEMM here (the tiles serve)
  GemmFn gemm[kKernelTypeSlots] = {};
  size_t (*gemm_tile_bytes)(GgmlType type, int64_t n) = nullptr;
  GemmPackActsFn gemm_pack_acts = nullptr;  // nullptr: the GEMM reads GemmActs' rows
  size_t (*gemm_packed_act_bytes)(GgmlType type, int64_t n) = nullptr;  // 0: no packing for this type
  int gemm_tokens = 0;
  int gemm_rows = 0;
  bool amx = false;  // the GEMM runs on AMX tiles (tensor/amx.h)
  const char* target = "scalar";
};

inline int kernel_slot(GgmlType t) { return static_cast<int>(t); }

// Bytes of one group's activations in the table's packed GEMM layout for this weight type; 0 where its GEMM reads
// GemmActs' rows as they are.
inline size_t gemm_packed_bytes(const KernelTable& t, GgmlType type, int64_t n) {
  return t.gemm_pack_acts != nullptr ? t.gemm_packed_act_bytes(type, n) : 0;
}

// act for a group of nt tokens as the table's GEMM reads it: packed into out (gemm_packed_bytes(t, type, n) bytes,
// 64-byte aligned) where the table packs, act unchanged where it does not.
inline GemmActs pack_gemm_acts(const KernelTable& t, GgmlType type, int64_t n, GemmActs act, int nt, uint8_t* out) {
  if (gemm_packed_bytes(t, type, n) == 0) return act;
  t.gemm_pack_acts(type, n, act, nt, out);
  act.packed = out;
  return act;
}

// Scalar references for every supported type.
KernelTable scalar_kernels();

// The best table for this CPU (scalar entries replaced by SIMD where a kernel exists). Resolved once.
const KernelTable& best_kernels();

// The table for hwy's currently chosen target, resolved now (tests call this after
// hwy::SetSupportedTargetsForTest to reach every attainable target).
KernelTable kernels_for_current_target();

// The Highway targets compiled into the kernels and supported by this CPU, best first (tests iterate them;
// the kernels' translation unit opts in to AVX3_DL, which a plain hwy::SupportedAndGeneratedTargets misses).
std::vector<int64_t> kernel_targets();

}  // namespace fabula
