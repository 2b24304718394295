// Row-level quantize / dequantize / vec-dot for every type in types.h. The functions here dispatch to the
// best kernel for the CPU (Highway dynamic dispatch); the scalar references live in quant_ref.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/types.h"

namespace fabula {

// The activation type a weight type is dotted against (llama.cpp's vec_dot_type):
// Q4_0/Q5_0/Q8_0 -> Q8_0; Q4_K/Q5_K/Q6_K -> Q8_K; F16 -> F16; BF16 -> BF16; F32 -> F32.
GgmlType vec_dot_type(GgmlType weight_type);

// dst[0..n) = dequantized src. n must be a multiple of the type's block size.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Quantize n floats with llama.cpp's reference algorithm (k-quant scale search etc.); returns bytes written.
size_t quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// Dot product of a weight row (type `weight_type`) with an activation row already quantized to
// vec_dot_type(weight_type). n elements. The one-token call of the weight type's tile kernel.
float vec_dot(GgmlType weight_type, int64_t n, const void* weight_row, const void* activation_row);

}  // namespace fabula
