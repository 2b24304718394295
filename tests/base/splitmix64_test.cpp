// base/splitmix64.h against the published SplitMix64 stream (the reference C code by Sebastiano Vigna, seed 0).
#include <gtest/gtest.h>

#include "base/splitmix64.h"

namespace fabula {
namespace {

TEST(SplitMix64, MatchesTheReferenceStream) {
  uint64_t state = 0;
  EXPECT_EQ(splitmix64(state), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(splitmix64(state), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(splitmix64(state), 0x06C45D188009454Full);
  EXPECT_EQ(state, 3 * 0x9E3779B97F4A7C15ull);
}

TEST(SplitMix64, TheMixIsTheStepWithoutTheIncrement) {
  uint64_t state = 41;
  const uint64_t next = splitmix64(state);
  EXPECT_EQ(splitmix64_mix(state), next);
  EXPECT_NE(splitmix64_mix(1), splitmix64_mix(2));
}

}  // namespace
}  // namespace fabula
