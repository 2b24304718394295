// The forward pass against transformers on the tiny Gemma 4 MoE (tests/data/gemma4-tiny): logits, per-layer hidden
// states, greedy continuations, incremental decoding, sliding-window ring buffer, rollback.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "model/gemma4/ops.h"
#include "model_test_util.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

using namespace model_test;

class Gemma4Tiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir("tiny");
    const std::string path = convert_tiny(*dir_, "f32");
    auto m = Model::load(path);
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    model_ = m->release();
    golden_json_ = new nlohmann::json(read_json(data_path("gemma4-tiny/golden.json")));
    auto g = SafetensorsFile::open(data_path("gemma4-tiny/golden.safetensors"));
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    golden_ = new SafetensorsFile(std::move(*g));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete golden_;
    delete golden_json_;
    delete dir_;
  }

  static std::vector<std::vector<int32_t>> sequences() {
    std::vector<std::vector<int32_t>> out;
    for (const auto& s : (*golden_json_)["sequences"]) out.push_back(s.get<std::vector<int32_t>>());
    return out;
  }
  static std::vector<float> full_logits(const std::vector<int32_t>& ids, SessionOptions opt = {}) {
    Session s(*model_, opt);
    auto st = s.decode(ids, LogitsMode::kAll);
    EXPECT_TRUE(st.ok()) << st.error().to_string();
    return std::vector<float>(s.logits().begin(), s.logits().end());
  }

  static ScratchDir* dir_;
  static Model* model_;
  static SafetensorsFile* golden_;
  static nlohmann::json* golden_json_;
};
ScratchDir* Gemma4Tiny::dir_ = nullptr;
Model* Gemma4Tiny::model_ = nullptr;
SafetensorsFile* Gemma4Tiny::golden_ = nullptr;
nlohmann::json* Gemma4Tiny::golden_json_ = nullptr;

TEST_F(Gemma4Tiny, HyperParametersComeFromTheGguf) {
  const Gemma4HParams& hp = gemma4(*model_).hparams();
  EXPECT_EQ(hp.n_layer, 6);
  EXPECT_EQ(hp.n_vocab, 512);
  EXPECT_EQ(hp.sliding, (std::vector<bool>{true, true, false, true, true, false}));
  EXPECT_EQ(hp.n_head_kv, (std::vector<int64_t>{2, 2, 1, 2, 2, 1}));
  EXPECT_EQ(hp.head_dim_swa, 16);
  EXPECT_EQ(hp.head_dim_full, 32);
  EXPECT_EQ(hp.sliding_window, 8);
  EXPECT_EQ(hp.n_expert, 8);
  EXPECT_EQ(hp.n_expert_used, 2);
  EXPECT_EQ(hp.n_ff_exp, 24);
  EXPECT_FLOAT_EQ(hp.final_softcap, 30.0);
  EXPECT_FALSE(hp.rope_inv_freq_bf16);  // an fp32 checkpoint
  // Full layers have K=V (no attn_v); sliding layers have their own V.
  EXPECT_EQ(gemma4(*model_).weights().layers[2].attn_v.data, nullptr);
  EXPECT_NE(gemma4(*model_).weights().layers[0].attn_v.data, nullptr);
  // Proportional RoPE: 4 of 16 pairs rotate for head_dim 32 and partial_rotary_factor 0.25.
  const auto& f = gemma4(*model_).weights().rope_freqs;
  ASSERT_EQ(f.size(), 16u);
  EXPECT_EQ(f[3], 1.0f);
  EXPECT_GT(f[4], 1e29f);
}

TEST_F(Gemma4Tiny, LogitsMatchTransformers) {
  const auto seqs = sequences();
  ASSERT_EQ(seqs.size(), 3u);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto logits = full_logits(seqs[s]);
    const auto golden = golden_tensor(*golden_, "logits." + std::to_string(s));
    ASSERT_EQ(logits.size(), golden.size());
    EXPECT_LE(max_abs_diff(logits, golden), 1e-3) << "sequence " << s;
  }
}

TEST_F(Gemma4Tiny, HiddenStatesAfterEveryLayerMatchTransformers) {
  const auto seqs = sequences();
  const int64_t E = gemma4(*model_).hparams().n_embd, n_layer = gemma4(*model_).hparams().n_layer;
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<std::vector<float>> ours(static_cast<size_t>(n_layer + 2));
    Session session(*model_);
    session.set_hidden_hook([&](int index, int64_t, const float* data, int64_t rows, int64_t n_embd) {
      ours[static_cast<size_t>(index)].assign(data, data + rows * n_embd);
    });
    ASSERT_TRUE(session.decode(seqs[s], LogitsMode::kLast).ok());
    // golden hidden.S.L: L = 0 embeddings, 1..n_layer-1 layer outputs, n_layer = after the final norm.
    for (int64_t L = 0; L <= n_layer; ++L) {
      const auto golden = golden_tensor(*golden_, "hidden." + std::to_string(s) + "." + std::to_string(L));
      const auto& mine = ours[static_cast<size_t>(L == n_layer ? n_layer + 1 : L)];
      ASSERT_EQ(mine.size(), golden.size()) << "layer " << L;
      for (size_t t = 0; t < seqs[s].size(); ++t) {
        EXPECT_GE(cosine(mine.data() + t * E, golden.data() + t * E, static_cast<size_t>(E)), 0.99999)
            << "sequence " << s << " hidden " << L << " token " << t;
      }
    }
  }
}

TEST_F(Gemma4Tiny, GreedyContinuationMatchesTransformers) {
  const auto seqs = sequences();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto expected = (*golden_json_)["greedy"][s].get<std::vector<int32_t>>();
    Session session(*model_);
    ASSERT_TRUE(session.decode(seqs[s]).ok());
    std::vector<int32_t> got;
    for (size_t i = 0; i < expected.size(); ++i) {
      const int32_t id = argmax(session.last_logits());
      got.push_back(id);
      ASSERT_TRUE(session.decode(std::span<const int32_t>(&id, 1)).ok());
    }
    EXPECT_EQ(got, expected) << "sequence " << s;
  }
}

TEST_F(Gemma4Tiny, IncrementalDecodingMatchesTheFullPass) {
  const int64_t V = model_->n_vocab();
  for (const auto& ids : sequences()) {
    const auto full = full_logits(ids);
    Session session(*model_);
    const size_t split = ids.size() / 2;
    ASSERT_TRUE(session.decode(std::span<const int32_t>(ids.data(), split), LogitsMode::kAll).ok());
    std::vector<float> inc(session.logits().begin(), session.logits().end());
    for (size_t t = split; t < ids.size(); ++t) {
      ASSERT_TRUE(session.decode(std::span<const int32_t>(&ids[t], 1)).ok());
      inc.insert(inc.end(), session.last_logits().begin(), session.last_logits().end());
    }
    ASSERT_EQ(inc.size(), ids.size() * static_cast<size_t>(V));
    EXPECT_LE(max_abs_diff(inc, full), 1e-4);
  }
}

// Sequence 1 has 40 tokens and the window is 8: with 3-token steps the sliding layers' ring (8 - 1 + 3 slots)
// wraps many times, and a step's queries must still see exactly their own window.
TEST_F(Gemma4Tiny, SmallStepsWrapTheSlidingRingWithoutChangingLogits) {
  const auto ids = sequences()[1];
  const auto full = full_logits(ids);
  SessionOptions opt;
  opt.n_ubatch = 3;
  EXPECT_LE(max_abs_diff(full_logits(ids, opt), full), 1e-4);
  opt.n_ubatch = 1;
  EXPECT_LE(max_abs_diff(full_logits(ids, opt), full), 1e-4);
}

TEST_F(Gemma4Tiny, ThreadCountDoesNotChangeLogits) {
  // Bit for bit: every product row and attention block is computed whole by whichever thread takes it (the
  // threads steal work from each other, so each run splits it differently too).
  const auto ids = sequences()[1];
  ThreadPool one(1), two(2), three(3);
  Session a(*model_, {}, &one);
  ASSERT_TRUE(a.decode(ids, LogitsMode::kAll).ok());
  for (ThreadPool* pool : {&two, &three, &two}) {
    Session b(*model_, {}, pool);
    ASSERT_TRUE(b.decode(ids, LogitsMode::kAll).ok());
    EXPECT_EQ(max_abs_diff(a.logits(), b.logits()), 0.0) << pool->size() << " threads";
  }
}

TEST_F(Gemma4Tiny, TruncateRollsBackWithinTheRing) {
  const auto ids = sequences()[1];
  SessionOptions opt;
  opt.n_ubatch = 4;
  Session session(*model_, opt);
  ASSERT_TRUE(session.decode(ids, LogitsMode::kLast).ok());
  const std::vector<float> expected(session.last_logits().begin(), session.last_logits().end());
  // Rolling back up to n_ubatch positions is exact.
  ASSERT_TRUE(session.truncate(static_cast<int64_t>(ids.size()) - 3).ok());
  ASSERT_TRUE(session.decode(std::span<const int32_t>(ids.data() + ids.size() - 3, 3)).ok());
  EXPECT_LE(max_abs_diff(session.last_logits(), expected), 1e-5);
  // Further back the ring no longer holds the window: an error, not wrong logits.
  auto st = session.truncate(10);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("roll back"), std::string::npos) << st.error().message;
  // reset() always works.
  session.reset();
  ASSERT_TRUE(session.decode(ids, LogitsMode::kLast).ok());
  EXPECT_LE(max_abs_diff(session.last_logits(), expected), 1e-5);
}

TEST_F(Gemma4Tiny, BadInputsAreErrors) {
  SessionOptions opt;
  opt.n_ctx = 8;
  Session session(*model_, opt);
  const std::vector<int32_t> too_long(9, 5);
  auto st = session.decode(too_long);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kOutOfRange);
  const std::vector<int32_t> bad_id = {2, 512};
  st = session.decode(bad_id);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("512"), std::string::npos);
  EXPECT_EQ(session.n_past(), 0);
}

// With proportional RoPE (partial rotary factor 0.25 on full-attention layers) only the first int(0.25 * 512 / 2) = 64 pairs of a 512-dim full-layer
// head rotate; dims 64..255 and 320..511 pass through unchanged at any position.
TEST(Gemma4Rope, ProportionalRopeLeavesTheUnrotatedDimsAlone) {
  Gemma4HParams hp;
  hp.head_dim_full = 512;
  hp.partial_rotary_full = 0.25;
  const auto factors = gemma4_rope_freqs(hp);
  ASSERT_EQ(factors.size(), 256u);
  std::vector<float> inv(256);
  for (size_t i = 0; i < 256; ++i) inv[i] = static_cast<float>(std::pow(1e6, -2.0 * i / 512.0)) / factors[i];
  std::vector<float> x(512), y;
  for (size_t i = 0; i < 512; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
  for (int64_t pos : {1, 17, 1000, 200000}) {
    y = x;
    ops::rope_neox(y.data(), 512, inv.data(), pos);
    for (size_t i = 0; i < 512; ++i) {
      const bool rotated = i < 64 || (i >= 256 && i < 320);
      if (!rotated) {
        EXPECT_NEAR(y[i], x[i], 1e-6) << "dim " << i << " pos " << pos;
      }
    }
    EXPECT_GT(std::fabs(y[1] - x[1]) + std::fabs(y[257] - x[257]), 1e-3) << "pos " << pos;
  }
}

// The router's one-pass top-k picks the same experts in the same order as k passes of argmax, ties included.
TEST(Gemma4Router, TopKEqualsRepeatedArgmax) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 130), k = 1 + static_cast<int64_t>(rng() % std::min<int64_t>(n, 9));
    std::vector<float> p(static_cast<size_t>(n));
    for (auto& v : p) v = static_cast<float>(rng() % 7) * 0.125f + (iter % 2 ? static_cast<float>(rng() % 1000) * 1e-4f : 0.0f);
    std::vector<int32_t> idx(static_cast<size_t>(k)), want_idx(idx.size());
    std::vector<float> val(idx.size()), want_val(idx.size());
    ops::top_k(p.data(), n, k, idx.data(), val.data());
    ops::top_k_ref(p.data(), n, k, want_idx.data(), want_val.data());
    ASSERT_EQ(idx, want_idx) << "iter " << iter << " n " << n << " k " << k;
    ASSERT_EQ(val, want_val) << "iter " << iter;
  }
}

// The forward pass computes a row's RoPE angles once for all its heads: the same floats as rope_neox, per head.
TEST(Gemma4Rope, SharedAnglesRotateExactlyAsRopeNeox) {
  for (int64_t n_rot : {int64_t{256}, int64_t{512}}) {
    std::vector<float> inv(static_cast<size_t>(n_rot / 2));
    for (size_t i = 0; i < inv.size(); ++i) inv[i] = static_cast<float>(std::pow(1e4, -2.0 * i / n_rot));
    std::vector<float> cs(static_cast<size_t>(n_rot));
    for (int64_t pos : {0, 1, 17, 1000, 200000}) {
      ops::rope_angles(n_rot, inv.data(), pos, cs.data());
      for (int head = 0; head < 3; ++head) {
        std::vector<float> x(static_cast<size_t>(n_rot));
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i) + head) + 0.1f;
        std::vector<float> want = x;
        ops::rope_neox(want.data(), n_rot, inv.data(), pos);
        ops::rope_neox_cs(x.data(), n_rot, cs.data());
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_EQ(x[i], want[i]) << "n_rot " << n_rot << " pos " << pos << " dim " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fabula
