// Splits a Gemma 4 generation into reasoning (inside <|channel>thought\n ... <channel|>) and content, incrementally.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "text/tokenizer.h"

namespace fabula {

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

// Feed generated ids; each call appends what became certain to `out`. Channel markers (the <|channel> /
// <channel|> ids, or the same text spelled with ordinary tokens) never reach content; the "thought\n" label after
// <|channel> is dropped; a stray <channel|> in content is dropped; a channel left open at the end keeps its text
// as reasoning (see unclosed()). Control tokens (<turn|>, <eos>) add no text.
class ReasoningSplitter {
 public:
  // `start_in_reasoning`: the prompt ended inside an open channel (prefilled "<|channel>").
  explicit ReasoningSplitter(const Tokenizer& tokenizer, bool start_in_reasoning = false);
  // Text only (a remote server streams text, not ids): feed_text() and finish().
  ReasoningSplitter() = default;

  void feed(int32_t id, ReasoningDelta& out);
  ReasoningDelta feed(int32_t id) {
    ReasoningDelta d;
    feed(id, d);
    return d;
  }
  // Plain text already detokenised (for remote backends that stream text): same rules, markers matched as text.
  void feed_text(std::string_view text, ReasoningDelta& out);
  // End of generation: releases held-back text.
  ReasoningDelta finish();

  bool unclosed() const { return finished_unclosed_; }
  int32_t channel_open_id() const { return open_id_; }
  int32_t channel_close_id() const { return close_id_; }

 private:
  enum class State { kContent, kLabel, kReasoning };
  void process(ReasoningDelta& out, bool final);
  void emit(std::string_view s, ReasoningDelta& out);

  std::optional<StreamingDetokenizer> detok_;
  int32_t open_id_ = -1;
  int32_t close_id_ = -1;
  State state_ = State::kContent;
  std::string buffer_;  // text not yet classified (possible partial marker or label)
  bool finished_unclosed_ = false;
};

}  // namespace fabula
