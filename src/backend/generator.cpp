// Generation loop: longest-common-prefix reuse of a Session, sampling, UTF-8-safe streaming, stop strings, timings.
#include "backend/generator.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fabula {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

bool penalties_active(const SamplerParams& p) {
  return p.penalty_last_n != 0 && (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f);
}

}  // namespace

std::string_view stop_type_name(StopType type) {
  switch (type) {
    case StopType::kNone: return "none";
    case StopType::kEos: return "eos";
    case StopType::kLimit: return "limit";
    case StopType::kWord: return "word";
    case StopType::kCancelled: return "cancelled";
  }
  return "none";
}

size_t common_prefix_length(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

struct Generator::State {
  const Tokenizer* tok;
  Session* session;
  std::vector<int32_t> cache;  // ids the Session holds, position by position

  // Per generation.
  GenerationParams params;
  std::optional<Sampler> sampler;
  std::optional<StreamingDetokenizer> detok;
  std::optional<ReasoningSplitter> splitter;
  StopMatcher stop;
  std::vector<int32_t> eog;
  GenerationResult result;
  bool active = false;
  bool done = true;
  Clock::time_point gen_start;

  // Scratch reused per token.
  std::string piece;
  std::string content;
  std::string reasoning;
  ReasoningDelta delta;
  std::vector<TokenProb> top;
  std::vector<float> masked;  // [constrained-decoding] logits after the constraint's mask

  bool is_eog(int32_t id) const { return std::find(eog.begin(), eog.end(), id) != eog.end(); }
};

Generator::Generator(const Tokenizer& tokenizer, Session& session) : s_(std::make_unique<State>()) {
  s_->tok = &tokenizer;
  s_->session = &session;
}
Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

std::span<const int32_t> Generator::cached() const { return s_->cache; }
size_t Generator::common_prefix(std::span<const int32_t> prompt) const { return common_prefix_length(prompt, s_->cache); }
Session& Generator::session() { return *s_->session; }
bool Generator::done() const { return s_->done; }
GenerationResult& Generator::result() { return s_->result; }

void Generator::clear() {
  s_->session->reset();
  s_->cache.clear();
}

Status Generator::begin(std::span<const int32_t> prompt, const GenerationParams& params) {
  State& s = *s_;
  const Clock::time_point t0 = Clock::now();
  s.result = GenerationResult{};
  s.done = true;
  s.active = false;
  s.params = params;
  Session& session = *s.session;
  const int64_t n_vocab = session.model().n_vocab();
  const int64_t n_ctx = session.n_ctx();

  if (prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "prompt: empty (no tokens to evaluate)");
  if (static_cast<int64_t>(prompt.size()) >= n_ctx)
    return make_error(ErrorCode::kOutOfRange, "prompt: {} tokens does not fit the context of {} tokens (leave room to generate)",
                      prompt.size(), n_ctx);
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= n_vocab)
      return make_error(ErrorCode::kInvalidArgument, "prompt: token {} at index {} is outside the vocabulary [0, {})",
                        prompt[i], i, n_vocab);
  }
  s.result.tokens_evaluated = static_cast<int32_t>(prompt.size());

  // Prefix reuse: keep what matches, but always decode at least the last prompt id so there are logits.
  size_t keep = params.cache_prompt ? common_prefix_length(prompt, s.cache) : 0;
  if (keep >= prompt.size()) keep = prompt.size() - 1;
  if (keep == 0) {
    session.reset();
  } else if (static_cast<int64_t>(keep) < session.n_past()) {
    if (!session.truncate(static_cast<int64_t>(keep)).ok()) {  // sliding ring already overwritten: start over
      session.reset();
      keep = 0;
    }
  }
  s.cache.resize(keep);
  std::span<const int32_t> rest = prompt.subspan(keep);
  const Clock::time_point tp = Clock::now();
  Status st = session.decode(rest, LogitsMode::kLast);
  if (!st.ok()) {
    clear();  // the session's state is unknown after a failed decode
    return st;
  }
  s.cache.insert(s.cache.end(), rest.begin(), rest.end());
  const Clock::time_point tpe = Clock::now();
  s.result.timings.cache_n = static_cast<int32_t>(keep);
  s.result.timings.prompt_n = static_cast<int32_t>(rest.size());
  s.result.timings.prompt_ms = ms_between(tp, tpe);

  s.eog = params.eog_ids.empty() ? s.tok->eog_ids() : params.eog_ids;
  SamplerParams sp = params.sampler;
  if (params.ignore_eos)
    for (int32_t id : s.eog) sp.logit_bias.emplace_back(id, -std::numeric_limits<float>::infinity());
  s.sampler.emplace(std::move(sp), static_cast<size_t>(n_vocab));
  if (params.penalize_prompt && penalties_active(params.sampler))
    for (int32_t id : prompt) s.sampler->accept(id);
  if (params.constraint) params.constraint->reset();  // [constrained-decoding]
  s.detok.emplace(*s.tok);
  if (params.split_reasoning) s.splitter.emplace(*s.tok, params.prompt_opens_reasoning);
  else s.splitter.reset();
  s.stop = StopMatcher(params.stop);
  s.top.clear();
  if (params.n_probs > 0) s.top.reserve(static_cast<size_t>(params.n_probs) + 1);
  if (params.n_predict > 0) s.result.tokens.reserve(static_cast<size_t>(std::min(params.n_predict, 4096)));
  s.gen_start = tpe;
  s.active = true;
  s.done = false;

  const bool past_deadline = params.deadline && tpe >= *params.deadline;
  if (params.n_predict == 0 || past_deadline) {
    s.result.stop_type = StopType::kLimit;
    s.done = true;
  }
  (void)t0;
  return ok_status();
}

Status Generator::step(const TokenCallback& on_token) {
  State& s = *s_;
  if (s.done) return ok_status();
  Session& session = *s.session;
  const GenerationParams& p = s.params;
  std::span<const float> logits = session.last_logits();

  // [constrained-decoding] mask forbidden ids, then the usual chain; n_probs below still reports the raw logits.
  std::span<const float> sample_from = logits;
  if (p.constraint) {
    s.masked.assign(logits.begin(), logits.end());
    p.constraint->apply(s.masked);
    sample_from = s.masked;
  }
  const int32_t id = s.sampler->sample(sample_from);
  if (p.constraint) {
    if (Status st = p.constraint->accept(id); !st.ok()) {
      s.done = true;
      return st;
    }
  }
  s.sampler->accept(id);
  s.result.tokens.push_back(id);
  s.result.timings.predicted_n++;

  GeneratedToken out;
  out.id = id;
  if (p.n_probs > 0) {
    // log-softmax over the raw logits; top-N kept by insertion into a small sorted buffer (no allocation).
    float mx = -std::numeric_limits<float>::infinity();
    for (float l : logits) mx = std::max(mx, l);
    double sum = 0;
    for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    const size_t n = static_cast<size_t>(p.n_probs);
    s.top.clear();
    for (size_t i = 0; i < logits.size(); ++i) {
      const float l = logits[i];
      if (s.top.size() == n && l <= s.top.back().logprob) continue;
      auto it = std::upper_bound(s.top.begin(), s.top.end(), l,
                                 [](float v, const TokenProb& t) { return v > t.logprob; });
      if (s.top.size() == n) s.top.pop_back();
      s.top.insert(it, TokenProb{static_cast<int32_t>(i), l});
    }
    for (TokenProb& t : s.top) t.logprob -= lse;
    out.logprob = logits[static_cast<size_t>(id)] - lse;
    out.top = s.top;
    s.result.probs.push_back(TokenProbs{id, out.logprob, s.top});
  }

  // Text of this token: through the reasoning splitter (chat) or the detokenizer, then the stop matcher.
  s.content.clear();
  s.reasoning.clear();
  const bool eog = !p.ignore_eos && s.is_eog(id);
  bool word = false;
  auto feed_content = [&](std::string_view text) {
    if (!word && !text.empty()) word = s.stop.feed(text, s.content);
  };
  if (!eog) {
    if (s.splitter) {
      s.delta.reasoning.clear();
      s.delta.content.clear();
      s.splitter->feed(id, s.delta);
      s.reasoning += s.delta.reasoning;
      feed_content(s.delta.content);
    } else {
      s.piece.clear();
      s.detok->feed(id, s.piece);
      feed_content(s.piece);
    }
  }

  StopType end = StopType::kNone;
  if (eog) end = StopType::kEos;
  else if (word) end = StopType::kWord;
  else if (p.n_predict > 0 && s.result.timings.predicted_n >= p.n_predict) end = StopType::kLimit;
  else if (session.n_past() >= session.n_ctx()) {
    end = StopType::kLimit;
    s.result.context_full = true;
  } else {
    const Clock::time_point now = Clock::now();
    if ((p.deadline && now >= *p.deadline) || (p.t_max_predict_ms > 0 && ms_between(s.gen_start, now) >= p.t_max_predict_ms))
      end = StopType::kLimit;
  }

  if (end != StopType::kNone && end != StopType::kWord) {
    // Release everything held back: a partial UTF-8 tail, an unfinished marker, a possible stop-string prefix.
    if (s.splitter) {
      ReasoningDelta tail = s.splitter->finish();
      s.reasoning += tail.reasoning;
      feed_content(tail.content);
      s.result.reasoning_unclosed = s.splitter->unclosed();
    } else {
      feed_content(s.detok->flush());
    }
    if (word) end = StopType::kWord;
    else s.content += s.stop.flush();
  }
  if (end == StopType::kWord) s.result.stopping_word = s.stop.matched();

  s.result.content += s.content;
  s.result.reasoning += s.reasoning;
  out.content = s.content;
  out.reasoning = s.reasoning;
  out.eog = eog;
  const bool keep_going = on_token ? on_token(out) : true;
  if (end == StopType::kNone && !keep_going) end = StopType::kCancelled;

  if (end == StopType::kNone) {
    const int32_t one[1] = {id};
    Status st = session.decode(one, LogitsMode::kLast);
    if (!st.ok()) {
      clear();
      s.done = true;
      s.result.timings.predicted_ms = ms_between(s.gen_start, Clock::now());
      return st;
    }
    s.cache.push_back(id);
    return ok_status();
  }
  s.result.stop_type = end;
  s.result.timings.predicted_ms = ms_between(s.gen_start, Clock::now());
  s.done = true;
  return ok_status();
}

Result<GenerationResult> Generator::generate(std::span<const int32_t> prompt, const GenerationParams& params,
                                             const TokenCallback& on_token) {
  FABULA_TRY(begin(prompt, params));
  while (!done()) FABULA_TRY(step(on_token));
  return std::move(s_->result);
}

}  // namespace fabula
