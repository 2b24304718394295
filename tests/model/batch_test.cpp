// Continuous batching (model/model.h Batch): several sessions decoded in one forward step give the same greedy ids
// and, within 1e-3, the same logits as each session decoding alone; prompt chunks and decode tokens mix in one
// step, the sliding-window ring and the routed experts (de-duplicated across the batch) stay per sequence.
#include <gtest/gtest.h>

#include <random>

#include "model_test_util.h"
#include "tensor/matmul.h"
#include "tools/quantize.h"

namespace fabula {
namespace {

using namespace model_test;

const std::string kDemoModel = std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf";

struct Run {
  std::vector<int32_t> ids;                 // greedy continuation
  std::vector<std::vector<float>> logits;   // the logits each id was chosen from
};

// The reference: one session alone, the prompt in one decode, then one token per decode.
Run run_alone(const Model& model, const std::vector<int32_t>& prompt, int n_gen, SessionOptions opt) {
  Session s(model, opt);
  Run out;
  EXPECT_TRUE(s.decode(prompt, LogitsMode::kLast).ok());
  for (int i = 0; i < n_gen; ++i) {
    out.logits.emplace_back(s.last_logits().begin(), s.last_logits().end());
    const int32_t id = argmax(s.last_logits());
    out.ids.push_back(id);
    const int32_t one[1] = {id};
    EXPECT_TRUE(s.decode(one, LogitsMode::kLast).ok());
  }
  return out;
}

// The same prompts through one Batch: sequence i joins at round start[i] (its prompt is chunked into the steps
// where the others decode one token each), then every round decodes one greedy token of every running sequence.
std::vector<Run> run_batched(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
                             const std::vector<int>& start, int n_gen, SessionOptions opt, int64_t n_batch) {
  std::vector<Session> sessions;
  for (size_t i = 0; i < prompts.size(); ++i) sessions.emplace_back(model, opt);
  Batch batch(model, BatchOptions{n_batch});
  std::vector<Run> out(prompts.size());
  std::vector<int32_t> next(prompts.size());
  for (int round = 0;; ++round) {
    std::vector<BatchItem> items;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (round < start[i] || static_cast<int>(out[i].ids.size()) >= n_gen) continue;
      if (round == start[i]) items.push_back({&sessions[i], prompts[i], LogitsMode::kLast});
      else items.push_back({&sessions[i], std::span<const int32_t>(&next[i], 1), LogitsMode::kLast});
    }
    if (items.empty() && round > *std::max_element(start.begin(), start.end())) break;
    auto st = batch.decode(items);
    EXPECT_TRUE(st.ok()) << st.error().to_string();
    for (const BatchItem& item : items) {
      const size_t i = static_cast<size_t>(item.session - sessions.data());
      std::span<const float> l = sessions[i].last_logits();
      out[i].logits.emplace_back(l.begin(), l.end());
      next[i] = argmax(l);
      out[i].ids.push_back(next[i]);
    }
  }
  return out;
}

// Sequence i joins at round start[i] with a prompt of lengths[i] tokens.
void expect_batch_invariant(const Model& model, SessionOptions opt, int64_t n_batch, std::vector<size_t> lengths,
                            std::vector<int> start = {0, 0, 3, 5}) {
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < lengths.size(); ++i) prompts.push_back(random_tokens(lengths[i], model.n_vocab(), 1 + i));
  const int n_gen = 12;
  const std::vector<Run> batched = run_batched(model, prompts, start, n_gen, opt, n_batch);
  double worst = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Run alone = run_alone(model, prompts[i], n_gen, opt);
    EXPECT_EQ(batched[i].ids, alone.ids) << "sequence " << i;
    ASSERT_EQ(batched[i].logits.size(), alone.logits.size());
    for (size_t t = 0; t < alone.logits.size(); ++t) {
      const double diff = max_abs_diff(batched[i].logits[t], alone.logits[t]);
      EXPECT_LE(diff, 1e-3) << "sequence " << i << " token " << t;
      worst = std::max(worst, diff);
    }
  }
  std::printf("batch invariance: %zu sequences x %d tokens, max |logit difference| %.3g\n", prompts.size(), n_gen,
              worst);
}

TEST(Batch, DemoNarratorGreedyIdsAndLogitsMatchEachSequenceAlone) {
  auto m = Model::load(kDemoModel);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  SessionOptions opt;
  opt.n_ctx = 160;
  opt.n_ubatch = 16;  // prompts in several chunks, every step short
  expect_batch_invariant(**m, opt, /*n_batch=*/24, {5, 23, 40, 1});
  // Long chunks (the GEMM path alone) join steps of single decode tokens (the row-by-row path alone).
  ASSERT_LE(matmul_gemm_min_tokens(), 40);
  opt.n_ubatch = 64;
  expect_batch_invariant(**m, opt, /*n_batch=*/96, {5, 23, 40, 70});
  // Four long prompts at once, with decode tokens joining.
  expect_batch_invariant(**m, opt, /*n_batch=*/256, {40, 50, 70, 35}, {0, 0, 0, 2});
}

// The demo narrator quantized as the big narrators ship (Q4_K_M: Q4_K / Q6_K rows, fallbacks where a row holds no
// 256-block): the K-quant products, alone and batched.
TEST(Batch, DemoNarratorQ4KMMatchesEachSequenceAlone) {
  ScratchDir dir("batch-q4km");
  auto in = GgufFile::open(kDemoModel);
  ASSERT_TRUE(in.ok()) << in.error().to_string();
  auto plan = plan_quantization(quant_inputs(*in), QuantFtype::kQ4_K_M, quant_model_info(*in));
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  QuantizeOptions qo;
  qo.n_threads = 2;
  qo.progress = false;
  qo.log = [](const std::string&) {};
  ASSERT_TRUE(quantize_gguf(*in, *plan, dir / "demo-q4km.gguf", qo).ok());
  auto m = Model::load(dir / "demo-q4km.gguf");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  SessionOptions opt;
  opt.n_ctx = 160;
  opt.n_ubatch = 64;
  expect_batch_invariant(**m, opt, /*n_batch=*/96, {5, 23, 40, 70});
  expect_batch_invariant(**m, opt, /*n_batch=*/256, {40, 50, 70, 35}, {0, 0, 0, 2});
}

class BatchTiny : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchTiny, GreedyIdsAndLogitsMatchEachSequenceAlone) {
  ScratchDir dir("batch-tiny");
  auto m = Model::load(convert_tiny(dir, GetParam()));
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  ASSERT_GT((*m)->info().n_expert, 0);  // the routed experts run once per step over all sequences' rows
  SessionOptions opt;
  opt.n_ctx = 128;
  opt.n_ubatch = 8;  // prompts longer than the sliding window (8) and than one step
  expect_batch_invariant(**m, opt, /*n_batch=*/12, {5, 23, 40, 1});
  opt.n_ubatch = 48;
  expect_batch_invariant(**m, opt, /*n_batch=*/64, {5, 23, 40, 70});
}

// With the GEMM from 8 rows on, chunks, routed experts and the step's short rows all cross the threshold: long
// chunks whose rows pick an expert 8 times or more (the expert's GEMM alone) share it with rows that take its tiles,
// and more than 8 decode tokens in one step still take the tiles, as each does alone.
TEST_P(BatchTiny, EachSequenceKeepsItsPathsWhenTheStepCrossesTheGemmThreshold) {
  ScratchDir dir("batch-tiny-gemm");
  auto m = Model::load(convert_tiny(dir, GetParam()));
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const int64_t saved = matmul_gemm_min_tokens();
  set_matmul_gemm_min_tokens(8);
  SessionOptions opt;
  opt.n_ctx = 128;
  opt.n_ubatch = 24;
  expect_batch_invariant(**m, opt, /*n_batch=*/128, {5, 23, 40, 12, 9, 30}, {0, 0, 0, 1, 2, 2});
  std::vector<size_t> lengths(12);
  for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = 2 + i % 5;
  expect_batch_invariant(**m, opt, /*n_batch=*/128, lengths, std::vector<int>(lengths.size(), 0));
  set_matmul_gemm_min_tokens(saved);
}

INSTANTIATE_TEST_SUITE_P(Types, BatchTiny, ::testing::Values("f32", "q8_0"));

TEST(Batch, AllLogitsRowsAndRollbackMatchTheSessionAlone) {
  ScratchDir dir("batch-all");
  auto m = Model::load(convert_tiny(dir, "f32"));
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const Model& model = **m;
  SessionOptions opt;
  opt.n_ctx = 64;
  opt.n_ubatch = 8;
  const auto a = random_tokens(19, model.n_vocab(), 7), b = random_tokens(6, model.n_vocab(), 8);
  Session alone(model, opt);
  ASSERT_TRUE(alone.decode(a, LogitsMode::kAll).ok());
  const std::vector<float> want(alone.logits().begin(), alone.logits().end());

  Session sa(model, opt), sb(model, opt);
  Batch batch(model, BatchOptions{10});
  const BatchItem items[2] = {{&sb, b, LogitsMode::kNone}, {&sa, a, LogitsMode::kAll}};
  ASSERT_TRUE(batch.decode(items).ok());
  EXPECT_EQ(sa.n_past(), 19);
  EXPECT_EQ(sb.n_past(), 6);
  EXPECT_EQ(sb.logits_rows(), 0);
  ASSERT_EQ(sa.logits_rows(), 19);
  EXPECT_LE(max_abs_diff(sa.logits(), want), 1e-3);

  // A rewind in one sequence leaves the other where it was: roll a back and decode its last token again.
  ASSERT_TRUE(sa.truncate(18).ok());
  const BatchItem again[2] = {{&sa, std::span<const int32_t>(&a[18], 1), LogitsMode::kLast},
                              {&sb, std::span<const int32_t>(&a[0], 1), LogitsMode::kLast}};
  ASSERT_TRUE(batch.decode(again).ok());
  EXPECT_EQ(sb.n_past(), 7);
  const size_t V = static_cast<size_t>(model.n_vocab());
  EXPECT_LE(max_abs_diff(sa.last_logits(), std::span<const float>(want).subspan(18 * V, V)), 1e-3);
}

TEST(Batch, BadItemsAreRefusedBeforeAnySessionMoves) {
  ScratchDir dir("batch-bad");
  auto m = Model::load(convert_tiny(dir, "f32"));
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const Model& model = **m;
  SessionOptions opt;
  opt.n_ctx = 16;
  Session s1(model, opt), s2(model, opt);
  Batch batch(model);
  const std::vector<int32_t> ok_ids = {1, 2, 3}, bad_ids = {1, 9999}, long_ids(17, 1);

  const BatchItem twice[2] = {{&s1, ok_ids}, {&s1, ok_ids}};
  auto st = batch.decode(twice);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("twice"), std::string::npos) << st.error().message;

  const BatchItem bad_token[2] = {{&s1, ok_ids}, {&s2, bad_ids}};
  st = batch.decode(bad_token);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("vocabulary"), std::string::npos) << st.error().message;

  const BatchItem too_long[2] = {{&s1, ok_ids}, {&s2, long_ids}};
  st = batch.decode(too_long);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kOutOfRange);
  EXPECT_EQ(s1.n_past(), 0);
  EXPECT_EQ(s2.n_past(), 0);

  ScratchDir other_dir("batch-other");
  auto other = Model::load(convert_tiny(other_dir, "f32"));
  ASSERT_TRUE(other.ok());
  Session foreign(**other, opt);
  const BatchItem mixed[2] = {{&s1, ok_ids}, {&foreign, ok_ids}};
  EXPECT_FALSE(batch.decode(mixed).ok());
  EXPECT_EQ(s1.n_past(), 0);
}

}  // namespace
}  // namespace fabula
