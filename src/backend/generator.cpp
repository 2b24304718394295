// Generation loop: longest-common-prefix reuse of a Session, sampling, UTF-8-safe streaming, stop strings, timings.
#include "backend/generator.h"

#include <algorithm>
#include <cmath>
#include <deque>
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

namespace {

// Longest common prefix length of two id sequences.
size_t common_prefix_length(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

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

  // Deferred decoding: ids queued for the caller's batched decode; the prompt's timing ends when they drain.
  bool deferred = false;
  std::vector<int32_t> to_decode;
  bool in_prompt = false;
  Clock::time_point prompt_start;

  // Scratch reused per token.
  std::string piece;
  std::string content;
  std::string reasoning;
  ReasoningDelta delta;
  std::vector<TokenProb> top;
  std::vector<float> masked;  // logits after the constraint's mask

  // Phrase bans: generated tokens not yet passed downstream (a rewind may still retract them).
  struct Pending {
    int32_t id;
    float logprob;
    std::vector<TokenProb> top;
  };
  std::optional<PhraseBacktracker> bans;
  std::deque<Pending> pending;
  size_t prompt_n = 0;
  bool word = false;  // a stop string matched downstream

  bool is_eog(int32_t id) const { return std::find(eog.begin(), eog.end(), id) != eog.end(); }
  // Passes one token downstream: detokenizer or reasoning splitter -> stop matcher -> callback. `finish`: the
  // generation ends with it, so everything held back is released. Returns the callback's verdict.
  bool deliver(const TokenCallback& on_token, GeneratedToken out, bool finish);
  // Log-softmax of the raw logits: fills `top` (n_probs most likely) and returns the logprob of `id`.
  float probs(std::span<const float> logits, int32_t id);
  // Samples from `logits` (masks applied) and has the constraint and the sampler's history accept the id.
  Result<int32_t> sample(std::span<const float> logits);
  // Why generation ends after the token just added to the result (kNone: it goes on); a full context is noted.
  StopType stop_after(bool eog);
  // Phrase-ban step and rewind.
  Status step_with_bans(const TokenCallback& on_token);
  Status rewind(size_t keep);
  Status decode_next(int32_t id);
  void finish(StopType end);
};

bool Generator::State::deliver(const TokenCallback& on_token, GeneratedToken out, bool finish) {
  content.clear();
  reasoning.clear();
  auto feed_content = [&](std::string_view text) {
    if (!word && !text.empty()) word = stop.feed(text, content);
  };
  if (!out.eog && !word) {
    if (splitter) {
      delta.reasoning.clear();
      delta.content.clear();
      splitter->feed(out.id, delta);
      reasoning += delta.reasoning;
      feed_content(delta.content);
    } else {
      piece.clear();
      detok->feed(out.id, piece);
      feed_content(piece);
    }
  }
  if (finish && !word) {
    // Release everything held back: a partial UTF-8 tail, an unfinished marker, a possible stop-string prefix.
    if (splitter) {
      ReasoningDelta tail = splitter->finish();
      reasoning += tail.reasoning;
      feed_content(tail.content);
      result.reasoning_unclosed = splitter->unclosed();
    } else {
      feed_content(detok->flush());
    }
    if (!word) content += stop.flush();
  }
  if (word) result.stopping_word = stop.matched();
  result.content += content;
  result.reasoning += reasoning;
  out.content = content;
  out.reasoning = reasoning;
  return on_token ? on_token(out) : true;
}

float Generator::State::probs(std::span<const float> logits, int32_t id) {
  // log-softmax over the raw logits; top-N kept by insertion into a small sorted buffer (no allocation).
  float mx = -std::numeric_limits<float>::infinity();
  for (float l : logits) mx = std::max(mx, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  const size_t n = static_cast<size_t>(params.n_probs);
  top.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (top.size() == n && l <= top.back().logprob) continue;
    auto it = std::upper_bound(top.begin(), top.end(), l, [](float v, const TokenProb& t) { return v > t.logprob; });
    if (top.size() == n) top.pop_back();
    top.insert(it, TokenProb{static_cast<int32_t>(i), l});
  }
  for (TokenProb& t : top) t.logprob -= lse;
  return logits[static_cast<size_t>(id)] - lse;
}

Status Generator::State::decode_next(int32_t id) {
  if (deferred) {
    to_decode.push_back(id);
    return ok_status();
  }
  const int32_t one[1] = {id};
  Status st = session->decode(one, LogitsMode::kLast);
  if (!st.ok()) {
    session->reset();  // the session's state is unknown after a failed decode
    cache.clear();
    done = true;
    result.timings.predicted_ms = ms_between(gen_start, Clock::now());
    return st;
  }
  cache.push_back(id);
  return ok_status();
}

Result<int32_t> Generator::State::sample(std::span<const float> logits) {
  const int32_t id = sampler->sample(logits);
  if (params.constraint) {
    if (Status st = params.constraint->accept(id); !st.ok()) {
      done = true;
      return st.take_error();
    }
  }
  sampler->accept(id);
  return id;
}

StopType Generator::State::stop_after(bool eog) {
  const GenerationParams& p = params;
  if (eog) return StopType::kEos;
  if (p.n_predict > 0 && result.timings.predicted_n >= p.n_predict) return StopType::kLimit;
  if (session->n_past() >= session->n_ctx()) {
    result.context_full = true;
    return StopType::kLimit;
  }
  const Clock::time_point now = Clock::now();
  if ((p.deadline && now >= *p.deadline) || (p.t_max_predict_ms > 0 && ms_between(gen_start, now) >= p.t_max_predict_ms))
    return StopType::kLimit;
  return StopType::kNone;
}

void Generator::State::finish(StopType end) {
  result.stop_type = end;
  result.timings.predicted_ms = ms_between(gen_start, Clock::now());
  done = true;
}

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
  s_->to_decode.clear();
}

void Generator::set_deferred(bool on) { s_->deferred = on; }
std::span<const int32_t> Generator::pending() const { return s_->to_decode; }
bool Generator::in_prompt() const { return s_->in_prompt; }

void Generator::decoded(size_t n) {
  State& s = *s_;
  n = std::min(n, s.to_decode.size());
  s.cache.insert(s.cache.end(), s.to_decode.begin(), s.to_decode.begin() + static_cast<std::ptrdiff_t>(n));
  s.to_decode.erase(s.to_decode.begin(), s.to_decode.begin() + static_cast<std::ptrdiff_t>(n));
  if (s.in_prompt && s.to_decode.empty()) {
    s.in_prompt = false;
    s.gen_start = Clock::now();
    s.result.timings.prompt_ms = ms_between(s.prompt_start, s.gen_start);
  }
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
  s.to_decode.clear();
  s.in_prompt = false;
  if (s.deferred) {
    s.to_decode.assign(rest.begin(), rest.end());  // decoded by the caller; decoded() ends the prompt's timing
    s.in_prompt = true;
    s.prompt_start = tp;
  } else {
    Status st = session.decode(rest, LogitsMode::kLast);
    if (!st.ok()) {
      clear();  // the session's state is unknown after a failed decode
      return st;
    }
    s.cache.insert(s.cache.end(), rest.begin(), rest.end());
  }
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
  if (params.constraint) params.constraint->reset();
  s.detok.emplace(*s.tok);
  if (params.split_reasoning) s.splitter.emplace(*s.tok, params.prompt_opens_reasoning);
  else s.splitter.reset();
  s.stop = StopMatcher(params.stop);
  s.word = false;
  s.pending.clear();
  s.prompt_n = prompt.size();
  if (params.banned_phrases && params.banned_phrases->size() > 0) s.bans.emplace(*params.banned_phrases, params.max_backtracks);
  else s.bans.reset();
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
  if (!s.to_decode.empty())
    return make_error(ErrorCode::kInvalidArgument, "generator: step() with {} ids still to decode", s.to_decode.size());
  if (s.bans) return s.step_with_bans(on_token);
  Session& session = *s.session;
  const GenerationParams& p = s.params;
  std::span<const float> logits = session.last_logits();

  // Constrained decoding: mask forbidden ids, then the usual chain; n_probs below still reports the raw logits.
  std::span<const float> sample_from = logits;
  if (p.constraint) {
    s.masked.assign(logits.begin(), logits.end());
    p.constraint->apply(s.masked);
    sample_from = s.masked;
  }
  FABULA_ASSIGN(const int32_t id, s.sample(sample_from));
  s.result.tokens.push_back(id);
  s.result.timings.predicted_n++;

  GeneratedToken out;
  out.id = id;
  if (p.n_probs > 0) {
    out.logprob = s.probs(logits, id);
    out.top = s.top;
    s.result.probs.push_back(TokenProbs{id, out.logprob, s.top});
  }
  out.eog = !p.ignore_eos && s.is_eog(id);

  StopType end = s.stop_after(out.eog);
  const bool keep_going = s.deliver(on_token, out, end != StopType::kNone);
  if (s.word) end = StopType::kWord;
  if (end == StopType::kNone && !keep_going) end = StopType::kCancelled;
  if (end == StopType::kNone) return s.decode_next(id);
  s.finish(end);
  return ok_status();
}

Status Generator::State::step_with_bans(const TokenCallback& on_token) {
  const GenerationParams& p = params;
  std::span<const float> logits = session->last_logits();
  const size_t pos = bans->tokens();
  masked.assign(logits.begin(), logits.end());
  if (p.constraint) p.constraint->apply(masked);
  // Ban what already led into a banned phrase here, unless that would leave nothing to sample.
  const std::set<int32_t>& banned = bans->banned(pos);
  if (!banned.empty()) {
    bool other = false;
    for (size_t i = 0; i < masked.size() && !other; ++i)
      other = masked[i] != -std::numeric_limits<float>::infinity() && banned.count(static_cast<int32_t>(i)) == 0;
    if (other)
      for (int32_t b : banned) masked[static_cast<size_t>(b)] = -std::numeric_limits<float>::infinity();
  }
  FABULA_ASSIGN(const int32_t id, sample(masked));
  Pending cur{id, 0.0f, {}};
  if (p.n_probs > 0) {
    cur.logprob = probs(logits, id);
    cur.top = top;
  }
  const bool eog = !p.ignore_eos && is_eog(id);
  std::optional<size_t> keep = eog ? bans->on_end() : bans->on_token(id, this->tok->token_bytes(id));
  if (keep) return rewind(*keep);

  result.tokens.push_back(id);
  if (p.n_probs > 0) result.probs.push_back(TokenProbs{id, cur.logprob, cur.top});
  result.timings.predicted_n = static_cast<int32_t>(result.tokens.size());
  StopType end = stop_after(eog);
  if (!eog) pending.push_back(std::move(cur));

  // Release what no rewind can reach (everything, at the end); the EOG token goes last, as in the plain loop.
  const size_t released_before = result.tokens.size() - (eog ? 1 : 0) - pending.size();
  const size_t release = end != StopType::kNone ? pending.size() : std::min(pending.size(), bans->stable() - released_before);
  bool keep_going = true;
  size_t released = released_before;
  for (size_t i = 0; i < release && keep_going && !word; ++i) {
    const Pending& t = pending.front();
    GeneratedToken out;
    out.id = t.id;
    out.logprob = t.logprob;
    out.top = t.top;
    keep_going = deliver(on_token, out, end != StopType::kNone && !eog && i + 1 == release);
    pending.pop_front();
    ++released;
  }
  if (eog && keep_going && !word) {
    GeneratedToken out;
    out.id = id;
    out.logprob = cur.logprob;
    out.top = cur.top;
    out.eog = true;
    keep_going = deliver(on_token, out, true);
    ++released;
  }
  if (word) end = StopType::kWord;
  if (end == StopType::kNone && !keep_going) end = StopType::kCancelled;
  if (end == StopType::kNone) return decode_next(id);
  // Stopped early (stop string, cancel): what was never released is not part of the result.
  result.tokens.resize(std::min(result.tokens.size(), released));
  if (result.probs.size() > result.tokens.size()) result.probs.resize(result.tokens.size());
  result.timings.predicted_n = static_cast<int32_t>(result.tokens.size());
  pending.clear();
  finish(end);
  return ok_status();
}

Status Generator::State::rewind(size_t keep) {
  // Everything past `keep` is still pending (the backtracker never rewinds below what it called stable).
  const size_t drop = result.tokens.size() - keep;
  pending.resize(pending.size() - std::min(drop, pending.size()));
  result.tokens.resize(keep);
  if (result.probs.size() > keep) result.probs.resize(keep);
  result.timings.predicted_n = static_cast<int32_t>(keep);
  result.timings.backtracks = bans->backtracks();
  if (params.constraint) params.constraint->rewind(keep);
  // The penalty window sees only what is kept.
  const size_t n = prompt_n + keep;  // ids the session should hold
  if (penalties_active(params.sampler)) {
    sampler->clear_history();
    const size_t from = params.penalize_prompt ? 0 : prompt_n;
    const int32_t window = params.sampler.penalty_last_n;
    const size_t first = window < 0 ? from : std::max(from, n - std::min(n, static_cast<size_t>(window)));
    for (size_t i = first; i < n; ++i) sampler->accept(i < prompt_n ? cache[i] : result.tokens[i - prompt_n]);
  }
  if (n == cache.size()) return ok_status();  // nothing past the position was decoded: its logits are current
  // Logits at the rewound position: truncate the session to before its predecessor and decode that again.
  const int32_t prev = cache[n - 1];
  if (session->truncate(static_cast<int64_t>(n - 1)).ok()) {
    cache.resize(n - 1);
    return decode_next(prev);
  }
  // The sliding window no longer holds that position: decode everything kept again.
  std::vector<int32_t> ids(cache.begin(), cache.begin() + static_cast<std::ptrdiff_t>(n));
  session->reset();
  cache.clear();
  if (deferred) {
    to_decode = std::move(ids);
    return ok_status();
  }
  if (Status st = session->decode(ids, LogitsMode::kLast); !st.ok()) {
    done = true;
    return st;
  }
  cache = std::move(ids);
  return ok_status();
}

Result<GenerationResult> Generator::generate(std::span<const int32_t> prompt, const GenerationParams& params,
                                             const TokenCallback& on_token) {
  FABULA_TRY(begin(prompt, params));
  while (!done()) FABULA_TRY(step(on_token));
  return std::move(s_->result);
}

}  // namespace fabula
