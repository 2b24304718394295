// quant.h: by-type dispatch to the kernel table (SIMD where available, scalar reference otherwise).
#include "tensor/quant.h"

#include "base/check.h"
#include "tensor/kernels.h"
#include "tensor/quant_ref.h"

namespace fabula {
namespace {

template <typename Block, void (*F)(const Block*, float*, int64_t)>
void deq(const void* src, float* dst, int64_t n) {
  F(static_cast<const Block*>(src), dst, n);
}
template <typename Block, void (*F)(const float*, Block*, int64_t)>
void qnt(const float* src, void* dst, int64_t n) {
  F(src, static_cast<Block*>(dst), n);
}
// The scalar tile: the reference dot once per token.
template <typename W, typename A, float (*F)(int64_t, const W*, const A*)>
void tile_ref(int64_t n, const void* w, const uint8_t* act, size_t act_stride, const float* /*act_scales*/, int nt,
              float* y, int64_t y_stride) {
  for (int t = 0; t < nt; ++t) {
    y[t * y_stride] = F(n, static_cast<const W*>(w), reinterpret_cast<const A*>(act + t * act_stride));
  }
}

void deq_f32(const void* src, float* dst, int64_t n) { dequantize_row_ref(GgmlType::kF32, src, dst, n); }
void qnt_f32(const float* src, void* dst, int64_t n) { quantize_row_ref(GgmlType::kF32, src, dst, n); }

}  // namespace

KernelTable scalar_kernels() {
  KernelTable t;
  auto set = [&t](GgmlType type, DequantizeFn d, QuantizeFn q, TileFn k) {
    t.dequantize[kernel_slot(type)] = d;
    t.quantize_act[kernel_slot(type)] = q;
    t.tile[kernel_slot(type)] = k;
  };
  set(GgmlType::kF32, deq_f32, qnt_f32, tile_ref<float, float, vec_dot_f32_ref>);
  set(GgmlType::kF16, deq<uint16_t, dequantize_row_f16_ref>, qnt<uint16_t, quantize_row_f16_ref>,
      tile_ref<uint16_t, uint16_t, vec_dot_f16_ref>);
  set(GgmlType::kBF16, deq<uint16_t, dequantize_row_bf16_ref>, qnt<uint16_t, quantize_row_bf16_ref>,
      tile_ref<uint16_t, uint16_t, vec_dot_bf16_ref>);
  set(GgmlType::kQ4_0, deq<BlockQ4_0, dequantize_row_q4_0_ref>, qnt<BlockQ4_0, quantize_row_q4_0_ref>,
      tile_ref<BlockQ4_0, BlockQ8_0, vec_dot_q4_0_q8_0_ref>);
  set(GgmlType::kQ4_1, deq<BlockQ4_1, dequantize_row_q4_1_ref>, qnt<BlockQ4_1, quantize_row_q4_1_ref>,
      tile_ref<BlockQ4_1, BlockQ8_1, vec_dot_q4_1_q8_1_ref>);
  set(GgmlType::kQ5_0, deq<BlockQ5_0, dequantize_row_q5_0_ref>, qnt<BlockQ5_0, quantize_row_q5_0_ref>,
      tile_ref<BlockQ5_0, BlockQ8_0, vec_dot_q5_0_q8_0_ref>);
  set(GgmlType::kQ5_1, deq<BlockQ5_1, dequantize_row_q5_1_ref>, qnt<BlockQ5_1, quantize_row_q5_1_ref>,
      tile_ref<BlockQ5_1, BlockQ8_1, vec_dot_q5_1_q8_1_ref>);
  set(GgmlType::kQ8_0, deq<BlockQ8_0, dequantize_row_q8_0_ref>, qnt<BlockQ8_0, quantize_row_q8_0_act_ref>,
      tile_ref<BlockQ8_0, BlockQ8_0, vec_dot_q8_0_q8_0_ref>);
  set(GgmlType::kQ8_1, deq<BlockQ8_1, dequantize_row_q8_1_ref>, qnt<BlockQ8_1, quantize_row_q8_1_ref>, nullptr);
  set(GgmlType::kQ4_K, deq<BlockQ4_K, dequantize_row_q4_K_ref>, qnt<BlockQ4_K, quantize_row_q4_K_ref>,
      tile_ref<BlockQ4_K, BlockQ8_K, vec_dot_q4_K_q8_K_ref>);
  set(GgmlType::kQ5_K, deq<BlockQ5_K, dequantize_row_q5_K_ref>, qnt<BlockQ5_K, quantize_row_q5_K_ref>,
      tile_ref<BlockQ5_K, BlockQ8_K, vec_dot_q5_K_q8_K_ref>);
  set(GgmlType::kQ6_K, deq<BlockQ6_K, dequantize_row_q6_K_ref>, qnt<BlockQ6_K, quantize_row_q6_K_ref>,
      tile_ref<BlockQ6_K, BlockQ8_K, vec_dot_q6_K_q8_K_ref>);
  set(GgmlType::kQ8_K, deq<BlockQ8_K, dequantize_row_q8_K_ref>, qnt<BlockQ8_K, quantize_row_q8_K_ref>, nullptr);
  return t;
}

GgmlType vec_dot_type(GgmlType w) {
  switch (w) {
    case GgmlType::kQ4_0: case GgmlType::kQ5_0: case GgmlType::kQ8_0: return GgmlType::kQ8_0;
    case GgmlType::kQ4_1: case GgmlType::kQ5_1: return GgmlType::kQ8_1;
    case GgmlType::kQ2_K: case GgmlType::kQ3_K: case GgmlType::kQ4_K: case GgmlType::kQ5_K:
    case GgmlType::kQ6_K: return GgmlType::kQ8_K;
    case GgmlType::kF16: return GgmlType::kF16;
    case GgmlType::kBF16: return GgmlType::kBF16;
    default: return GgmlType::kF32;
  }
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const DequantizeFn f = best_kernels().dequantize[kernel_slot(type)];
  FABULA_CHECK(f != nullptr && "dequantize_row: unsupported type");
  f(src, dst, n);
}

size_t quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  return quantize_row_ref(type, src, dst, n);
}

float vec_dot(GgmlType weight_type, int64_t n, const void* weight_row, const void* activation_row) {
  const TileFn f = best_kernels().tile[kernel_slot(weight_type)];
  FABULA_CHECK(f != nullptr && "vec_dot: unsupported weight type");
  float y = 0;
  f(n, weight_row, static_cast<const uint8_t*>(activation_row), 0, nullptr, 1, &y, 1);
  return y;
}

}  // namespace fabula
