// Scalar reference dot products (ggml-cpu/quants.c *_generic, vec.cpp) and the by-type reference dispatch.
#include <cstring>

#include "base/check.h"
#include "tensor/fp16.h"
#include "tensor/quant_ref.h"

namespace fabula {
namespace {

inline float h2f(Half h) { return fp16_to_fp32(h); }

// The common tail of ggml's K-quant generic dots: a[256] int8 weights, per-16 or per-32 scales,
// 8 int32 lanes per block, then sums[l] += d * aux32[l].
template <int kGroup>
inline void k_block_lanes(const int8_t* a, const int8_t* q8, const int32_t* scales, int32_t aux32[8]) {
  std::memset(aux32, 0, 8 * sizeof(int32_t));
  int16_t aux16[8];
  for (int j = 0; j < kQK_K / kGroup; ++j) {
    const int32_t scale = scales[j];
    for (int k = 0; k < kGroup / 8; ++k) {
      for (int l = 0; l < 8; ++l) aux16[l] = static_cast<int16_t>(q8[l] * a[l]);
      for (int l = 0; l < 8; ++l) aux32[l] += scale * aux16[l];
      q8 += 8;
      a += 8;
    }
  }
}

}  // namespace

float vec_dot_q4_0_q8_0_ref(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK8_0 / 2; ++j) {
      const int v0 = (x[ib].qs[j] & 0x0F) - 8;
      const int v1 = (x[ib].qs[j] >> 4) - 8;
      sumi0 += v0 * y[ib].qs[j];
      sumi1 += v1 * y[ib].qs[j + kQK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += sumi * h2f(x[ib].d) * h2f(y[ib].d);
  }
  return sumf;
}

float vec_dot_q4_1_q8_1_ref(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_1; ++ib) {
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK8_1 / 2; ++j) {
      sumi0 += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
      sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + kQK8_1 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * sumi + h2f(x[ib].m) * h2f(y[ib].s);
  }
  return sumf;
}

float vec_dot_q5_0_q8_0_ref(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK8_0 / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh & (1u << (j + 0))) >> (j + 0)) << 4);
      const uint8_t xh_1 = static_cast<uint8_t>((qh & (1u << (j + 16))) >> (j + 12));
      const int32_t x0 = static_cast<int8_t>(((x[ib].qs[j] & 0x0F) | xh_0) - 16);
      const int32_t x1 = static_cast<int8_t>(((x[ib].qs[j] >> 4) | xh_1) - 16);
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * sumi;
  }
  return sumf;
}

float vec_dot_q5_1_q8_1_ref(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_1; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < kQK8_1 / 2; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int32_t x0 = (x[ib].qs[j] & 0xF) | xh_0;
      const int32_t x1 = (x[ib].qs[j] >> 4) | xh_1;
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK8_1 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * sumi + h2f(x[ib].m) * h2f(y[ib].s);
  }
  return sumf;
}

float vec_dot_q8_0_q8_0_ref(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
    sumf += sumi * (h2f(x[ib].d) * h2f(y[ib].d));
  }
  return sumf;
}

namespace {

// Q4_K and Q5_K x Q8_K; kHighBits: Q5_K's fifth bit of every weight, from qh.
template <bool kHighBits, typename Block>
float vec_dot_qk_q8_K_ref(int64_t n, const Block* x, const BlockQ8_K* y) {
  int8_t aux8[kQK_K];
  int32_t aux32[8];
  float sums[8] = {};
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q4 = x[i].qs;
    int8_t* a = aux8;
    uint8_t m = 1;
    auto high = [&](int l) {
      if constexpr (kHighBits) return x[i].qh[l] & m ? 16 : 0;
      return 0;
    };
    for (int j = 0; j < kQK_K / 64; ++j) {
      for (int l = 0; l < 32; ++l) a[l] = static_cast<int8_t>((q4[l] & 0xF) + high(l));
      a += 32;
      m = static_cast<uint8_t>(m << 1);
      for (int l = 0; l < 32; ++l) a[l] = static_cast<int8_t>((q4[l] >> 4) + high(l));
      a += 32;
      m = static_cast<uint8_t>(m << 1);
      q4 += 32;
    }
    uint32_t utmp[4];
    unpack_k_scales(x[i].scales, utmp);
    const uint8_t* scales = reinterpret_cast<const uint8_t*>(&utmp[0]);
    const uint8_t* mins = reinterpret_cast<const uint8_t*>(&utmp[2]);
    int sumi = 0;
    for (int j = 0; j < kQK_K / 16; ++j) sumi += y[i].bsums[j] * mins[j / 2];
    int32_t sc[8];
    for (int j = 0; j < 8; ++j) sc[j] = scales[j];
    k_block_lanes<32>(aux8, y[i].qs, sc, aux32);
    const float d = h2f(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
    const float dmin = h2f(x[i].dmin) * y[i].d;
    sumf -= dmin * sumi;
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

}  // namespace

float vec_dot_q4_K_q8_K_ref(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y) {
  return vec_dot_qk_q8_K_ref<false>(n, x, y);
}

float vec_dot_q5_K_q8_K_ref(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y) {
  return vec_dot_qk_q8_K_ref<true>(n, x, y);
}

float vec_dot_q6_K_q8_K_ref(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y) {
  int8_t aux8[kQK_K];
  int32_t aux32[8];
  float sums[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* q4 = x[i].ql;
    const uint8_t* qh = x[i].qh;
    int8_t* a = aux8;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        a[l + 0] = static_cast<int8_t>(((q4[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        a[l + 32] = static_cast<int8_t>(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        a[l + 64] = static_cast<int8_t>(((q4[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        a[l + 96] = static_cast<int8_t>(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      a += 128;
      q4 += 64;
      qh += 32;
    }
    int32_t sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = x[i].scales[j];
    k_block_lanes<16>(aux8, y[i].qs, sc, aux32);
    const float d = h2f(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
  }
  float sumf = 0;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

float vec_dot_f32_ref(int64_t n, const float* x, const float* y) {
  double sumf = 0.0;
  for (int64_t i = 0; i < n; ++i) {  // memcpy: F32 weights need not be 4-byte aligned (dot_f32_finish)
    float xi, yi;
    std::memcpy(&xi, x + i, sizeof(float));
    std::memcpy(&yi, y + i, sizeof(float));
    sumf += static_cast<double>(xi * yi);
  }
  return static_cast<float>(sumf);
}

float vec_dot_f16_ref(int64_t n, const uint16_t* x, const uint16_t* y) {
  double sumf = 0.0;
  for (int64_t i = 0; i < n; ++i) sumf += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(sumf);
}

float vec_dot_bf16_ref(int64_t n, const uint16_t* x, const uint16_t* y) {
  double sumf = 0.0;
  for (int64_t i = 0; i < n; ++i) sumf += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(sumf);
}

// ------------------------------------------------------------------------------------------------ by type

void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::kF16: return dequantize_row_f16_ref(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::kBF16: return dequantize_row_bf16_ref(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::kQ4_0: return dequantize_row_q4_0_ref(static_cast<const BlockQ4_0*>(src), dst, n);
    case GgmlType::kQ4_1: return dequantize_row_q4_1_ref(static_cast<const BlockQ4_1*>(src), dst, n);
    case GgmlType::kQ5_0: return dequantize_row_q5_0_ref(static_cast<const BlockQ5_0*>(src), dst, n);
    case GgmlType::kQ5_1: return dequantize_row_q5_1_ref(static_cast<const BlockQ5_1*>(src), dst, n);
    case GgmlType::kQ8_0: return dequantize_row_q8_0_ref(static_cast<const BlockQ8_0*>(src), dst, n);
    case GgmlType::kQ8_1: return dequantize_row_q8_1_ref(static_cast<const BlockQ8_1*>(src), dst, n);
    case GgmlType::kQ4_K: return dequantize_row_q4_K_ref(static_cast<const BlockQ4_K*>(src), dst, n);
    case GgmlType::kQ5_K: return dequantize_row_q5_K_ref(static_cast<const BlockQ5_K*>(src), dst, n);
    case GgmlType::kQ6_K: return dequantize_row_q6_K_ref(static_cast<const BlockQ6_K*>(src), dst, n);
    case GgmlType::kQ8_K: return dequantize_row_q8_K_ref(static_cast<const BlockQ8_K*>(src), dst, n);
    default: FABULA_CHECK(false && "dequantize_row: unsupported type");
  }
}

size_t quantize_row_ref(GgmlType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;
    case GgmlType::kF16: quantize_row_f16_ref(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::kBF16: quantize_row_bf16_ref(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::kQ4_0: quantize_row_q4_0_ref(src, static_cast<BlockQ4_0*>(dst), n); break;
    case GgmlType::kQ4_1: quantize_row_q4_1_ref(src, static_cast<BlockQ4_1*>(dst), n); break;
    case GgmlType::kQ5_0: quantize_row_q5_0_ref(src, static_cast<BlockQ5_0*>(dst), n); break;
    case GgmlType::kQ5_1: quantize_row_q5_1_ref(src, static_cast<BlockQ5_1*>(dst), n); break;
    case GgmlType::kQ8_0: quantize_row_q8_0_ref(src, static_cast<BlockQ8_0*>(dst), n); break;
    case GgmlType::kQ8_1: quantize_row_q8_1_ref(src, static_cast<BlockQ8_1*>(dst), n); break;
    case GgmlType::kQ4_K: quantize_row_q4_K_ref(src, static_cast<BlockQ4_K*>(dst), n); break;
    case GgmlType::kQ5_K: quantize_row_q5_K_ref(src, static_cast<BlockQ5_K*>(dst), n); break;
    case GgmlType::kQ6_K: quantize_row_q6_K_ref(src, static_cast<BlockQ6_K*>(dst), n); break;
    case GgmlType::kQ8_K: quantize_row_q8_K_ref(src, static_cast<BlockQ8_K*>(dst), n); break;
    default: FABULA_CHECK(false && "quantize_row: unsupported type");
  }
  return row_bytes(type, static_cast<uint64_t>(n));
}

size_t quantize_row_act_ref(GgmlType type, const float* src, void* dst, int64_t n) {
  if (type == GgmlType::kQ8_0) {
    quantize_row_q8_0_act_ref(src, static_cast<BlockQ8_0*>(dst), n);
    return row_bytes(type, static_cast<uint64_t>(n));
  }
  return quantize_row_ref(type, src, dst, n);
}

float vec_dot_ref(GgmlType type, int64_t n, const void* w, const void* a) {
  switch (type) {
    case GgmlType::kF32: return vec_dot_f32_ref(n, static_cast<const float*>(w), static_cast<const float*>(a));
    case GgmlType::kF16:
      return vec_dot_f16_ref(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a));
    case GgmlType::kBF16:
      return vec_dot_bf16_ref(n, static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a));
    case GgmlType::kQ4_0:
      return vec_dot_q4_0_q8_0_ref(n, static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(a));
    case GgmlType::kQ4_1:
      return vec_dot_q4_1_q8_1_ref(n, static_cast<const BlockQ4_1*>(w), static_cast<const BlockQ8_1*>(a));
    case GgmlType::kQ5_0:
      return vec_dot_q5_0_q8_0_ref(n, static_cast<const BlockQ5_0*>(w), static_cast<const BlockQ8_0*>(a));
    case GgmlType::kQ5_1:
      return vec_dot_q5_1_q8_1_ref(n, static_cast<const BlockQ5_1*>(w), static_cast<const BlockQ8_1*>(a));
    case GgmlType::kQ8_0:
      return vec_dot_q8_0_q8_0_ref(n, static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(a));
    case GgmlType::kQ4_K:
      return vec_dot_q4_K_q8_K_ref(n, static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(a));
    case GgmlType::kQ5_K:
      return vec_dot_q5_K_q8_K_ref(n, static_cast<const BlockQ5_K*>(w), static_cast<const BlockQ8_K*>(a));
    case GgmlType::kQ6_K:
      return vec_dot_q6_K_q8_K_ref(n, static_cast<const BlockQ6_K*>(w), static_cast<const BlockQ8_K*>(a));
    default: FABULA_CHECK(false && "vec_dot: unsupported weight type"); return 0.0f;
  }
}

}  // namespace fabula
