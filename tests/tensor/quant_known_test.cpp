// Known-answer tests: blocks packed by hand from the layouts in src/tensor/blocks.h, with power-of-two scales
// and small integers so every dequantized value (and every dot) is an exact float.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"
#include "tensor/quant_ref.h"

namespace fabula {
namespace {

// The exact f32 dot (all values here are small integers times powers of two).
double exact_dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// An activation block of Q8_0 with d = 2^-2 and qs[j] = (j * 5 % 23) - 11.
BlockQ8_0 make_act_q8_0(int seed) {
  BlockQ8_0 b{};
  b.d = fp32_to_fp16(0.25f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(((j + seed) * 5 % 23) - 11);
  return b;
}

std::vector<float> deq(GgmlType t, const void* p, int n) {
  std::vector<float> y(n);
  dequantize_row(t, p, y.data(), n);
  return y;
}

TEST(QuantKnown, Q4_0) {
  BlockQ4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = deq(GgmlType::kQ4_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;        // low nibbles: first half of the block
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f) << j;   // high nibbles: second half
  }
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[16], 3.5f);
  const BlockQ8_0 a = make_act_q8_0(0);
  EXPECT_EQ(vec_dot(GgmlType::kQ4_0, 32, &b, &a), exact_dot(y, deq(GgmlType::kQ8_0, &a, 32)));
}

TEST(QuantKnown, Q5_0) {
  // Intended 5-bit values v[j] in [0, 31]; value = (v - 16) * d.
  int v[32];
  for (int j = 0; j < 32; ++j) v[j] = (j * 11 + 3) % 32;
  BlockQ5_0 b{};
  b.d = fp32_to_fp16(0.25f);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    b.qs[j] = static_cast<uint8_t>((v[j] & 0xF) | ((v[j + 16] & 0xF) << 4));
    qh |= static_cast<uint32_t>(v[j] >> 4) << j;
    qh |= static_cast<uint32_t>(v[j + 16] >> 4) << (j + 16);
  }
  std::memcpy(b.qh, &qh, 4);
  const auto y = deq(GgmlType::kQ5_0, &b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (v[j] - 16) * 0.25f) << j;
  EXPECT_EQ(y[0], (3 - 16) * 0.25f);
  EXPECT_EQ(y[1], (14 - 16) * 0.25f);
  EXPECT_EQ(y[2], (25 - 16) * 0.25f);  // needs the fifth bit
  const BlockQ8_0 a = make_act_q8_0(3);
  EXPECT_EQ(vec_dot(GgmlType::kQ5_0, 32, &b, &a), exact_dot(y, deq(GgmlType::kQ8_0, &a, 32)));
}

TEST(QuantKnown, Q8_0) {
  BlockQ8_0 b{};
  b.d = fp32_to_fp16(0.125f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 127);
  const auto y = deq(GgmlType::kQ8_0, &b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j * 8 - 127) * 0.125f);
  const BlockQ8_0 a = make_act_q8_0(1);
  EXPECT_EQ(vec_dot(GgmlType::kQ8_0, 32, &b, &a), exact_dot(y, deq(GgmlType::kQ8_0, &a, 32)));
}

// Packs 8 six-bit scales and mins the way the Q4_K/Q5_K quantizer does (ggml's get_scale_min_k4 layout).
void pack_k_scales(const int sc[8], const int m[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] |= static_cast<uint8_t>(sc[j]);
      out[j + 4] |= static_cast<uint8_t>(m[j]);
    } else {
      out[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      out[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

constexpr int kSc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
constexpr int kMin[8] = {0, 7, 62, 1, 40, 2, 18, 63};

TEST(QuantKnown, KScaleUnpacking) {
  uint8_t packed[12];
  pack_k_scales(kSc, kMin, packed);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, &sc, &m);
    EXPECT_EQ(sc, kSc[j]) << j;
    EXPECT_EQ(m, kMin[j]) << j;
  }
}

// An activation super-block with d = -2^-3 (negative, as the quantizer produces) and correct bsums.
BlockQ8_K make_act_q8_K(int seed) {
  BlockQ8_K a{};
  a.d = -0.125f;
  for (int j = 0; j < 256; ++j) a.qs[j] = static_cast<int8_t>(((j * 37 + seed) % 255) - 127);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int k = 0; k < 16; ++k) s += a.qs[g * 16 + k];
    a.bsums[g] = static_cast<int16_t>(s);
  }
  return a;
}

TEST(QuantKnown, Q4_K) {
  int q[256];
  for (int i = 0; i < 256; ++i) q[i] = (i * 7 + i / 32) % 16;
  BlockQ4_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.5f);
  pack_k_scales(kSc, kMin, b.scales);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) b.qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
  const auto y = deq(GgmlType::kQ4_K, &b, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 1.0f * kSc[i / 32] * q[i] - 0.5f * kMin[i / 32]) << i;
  EXPECT_EQ(y[255], 5.0f * q[255] - 31.5f);
  const BlockQ8_K a = make_act_q8_K(5);
  EXPECT_EQ(vec_dot(GgmlType::kQ4_K, 256, &b, &a), exact_dot(y, deq(GgmlType::kQ8_K, &a, 256)));
}

TEST(QuantKnown, Q5_K) {
  int q[256];
  for (int i = 0; i < 256; ++i) q[i] = (i * 13 + 5) % 32;
  BlockQ5_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  pack_k_scales(kSc, kMin, b.scales);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      b.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      b.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
  }
  const auto y = deq(GgmlType::kQ5_K, &b, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.5f * kSc[i / 32] * q[i] - 0.25f * kMin[i / 32]) << i;
  const BlockQ8_K a = make_act_q8_K(9);
  EXPECT_EQ(vec_dot(GgmlType::kQ5_K, 256, &b, &a), exact_dot(y, deq(GgmlType::kQ8_K, &a, 256)));
}

TEST(QuantKnown, Q6_K) {
  int q[256];  // signed 6-bit values in [-32, 31]
  for (int i = 0; i < 256; ++i) q[i] = (i * 29 + 3) % 64 - 32;
  const int8_t scales[16] = {1, -1, 2, -3, 127, -128, 5, 8, -16, 31, 64, -7, 0, 9, -100, 3};
  BlockQ6_K b{};
  b.d = fp32_to_fp16(0.25f);
  std::memcpy(b.scales, scales, 16);
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int u[4] = {q[128 * h + l] + 32, q[128 * h + 32 + l] + 32, q[128 * h + 64 + l] + 32,
                        q[128 * h + 96 + l] + 32};
      b.ql[64 * h + l] = static_cast<uint8_t>((u[0] & 0xF) | ((u[2] & 0xF) << 4));
      b.ql[64 * h + 32 + l] = static_cast<uint8_t>((u[1] & 0xF) | ((u[3] & 0xF) << 4));
      b.qh[32 * h + l] = static_cast<uint8_t>((u[0] >> 4) | ((u[1] >> 4) << 2) | ((u[2] >> 4) << 4) | ((u[3] >> 4) << 6));
    }
  }
  const auto y = deq(GgmlType::kQ6_K, &b, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.25f * scales[i / 16] * q[i]) << i;
  const BlockQ8_K a = make_act_q8_K(11);
  EXPECT_EQ(vec_dot(GgmlType::kQ6_K, 256, &b, &a), exact_dot(y, deq(GgmlType::kQ8_K, &a, 256)));
}

TEST(QuantKnown, Q8_0QuantizerTies) {
  // amax = 127 gives d = 1 exactly, so x is already x/d: the reference uses roundf (ties away from zero),
  // the activation quantizer (llama.cpp x86) rounds ties to even.
  float x[32] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.25f, -126.75f};
  BlockQ8_0 ref{}, act{};
  quantize_row_q8_0_ref(x, &ref, 32);
  quantize_row_q8_0_act_ref(x, &act, 32);
  EXPECT_EQ(ref.d, 0x3C00);
  EXPECT_EQ(act.d, 0x3C00);
  const int want_ref[8] = {127, 1, 2, 3, -1, -3, 3, -127};
  const int want_act[8] = {127, 0, 2, 2, 0, -2, 3, -127};
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(ref.qs[j], want_ref[j]) << j;
    EXPECT_EQ(act.qs[j], want_act[j]) << j;
  }
  for (int j = 8; j < 32; ++j) EXPECT_EQ(ref.qs[j], 0);
}

TEST(QuantKnown, Q4_0Quantizer) {
  // The signed max of largest magnitude is -8, so d = -8/-8 = 1 and q = x + 8 exactly.
  float x[32];
  for (int j = 0; j < 16; ++j) {
    x[j] = static_cast<float>(j - 8);
    x[j + 16] = static_cast<float>(7 - j);
  }
  BlockQ4_0 b{};
  quantize_row_q4_0_ref(x, &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(1.0f));
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | ((15 - j) << 4)) << j;
}

TEST(QuantKnown, Q8_KQuantizer) {
  std::vector<float> x(256, 0.0f);
  x[0] = -254.0f;  // signed max -> iscale = -127/-254 = 0.5, d = 2
  x[1] = 3.0f;     // 1.5 -> 2 (half to even)
  x[2] = 5.0f;     // 2.5 -> 2
  x[3] = 1.0f;     // 0.5 -> 0
  x[17] = -7.0f;   // -3.5 -> -4
  x[255] = 254.0f;  // 127
  BlockQ8_K b{};
  quantize_row_q8_K_ref(x.data(), &b, 256);
  EXPECT_EQ(b.d, 2.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 2);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[17], -4);
  EXPECT_EQ(b.qs[255], 127);
  EXPECT_EQ(b.bsums[0], -127 + 2 + 2);
  EXPECT_EQ(b.bsums[1], -4);
  EXPECT_EQ(b.bsums[15], 127);
  // Positive max gives a negative d: x = 10 -> iscale = -12.7, d = -1/12.7.
  std::vector<float> y(256, 0.0f);
  y[5] = 10.0f;
  quantize_row_q8_K_ref(y.data(), &b, 256);
  EXPECT_LT(b.d, 0.0f);
  EXPECT_EQ(b.qs[5], -127);
  EXPECT_FLOAT_EQ(b.d * b.qs[5], 10.0f);
}

TEST(QuantKnown, PlainTypes) {
  const float x[4] = {1.0f, -2.5f, 65504.0f, 3.0f};
  uint16_t h[4], bf[4];
  quantize_row(GgmlType::kF16, x, h, 4);
  quantize_row(GgmlType::kBF16, x, bf, 4);
  EXPECT_EQ(h[0], 0x3C00);
  EXPECT_EQ(h[1], 0xC100);
  EXPECT_EQ(h[2], 0x7BFF);
  EXPECT_EQ(bf[0], 0x3F80);
  EXPECT_EQ(bf[1], 0xC020);
  float back[4];
  dequantize_row(GgmlType::kF16, h, back, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(back[i], x[i]);
  dequantize_row(GgmlType::kBF16, bf, back, 4);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_EQ(vec_dot(GgmlType::kF16, 4, h, h), 1.0f + 6.25f + 65504.0f * 65504.0f + 9.0f);
  EXPECT_EQ(vec_dot(GgmlType::kF32, 2, x, x), 1.0f + 6.25f);
}

}  // namespace
}  // namespace fabula
