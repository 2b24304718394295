// SIMD bodies of tensor/activations.h, one per Highway target, plus the scalar references.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/activations.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>

#include "tensor/activations.h"

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void gelu_tanh_mul_simd(const float* gate, const float* up, float* out, int64_t n) {
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

double exp_shifted_simd(float* x, int64_t n, float shift) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vshift = hn::Set(d, shift);
  auto sum = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vshift));
    hn::StoreU(e, d, x + i);
    sum = hn::Add(sum, e);
  }
  return static_cast<double>(hn::GetLane(hn::SumOfLanes(d, sum))) + exp_shifted_ref(x + i, n - i, shift);
}

void dot_rows_simd(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dv = d - d % N;
  for (int64_t j = 0; j < n_rows; ++j) {
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
void add_weighted_rows_simd(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d,
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
  if (dv < d) add_weighted_rows_ref(weights, rows + dv, stride, n_rows, d - dv, out + dv);
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fabula {

HWY_EXPORT(gelu_tanh_mul_simd);
HWY_EXPORT(tanh_softcap_simd);
HWY_EXPORT(exp_shifted_simd);
HWY_EXPORT(dot_rows_simd);
HWY_EXPORT(add_weighted_rows_simd);

void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(gelu_tanh_mul_simd)(gate, up, out, n);
}
void tanh_softcap(float* x, int64_t n, float cap) { HWY_DYNAMIC_DISPATCH(tanh_softcap_simd)(x, n, cap); }
double exp_shifted(float* x, int64_t n, float shift) { return HWY_DYNAMIC_DISPATCH(exp_shifted_simd)(x, n, shift); }

void dot_rows(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores) {
  HWY_DYNAMIC_DISPATCH(dot_rows_simd)(q, rows, stride, n_rows, d, scores);
}
void add_weighted_rows(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* out) {
  HWY_DYNAMIC_DISPATCH(add_weighted_rows_simd)(weights, rows, stride, n_rows, d, out);
}

void dot_rows_ref(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores) {
  for (int64_t j = 0; j < n_rows; ++j) {
    float sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += q[i] * rows[j * stride + i];
    scores[j] = sum;
  }
}

void add_weighted_rows_ref(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d,
                           float* out) {
  for (int64_t j = 0; j < n_rows; ++j)
    for (int64_t i = 0; i < d; ++i) out[i] += weights[j] * rows[j * stride + i];
}

void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    out[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))) * up[i];
  }
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

}  // namespace fabula
#endif  // HWY_ONCE
