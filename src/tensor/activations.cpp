// SIMD bodies of tensor/activations.h, one per Highway target, plus the scalar references.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/activations.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
#include "tensor/flush_subnormal-inl.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/activations.h"
#include "tensor/head_chunks.h"

namespace fabula {
// x[i] = exp(x[i] - shift) in place; returns the sum in double (the softmax denominator). The SIMD tails use it.
double exp_shifted_ref(float* x, int64_t n, float shift);
// rms_norm's steps after its 8 double lanes (shared by the reference and the SIMD bodies, so both take them in the
// same order): 1 / sqrt(mean square + eps) from the lanes and the squares of the tail's tail_n values (x's last), of
// n values in all.
float rms_norm_inverse(const double (&lane)[8], const float* tail, int64_t tail_n, int64_t n, float eps);
// y[i] = x[i] * inv * w[i] (w == nullptr: x[i] * inv); the SIMD tails use it.
void rms_norm_apply_ref(const float* x, const float* w, float* y, int64_t n, float inv);
}  // namespace fabula

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE void gelu_tanh_mul_row(const float* gate, const float* up, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto k0 = hn::Set(d, 0.7978845608028654f), k1 = hn::Set(d, 0.044715f), half = hn::Set(d, 0.5f),
             one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::LoadU(d, gate + i);
    const auto inner = hn::Mul(k0, hn::MulAdd(hn::Mul(k1, hn::Mul(x, x)), x, x));  // k0 * (x + k1 x^3)
    const auto g = hn::Mul(hn::Mul(half, x), hn::Add(one, hn::Tanh(d, inner)));
    hn::StoreU(hn::Mul(g, hn::LoadU(d, up + i)), d, out + i);
  }
  gelu_tanh_mul_ref(gate + i, up + i, out + i, n - i);
}

void tanh_softcap_simd(float* x, int64_t n, float cap) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vcap = hn::Set(d, cap), inv = hn::Set(d, 1.0f / cap);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(vcap, hn::Tanh(d, hn::Mul(hn::LoadU(d, x + i), inv))), d, x + i);
  tanh_softcap_ref(x + i, n - i, cap);
}

// x[i] = exp(x[i] - shift) in place; returns the sum of the results. Results below FLT_MIN are exact zeros
// (flush_subnormal-inl.h), so the sum and the scaling after it take no subnormal operand.
HWY_INLINE double exp_shifted(float* x, int64_t n, float shift) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vshift = hn::Set(d, shift);
  auto sum = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = flush_subnormal(d, hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vshift)));
    hn::StoreU(e, d, x + i);
    sum = hn::Add(sum, e);
  }
  return static_cast<double>(hn::GetLane(hn::SumOfLanes(d, sum))) + exp_shifted_ref(x + i, n - i, shift);
}

// scores[j] = dot(q, row j) over d floats. Four rows at a time where d is whole pairs of vectors: each row's sums
// are the one-row loop's, in its order, but the four rows' chains of dependent FMAs overlap.
HWY_INLINE void dot_rows(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dv = d - d % N;
  int64_t j = 0;
  if (d % (2 * N) == 0) {
    constexpr int64_t kRows = 4;
    for (; j + kRows <= n_rows; j += kRows) {
      decltype(hn::Zero(df)) s0[kRows], s1[kRows];
      for (int64_t k = 0; k < kRows; ++k) s0[k] = s1[k] = hn::Zero(df);
      for (int64_t i = 0; i < d; i += 2 * N) {
        const auto q0 = hn::LoadU(df, q + i), q1 = hn::LoadU(df, q + i + N);
        for (int64_t k = 0; k < kRows; ++k) {
          const float* r = rows + (j + k) * stride;
          s0[k] = hn::MulAdd(q0, hn::LoadU(df, r + i), s0[k]);
          s1[k] = hn::MulAdd(q1, hn::LoadU(df, r + i + N), s1[k]);
        }
      }
      for (int64_t k = 0; k < kRows; ++k) scores[j + k] = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0[k], s1[k])));
    }
  }
  for (; j < n_rows; ++j) {
    const float* r = rows + j * stride;
    auto s0 = hn::Zero(df), s1 = hn::Zero(df);
    int64_t i = 0;
    for (; i + 2 * N <= dv; i += 2 * N) {
      s0 = hn::MulAdd(hn::LoadU(df, q + i), hn::LoadU(df, r + i), s0);
      s1 = hn::MulAdd(hn::LoadU(df, q + i + N), hn::LoadU(df, r + i + N), s1);
    }
    for (; i < dv; i += N) s0 = hn::MulAdd(hn::LoadU(df, q + i), hn::LoadU(df, r + i), s0);
    float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
    for (; i < d; ++i) sum += q[i] * r[i];
    scores[j] = sum;
  }
}

// out is processed in chunks of up to 8 vectors held in registers while every row passes over them, so out is
// read and written once per chunk rather than once per row.
HWY_INLINE void add_weighted_rows(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d,
                                  float* out) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dv = d - d % N;
  constexpr int64_t kChunk = 8;
  int64_t c = 0;
  for (; c + kChunk * N <= dv; c += kChunk * N) {
    decltype(hn::Zero(df)) acc[kChunk];
    for (int64_t k = 0; k < kChunk; ++k) acc[k] = hn::LoadU(df, out + c + k * N);
    for (int64_t j = 0; j < n_rows; ++j) {
      const auto w = hn::Set(df, weights[j]);
      const float* r = rows + j * stride + c;
      for (int64_t k = 0; k < kChunk; ++k) acc[k] = hn::MulAdd(w, hn::LoadU(df, r + k * N), acc[k]);
    }
    for (int64_t k = 0; k < kChunk; ++k) hn::StoreU(acc[k], df, out + c + k * N);
  }
  for (; c < dv; c += N) {
    auto acc = hn::LoadU(df, out + c);
    for (int64_t j = 0; j < n_rows; ++j) {
      acc = hn::MulAdd(hn::Set(df, weights[j]), hn::LoadU(df, rows + j * stride + c), acc);
    }
    hn::StoreU(acc, df, out + c);
  }
  for (int64_t j = 0; j < n_rows; ++j) {
    for (int64_t i = dv; i < d; ++i) out[i] += weights[j] * rows[j * stride + i];
  }
}

// x[i] *= scale in place, results below FLT_MIN as exact zeros (as exp_shifted's: the scale, 1 / a sum >= 1, can
// take a weight just above FLT_MIN below it).
HWY_INLINE void scale_flushing_subnormals(float* x, int64_t n, float scale) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vscale = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(flush_subnormal(d, hn::Mul(hn::LoadU(d, x + i), vscale)), d, x + i);
  for (; i < n; ++i) {
    const float v = x[i] * scale;
    x[i] = v < std::numeric_limits<float>::min() ? 0.0f : v;
  }
}

// The softmax of one row, the sum in double (as the reference); weights below FLT_MIN are zeros.
HWY_INLINE void softmax_row(float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  const float inv = static_cast<float>(1.0 / exp_shifted(x, n, m));
  scale_flushing_subnormals(x, n, inv);
}

void rms_norm_simd(const float* x, const float* w, float* y, int64_t n, float eps) {
  constexpr int64_t kLanes = 8;  // the reference's double lanes
  const hn::CappedTag<double, kLanes> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  const int64_t vectors = kLanes / N;  // accumulators: lane k of the reference is lane k % N of accumulator k / N
  decltype(hn::Zero(dd)) acc[kLanes];
  for (int64_t v = 0; v < vectors; ++v) acc[v] = hn::Zero(dd);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t v = 0; v < vectors; ++v) {
      const auto xv = hn::PromoteTo(dd, hn::LoadU(df, x + i + v * N));
      acc[v] = hn::MulAdd(xv, xv, acc[v]);  // the product of two floats is exact in double: as a product and a sum
    }
  }
  double lane[kLanes];
  for (int64_t v = 0; v < vectors; ++v) hn::StoreU(acc[v], dd, lane + v * N);
  const float inv = rms_norm_inverse(lane, x + i, n - i, n, eps);
  const hn::ScalableTag<float> d;
  const int64_t NF = static_cast<int64_t>(hn::Lanes(d));
  const auto vinv = hn::Set(d, inv);
  int64_t j = 0;
  if (w != nullptr) {
    for (; j + NF <= n; j += NF) hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + j), vinv), hn::LoadU(d, w + j)), d, y + j);
  } else {
    for (; j + NF <= n; j += NF) hn::StoreU(hn::Mul(hn::LoadU(d, x + j), vinv), d, y + j);
  }
  rms_norm_apply_ref(x + j, w != nullptr ? w + j : nullptr, y + j, n - j, inv);
}

void add_scaled_simd(float* dst, const float* src, float scale, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vscale = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    auto product = hn::Mul(vscale, hn::LoadU(d, src + i));
#if HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    // GCC contracts a product and a sum into an FMA on targets that have one (C++ defaults to -ffp-contract=fast);
    // an empty asm hides the product, so it is rounded before the sum, as in the reference.
    asm("" : "+v"(product.raw));
#endif
    hn::StoreU(hn::Add(hn::LoadU(d, dst + i), product), d, dst + i);
  }
  add_scaled_ref(dst + i, src + i, scale, n - i);
}

void gelu_tanh_mul_simd(const float* gate, const float* up, float* out, int64_t n) {
  gelu_tanh_mul_row(gate, up, out, n);
}

void gelu_tanh_mul_rows_simd(const float* gate, const float* up, int64_t in_stride, float* out, int64_t out_stride,
                             int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) gelu_tanh_mul_row(gate + r * in_stride, up + r * in_stride, out + r * out_stride, n);
}

void softmax_rows_simd(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, n);
}

void attend_head_simd(const float* q, const CacheRun* runs, int n_runs, int64_t stride, int64_t d, float* scores,
                      float* out) {
  int64_t total = 0;
  for (int i = 0; i < n_runs; ++i) {
    dot_rows(q, runs[i].k, stride, runs[i].n_rows, d, scores + total);
    total += runs[i].n_rows;
  }
  softmax_row(scores, total);
  std::fill(out, out + d, 0.0f);
  total = 0;
  for (int i = 0; i < n_runs; ++i) {
    add_weighted_rows(scores + total, runs[i].v, stride, runs[i].n_rows, d, out);
    total += runs[i].n_rows;
  }
}

void attend_heads_simd(const float* const* q, const int64_t* offset, int64_t n_heads, const CacheRun* runs,
                       int n_runs, int64_t stride, int64_t d, float* scores, float* const* out) {
  int64_t total = 0;
  for (int i = 0; i < n_runs; ++i) total += runs[i].n_rows;
  auto off = [&](int64_t h) { return offset != nullptr ? offset[h] : int64_t{0}; };
  const int64_t chunk = heads_chunk_rows(heads_span(off, n_heads, d).size * static_cast<int64_t>(sizeof(float)));
  // Every score is one row's dot, and add_weighted_rows adds the rows of a call into out in order, so chunks give
  // each head attend_head_simd's numbers.
  for_head_chunks(runs, n_runs, chunk, n_heads, total, [&](const CacheRun& run, int64_t j0, int64_t rows, int64_t h,
                                                           int64_t score) {
    dot_rows(q[h], run.k + j0 * stride + off(h), stride, rows, d, scores + score);
  });
  for (int64_t h = 0; h < n_heads; ++h) {
    softmax_row(scores + h * total, total);
    std::fill(out[h], out[h] + d, 0.0f);
  }
  for_head_chunks(runs, n_runs, chunk, n_heads, total, [&](const CacheRun& run, int64_t j0, int64_t rows, int64_t h,
                                                           int64_t score) {
    add_weighted_rows(scores + score, run.v + j0 * stride + off(h), stride, rows, d, out[h]);
  });
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fabula {

HWY_EXPORT(rms_norm_simd);
HWY_EXPORT(add_scaled_simd);
HWY_EXPORT(gelu_tanh_mul_simd);
HWY_EXPORT(gelu_tanh_mul_rows_simd);
HWY_EXPORT(tanh_softcap_simd);
HWY_EXPORT(softmax_rows_simd);
HWY_EXPORT(attend_head_simd);
HWY_EXPORT(attend_heads_simd);

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(rms_norm_simd)(x, w, y, n, eps);
}
void add_scaled(float* dst, const float* src, float scale, int64_t n) {
  HWY_DYNAMIC_DISPATCH(add_scaled_simd)(dst, src, scale, n);
}
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(gelu_tanh_mul_simd)(gate, up, out, n);
}
void gelu_tanh_mul_rows(const float* gate, const float* up, int64_t in_stride, float* out, int64_t out_stride,
                        int64_t rows, int64_t n) {
  HWY_DYNAMIC_DISPATCH(gelu_tanh_mul_rows_simd)(gate, up, in_stride, out, out_stride, rows, n);
}
void tanh_softcap(float* x, int64_t n, float cap) { HWY_DYNAMIC_DISPATCH(tanh_softcap_simd)(x, n, cap); }
void softmax_rows(float* x, int64_t rows, int64_t n) { HWY_DYNAMIC_DISPATCH(softmax_rows_simd)(x, rows, n); }
void attend_head(const float* q, const CacheRun* runs, int n_runs, int64_t stride, int64_t d, float* scores,
                 float* out) {
  HWY_DYNAMIC_DISPATCH(attend_head_simd)(q, runs, n_runs, stride, d, scores, out);
}
void attend_heads(const float* const* q, const int64_t* offset, int64_t n_heads, const CacheRun* runs, int n_runs,
                  int64_t stride, int64_t d, float* scores, float* const* out) {
  HWY_DYNAMIC_DISPATCH(attend_heads_simd)(q, offset, n_heads, runs, n_runs, stride, d, scores, out);
}

float rms_norm_inverse(const double (&lane)[8], const float* tail, int64_t tail_n, int64_t n, float eps) {
  double ss = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (int64_t i = 0; i < tail_n; ++i) ss += static_cast<double>(tail[i]) * tail[i];
  return 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
}

void rms_norm_apply_ref(const float* x, const float* w, float* y, int64_t n, float inv) {
  if (w != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv;
  }
}

void rms_norm_ref(const float* x, const float* w, float* y, int64_t n, float eps) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) lane[k] += static_cast<double>(x[i + k]) * x[i + k];
  }
  rms_norm_apply_ref(x, w, y, n, rms_norm_inverse(lane, x + i, n - i, n, eps));
}

void add_scaled_ref(float* dst, const float* src, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float product = scale * src[i];
#if defined(__x86_64__) || defined(__i386__)
    // Rounded before the sum wherever this is compiled or inlined (a target with FMA would contract the two).
    asm("" : "+x"(product));
#endif
    dst[i] += product;
  }
}

void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    out[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * up[i];
  }
}

void gelu_tanh_mul_rows_ref(const float* gate, const float* up, int64_t in_stride, float* out, int64_t out_stride,
                            int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) gelu_tanh_mul_ref(gate + r * in_stride, up + r * in_stride, out + r * out_stride, n);
}

void tanh_softcap_ref(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

double exp_shifted_ref(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void softmax_rows_ref(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * n;
    float m = row[0];
    for (int64_t i = 1; i < n; ++i) m = std::max(m, row[i]);
    const float inv = static_cast<float>(1.0 / exp_shifted_ref(row, n, m));
    for (int64_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

void attend_head_ref(const float* q, const CacheRun* runs, int n_runs, int64_t stride, int64_t d, float* scores,
                     float* out) {
  int64_t total = 0;
  for (int i = 0; i < n_runs; ++i) {
    for (int64_t j = 0; j < runs[i].n_rows; ++j) {
      float sum = 0;
      for (int64_t k = 0; k < d; ++k) sum += q[k] * runs[i].k[j * stride + k];
      scores[total + j] = sum;
    }
    total += runs[i].n_rows;
  }
  softmax_rows_ref(scores, 1, total);
  std::fill(out, out + d, 0.0f);
  total = 0;
  for (int i = 0; i < n_runs; ++i) {
    for (int64_t j = 0; j < runs[i].n_rows; ++j) {
      for (int64_t k = 0; k < d; ++k) out[k] += scores[total + j] * runs[i].v[j * stride + k];
    }
    total += runs[i].n_rows;
  }
}

}  // namespace fabula
#endif  // HWY_ONCE
