// KV cache storage types (tensor/kv_types.h): names and sizes, the rotation, the Lloyd-Max levels re-derived,
// round-trip error per type, and the rotated 4-bit type against q4_0 on the same data.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tensor/kv_types.h"

namespace fabula {
namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

// Keys as attention sees them have a few large channels: every 32nd value (one per block) scaled by 8.
std::vector<float> with_outlier_channels(std::vector<float> v) {
  for (size_t i = 3; i < v.size(); i += 32) v[i] *= 8.0f;
  return v;
}

// sqrt(Σ (x - x')^2 / Σ x^2) over heads of d values.
double round_trip_error(KvType type, const std::vector<float>& x, int64_t d) {
  std::vector<uint8_t> buf(kv_head_bytes(type, d));
  std::vector<float> back(static_cast<size_t>(d));
  double err = 0, norm = 0;
  for (size_t h = 0; h + static_cast<size_t>(d) <= x.size(); h += static_cast<size_t>(d)) {
    kv_quantize_head(type, x.data() + h, d, buf.data());
    kv_dequantize_head(type, buf.data(), d, back.data());
    for (int64_t i = 0; i < d; ++i) {
      const double e = x[h + static_cast<size_t>(i)] - back[static_cast<size_t>(i)];
      err += e * e;
      norm += static_cast<double>(x[h + static_cast<size_t>(i)]) * x[h + static_cast<size_t>(i)];
    }
  }
  return std::sqrt(err / norm);
}

TEST(KvTypes, NamesAndSizes) {
  EXPECT_EQ(kv_type_list(), "f32, f16, q8_0, q4_0, tq4, tq3");
  for (KvType t : kAllKvTypes) EXPECT_EQ(kv_type_from_name(kv_type_name(t)), t);
  EXPECT_EQ(kv_type_from_name("Q8_0"), KvType::kQ8_0);
  EXPECT_FALSE(kv_type_from_name("q4_k").has_value());
  EXPECT_FALSE(kv_type_from_name("").has_value());
  // One 256-wide head (the 26B's sliding layers).
  EXPECT_EQ(kv_head_bytes(KvType::kF32, 256), 1024u);
  EXPECT_EQ(kv_head_bytes(KvType::kF16, 256), 512u);
  EXPECT_EQ(kv_head_bytes(KvType::kQ8_0, 256), 272u);
  EXPECT_EQ(kv_head_bytes(KvType::kQ4_0, 256), 144u);
  EXPECT_EQ(kv_head_bytes(KvType::kTq4, 256), 144u);
  EXPECT_EQ(kv_head_bytes(KvType::kTq3, 256), 112u);
  EXPECT_DOUBLE_EQ(kv_bits_per_value(KvType::kTq4), 4.5);
  EXPECT_DOUBLE_EQ(kv_bits_per_value(KvType::kTq3), 3.5);
  // A 16-wide head (gemma4-tiny) is one padded block for the blocked types, as it is for f32 and f16.
  EXPECT_EQ(kv_stored_dim(KvType::kTq3, 16), 32);
  EXPECT_EQ(kv_stored_dim(KvType::kF16, 16), 16);
  EXPECT_EQ(kv_head_bytes(KvType::kQ4_0, 16), 18u);
}

TEST(KvTypes, RotationIsOrthogonalAndUndone) {
  const auto a = gaussian(32, 1), b = gaussian(32, 2);
  std::vector<float> ra = a, rb = b;
  tq_rotate(ra.data());
  tq_rotate(rb.data());
  double dot = 0, rdot = 0;
  for (int i = 0; i < 32; ++i) {
    dot += a[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
    rdot += ra[static_cast<size_t>(i)] * rb[static_cast<size_t>(i)];
  }
  EXPECT_NEAR(rdot, dot, 1e-4);
  tq_unrotate(ra.data());
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(ra[static_cast<size_t>(i)], a[static_cast<size_t>(i)], 1e-5f);
  // A constant block is not left as one spike: the sign flips spread it over many coordinates.
  std::vector<float> c(32, 1.0f);
  tq_rotate(c.data());
  int large = 0;
  for (float v : c) large += std::fabs(v) > 0.5f;
  EXPECT_GT(large, 4);
}

// Lloyd's iteration on N(0, 1) (levels = means of their cells, boundaries = midpoints) converges to the tables.
TEST(KvTypes, LevelsAreLloydMaxForTheGaussian) {
  auto pdf = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); };
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  for (int n : {8, 16}) {
    std::vector<double> lv(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) lv[static_cast<size_t>(i)] = -3.0 + 6.0 * (i + 0.5) / n;
    for (int iter = 0; iter < 5000; ++iter) {
      std::vector<double> next(lv.size());
      for (int i = 0; i < n; ++i) {
        const double a = i == 0 ? -INFINITY : 0.5 * (lv[static_cast<size_t>(i - 1)] + lv[static_cast<size_t>(i)]);
        const double b = i == n - 1 ? INFINITY : 0.5 * (lv[static_cast<size_t>(i)] + lv[static_cast<size_t>(i + 1)]);
        next[static_cast<size_t>(i)] = (pdf(a) - pdf(b)) / (cdf(b) - cdf(a));
      }
      lv = next;
    }
    const float* table = n == 16 ? kTq4Levels : kTq3Levels;
    for (int i = 0; i < n; ++i) EXPECT_NEAR(table[i], lv[static_cast<size_t>(i)], 2e-4) << n << " levels, " << i;
  }
}

TEST(KvTypes, RoundTripErrorPerType) {
  const int64_t d = 256;
  const auto x = gaussian(64 * d, 7);
  EXPECT_EQ(round_trip_error(KvType::kF32, x, d), 0.0);
  EXPECT_LT(round_trip_error(KvType::kF16, x, d), 1e-3);
  EXPECT_LT(round_trip_error(KvType::kQ8_0, x, d), 0.01);
  // Lloyd-Max on N(0,1): 4 bits leave ~9.7% RMS error, 3 bits ~18.6%; the width search takes off more.
  const double q4 = round_trip_error(KvType::kQ4_0, x, d), t4 = round_trip_error(KvType::kTq4, x, d),
               t3 = round_trip_error(KvType::kTq3, x, d);
  EXPECT_LT(t4, 0.085);
  EXPECT_LT(t3, 0.17);
  EXPECT_LT(t4, q4);
  EXPECT_LT(t4, t3);
  // A head that is not a multiple of 32 (padded) and an all-zero head.
  const auto small = gaussian(10 * 16, 9);
  for (KvType t : kAllKvTypes) EXPECT_LT(round_trip_error(t, small, 16), 0.2) << kv_type_name(t);
  std::vector<float> zeros(64, 0.0f), back(64, 1.0f);
  for (KvType t : kAllKvTypes) {
    std::vector<uint8_t> buf(kv_head_bytes(t, 64));
    kv_quantize_head(t, zeros.data(), 64, buf.data());
    kv_dequantize_head(t, buf.data(), 64, back.data());
    for (float v : back) EXPECT_EQ(v, 0.0f) << kv_type_name(t);
  }
}

// The invariant the rotation is for: on keys with outlier channels, q4_0's step is set by the outlier and the
// rest of the block loses precision; the rotated type spreads it out. At 4.5 bits per value for both.
TEST(KvTypes, RotatedFourBitBeatsQ4_0OnOutlierChannels) {
  const int64_t d = 256;
  const auto x = with_outlier_channels(gaussian(64 * d, 11));
  const double q4 = round_trip_error(KvType::kQ4_0, x, d), t4 = round_trip_error(KvType::kTq4, x, d);
  EXPECT_EQ(kv_bits_per_value(KvType::kTq4), kv_bits_per_value(KvType::kQ4_0));
  EXPECT_LT(t4, 0.6 * q4) << "tq4 " << t4 << " q4_0 " << q4;
  EXPECT_LT(round_trip_error(KvType::kTq3, x, d), q4);  // even at 3.5 bits
}

}  // namespace
}  // namespace fabula
