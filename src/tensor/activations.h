// Element-wise f32 kernels of the forward pass (GELU-tanh gating, tanh softcap, exp for softmax, the attention's
// scores and weighted sum of values), SIMD with
// Highway dynamic dispatch, each next to its scalar reference (tests/tensor/activations_test.cpp compares them).
#pragma once

#include <cstdint>

namespace fabula {

// out[i] = gelu_tanh(gate[i]) * up[i]; out may be gate. gelu_tanh is gelu_pytorch_tanh:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n);

// x[i] = cap * tanh(x[i] / cap), in place.
void tanh_softcap(float* x, int64_t n, float cap);
void tanh_softcap_ref(float* x, int64_t n, float cap);

// x[i] = exp(x[i] - shift) in place; returns the sum of the results (the softmax denominator).
double exp_shifted(float* x, int64_t n, float shift);
double exp_shifted_ref(float* x, int64_t n, float shift);

// Attention over a run of cache rows (row j at rows + j * stride floats), one dispatch per run instead of per key:
// scores[j] = dot(q, row j) over d floats, and out[0..d) += Σ_j weights[j] * row j.
void dot_rows(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores);
void dot_rows_ref(const float* q, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores);
void add_weighted_rows(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d, float* out);
void add_weighted_rows_ref(const float* weights, const float* rows, int64_t stride, int64_t n_rows, int64_t d,
                           float* out);

}  // namespace fabula
