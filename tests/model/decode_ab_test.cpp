// `fabula bench --ab-streams`'s arithmetic on made-up step times: the ABBA order, each quad's t(A) / t(B), and the
// median, quartiles and whole-run ratio over the quads.
#include <gtest/gtest.h>

#include "model/decode_ab.h"

namespace fabula {
namespace {

TEST(DecodeAb, StepsGoABBA) {
  const bool expected[] = {false, true, true, false, false, true, true, false};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(abba_takes_b(i), expected[i]) << i;
}

TEST(DecodeAb, AQuadsRatioIsAsTwoStepsOverBs) {
  // A steps 100 and 110, B steps 90 and 95: 210 / 185.
  const AbbaSummary s = summarize_abba({100, 90, 95, 110});
  EXPECT_EQ(s.quads, 1);
  EXPECT_DOUBLE_EQ(s.median, 210.0 / 185.0);
  EXPECT_DOUBLE_EQ(s.q1, 210.0 / 185.0);
  EXPECT_DOUBLE_EQ(s.q3, 210.0 / 185.0);
  EXPECT_DOUBLE_EQ(s.whole, 210.0 / 185.0);
}

TEST(DecodeAb, DriftThatBothSettingsShareCancels) {
  // The host slows down step by step (+1% a step); A and B cost the same: every quad's ratio is near 1 although
  // the later quads are much slower, while comparing the first half of the run with the second would not be.
  std::vector<double> steps;
  for (int i = 0; i < 40; ++i) steps.push_back(100.0 * (1 + 0.01 * i));
  const AbbaSummary s = summarize_abba(steps);
  EXPECT_EQ(s.quads, 10);
  EXPECT_NEAR(s.median, 1.0, 1e-12);  // (t + t+3) / (t+1 + t+2) is exactly 1 for a linear drift
  EXPECT_NEAR(s.whole, 1.0, 1e-12);
}

TEST(DecodeAb, MedianAndQuartilesAreOverTheQuads) {
  // Five quads whose ratios are 1.0, 1.1, 1.2, 1.3, 1.4 (in shuffled order); a trailing part quad is left out.
  std::vector<double> steps;
  for (const double r : {1.3, 1.0, 1.4, 1.2, 1.1}) {
    for (const double t : {50.0 * r, 50.0, 50.0, 50.0 * r}) steps.push_back(t);
  }
  steps.push_back(1e9);  // an unfinished quad
  steps.push_back(1.0);
  const AbbaSummary s = summarize_abba(steps);
  EXPECT_EQ(s.quads, 5);
  EXPECT_NEAR(s.median, 1.2, 1e-12);
  EXPECT_NEAR(s.q1, 1.1, 1e-12);  // rank 5 * 0.25 -> the second
  EXPECT_NEAR(s.q3, 1.3, 1e-12);  // rank 5 * 0.75 -> the fourth
  EXPECT_NEAR(s.whole, (100.0 * (1.3 + 1.0 + 1.4 + 1.2 + 1.1)) / 500.0, 1e-12);
}

TEST(DecodeAb, AnEvenCountOfQuadsTakesTheMiddleTwo) {
  std::vector<double> steps;
  for (const double r : {1.0, 2.0}) {
    for (const double t : {r, 1.0, 1.0, r}) steps.push_back(t);
  }
  EXPECT_DOUBLE_EQ(summarize_abba(steps).median, 1.5);
}

TEST(DecodeAb, NoWholeQuadIsNoSummary) {
  for (const std::vector<double>& steps : {std::vector<double>{}, std::vector<double>{1, 2, 3}}) {
    const AbbaSummary s = summarize_abba(steps);
    EXPECT_EQ(s.quads, 0);
    EXPECT_EQ(s.median, 0);
    EXPECT_EQ(s.whole, 0);
  }
  EXPECT_EQ(summarize_abba({1, 0, 0, 1}).quads, 0);  // B took no time at all: no ratio to take
}

}  // namespace
}  // namespace fabula
