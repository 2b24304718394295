// Small f32 row operations of the Gemma 4 forward pass (norms, RoPE, softmax, softcap), kept short and obvious;
// the matrix products go through tensor/matmul.h, and the transcendental parts (exp, tanh, the GELU gate) through
// the SIMD kernels of tensor/activations.h, since a scalar libm call per element was ~8% of prefill.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor/activations.h"

namespace fabula::ops {

// y = x / sqrt(mean(x^2) + eps) * w  (Gemma 4: plain w, not 1 + w; eps inside the sqrt). w == nullptr: no weight.
// y may alias x. The sum of squares runs in 8 independent double lanes (perf: one chain of dependent adds took ~3 us
// per 2816 values, on the decode's serial path 8 times a layer), by SIMD (tensor/activations.h rms_norm).
inline void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) { rms_norm(x, w, y, n, eps); }

// NeoX rotation (transformers' rotate_half): dim i pairs with dim i + n_rot/2, angle pos * inv_freq[i].
// Dims >= n_rot pass through.
inline void rope_neox(float* x, int64_t n_rot, const float* inv_freq, int64_t pos) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * inv_freq[i];
    const float c = std::cos(theta), s = std::sin(theta);
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

// rope_neox split in two, since its angles depend on the position only: rope_angles writes cos and sin of
// pos * inv_freq[i] for i < n_rot / 2 to cs[i] and cs[n_rot / 2 + i] once per row, and rope_neox_cs rotates each
// head with them (perf: one sin/cos per angle instead of one per head and angle, 24 heads on the 26B). Results equal
// rope_neox's.
inline void rope_angles(int64_t n_rot, const float* inv_freq, int64_t pos, float* cs) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * inv_freq[i];
    cs[i] = std::cos(theta);
    cs[half + i] = std::sin(theta);
  }
}

inline void rope_neox_cs(float* x, int64_t n_rot, const float* cs) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cs[i], s = cs[half + i];
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

// The k largest of p[0..n) by descending value, ties: lower index first: indices to idx[0..k), values to val[0..k)
// (the MoE router's top-k; k <= n). One pass keeping the k best so far, an index moving ahead only of strictly
// smaller values (perf: top_k_ref's k passes with their "taken" scans were ~k * n * k / 2 compares on the decode's
// serial path, each MoE layer: ~3 us of the 26B's 128 experts, top 8). Equals top_k_ref's for NaN-free p.
inline void top_k(const float* p, int64_t n, int64_t k, int32_t* idx, float* val) {
  int64_t kept = 0;
  for (int64_t e = 0; e < n; ++e) {
    const float pe = p[e];
    if (kept == k && !(pe > val[k - 1])) continue;
    int64_t j = kept < k ? kept++ : k - 1;
    for (; j > 0 && pe > val[j - 1]; --j) {
      idx[j] = idx[j - 1];
      val[j] = val[j - 1];
    }
    idx[j] = static_cast<int32_t>(e);
    val[j] = pe;
  }
}

// top_k as k passes of argmax over the indices not yet taken.
inline void top_k_ref(const float* p, int64_t n, int64_t k, int32_t* idx, float* val) {
  for (int64_t j = 0; j < k; ++j) {
    int32_t best = -1;
    for (int32_t e = 0; e < n; ++e) {
      bool taken = false;
      for (int64_t m = 0; m < j; ++m) taken |= idx[m] == e;
      if (!taken && (best < 0 || p[e] > p[best])) best = e;  // ties: lower index first
    }
    idx[j] = best;
    val[j] = p[best];
  }
}

// In-place softmax over n values.
inline void softmax(float* x, int64_t n) { softmax_rows(x, 1, n); }

// cap * tanh(x / cap), in place.
inline void softcap(float* x, int64_t n, float cap) { tanh_softcap(x, n, cap); }

}  // namespace fabula::ops
