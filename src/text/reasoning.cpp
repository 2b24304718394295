// Reasoning/content splitter for Gemma 4's <|channel>thought\n ... <channel|> blocks; markers are matched as text
// (the marker ids render to exactly that text), so token- and text-level markers behave the same.
#include "text/reasoning.h"

namespace fabula {

namespace {

constexpr std::string_view kOpen = "<|channel>";
constexpr std::string_view kClose = "<channel|>";
constexpr std::string_view kLabel = "thought\n";
constexpr std::string_view kLabelWord = "thought";

// Length of the longest tail of `s` that is a proper prefix of `marker`.
size_t partial_tail(std::string_view s, std::string_view marker) {
  const size_t max_len = std::min(s.size(), marker.size() - 1);
  for (size_t len = max_len; len > 0; --len) {
    if (s.substr(s.size() - len) == marker.substr(0, len)) return len;
  }
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(const Tokenizer& tokenizer, bool start_in_reasoning)
    : detok_(std::in_place, tokenizer, /*render_control=*/false),
      open_id_(tokenizer.find_token(kOpen)),
      close_id_(tokenizer.find_token(kClose)),
      state_(start_in_reasoning ? State::kLabel : State::kContent) {}

void ReasoningSplitter::emit(std::string_view s, ReasoningDelta& out) {
  if (s.empty()) return;
  (state_ == State::kContent ? out.content : out.reasoning).append(s);
}

void ReasoningSplitter::feed(int32_t id, ReasoningDelta& out) {
  if (id >= 0 && (id == open_id_ || id == close_id_)) {
    buffer_ += detok_->flush();  // a marker ends any dangling partial character
    buffer_ += id == open_id_ ? kOpen : kClose;
  } else {
    detok_->feed(id, buffer_);
  }
  process(out, false);
}

void ReasoningSplitter::feed_text(std::string_view text, ReasoningDelta& out) {
  buffer_.append(text);
  process(out, false);
}

ReasoningDelta ReasoningSplitter::finish() {
  ReasoningDelta out;
  if (detok_) buffer_ += detok_->flush();
  process(out, true);
  finished_unclosed_ = state_ != State::kContent;
  return out;
}

void ReasoningSplitter::process(ReasoningDelta& out, bool final) {
  while (true) {
    const std::string_view buf = buffer_;
    if (state_ == State::kLabel) {
      if (buf.starts_with(kLabel)) {
        buffer_.erase(0, kLabel.size());
      } else if (!final && buf.size() < kLabel.size() && kLabel.starts_with(buf)) {
        return;  // could still become "thought\n"
      } else if (buf.starts_with(kLabelWord) && (buf.size() == kLabelWord.size() || buf[kLabelWord.size()] == '<')) {
        buffer_.erase(0, kLabelWord.size());  // "<|channel>thought<channel|>": an empty, label-only channel
      }
      state_ = State::kReasoning;
      continue;
    }
    // In content both markers are cut out; in reasoning <channel|> closes and a nested <|channel> is dropped.
    const size_t open = buf.find(kOpen);
    const size_t close = buf.find(kClose);
    const size_t at = std::min(open, close);
    if (at != std::string_view::npos) {
      emit(buf.substr(0, at), out);
      const bool is_open = at == open;
      buffer_.erase(0, at + (is_open ? kOpen.size() : kClose.size()));
      if (is_open) {
        state_ = State::kLabel;
      } else if (state_ == State::kReasoning) {
        state_ = State::kContent;
      }  // a stray <channel|> in content is dropped
      continue;
    }
    const size_t hold = final ? 0 : std::max(partial_tail(buf, kOpen), partial_tail(buf, kClose));
    emit(buf.substr(0, buf.size() - hold), out);
    buffer_.erase(0, buf.size() - hold);
    return;
  }
}

}  // namespace fabula
