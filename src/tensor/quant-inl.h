// Highway SIMD bodies of the quant kernels (re-included once per target by quant_simd.cpp). Each kernel has a
// scalar oracle in quant_ref.h; tests/tensor/quant_simd_test.cpp and tile_test.cpp compare every attainable target
// with it. Float kernels (f32/f16/bf16 tiles, Q8_0/Q8_K activation quantizers) use portable Highway ops. The int8
// block dots need u8xs8 multiply-add, which Highway 1.0.3 lacks, so on x86 AVX2 and up they use the intrinsics
// (maddubs, or AVX512-VNNI dpbusd) on Highway's target attributes; other targets keep the scalar references.
#if defined(FABULA_TENSOR_QUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FABULA_TENSOR_QUANT_INL_H_
#undef FABULA_TENSOR_QUANT_INL_H_
#else
#define FABULA_TENSOR_QUANT_INL_H_
#endif

#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/amx.h"
#include "tensor/blocks.h"
#include "tensor/decode_stream.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// f(std::integral_constant<int, k>()) for k = 0 .. kN - 1, unrolled whatever the size of f: GCC leaves a loop over a
// kernel step rolled, and its per-row accumulators then live on the stack (a Q4_K loop over two rows: GemvKernel
// 31.6 -> 27.7 GiB/s).
template <int kN, typename F>
HWY_INLINE void unrolled(const F& f) {
  [&]<int... K>(std::integer_sequence<int, K...>) __attribute__((always_inline)) {
    (f(std::integral_constant<int, K>()), ...);
  }(std::make_integer_sequence<int, kN>());
}

// ------------------------------------------------------------------------------------- float dot products
// There is nothing to unpack once per row, so the float tiles are one dot per token.

// dot_f32's steps after its groups of four vectors (i: the first element past them): the whole vectors left into
// s0, the four sums added in pairs and across the lanes, then the last elements. gemm_f32_exact ends every sum with
// it, so both give the same bits.
template <class D, class V>
HWY_INLINE float dot_f32_finish(D d, V s0, V s1, V s2, V s3, const float* w, const float* a, int64_t i, int64_t n) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, w + i), hn::LoadU(d, a + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  // The last elements through memcpy: F32 weights need not be 4-byte aligned (a GGUF's alignment may be 1; the
  // vector loads above are unaligned ones), and a misaligned float load is undefined behaviour (UBSan).
  for (; i < n; ++i) {
    float wi, ai;
    std::memcpy(&wi, w + i, sizeof(float));
    std::memcpy(&ai, a + i, sizeof(float));
    sum += wi * ai;
  }
  return sum;
}

inline float dot_f32(int64_t n, const void* wv, const void* av) {
  const float* w = static_cast<const float*>(wv);
  const float* a = static_cast<const float*>(av);
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    // The MoE router is an f32 matrix streamed once per token: ask for the weights 4 KiB ahead, as the quantized
    // kernels do (tiles_avx512-inl.h; the hardware prefetchers stop at page boundaries).
    for (int64_t off = 0; off < 4 * N * static_cast<int64_t>(sizeof(float)); off += 64) {
      __builtin_prefetch(reinterpret_cast<const char*>(w + i) + 4096 + off);
    }
    s0 = hn::MulAdd(hn::LoadU(d, w + i), hn::LoadU(d, a + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, w + i + N), hn::LoadU(d, a + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, w + i + 2 * N), hn::LoadU(d, a + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, w + i + 3 * N), hn::LoadU(d, a + i + 3 * N), s3);
  }
  return dot_f32_finish(d, s0, s1, s2, s3, w, a, i, n);
}

// Prefill's F32 products (the MoE router: through the tiles, one dot per row and token, 0.65 s of the synth 26B's
// pp1500) in the GEMM tables. The tile holds its rows of f32 weights as they are; every (row, token) sum takes
// dot_f32's steps in dot_f32's order (vector j of each group of four into sum j, then dot_f32_finish), so a token
// gets the same bits through the GEMM as through the tiles, and the tiles of a prompt's other tokens and of decode
// (a prompt's logits do not depend on how it was split into batches). What the GEMM adds: kF32GemmRows rows times
// kF32GemmTokens tokens at once, one accumulator each, share every vector loaded (the tile: two loads per FMA).
constexpr int kF32GemmTokens = 4;
constexpr int kF32GemmRows = HWY_TARGET <= HWY_AVX3 ? 4 : 2;  // 16 or 8 accumulators: 32 or 16 vector registers

// Rows w[0 .. kF32GemmRows) against tokens a[0 .. kF32GemmTokens): out[t][r].
HWY_INLINE void dot_f32_block(int64_t n, const float* const (&w)[kF32GemmRows], const float* const (&a)[kF32GemmTokens],
                              float (&out)[kF32GemmTokens][kF32GemmRows]) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  constexpr int R = kF32GemmRows, T = kF32GemmTokens;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), groups = n / (4 * N);
  V sums[4][R][T];  // dot_f32's s0 .. s3 of each row and token
  unrolled<4>([&](auto j) __attribute__((always_inline)) {
    V acc[R][T];
    unrolled<R>([&](auto r) __attribute__((always_inline)) {
      unrolled<T>([&](auto t) __attribute__((always_inline)) { acc[r][t] = hn::Zero(d); });
    });
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t i = g * 4 * N + j * N;
      V wv[R], av[T];
      unrolled<R>([&](auto r) __attribute__((always_inline)) { wv[r] = hn::LoadU(d, w[r] + i); });
      unrolled<T>([&](auto t) __attribute__((always_inline)) { av[t] = hn::LoadU(d, a[t] + i); });
      unrolled<R>([&](auto r) __attribute__((always_inline)) {
        unrolled<T>([&](auto t) __attribute__((always_inline)) { acc[r][t] = hn::MulAdd(wv[r], av[t], acc[r][t]); });
      });
    }
    unrolled<R>([&](auto r) __attribute__((always_inline)) {
      unrolled<T>([&](auto t) __attribute__((always_inline)) { sums[j][r][t] = acc[r][t]; });
    });
  });
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      out[t][r] = dot_f32_finish(d, sums[0][r][t], sums[1][r][t], sums[2][r][t], sums[3][r][t], w[r], a[t],
                                 groups * 4 * N, n);
    }
  }
}

// RepackFn of F32 for a table whose tiles hold kTileRows rows after a kHeader-byte header: the row count, then the
// rows as they are (zero past `rows`).
template <size_t kHeader, int kTileRows>
inline void repack_f32_rows(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  std::memcpy(tile, &rows, sizeof(rows));
  float* out = reinterpret_cast<float*>(tile + kHeader);
  for (int r = 0; r < kTileRows; ++r) {
    if (r < rows) {
      std::memcpy(out + r * n, w + r * row_stride, static_cast<size_t>(n) * sizeof(float));
    } else {
      std::fill(out + r * n, out + (r + 1) * n, 0.0f);
    }
  }
}

inline size_t f32_tile_bytes(size_t header, int tile_rows, int64_t n) {
  return header + static_cast<size_t>(tile_rows) * static_cast<size_t>(n) * sizeof(float);
}

// GemmFn of F32 (tiles of repack_f32_rows): nt tokens of f32 activations (GemmActs::rows) against the tile's rows.
// A pass past the last row or token repeats it and keeps nothing of it.
template <size_t kHeader>
inline void gemm_f32_exact(int64_t n, const uint8_t* tile, const GemmActs& act, int nt, float* y, int64_t ldy) {
  int rows;
  std::memcpy(&rows, tile, sizeof(rows));
  const float* w0 = reinterpret_cast<const float*>(tile + kHeader);
  for (int r0 = 0; r0 < rows; r0 += kF32GemmRows) {
    const float* w[kF32GemmRows];
    for (int k = 0; k < kF32GemmRows; ++k) w[k] = w0 + std::min(r0 + k, rows - 1) * n;
    for (int t0 = 0; t0 < nt; t0 += kF32GemmTokens) {
      const float* a[kF32GemmTokens];
      for (int k = 0; k < kF32GemmTokens; ++k) {
        a[k] = reinterpret_cast<const float*>(act.rows + static_cast<size_t>(std::min(t0 + k, nt - 1)) * act.stride);
      }
      float out[kF32GemmTokens][kF32GemmRows];
      dot_f32_block(n, w, a, out);
      for (int t = t0; t < std::min(nt, t0 + kF32GemmTokens); ++t) {
        for (int r = r0; r < std::min(rows, r0 + kF32GemmRows); ++r) y[t * ldy + r] = out[t - t0][r - r0];
      }
    }
  }
}

// f16 and bf16: widen 16-bit lanes to f32 and FMA. HalfT is hwy::float16_t or hwy::bfloat16_t.
template <typename HalfT, float (*kScalar)(uint16_t)>
inline float dot_half(int64_t n, const void* wv, const void* av) {
  const uint16_t* w = static_cast<const uint16_t*>(wv);
  const uint16_t* a = static_cast<const uint16_t*>(av);
  const hn::ScalableTag<float> df;
  const hn::Rebind<HalfT, decltype(df)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto s0 = hn::Zero(df), s1 = hn::Zero(df);
  auto load = [&](const uint16_t* p) { return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const HalfT*>(p))); };
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(load(w + i), load(a + i), s0);
    s1 = hn::MulAdd(load(w + i + N), load(a + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(load(w + i), load(a + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += kScalar(w[i]) * kScalar(a[i]);
  return sum;
}

template <float (*kDot)(int64_t, const void*, const void*)>
inline void tile_float(int64_t n, const void* w, const uint8_t* act, size_t act_stride, const float*, int nt,
                       float* y, int64_t y_stride) {
  for (int t = 0; t < nt; ++t) y[t * y_stride] = kDot(n, w, act + t * act_stride);
}

// ------------------------------------------------------------------------------- activation quantizers

// Bit-exact with quantize_row_q8_0_act_ref: id = 127/amax, round half to even.
inline void quantize_act_q8_0(const float* x, void* yv, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(yv);
  const hn::CappedTag<float, 32> d;
  const hn::Rebind<int32_t, decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const size_t N = hn::Lanes(d);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* xb = x + b * kQK8_0;
    auto vmax = hn::Zero(d);
    for (size_t j = 0; j < kQK8_0; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(d, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(d, vmax));
    y[b].d = fp32_to_fp16(amax / 127.f);
    const auto id = hn::Set(d, amax != 0.0f ? 127.f / amax : 0.0f);
    for (size_t j = 0; j < kQK8_0; j += N) {
      const auto q = hn::NearestInt(hn::Mul(hn::LoadU(d, xb + j), id));
      hn::StoreU(hn::DemoteTo(d8, hn::BitCast(di, q)), d8, y[b].qs + j);
    }
  }
}

// Bit-exact with quantize_row_q8_K_ref: iscale = -127/max (signed max of largest magnitude, first occurrence),
// q = min(127, round_half_even(iscale*x)), d = 1/iscale, bsums per 16.
inline void quantize_act_q8_K(const float* x, void* yv, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(yv);
  const hn::CappedTag<float, 16> d;
  const hn::Rebind<int32_t, decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const size_t N = hn::Lanes(d);  // divides 16: each vector's sum belongs to one bsum
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    auto vmax = hn::Zero(d);
    for (size_t j = 0; j < kQK_K; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(d, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(d, vmax));
    if (!(amax > 0.0f)) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    // The first value of largest magnitude, with its sign (the reference's choice). Vector by vector, as the scalar
    // scans and the bsums below were most of this function's time (a decode step quantizes about 120 rows).
    float max = 0;
    for (size_t j = 0; j < kQK_K; j += N) {
      const auto v = hn::LoadU(d, xb + j);
      const intptr_t first = hn::FindFirstTrue(d, hn::Eq(hn::Abs(v), hn::Set(d, amax)));
      if (first >= 0) {
        max = xb[j + static_cast<size_t>(first)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const auto vs = hn::Set(d, iscale);
    const auto v127 = hn::Set(di, 127);
    for (int g = 0; g < kQK_K / 16; ++g) y[b].bsums[g] = 0;
    for (size_t j = 0; j < kQK_K; j += N) {
      const auto q = hn::Min(hn::NearestInt(hn::Mul(hn::LoadU(d, xb + j), vs)), v127);
      hn::StoreU(hn::DemoteTo(d8, q), d8, y[b].qs + j);
      y[b].bsums[j / 16] = static_cast<int16_t>(y[b].bsums[j / 16] + hn::GetLane(hn::SumOfLanes(di, q)));
    }
    y[b].d = 1 / iscale;
  }
}

// ------------------------------------------------------------------------ f16 / bf16 activations
// F16/BF16 weights take their activations rounded to the weight type and widened back to f32 (the GEMM's input), for
// every prefill matmul: the scalar loops were 9% of the demo narrator's pp512 on AVX2.

// Bit-exact with quantize_row_f16_ref (round to nearest even, as F16C): a NaN first becomes the canonical quiet NaN
// of its sign, which converts to the reference's sign | 0x7E00 (F16C would keep payload bits).
inline void quantize_act_f16(const float* x, void* yv, int64_t n) {
  hwy::float16_t* y = static_cast<hwy::float16_t*>(yv);
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto sign = hn::Set(d, -0.0f);
  const auto quiet_nan = hn::BitCast(d, hn::Set(hn::RebindToUnsigned<decltype(d)>(), 0x7FC00000u));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto canon = hn::IfThenElse(hn::IsNaN(v), hn::Or(hn::And(v, sign), quiet_nan), v);
    hn::StoreU(hn::DemoteTo(dh, canon), dh, y + i);
  }
  uint16_t* tail = static_cast<uint16_t*>(yv);
  for (; i < n; ++i) tail[i] = fp32_to_fp16(x[i]);
}

// Bit-exact with quantize_row_bf16_ref: round to nearest even on the bits, NaN forced quiet.
inline void quantize_act_bf16(const float* x, void* yv, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(yv);
  const hn::ScalableTag<float> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<uint16_t, decltype(d)> d16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto u = hn::BitCast(du, v);
    const auto rounded = hn::ShiftRight<16>(hn::Add(u, hn::Add(hn::Set(du, 0x7fffu),
                                                               hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u)))));
    const auto nan = hn::Or(hn::ShiftRight<16>(u), hn::Set(du, 64u));
    const auto bits = hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), nan, rounded);  // all < 0x10000
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, bits)), d16, y + i);
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// f16 / bf16 -> f32 (exact). HalfT is hwy::float16_t or hwy::bfloat16_t.
template <typename HalfT, float (*kScalar)(uint16_t)>
inline void dequantize_half(const void* xv, float* y, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(xv);
  const hn::ScalableTag<float> d;
  const hn::Rebind<HalfT, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const HalfT*>(x + i))), d, y + i);
  for (; i < n; ++i) y[i] = kScalar(x[i]);
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define FABULA_TILES_AVX2 1
#include "tensor/tiles_avx2-inl.h"
#include "tensor/gemv_q8_0_avx2-inl.h"
#include "tensor/gemv_q6_K_avx2-inl.h"
#include "tensor/gemv_q4_K_avx2-inl.h"
#define FABULA_GEMM_AVX2 1
#include "tensor/gemm_avx2-inl.h"
#if HWY_TARGET <= HWY_AVX3
#define FABULA_TILES_AVX512 1
#include "tensor/tiles_avx512-inl.h"
#include "tensor/gemv_avx512-inl.h"
#if HWY_TARGET == HWY_AVX3_DL
#define FABULA_GEMM_AVX512 1
#include "tensor/gemm_avx512-inl.h"
#include "tensor/gemm_amx-inl.h"
#endif
#endif
#endif

// Overrides the scalar entries of `t` with this target's SIMD kernels.
inline void fill_simd_kernels(KernelTable* t) {
  t->tile[kernel_slot(GgmlType::kF32)] = tile_float<dot_f32>;
  t->tile[kernel_slot(GgmlType::kF16)] = tile_float<dot_half<hwy::float16_t, fp16_to_fp32>>;
  t->tile[kernel_slot(GgmlType::kBF16)] = tile_float<dot_half<hwy::bfloat16_t, bf16_to_fp32>>;
  t->quantize_act[kernel_slot(GgmlType::kQ8_0)] = quantize_act_q8_0;
  t->quantize_act[kernel_slot(GgmlType::kQ8_K)] = quantize_act_q8_K;
  t->quantize_act[kernel_slot(GgmlType::kBF16)] = quantize_act_bf16;
  t->dequantize[kernel_slot(GgmlType::kBF16)] = dequantize_half<hwy::bfloat16_t, bf16_to_fp32>;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2  // F16C; Highway's emulation below it flushes subnormal halves
  t->quantize_act[kernel_slot(GgmlType::kF16)] = quantize_act_f16;
  t->dequantize[kernel_slot(GgmlType::kF16)] = dequantize_half<hwy::float16_t, fp16_to_fp32>;
#endif
#ifdef FABULA_TILES_AVX2
  fill_avx2_tiles(t);
  fill_avx2_gemv_q8_q6(t);  // the AVX-512 targets replace these gemvs below (fill_avx512_gemv)
  fill_avx2_gemv_q4_K(t);  // AVX3 and AVX3_DL replace it with their own gemv below
#undef FABULA_TILES_AVX2
#endif
#ifdef FABULA_GEMM_AVX2
  fill_avx2_gemm(t);  // AVX3_DL replaces it with the VNNI GEMM below
#undef FABULA_GEMM_AVX2
#endif
#ifdef FABULA_TILES_AVX512
  fill_avx512_tiles(t);
  fill_avx512_gemv(t);
#undef FABULA_TILES_AVX512
#endif
#ifdef FABULA_GEMM_AVX512
  fill_avx512_gemm(t);
  fill_amx_gemm(t);  // on CPUs with AMX: the tiles take full groups of 16 tokens
#undef FABULA_GEMM_AVX512
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#endif  // include guard
