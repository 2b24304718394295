// The one generation loop shared by the server, the local narrator, eval and run: prefix reuse, sampling, streaming.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "sample/constrained_hook.h"
#include "sample/phrase_ban.h"
#include "sample/sampler.h"
#include "sample/stop.h"
#include "text/reasoning.h"
#include "text/tokenizer.h"

namespace fabula {

// llama-server's stop_type values plus "cancelled" (the callback returned false).
enum class StopType { kNone, kEos, kLimit, kWord, kCancelled };
std::string_view stop_type_name(StopType type);  // "none" | "eos" | "limit" | "word" | "cancelled"

struct GenerationParams {
  SamplerParams sampler;
  int32_t n_predict = -1;            // -1: until EOG / stop / context full; 0: only evaluate the prompt
  std::vector<std::string> stop;     // stop strings (not part of the output); matched on content text
  std::vector<int32_t> eog_ids;      // empty: the tokenizer's EOG set
  bool ignore_eos = false;           // EOG ids are banned instead of ending generation
  bool cache_prompt = true;          // reuse the longest common prefix of what the session holds
  bool penalize_prompt = true;       // prompt ids enter the penalty window (llama-server does this)
  int32_t n_probs = 0;               // top-N probabilities per generated token (softmax of the raw logits)
  bool split_reasoning = false;      // <|channel>...<channel|> goes to reasoning, never to content
  bool prompt_opens_reasoning = false;  // the prompt ends inside an open channel
  double t_max_predict_ms = 0;       // > 0: stop (limit) once generating has taken this long
  std::optional<std::chrono::steady_clock::time_point> deadline;  // whole request (prompt too): kLimit
  // Optional: masks the logits before the sampler chain and sees every sampled id
  // (e.g. ProtocolConstraint, sample/constrained.h). reset() at begin(); a rejected id fails the step.
  std::shared_ptr<TokenConstraint> constraint;
  // Phrase bans with backtracking (sample/phrase_ban.h). When a banned phrase completes, the session, the
  // constraint and the penalty history rewind to the token where it started, that token is banned at that
  // position, and sampling resumes (at most max_backtracks times). Tokens are held back until no rewind can reach
  // them, so retracted text never reaches the callback (streaming lags by a few words). n_predict counts kept tokens.
  std::shared_ptr<const PhraseMatcher> banned_phrases;
  int32_t max_backtracks = 16;
};

struct TokenProb {
  int32_t id;
  float logprob;
};

// What the callback sees for each sampled token. Views are valid during the call only.
struct GeneratedToken {
  int32_t id = -1;
  std::string_view content;    // text this token released (stop-string holdback may delay or drop it)
  std::string_view reasoning;  // reasoning text released (split_reasoning only)
  float logprob = 0;           // of `id` (n_probs > 0)
  std::span<const TokenProb> top;  // n_probs most likely, descending (n_probs > 0)
  bool eog = false;            // the token ended generation (no text)
};

// Return false to cancel generation (stop_type kCancelled).
using TokenCallback = std::function<bool(const GeneratedToken& token)>;

struct GenerationTimings {
  int32_t cache_n = 0;      // prompt tokens reused from the session
  int32_t prompt_n = 0;     // prompt tokens decoded by this request
  double prompt_ms = 0;
  int32_t predicted_n = 0;  // tokens sampled (with phrase bans: kept)
  double predicted_ms = 0;
  int32_t backtracks = 0;   // phrase-ban rewinds

  double prompt_per_token_ms() const { return prompt_n > 0 ? prompt_ms / prompt_n : 0; }
  double prompt_per_second() const { return prompt_ms > 0 ? 1e3 * prompt_n / prompt_ms : 0; }
  double predicted_per_token_ms() const { return predicted_n > 0 ? predicted_ms / predicted_n : 0; }
  double predicted_per_second() const { return predicted_ms > 0 ? 1e3 * predicted_n / predicted_ms : 0; }
};

struct TokenProbs {
  int32_t id;
  float logprob;
  std::vector<TokenProb> top;
};

struct GenerationResult {
  std::string content;
  std::string reasoning;          // split_reasoning only
  bool reasoning_unclosed = false;  // the channel was never closed (content may be empty)
  std::vector<int32_t> tokens;    // sampled ids, the ending EOG id included
  StopType stop_type = StopType::kNone;
  std::string stopping_word;      // the stop string that matched (kWord)
  int32_t tokens_evaluated = 0;   // prompt length
  bool context_full = false;      // generation hit n_ctx (stop_type kLimit)
  GenerationTimings timings;
  std::vector<TokenProbs> probs;  // per sampled token (n_probs > 0)
};

// Owns nothing heavy: borrows the model's tokenizer and a Session, and remembers which ids that Session holds so
// the next request decodes only what differs. Use from one thread at a time.
class Generator {
 public:
  Generator(const Tokenizer& tokenizer, Session& session);
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;

  // begin() + step() until done(): the blocking form.
  Result<GenerationResult> generate(std::span<const int32_t> prompt, const GenerationParams& params,
                                    const TokenCallback& on_token = {});

  // Stepwise form (the server interleaves slots token by token). begin() reuses the common prefix, decodes the
  // rest of the prompt and prepares the first sample; kOutOfRange if the prompt does not fit the context.
  Status begin(std::span<const int32_t> prompt, const GenerationParams& params);
  // Samples, streams and decodes one token. Check done() first.
  Status step(const TokenCallback& on_token = {});
  bool done() const;
  // Valid once done() (partially filled before).
  GenerationResult& result();

  // Deferred decoding, for a caller that puts several generators' tokens into one forward step (Batch, the
  // server's scheduler). Set before begin(): begin() and step() then queue the ids to decode instead of decoding
  // them. pending() lists them; the caller decodes a prefix of them into session() (the last of them with
  // LogitsMode::kLast, so that step() can sample) and reports it with decoded(n). step() needs nothing pending;
  // a generation is over when done() and nothing is pending (n_predict = 0 still evaluates the prompt).
  void set_deferred(bool on);
  std::span<const int32_t> pending() const;
  void decoded(size_t n);
  bool in_prompt() const;  // the prompt is not yet all decoded

  // The ids the Session holds, and how many leading ids of `prompt` they share.
  std::span<const int32_t> cached() const;
  size_t common_prefix(std::span<const int32_t> prompt) const;
  // Forget the cached ids (the Session is reset too).
  void clear();
  Session& session();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace fabula
