// fp16 / bf16 conversions: exhaustive round trips and round-to-nearest-even at ties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tensor/fp16.h"

namespace fabula {
namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
    } else {
      EXPECT_EQ(fp32_to_fp16(f), h) << h;
    }
  }
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7C00), INFINITY);
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);  // rounds down to max
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // the tie rounds to even = inf
  EXPECT_EQ(fp32_to_fp16(1e-9f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Fp16, TiesRoundToEven) {
  // 1 + 2^-11 is halfway between 1 (mantissa 0, even) and 1 + 2^-10 (odd): goes down.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): goes up.
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Just above a tie goes up.
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  // Subnormal tie: 2^-25 is halfway between 0 and the smallest subnormal: to even (0).
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);
}

#ifdef __FLT16_MAX__
TEST(Fp16, MatchesCompilerFloat16OnRandomFloats) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float f = bits_to_float(rng());
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    ASSERT_EQ(fp32_to_fp16(f), bits) << f;
  }
}
#endif

TEST(Bf16, ConversionsRoundToNearestEven) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F7FFFFF)), 0x7F80);  // max float rounds to inf
  const uint16_t nan = fp32_to_bf16(bits_to_float(0x7F800001));  // signalling NaN whose payload is in the low bits
  EXPECT_TRUE(std::isnan(bf16_to_fp32(nan)));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h);
    }
  }
}

}  // namespace
}  // namespace fabula
