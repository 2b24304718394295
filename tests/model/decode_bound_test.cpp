// `fabula bench --bound-probe`'s arithmetic on made-up chunks: each chunk's rate and efficiency against the mean of
// its two reads, which chunks count as stable and fast, and the median / min / max over them.
#include <gtest/gtest.h>

#include "model/decode_bound.h"

namespace fabula {
namespace {

TEST(DecodeBound, AChunksEfficiencyIsItsWeightRateOverItsReadsMean) {
  // 16 steps in 2 s of 5 GB each: 8 t/s, 40 GB/s, against reads of 80 and 76 (mean 78).
  const BoundChunkRate r = bound_chunk_rate({16, 2.0, 80.0, 76.0}, 5e9, 72.0);
  EXPECT_DOUBLE_EQ(r.steps_per_s, 8.0);
  EXPECT_DOUBLE_EQ(r.weight_gbs, 40.0);
  EXPECT_DOUBLE_EQ(r.probe_mean_gbs, 78.0);
  EXPECT_DOUBLE_EQ(r.efficiency, 40.0 / 78.0);
  EXPECT_TRUE(r.stable_fast);
}

TEST(DecodeBound, StableFastNeedsBothReadsFastAndClose) {
  EXPECT_TRUE(bound_chunk_rate({1, 1.0, 72.0, 72.0}, 1e9, 72.0).stable_fast);   // the threshold itself counts
  EXPECT_FALSE(bound_chunk_rate({1, 1.0, 80.0, 71.9}, 1e9, 72.0).stable_fast);  // one slow read
  EXPECT_FALSE(bound_chunk_rate({1, 1.0, 45.0, 46.0}, 1e9, 72.0).stable_fast);  // steady but slow
  EXPECT_TRUE(bound_chunk_rate({1, 1.0, 90.0, 81.5}, 1e9, 72.0).stable_fast);   // 8.5 apart: under 10% of 90
  EXPECT_FALSE(bound_chunk_rate({1, 1.0, 90.0, 80.9}, 1e9, 72.0).stable_fast);  // 9.1 apart: over 10% of 90
  EXPECT_FALSE(bound_chunk_rate({1, 1.0, 73.0, 100.0}, 1e9, 72.0).stable_fast); // both fast, far apart
  EXPECT_FALSE(bound_chunk_rate({1, 1.0, 0.0, 0.0}, 1e9, 0.0).stable_fast);     // no reads at all
}

TEST(DecodeBound, FastMeansWithinTheSpreadOfTheRunsFastestRead) {
  EXPECT_DOUBLE_EQ(stable_fast_min_gbs({{1, 1.0, 30.0, 36.0}, {1, 1.0, 36.0, 40.0}, {1, 1.0, 40.0, 20.0}}), 36.0);
  EXPECT_DOUBLE_EQ(stable_fast_min_gbs({}), 0.0);
}

TEST(DecodeBound, SummaryTakesMedianMinMaxOverAllAndOverStableFastChunks) {
  // 1 GB per step, 1 s per chunk: weight GB/s = steps. The fastest read is 84, so fast is >= 75.6.
  const std::vector<BoundChunk> chunks = {
      {40, 1.0, 80.0, 80.0},  // 50%, stable fast
      {60, 1.0, 80.0, 80.0},  // 75%, stable fast
      {45, 1.0, 50.0, 40.0},  // 100%, slow
      {20, 1.0, 80.0, 80.0},  // 25%, stable fast
      {30, 1.0, 84.0, 63.0},  // 30/73.5, one read slow and 25% apart
  };
  const BoundSummary s = summarize_bound(chunks, 1e9);
  EXPECT_EQ(s.all.count, 5);
  EXPECT_DOUBLE_EQ(s.all.median, 0.5);
  EXPECT_DOUBLE_EQ(s.all.min, 0.25);
  EXPECT_DOUBLE_EQ(s.all.max, 1.0);
  EXPECT_DOUBLE_EQ(s.stable_fast_min_gbs, 0.9 * 84.0);
  EXPECT_EQ(s.stable_fast.count, 3);
  EXPECT_DOUBLE_EQ(s.stable_fast.median, 0.5);
  EXPECT_DOUBLE_EQ(s.stable_fast.min, 0.25);
  EXPECT_DOUBLE_EQ(s.stable_fast.max, 0.75);

  // An even count: the mean of the two middle ones.
  const BoundSummary even = summarize_bound({chunks[0], chunks[1]}, 1e9);
  EXPECT_DOUBLE_EQ(even.all.median, 0.625);
}

TEST(DecodeBound, TheSameRunAtLowerReadRatesKeepsItsStableChunks) {
  // Every read and rate at 40% of the run above (a machine whose reads top out near 34 GB/s): the same chunks are
  // stable and fast, with the same efficiencies.
  const std::vector<BoundChunk> chunks = {
      {16, 1.0, 32.0, 32.0}, {24, 1.0, 32.0, 32.0}, {18, 1.0, 20.0, 16.0}, {8, 1.0, 32.0, 32.0}, {12, 1.0, 33.6, 25.2},
  };
  const BoundSummary s = summarize_bound(chunks, 1e9);
  EXPECT_EQ(s.stable_fast.count, 3);
  EXPECT_DOUBLE_EQ(s.stable_fast.median, 0.5);
  EXPECT_DOUBLE_EQ(s.stable_fast.min, 0.25);
  EXPECT_DOUBLE_EQ(s.stable_fast.max, 0.75);
}

TEST(DecodeBound, NoChunksGiveACountOfZero) {
  const BoundSummary s = summarize_bound({}, 1e9);
  EXPECT_EQ(s.all.count, 0);
  EXPECT_EQ(s.stable_fast.count, 0);
  EXPECT_EQ(s.all.median, 0);
}

}  // namespace
}  // namespace fabula
