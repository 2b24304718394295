// The narrator seam: the engine asks for one beat of text and receives it as a stream; how tokens are made is not its business.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "protocol/manifest.h"
#include "sample/phrase_ban.h"
#include "text/chat_template.h"

namespace fabula::engine {

struct Sampling {
  float temperature = 1.1f;  // the demo narrator's ship setting
  float top_p = 0.95f;
  int top_k = 0;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  int max_tokens = 768;
  // Extra stop strings. The model's own end of turn needs none: each backend stops on its model's end-of-generation
  // tokens (local: the tokenizer's; remote: the server's, plus the template's end-of-turn marker).
  std::vector<std::string> stop;
  // Decoding controls only the in-process model honours; other backends fail the beat rather than ignore them.
  bool constrained = false;                              // only tokens that keep the beat protocol-valid
  std::shared_ptr<const PhraseMatcher> banned_phrases;   // rewind and resample when one appears
};

struct NarratorRequest {
  // The prompt as chat messages (system, user). Each backend renders them through its model's chat template (the
  // local GGUF's, or the one a remote server reports), so the engine never spells a model's turn markup.
  std::vector<ChatMessage> messages;
  Sampling sampling;
  uint64_t seed = 0;
  // What constrained decoding checks against: the story's manifest (not owned; outlives the call) and the
  // scene's cast.
  const protocol::Manifest* manifest = nullptr;
  std::vector<std::string> cast;
};

struct NarratorResult {
  std::string text;         // everything streamed
  int tokens = 0;           // generated tokens where the backend knows, else 0
  bool cancelled = false;   // on_text returned false
  std::string stop_reason;  // "eos", "stop", "length", "cancelled", "end"
  int backtracks = 0;       // phrase-ban rewinds (in-process model)
};

// Called with each new piece of text (any size, UTF-8 may be split only by backends that say so: ours don't).
// Return false to stop generation (the engine does so once a beat-ending tool line has arrived).
using TextCallback = std::function<bool(std::string_view text)>;

class Narrator {
 public:
  virtual ~Narrator() = default;
  virtual Result<NarratorResult> write(const NarratorRequest& request, const TextCallback& on_text) = 0;
  // Shown in the player and logs ("scripted: beats.jsonl", "local: fabula-demo-v1.gguf", ...).
  virtual std::string describe() const = 0;
};

}  // namespace fabula::engine
