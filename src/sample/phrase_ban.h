// Phrase bans with backtracking: detect a banned phrase as it completes in generated text, say where to rewind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula {

// Phrases matched case-insensitively (ASCII folding; other bytes compare exactly) on word boundaries: words are
// runs of letters, digits, apostrophes (' and ’ equal) and inner hyphens; anything else separates words.
class PhraseMatcher {
 public:
  explicit PhraseMatcher(const std::vector<std::string>& phrases);

  // The byte offset where the earliest banned phrase starts among those ending at a complete word of `text` (a
  // word is complete once a non-word byte follows it) whose end lies after `from`; nullopt if none does.
  // `text_ends`: the text is final, so a trailing word is complete too.
  std::optional<size_t> find_completed(std::string_view text, size_t from = 0, bool text_ends = false) const;
  size_t size() const { return phrases_.size(); }
  // Words in the longest phrase (how far back a phrase can reach).
  size_t max_words() const { return max_words_; }

 private:
  std::vector<std::vector<std::string>> phrases_;  // folded words
  size_t max_words_ = 0;
};

// Words of `text` as PhraseMatcher sees them: (folded word, byte offset of its start, byte offset past its end).
struct PhraseWord {
  std::string word;
  size_t begin = 0, end = 0;
};
std::vector<PhraseWord> phrase_words(std::string_view text);

// The bookkeeping of a backtracking generation loop: token byte offsets, per-position bans, the backtrack budget.
// The loop (which owns the model session) calls on_token() after each sampled token; a returned position means
// "truncate to this many generated tokens and resample there"; banned(pos) is what to mask at a position.
// A streaming loop holds tokens back until stable() says no later rewind can reach them.
class PhraseBacktracker {
 public:
  PhraseBacktracker(const PhraseMatcher& matcher, int max_backtracks = 16)
      : matcher_(&matcher), max_backtracks_(max_backtracks) {}

  void reset();
  // Records the generated token (its decoded bytes). Returns the number of tokens to keep if a banned phrase just
  // completed (the token where it started is then banned at that position), else nullopt. Never rewinds below
  // stable(): a phrase starting in text already released stays (only possible after chained rewinds).
  std::optional<size_t> on_token(int32_t id, std::string_view bytes);
  // End of generation: a phrase ending with the text's last word counts as completed. Same result as on_token.
  std::optional<size_t> on_end();
  // Leading tokens no later rewind will remove (the caller may release them downstream). Never decreases; it
  // lags the text by 2 * max_words + 1 words (a rewind can land a phrase's length back, and the word before the
  // cut can grow into a new phrase's last word), and is every token once the budget is spent.
  size_t stable();
  const std::set<int32_t>& banned(size_t position) const;
  const std::string& text() const { return text_; }
  size_t tokens() const { return ids_.size(); }
  int backtracks() const { return backtracks_; }

 private:
  std::optional<size_t> rewind_to(size_t start);
  const PhraseMatcher* matcher_;
  int max_backtracks_;
  int backtracks_ = 0;
  std::string text_;
  std::vector<int32_t> ids_;
  std::vector<size_t> ends_;  // text_ size after each token
  std::map<size_t, std::set<int32_t>> bans_;
  size_t stable_ = 0;  // tokens reported stable
  size_t base_ = 0;    // a word start in text_: matching and stable() scan from here (earlier text is settled)
};

}  // namespace fabula
