// Element-wise f32 kernels of the forward pass (RMS norm, a scaled row added, GELU-tanh gating, tanh softcap, softmax,
// attention heads), SIMD with Highway dynamic dispatch, each next to its scalar reference
// (tests/tensor/activations_test.cpp compares them on every target). Each entry point takes a coarse piece of work (all
// rows of a step, a whole attention head), so the dispatch happens once per call, not once per row.
#pragma once

#include <cstdint>

namespace fabula {

// out[i] = gelu_tanh(gate[i]) * up[i]; out may be gate. gelu_tanh is gelu_pytorch_tanh:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul_ref(const float* gate, const float* up, float* out, int64_t n);

// gelu_tanh_mul over `rows` rows of n: row r reads gate and up at r * in_stride and writes out at r * out_stride
// (the MoE's [gate | up] rows).
void gelu_tanh_mul_rows(const float* gate, const float* up, int64_t in_stride, float* out, int64_t out_stride,
                        int64_t rows, int64_t n);
void gelu_tanh_mul_rows_ref(const float* gate, const float* up, int64_t in_stride, float* out, int64_t out_stride,
                            int64_t rows, int64_t n);

// x[i] = cap * tanh(x[i] / cap), in place.
void tanh_softcap(float* x, int64_t n, float cap);
void tanh_softcap_ref(float* x, int64_t n, float cap);

// y = x / sqrt(mean(x^2) + eps) * w (w == nullptr: no weight); y may alias x. The sum of squares runs in 8 double
// lanes (lane k takes the elements i = k mod 8, in order; then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) and
// the scalar tail), each value x * inv * w: every target gives the reference's bits. Decode runs about 8 of these
// per layer of 2816 values on its serial path (perf: 2.8 us each in the baseline x86-64 build).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rms_norm_ref(const float* x, const float* w, float* y, int64_t n, float eps);

// dst[i] += scale * src[i]: a product, then a sum (no fused multiply-add, so every target gives the reference's
// bits). The MoE's weighted sum of the experts' outputs.
void add_scaled(float* dst, const float* src, float scale, int64_t n);
void add_scaled_ref(float* dst, const float* src, float scale, int64_t n);

// In-place softmax of each of `rows` contiguous rows of n values (the exp sum in double).
void softmax_rows(float* x, int64_t rows, int64_t n);
void softmax_rows_ref(float* x, int64_t rows, int64_t n);

// Contiguous cache rows (row j of keys at k + j * stride floats, of values at v + j * stride).
struct CacheRun {
  const float* k;
  const float* v;
  int64_t n_rows;
};

// One query head over the keys and values of n_runs runs of cache rows (a ring buffer gives at most two):
// scores = q · k_j over d floats, softmax over all of them, out[0..d) = Σ_j softmax_j v_j.
// scores: scratch for the total number of rows.
void attend_head(const float* q, const CacheRun* runs, int n_runs, int64_t stride, int64_t d, float* scores,
                 float* out);
void attend_head_ref(const float* q, const CacheRun* runs, int n_runs, int64_t stride, int64_t d, float* scores,
                     float* out);

// Query heads q[0..n_heads) over the same runs of cache slots: head h reads the rows at offset[h] floats into each
// slot (its kv head; nullptr: all at 0), and out[h] is attend_head's for q[h] over those rows, bit for bit. The
// slots go in chunks, every head over a chunk before the next, so each slot's bytes come from memory once, in
// order, for all the heads (where one head at a time reads a group's rows once per head, and rows a slot apart,
// which the hardware prefetchers fetch around but not ahead). Decode reads the whole cache once per token, so its
// attention is bound by these reads once the context is long (the 26B at 1500 positions: BENCHMARKS.md).
// scores: scratch for n_heads x the total number of rows.
void attend_heads(const float* const* q, const int64_t* offset, int64_t n_heads, const CacheRun* runs, int n_runs,
                  int64_t stride, int64_t d, float* scores, float* const* out);

}  // namespace fabula
