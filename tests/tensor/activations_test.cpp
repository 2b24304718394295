// The SIMD activations (tensor/activations.h) against their scalar references on random inputs, including the
// tails (n not a multiple of the vector width), large magnitudes where tanh saturates, and aliasing out == gate.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tensor/activations.h"

namespace fabula {
namespace {

std::vector<float> random_values(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

// Relative error with an absolute floor: Highway's Tanh/Exp are within a few ULP.
void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-6f * (1.0f + std::fabs(want[i]))) << i;
}

TEST(Activations, GeluTanhMulMatchesTheReference) {
  for (int64_t n : {1, 7, 16, 33, 704, 2112}) {
    for (float scale : {0.5f, 3.0f, 30.0f}) {
      const auto gate = random_values(n, scale, static_cast<uint32_t>(n));
      const auto up = random_values(n, 1.0f, 99);
      std::vector<float> want(gate.size()), got(gate.size());
      gelu_tanh_mul_ref(gate.data(), up.data(), want.data(), n);
      gelu_tanh_mul(gate.data(), up.data(), got.data(), n);
      expect_close(got, want);
      std::vector<float> in_place = gate;  // out == gate, as the forward pass calls it
      gelu_tanh_mul(in_place.data(), up.data(), in_place.data(), n);
      expect_close(in_place, want);
    }
  }
  // Known values: gelu(0) = 0, gelu(x) ~ x for large x, ~ 0 for very negative x.
  const float gate[3] = {0.0f, 10.0f, -10.0f}, up[3] = {1.0f, 2.0f, 1.0f};
  float out[3];
  gelu_tanh_mul(gate, up, out, 3);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 20.0f, 1e-5f);
  EXPECT_NEAR(out[2], 0.0f, 1e-6f);
}

TEST(Activations, TanhSoftcapMatchesTheReference) {
  for (int64_t n : {5, 64, 1000}) {
    auto x = random_values(n, 40.0f, 3);
    auto want = x;
    tanh_softcap_ref(want.data(), n, 30.0f);
    tanh_softcap(x.data(), n, 30.0f);
    expect_close(x, want);
    for (float v : x) EXPECT_LE(std::fabs(v), 30.0f);
  }
}

TEST(Activations, ExpShiftedMatchesTheReference) {
  for (int64_t n : {3, 17, 512}) {
    auto x = random_values(n, 4.0f, 5);
    float m = x[0];
    for (float v : x) m = std::max(m, v);
    auto want = x;
    const double want_sum = exp_shifted_ref(want.data(), n, m);
    const double sum = exp_shifted(x.data(), n, m);
    expect_close(x, want);
    EXPECT_NEAR(sum, want_sum, 1e-5 * want_sum);
    EXPECT_GE(sum, 1.0 - 1e-6);  // the maximum contributes exp(0) = 1
  }
}

// Rows at a stride wider than d (a KV cache slot holds every kv head), d not a multiple of the vector width.
TEST(Activations, AttentionRowKernelsMatchTheReferences) {
  for (int64_t d : {7, 64, 256, 300, 512}) {
    const int64_t stride = d + 13, n_rows = 37;
    const auto rows = random_values(stride * n_rows, 1.0f, static_cast<uint32_t>(d));
    const auto q = random_values(d, 1.0f, 11);
    std::vector<float> want(static_cast<size_t>(n_rows)), got(want.size());
    dot_rows_ref(q.data(), rows.data(), stride, n_rows, d, want.data());
    dot_rows(q.data(), rows.data(), stride, n_rows, d, got.data());
    for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(got[j], want[j], 1e-4f * (1.0f + std::fabs(want[j]))) << d;

    const auto weights = random_values(n_rows, 0.3f, 12);
    auto out_want = random_values(d, 1.0f, 13);
    auto out_got = out_want;
    add_weighted_rows_ref(weights.data(), rows.data(), stride, n_rows, d, out_want.data());
    add_weighted_rows(weights.data(), rows.data(), stride, n_rows, d, out_got.data());
    for (size_t i = 0; i < out_want.size(); ++i)
      EXPECT_NEAR(out_got[i], out_want[i], 1e-4f * (1.0f + std::fabs(out_want[i]))) << d;
  }
}

}  // namespace
}  // namespace fabula
