// Phrase bans with backtracking: detect a banned phrase as it completes in generated text, say where to rewind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
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
  // One phrase a line; blank lines and lines starting with '#' are skipped.
  static Result<PhraseMatcher> load(const std::string& path);
  // The plain phrases of a tell list (data/slop-tells-v1.txt, PROTOCOL.md §4); "{X}" and "re:" patterns are skipped.
  static Result<PhraseMatcher> load_tells(const std::string& path);

  // The byte offset in `text` where a banned phrase ends at the last complete word of `text` (a word is complete
  // once a non-word byte follows it) starts; nullopt if none does. Only phrases ending after `from` count.
  std::optional<size_t> find_completed(std::string_view text, size_t from = 0) const;
  size_t size() const { return phrases_.size(); }

 private:
  std::vector<std::vector<std::string>> phrases_;  // folded words
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
class PhraseBacktracker {
 public:
  PhraseBacktracker(const PhraseMatcher& matcher, int max_backtracks = 16)
      : matcher_(&matcher), max_backtracks_(max_backtracks) {}

  void reset();
  // Records the generated token (its decoded bytes). Returns the number of tokens to keep if a banned phrase just
  // completed (the token where it started is then banned at that position), else nullopt.
  std::optional<size_t> on_token(int32_t id, std::string_view bytes);
  const std::set<int32_t>& banned(size_t position) const;
  const std::string& text() const { return text_; }
  size_t tokens() const { return ids_.size(); }
  int backtracks() const { return backtracks_; }

 private:
  const PhraseMatcher* matcher_;
  int max_backtracks_;
  int backtracks_ = 0;
  std::string text_;
  std::vector<int32_t> ids_;
  std::vector<size_t> ends_;  // text_ size after each token
  std::map<size_t, std::set<int32_t>> bans_;
};

}  // namespace fabula
