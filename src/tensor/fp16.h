// IEEE half and bfloat16 <-> f32 conversions, bit-exact with ggml (round to nearest even; NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace fabula {

namespace fp16_detail {
inline float from_bits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
inline uint32_t to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, 4);
  return w;
}
}  // namespace fp16_detail

// Maratyszcza's FP16 algorithm, as ggml_compute_fp16_to_fp32 (exact for every half value).
inline float fp16_to_fp32(uint16_t h) {
  using namespace fp16_detail;
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = from_bits(0x7800000u);
  const float normalized = from_bits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float denormalized = from_bits((two_w >> 17) | magic_mask) - 0.5f;
  const uint32_t denormalized_cutoff = 1u << 27;
  const uint32_t result = sign | (two_w < denormalized_cutoff ? to_bits(denormalized) : to_bits(normalized));
  return from_bits(result);
}

// Round to nearest even, overflow to inf, NaN to a quiet NaN (ggml_compute_fp32_to_fp16; same as F16C).
inline uint16_t fp32_to_fp16(float f) {
  using namespace fp16_detail;
  const float scale_to_inf = from_bits(0x77800000u);
  const float scale_to_zero = from_bits(0x08800000u);
  const float af = f < 0 ? -f : f;
  float base = (af * scale_to_inf) * scale_to_zero;
  const uint32_t w = to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float bf16_to_fp32(uint16_t h) { return fp16_detail::from_bits(static_cast<uint32_t>(h) << 16); }

// ggml_compute_fp32_to_bf16: round to nearest even; NaN is forced quiet.
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t u = fp16_detail::to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

}  // namespace fabula
