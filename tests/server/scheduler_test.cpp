// The scheduler's continuous batching on the demo narrator: requests batched together give what each gives alone
// (greedy, seeded sampling, phrase-ban rewinds), a new prompt is chunked between the others' tokens, a cancelled
// request frees its slot at the next step, and the step counters add up.
#include <gtest/gtest.h>

#include <thread>

#include "backend/generator.h"
#include "server/scheduler.h"
#include "server_test_util.h"
#include "text/tokenizer.h"

namespace fabula::server {
namespace {

using server_test::demo_model;
using server_test::have_demo_model;

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_demo_model()) return;
    auto m = Model::load(demo_model());
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    model_ = m->release();
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.error().to_string();
    tok_ = new Tokenizer(std::move(*t));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete model_;
  }
  void SetUp() override { FABULA_REQUIRE_DEMO_MODEL(); }

  static std::vector<int32_t> prompt(const std::string& text) { return tok_->encode(text, /*add_bos=*/true); }

  static std::shared_ptr<Task> task(std::vector<int32_t> ids, GenerationParams p, bool events = false) {
    auto t = std::make_shared<Task>();
    t->prompt = std::move(ids);
    t->params = std::move(p);
    t->want_events = events;
    return t;
  }

  // The reference: the same request through a Generator on a fresh session of its own.
  static GenerationResult alone(const std::vector<int32_t>& ids, const GenerationParams& p, int64_t n_ubatch = 8,
                                KvCacheTypes cache_type = {}) {
    SessionOptions so;
    so.n_ctx = 512;
    so.n_ubatch = n_ubatch;  // as the scheduler's slots
    so.cache_type = cache_type;
    Session session(*model_, so);
    Generator gen(*tok_, session);
    auto r = gen.generate(ids, p);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(*r) : GenerationResult{};
  }

  // Submits every prompt at once, greedy for n tokens each, and expects each result to be what the same request
  // gives alone on a session with the scheduler's chunk size and cache types.
  static void expect_each_as_alone(Scheduler& sched, const std::vector<std::vector<int32_t>>& prompts, int n,
                                   int64_t n_ubatch, KvCacheTypes cache_type = {}) {
    std::vector<std::shared_ptr<Task>> tasks;
    for (const auto& p : prompts) tasks.push_back(task(p, greedy(n)));
    for (auto& t : tasks) sched.submit(t);
    for (size_t i = 0; i < tasks.size(); ++i) {
      auto r = tasks[i]->wait_result();
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_EQ(r->tokens, alone(prompts[i], greedy(n), n_ubatch, cache_type).tokens) << "request " << i;
    }
  }

  static GenerationParams greedy(int n) {
    GenerationParams p;
    p.sampler.temperature = 0;
    p.n_predict = n;
    return p;
  }

  static inline Model* model_ = nullptr;
  static inline Tokenizer* tok_ = nullptr;
};

TEST_F(SchedulerTest, BatchedRequestsGiveWhatEachGivesAlone) {
  std::vector<std::vector<int32_t>> prompts = {prompt("The rain over Sakuragaoka"),
                                               prompt("Mika opened the door of the club room and saw"),
                                               prompt("A"),
                                               prompt("Narrator: the festival lanterns swayed while the two of them "
                                                      "walked along the river, neither saying a word about the letter")};
  std::vector<GenerationParams> params = {greedy(24), greedy(24), greedy(24), greedy(24)};
  params[1].sampler.temperature = 0.8f;  // seeded sampling: its own chain, its own draws
  params[1].sampler.seed = 1234;
  params[3].sampler.repeat_penalty = 1.3f;

  Scheduler sched(*model_, *tok_, SchedulerOptions{4, 512, 0, /*n_batch=*/12, /*n_ubatch=*/8});
  std::vector<std::shared_ptr<Task>> tasks;
  for (size_t i = 0; i < prompts.size(); ++i) tasks.push_back(task(prompts[i], params[i]));
  for (auto& t : tasks) sched.submit(t);
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto r = tasks[i]->wait_result();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const GenerationResult want = alone(prompts[i], params[i]);
    EXPECT_EQ(r->tokens, want.tokens) << "request " << i;
    EXPECT_EQ(r->content, want.content) << "request " << i;
    EXPECT_EQ(r->timings.prompt_n, static_cast<int32_t>(prompts[i].size()));
  }
  const SchedulerMetrics m = sched.metrics();
  EXPECT_GT(m.steps_total, 0u);
  EXPECT_LE(m.step_tokens_total, m.steps_total * 12);           // no step over the budget
  EXPECT_GT(m.step_sequences_total, m.steps_total);             // steps held several sequences
  EXPECT_EQ(m.queue_waits_total, 4u);
  EXPECT_EQ(m.requests_total, 4u);
}

// Requests that reach an idle scheduler together share their first step: every step of the run holds all of them
// (without the wait, the first prompt's step would start alone and hold the others back). The long window ends as
// soon as every slot is taken, so the test does not wait for it.
TEST_F(SchedulerTest, RequestsSentTogetherShareTheirFirstStep) {
  SchedulerOptions so{3, 512, 0, /*n_batch=*/64, /*n_ubatch=*/32};
  so.gather_ms = 5000;
  Scheduler sched(*model_, *tok_, so);
  const std::vector<std::vector<int32_t>> prompts = {prompt("The rain over Sakuragaoka"),
                                                     prompt("Mika opened the door of the club room and saw"),
                                                     prompt("A")};
  ASSERT_NO_FATAL_FAILURE(expect_each_as_alone(sched, prompts, 6, 32));
  const SchedulerMetrics m = sched.metrics();
  EXPECT_EQ(m.steps_total, 6u);  // the prompts with the first tokens, then one step per further token
  EXPECT_EQ(m.step_sequences_total, 3 * m.steps_total);
}

// The chunk sizes by default: one slot takes a first beat's prompt in one step, several take 512-token chunks, and
// a step has room for a whole chunk beside every slot's next token; a given step size bounds the default chunk.
TEST_F(SchedulerTest, DefaultChunkSizes) {
  Scheduler one(*model_, *tok_, SchedulerOptions{1, 64});
  EXPECT_EQ(one.n_ubatch(), SchedulerOptions::kOneSlotUbatch);
  EXPECT_EQ(one.n_batch(), SchedulerOptions::kOneSlotUbatch + 1);
  Scheduler four(*model_, *tok_, SchedulerOptions{4, 64});
  EXPECT_EQ(four.n_ubatch(), SchedulerOptions::kSharedUbatch);
  EXPECT_EQ(four.n_batch(), SchedulerOptions::kSharedUbatch + 4);
  Scheduler small(*model_, *tok_, SchedulerOptions{4, 64, 0, /*n_batch=*/100});
  EXPECT_EQ(small.n_ubatch(), 100);
  EXPECT_EQ(small.n_batch(), 100);
  Scheduler given(*model_, *tok_, SchedulerOptions{4, 64, 0, /*n_batch=*/0, /*n_ubatch=*/64});
  EXPECT_EQ(given.n_batch(), 68);
}

// Every slot's cache in a compressed type (the rotated 4-bit K, 3-bit V): batched requests, and a second request
// reusing the first one's cached prompt, give what each gives alone on a session with the same cache.
TEST_F(SchedulerTest, CompressedCachesGiveWhatEachGivesAlone) {
  const KvCacheTypes types{KvType::kTq4, KvType::kTq3};
  SchedulerOptions so{2, 512, 0, /*n_batch=*/12, /*n_ubatch=*/8};
  so.cache_type = types;
  Scheduler sched(*model_, *tok_, so);
  const std::vector<std::vector<int32_t>> prompts = {prompt("The rain over Sakuragaoka"),
                                                     prompt("Mika opened the door of the club room and saw")};
  ASSERT_NO_FATAL_FAILURE(expect_each_as_alone(sched, prompts, 16, 8, types));
  // The same prompt again, plus more: the slot keeps its compressed prefix and decodes only the rest.
  std::vector<int32_t> longer = prompts[0];
  const auto more = tok_->encode(" and the lanterns", false);
  longer.insert(longer.end(), more.begin(), more.end());
  auto again = task(longer, greedy(16));
  again->params.cache_prompt = true;
  sched.submit(again);
  auto r = again->wait_result();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tokens, alone(longer, greedy(16), 8, types).tokens);
  EXPECT_GT(sched.metrics().cache_tokens_total, 0u);
}

TEST_F(SchedulerTest, LongPromptsArrivingTogetherGiveWhatEachGivesAlone) {
  // Prompts long enough for the GEMM path, submitted at once: each is still chunked as it would be alone.
  std::vector<std::vector<int32_t>> prompts;
  const char* texts[] = {"the lanterns swayed over the river ", "Mika laughed and ran up the stairs ",
                         "a letter lay on the desk, unopened ", "rain fell on the school roof all afternoon "};
  for (size_t i = 0; i < 4; ++i) {
    std::string text;
    for (size_t k = 0; k < 4 + 2 * i; ++k) text += texts[(i + k) % 4];
    prompts.push_back(prompt(text));
    ASSERT_GE(prompts.back().size(), 40u);
  }
  Scheduler sched(*model_, *tok_, SchedulerOptions{4, 512, 0, /*n_batch=*/128, /*n_ubatch=*/48});
  ASSERT_NO_FATAL_FAILURE(expect_each_as_alone(sched, prompts, 16, 48));
}

TEST_F(SchedulerTest, PhraseBanRewindInOneSlotLeavesTheOtherAlone) {
  const auto p1 = prompt("Mika looked at the sky and said");
  const auto p2 = prompt("The club room was quiet when");
  // Ban words the greedy continuation of p1 would write, so that its slot rewinds (several times).
  const GenerationResult free_run = alone(p1, greedy(32));
  std::vector<std::string> words;
  std::string word;
  for (char c : free_run.content) {
    if (std::isalpha(static_cast<unsigned char>(c))) word += c;
    else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  ASSERT_GE(words.size(), 3u) << free_run.content;
  GenerationParams banned = greedy(32);
  banned.banned_phrases = std::make_shared<PhraseMatcher>(std::vector<std::string>{words[0], words[1], words[2]});
  const GenerationResult want1 = alone(p1, banned), want2 = alone(p2, greedy(32));
  ASSERT_GT(want1.timings.backtracks, 0);

  Scheduler sched(*model_, *tok_, SchedulerOptions{2, 512, 0, 16, 8});
  auto t1 = task(p1, banned), t2 = task(p2, greedy(32));
  sched.submit(t1);
  sched.submit(t2);
  auto r1 = t1->wait_result(), r2 = t2->wait_result();
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->tokens, want1.tokens);
  EXPECT_EQ(r1->timings.backtracks, want1.timings.backtracks);
  EXPECT_EQ(r2->tokens, want2.tokens);
}

TEST_F(SchedulerTest, NewPromptIsChunkedBetweenTheOthersTokens) {
  // Slot A generates; B's long prompt arrives: every step still holds A's next token, so A keeps streaming while
  // B's prompt goes in, n_batch - 1 tokens at a time.
  const int64_t n_batch = 8;
  Scheduler sched(*model_, *tok_, SchedulerOptions{2, 512, 0, n_batch, 8});
  GenerationParams long_run = greedy(400);
  long_run.ignore_eos = true;
  auto a = task(prompt("Once upon a time"), long_run, /*events=*/true);
  sched.submit(a);
  std::vector<TokenEvent> events;
  while (events.empty()) ASSERT_FALSE(a->wait(events, std::chrono::milliseconds(100)));
  std::vector<int32_t> long_prompt;
  while (long_prompt.size() < 120) {
    auto more = prompt("the lanterns swayed over the river and the festival went on into the night ");
    long_prompt.insert(long_prompt.end(), more.begin(), more.end());
  }
  long_prompt.resize(120);
  events.clear();
  (void)a->wait(events, std::chrono::milliseconds(0));
  const size_t before = events.size();
  auto b = task(long_prompt, greedy(1));
  sched.submit(b);
  ASSERT_TRUE(b->wait_result().ok());
  (void)a->wait(events, std::chrono::milliseconds(0));
  const size_t during = events.size() - before;
  const size_t prefill_steps = (120 + (n_batch - 1) - 1) / (n_batch - 1);
  EXPECT_GE(during, prefill_steps - 1) << "A got " << during << " tokens while B's prompt took " << prefill_steps
                                       << " steps";
  a->cancelled = true;
  auto ra = a->wait_result();
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->stop_type, StopType::kCancelled);
}

TEST_F(SchedulerTest, CancelledRequestFreesItsSlotAtTheNextStep) {
  Scheduler sched(*model_, *tok_, SchedulerOptions{1, 512, 0, 64, 64});
  GenerationParams long_run = greedy(400);
  long_run.ignore_eos = true;
  auto a = task(prompt("Once upon a time"), long_run, /*events=*/true);
  auto waiting = task(prompt("Another request"), greedy(4));
  sched.submit(a);
  std::vector<TokenEvent> events;
  while (events.empty()) ASSERT_FALSE(a->wait(events, std::chrono::milliseconds(100)));
  sched.submit(waiting);  // queued: the only slot is busy
  a->cancelled = true;
  const uint64_t steps_at_cancel = sched.metrics().steps_total;
  auto ra = a->wait_result();
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->stop_type, StopType::kCancelled);
  auto rw = waiting->wait_result();
  ASSERT_TRUE(rw.ok()) << rw.error().to_string();
  EXPECT_EQ(rw->tokens.size(), 4u);
  // The step under way at most, then the waiting request's four (its prompt with the first token, three more);
  // counted once both are done, since the waiting request may have run a step before this thread woke up.
  EXPECT_LE(sched.metrics().steps_total - steps_at_cancel, 1u + 4u);
  EXPECT_EQ(waiting->slot(), 0);
  EXPECT_EQ(sched.metrics().requests_cancelled, 1u);
}

TEST_F(SchedulerTest, EvaluateOnlyRequestsDecodeTheirPrompt) {
  Scheduler sched(*model_, *tok_, SchedulerOptions{2, 512, 0, 8, 8});
  const auto p = prompt("Mika opened the door of the club room and saw her friend");
  auto t = task(p, greedy(0));
  sched.submit(t);
  auto r = t->wait_result();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_EQ(r->timings.prompt_n, static_cast<int32_t>(p.size()));
  // The slot holds the whole prompt: the same prompt again reuses all of it but the last id.
  auto again = task(p, greedy(1));
  sched.submit(again);
  auto r2 = again->wait_result();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->timings.cache_n, static_cast<int32_t>(p.size() - 1));
}

}  // namespace
}  // namespace fabula::server
