// Sampler chain: greedy, determinism, exact kept sets of top-k / top-p / min-p, penalty math, bias, draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sample/sampler.h"

namespace fabula {
namespace {

std::vector<int32_t> ids_of(const CandidateSet& c) {
  std::vector<int32_t> v;
  for (size_t i = 0; i < c.size; ++i) v.push_back(c.items[i].id);
  return v;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0.0f;
  Sampler s(p, 4);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, PlainGreedyPicksWhatTheCandidatePathPicks) {
  // Greedy without bias or penalties skips the candidate copy (Sampler::sample): it must choose as sample_argmax
  // over the candidates does, with ties, -inf and NaN anywhere (a NaN never wins, not even in first place).
  const float nan = std::nanf(""), inf = INFINITY;
  std::vector<std::vector<float>> cases = {
      {1.0f, 3.0f, 2.0f, 3.0f}, {nan, 1.0f, 2.0f, 2.0f}, {-inf, -inf, -inf}, {0.5f, nan, 0.5f, 7.0f},
      {-inf, -2.0f, nan, -2.0f}, {inf, inf, 1.0f}, {nan, nan}, {4.0f}, {-1.0f, -0.0f, 0.0f}, {-1.0f, 0.0f, -0.0f}};
  // Longer rows reach the 8 running maxima: the largest value twice in different lanes, NaNs in others; and a NaN
  // in first place before larger values.
  std::vector<float> row(1003);
  for (size_t i = 0; i < row.size(); ++i) row[i] = float(std::sin(double(i)) * 3.0);
  row[517] = row[901] = 5.0f;
  row[12] = row[600] = nan;
  cases.push_back(row);
  row[0] = nan;
  cases.push_back(row);
  row[0] = 1.0f;
  row[1002] = 6.0f;  // the remainder past the last group of 8
  cases.push_back(row);
  for (const std::vector<float>& logits : cases) {
    SamplerParams p;
    p.temperature = 0.0f;
    Sampler s(p, logits.size());
    CandidateSet c;
    c.fill(logits);
    EXPECT_EQ(s.sample(logits), c.items[sample_argmax(c)].id) << ::testing::PrintToString(logits);
  }
  // With a bias the candidates are built as before: the ban moves the choice.
  SamplerParams biased;
  biased.temperature = 0.0f;
  biased.logit_bias = {{1, -INFINITY}};
  Sampler s(biased, 4);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f}), 3);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)) * 2.0);
  SamplerParams p;
  p.seed = 1234;
  p.top_k = 50;
  p.top_p = 0.9f;
  p.temperature = 0.8f;
  Sampler a(p, logits.size()), b(p, logits.size());
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits));
    sb.push_back(b.sample(logits));
  }
  EXPECT_EQ(sa, sb);
  a.reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 200; ++i) again.push_back(a.sample(logits));
  EXPECT_EQ(again, sa);
  p.seed = 99;
  Sampler c(p, logits.size());
  std::vector<int32_t> sc;
  for (int i = 0; i < 200; ++i) sc.push_back(c.sample(logits));
  EXPECT_NE(sc, sa);
}

TEST(SamplerSteps, TopKKeepsTheKBestSorted) {
  CandidateSet c;
  const std::vector<float> logits = {0.1f, 0.5f, 0.3f, 0.9f, 0.2f};
  c.fill(logits);
  sample_top_k(c, 2);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{3, 1}));
  EXPECT_TRUE(c.sorted);
  c.fill(logits);
  sample_top_k(c, 0);  // off
  EXPECT_EQ(c.size, 5u);
}

TEST(SamplerSteps, TopPKeepsSmallestPrefixReachingP) {
  CandidateSet c;
  const auto logits = logits_for({0.05, 0.5, 0.15, 0.2, 0.1});
  c.fill(logits);
  sample_top_p(c, 0.6f);  // 0.5 < 0.6 <= 0.5 + 0.2
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3}));
  c.fill(logits);
  sample_top_p(c, 0.8f);  // 0.7 < 0.8 <= 0.85
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3, 2}));
  c.fill(logits);
  sample_top_p(c, 0.45f);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1}));
  c.fill(logits);
  sample_top_p(c, 0.45f, /*min_keep=*/3);
  EXPECT_EQ(c.size, 3u);
}

TEST(SamplerSteps, TopPOnALargeVocabularyGrowsThePartialSort) {
  // One dominant token and 9,999 equal ones: the kept count follows from the probabilities.
  const size_t n = 10000;
  std::vector<float> logits(n, 0.0f);
  logits[5000] = 10.0f;
  const double z = std::exp(10.0) + double(n - 1);
  const double p_top = std::exp(10.0) / z, p_rest = 1.0 / z;
  const float p = 0.97f;
  size_t expect = 1;
  for (double cum = p_top; cum < double(p); cum += p_rest) ++expect;
  CandidateSet c;
  c.fill(logits);
  sample_top_p(c, p);
  ASSERT_EQ(c.size, expect);
  EXPECT_GT(expect, 300u);  // beyond the first partial-sort chunk
  EXPECT_EQ(c.items[0].id, 5000);
  // Ties among equal logits go to the lowest ids: 0, 1, 2, ... (skipping the dominant 5000).
  for (size_t i = 1; i < c.size; ++i) ASSERT_EQ(c.items[i].id, int32_t(i - 1 < 5000 ? i - 1 : i)) << i;
}

// top_p sorts only the candidates of the mass bins it needs: the same kept ids, in the same order, as sorting
// everything and summing the probabilities in that order, over flat and peaked logits, ties, -inf (banned tokens),
// min_keep and p close to 1.
TEST(SamplerSteps, TopPEqualsAFullSortOnRandomLogits) {
  std::mt19937 rng(7);
  for (int round = 0; round < 60; ++round) {
    const size_t n = round % 3 == 0 ? 262144 : size_t(1000 + rng() % 20000);
    const float sd = std::array<float, 5>{0.3f, 1.0f, 3.0f, 8.0f, 30.0f}[size_t(round) % 5];
    std::normal_distribution<float> g(0.0f, sd);
    std::vector<float> logits(n);
    for (float& x : logits) x = round % 4 == 1 ? std::round(g(rng)) : g(rng);  // rounded: many ties
    for (size_t i = 0; i < n; i += 97) logits[i] = -std::numeric_limits<float>::infinity();
    const float p = std::array<float, 4>{0.5f, 0.9f, 0.95f, 0.999f}[size_t(round) % 4];
    const size_t min_keep = round % 7 == 0 ? 500 : 1;
    // The reference: everything sorted (logit descending, id ascending), the prefix whose sum reaches p.
    std::vector<int32_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = int32_t(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return logits[size_t(a)] != logits[size_t(b)] ? logits[size_t(a)] > logits[size_t(b)] : a < b;
    });
    const float max_logit = logits[size_t(order[0])];
    double total = 0.0;
    for (float l : logits) total += std::exp(double(l - max_logit));
    size_t want = n;
    double cum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cum += std::exp(double(logits[size_t(order[i])] - max_logit)) / total;
      if (cum >= double(p) && i + 1 >= min_keep) {
        want = i + 1;
        break;
      }
    }
    CandidateSet c;
    c.fill(logits);
    sample_top_p(c, p, min_keep);
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_EQ(c.size, want);
    EXPECT_TRUE(c.sorted);
    for (size_t i = 0; i < want; ++i) ASSERT_EQ(c.items[i].id, order[i]) << i;
  }
}

TEST(SamplerSteps, MinPKeepsTokensAboveFractionOfTheMax) {
  CandidateSet c;
  c.fill(logits_for({0.5, 0.2, 0.15, 0.1, 0.05}));
  sample_min_p(c, 0.25f);  // threshold 0.125
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{0, 1, 2}));
  c.fill(logits_for({0.5, 0.2, 0.15, 0.1, 0.05}));
  sample_min_p(c, 0.9f);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{0}));
}

TEST(SamplerSteps, PenaltiesFollowLlamaCpp) {
  CandidateSet c;
  c.fill(std::vector<float>{2.0f, -1.0f, 0.5f});
  const std::pair<int32_t, int32_t> counts[] = {{0, 2}, {1, 1}};
  sample_penalties(c, counts, /*repeat=*/2.0f, /*frequency=*/0.5f, /*presence=*/0.25f);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f / 2.0f - (2 * 0.5f + 0.25f));
  EXPECT_FLOAT_EQ(c.items[1].logit, -1.0f * 2.0f - (1 * 0.5f + 0.25f));
  EXPECT_FLOAT_EQ(c.items[2].logit, 0.5f);
}

TEST(Sampler, PenaltyWindowForgetsOldTokens) {
  SamplerParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 1;
  Sampler s(p, 2);
  const std::vector<float> logits = {1.0f, 0.9f};
  EXPECT_EQ(s.sample(logits), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(logits), 1);  // 1.0 / 2 < 0.9
  s.accept(1);                     // window now holds only id 1
  EXPECT_EQ(s.sample(logits), 0);  // 0.9 / 2 < 1.0
}

TEST(Sampler, LogitBiasBansAToken) {
  SamplerParams p;
  p.temperature = 0.0f;
  p.logit_bias = {{2, -INFINITY}};
  Sampler s(p, 3);
  EXPECT_EQ(s.sample(std::vector<float>{0.0f, 1.0f, 5.0f}), 1);
  p.temperature = 1.0f;
  p.logit_bias = {{0, -INFINITY}, {1, -INFINITY}};
  Sampler t(p, 3);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t.sample(std::vector<float>{3.0f, 3.0f, 0.0f}), 2);
}

TEST(SamplerSteps, DrawFollowsCumulativeProbabilities) {
  CandidateSet c;
  c.fill(logits_for({0.5, 0.3, 0.2}));
  EXPECT_EQ(sample_draw(c, 0.1), 0);
  EXPECT_EQ(sample_draw(c, 0.6), 1);
  EXPECT_EQ(sample_draw(c, 0.95), 2);
}

TEST(SamplerSteps, TemperatureScalesLogits) {
  CandidateSet c;
  c.fill(std::vector<float>{1.0f, -2.0f});
  sample_temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -4.0f);
}

TEST(Sampler, EmpiricalFrequenciesMatchProbabilities) {
  SamplerParams p;
  p.seed = 7;
  Sampler s(p, 3);
  const auto logits = logits_for({0.7, 0.2, 0.1});
  int counts[3] = {0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits)];
  EXPECT_NEAR(counts[0] / double(n), 0.7, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.2, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.1, 0.02);
}

}  // namespace
}  // namespace fabula
