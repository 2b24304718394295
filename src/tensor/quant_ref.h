// Scalar reference ("oracle") quantizers, dequantizers and dot products, transcribed from ggml-quants.c and
// ggml-cpu/quants.c (*_generic). SIMD kernels in quant-inl.h are tested against these.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/blocks.h"
#include "tensor/types.h"

namespace fabula {

// --- dequantize: n elements (a multiple of the block size) ---
void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0_ref(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1_ref(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_row_q4_K_ref(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_K_ref(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_K_ref(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_K_ref(const BlockQ8_K* x, float* y, int64_t n);
void dequantize_row_f16_ref(const uint16_t* x, float* y, int64_t n);
void dequantize_row_bf16_ref(const uint16_t* x, float* y, int64_t n);

// --- quantize: llama.cpp's deterministic reference algorithms (no imatrix) ---
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0_ref(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1_ref(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);  // roundf (half away from zero)
void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n);
void quantize_row_q4_K_ref(const float* x, BlockQ4_K* y, int64_t n);  // make_qkx2_quants scale search
void quantize_row_q5_K_ref(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_K_ref(const float* x, BlockQ6_K* y, int64_t n);  // make_qx_quants
void quantize_row_q8_K_ref(const float* x, BlockQ8_K* y, int64_t n);  // nearest_int, d = 1/(-127/max), bsums
void quantize_row_f16_ref(const float* x, uint16_t* y, int64_t n);
void quantize_row_bf16_ref(const float* x, uint16_t* y, int64_t n);

// The activation quantizer llama.cpp's x86 CPU backend actually runs (arch/x86/quants.c quantize_row_q8_0):
// id = 127/amax and round-half-to-even, so it can differ from quantize_row_q8_0_ref by one on ties.
// QuantizedActivations uses this so matmuls match llama.cpp on x86 bit for bit.
void quantize_row_q8_0_act_ref(const float* x, BlockQ8_0* y, int64_t n);

// --- dot products, computed like ggml's *_generic (integer block sums, then f32 scales) ---
float vec_dot_q4_0_q8_0_ref(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y);
float vec_dot_q4_1_q8_1_ref(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y);
float vec_dot_q5_0_q8_0_ref(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y);
float vec_dot_q5_1_q8_1_ref(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y);
float vec_dot_q8_0_q8_0_ref(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y);
float vec_dot_q4_K_q8_K_ref(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y);
float vec_dot_q5_K_q8_K_ref(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y);
float vec_dot_q6_K_q8_K_ref(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y);
float vec_dot_f32_ref(int64_t n, const float* x, const float* y);        // double accumulation, as ggml
float vec_dot_f16_ref(int64_t n, const uint16_t* x, const uint16_t* y);  // f32 products, double sum
float vec_dot_bf16_ref(int64_t n, const uint16_t* x, const uint16_t* y);

// --- by type (the reference behind quant.h's dispatching functions) ---
void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n);
size_t quantize_row_ref(GgmlType type, const float* src, void* dst, int64_t n);
// Activation quantizer for vec_dot_type's: Q8_0 uses quantize_row_q8_0_act_ref, all others quantize_row_ref.
size_t quantize_row_act_ref(GgmlType type, const float* src, void* dst, int64_t n);
float vec_dot_ref(GgmlType weight_type, int64_t n, const void* weight_row, const void* activation_row);

}  // namespace fabula
