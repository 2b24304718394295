// Phrase matching on word boundaries and the rewind bookkeeping for phrase-ban backtracking.
#include "sample/phrase_ban.h"

#include <algorithm>

namespace fabula {

namespace {

bool word_byte(uint8_t b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b >= 0x80; }

}  // namespace

std::vector<PhraseWord> phrase_words(std::string_view text) {
  std::vector<PhraseWord> out;
  // E2 80 xx (general punctuation: dashes, quotes, ellipsis) separates words; only ’ (E2 80 99) is an apostrophe.
  auto punct_at = [&](size_t i) {
    return static_cast<uint8_t>(text[i]) == 0xE2 && i + 1 < text.size() && static_cast<uint8_t>(text[i + 1]) == 0x80;
  };
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<uint8_t>(text[i]);
    if (punct_at(i)) {
      i = std::min(text.size(), i + 3);  // all three bytes: a dash's tail is not a word
      continue;
    }
    if (!word_byte(b)) {
      ++i;
      continue;
    }
    PhraseWord w;
    w.begin = i;
    while (i < text.size()) {
      const auto c = static_cast<uint8_t>(text[i]);
      const bool apos_curly = c == 0xE2 && text.substr(i, 3) == "\xE2\x80\x99";
      const bool inner = (c == '\'' || c == '-' || apos_curly);
      if (inner) {
        const size_t n = apos_curly ? 3 : 1;
        if (i + n < text.size() && word_byte(static_cast<uint8_t>(text[i + n])) && !punct_at(i + n)) {
          w.word += '\'' == c || apos_curly ? '\'' : '-';
          i += n;
          continue;
        }
        break;
      }
      if (punct_at(i)) break;
      if (!word_byte(c)) break;
      w.word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
      ++i;
    }
    w.end = i;
    out.push_back(std::move(w));
  }
  return out;
}

PhraseMatcher::PhraseMatcher(const std::vector<std::string>& phrases) {
  for (const auto& p : phrases) {
    std::vector<std::string> words;
    for (auto& w : phrase_words(p)) words.push_back(std::move(w.word));
    max_words_ = std::max(max_words_, words.size());
    if (!words.empty()) phrases_.push_back(std::move(words));
  }
}

std::optional<size_t> PhraseMatcher::find_completed(std::string_view text, size_t from, bool text_ends) const {
  std::vector<PhraseWord> words = phrase_words(text);
  // The last word is complete only if a non-word byte follows it (or the text is final).
  if (!text_ends && !words.empty() && words.back().end == text.size()) words.pop_back();
  std::optional<size_t> best;
  // Every word completed after `from` may end a phrase (one token can complete several words).
  for (size_t last = words.size(); last-- > 0 && words[last].end > from;) {
    for (const auto& p : phrases_) {
      if (p.size() > last + 1) continue;
      const size_t off = last + 1 - p.size();
      bool eq = true;
      for (size_t k = 0; k < p.size() && eq; ++k) eq = words[off + k].word == p[k];
      if (eq && (!best || words[off].begin < *best)) best = words[off].begin;
    }
  }
  return best;
}

void PhraseBacktracker::reset() {
  backtracks_ = 0;
  text_.clear();
  ids_.clear();
  ends_.clear();
  bans_.clear();
  stable_ = 0;
  base_ = 0;
}

std::optional<size_t> PhraseBacktracker::on_token(int32_t id, std::string_view bytes) {
  const size_t before = text_.size();
  text_.append(bytes);
  ids_.push_back(id);
  ends_.push_back(text_.size());
  if (backtracks_ >= max_backtracks_ || matcher_->size() == 0) return std::nullopt;
  // Only a phrase whose last word ends inside text this token (or the byte it released) completed can be new.
  const size_t from = std::max(before, base_ + 1) - 1 - base_;
  auto start = matcher_->find_completed(std::string_view(text_).substr(base_), from);
  if (!start) return std::nullopt;
  return rewind_to(base_ + *start);
}

std::optional<size_t> PhraseBacktracker::on_end() {
  if (backtracks_ >= max_backtracks_ || matcher_->size() == 0 || text_.size() <= base_) return std::nullopt;
  auto start = matcher_->find_completed(std::string_view(text_).substr(base_), text_.size() - base_ - 1, true);
  if (!start) return std::nullopt;
  return rewind_to(base_ + *start);
}

std::optional<size_t> PhraseBacktracker::rewind_to(size_t start) {
  size_t k = 0;  // the token holding the phrase's first byte
  while (k < ends_.size() && ends_[k] <= start) ++k;
  if (k >= ids_.size() || k < stable_) return std::nullopt;
  const int32_t culprit = ids_[k];
  ++backtracks_;
  bans_.erase(bans_.upper_bound(k), bans_.end());  // later positions get a fresh prefix
  bans_[k].insert(culprit);
  ids_.resize(k);
  ends_.resize(k);
  text_.resize(k > 0 ? ends_[k - 1] : 0);
  if (base_ > text_.size()) base_ = 0;  // the cut went through the scan start: rescan (rare)
  return k;
}

size_t PhraseBacktracker::stable() {
  if (backtracks_ >= max_backtracks_ || matcher_->size() == 0) return stable_ = ids_.size();
  const std::vector<PhraseWord> words = phrase_words(std::string_view(text_).substr(base_));
  const size_t margin = 2 * matcher_->max_words() + 1;
  if (words.size() <= margin) return stable_;
  const size_t horizon = base_ + words[words.size() - margin].begin;
  while (stable_ < ends_.size() && ends_[stable_] <= horizon) ++stable_;
  base_ = horizon;
  return stable_;
}

const std::set<int32_t>& PhraseBacktracker::banned(size_t position) const {
  static const std::set<int32_t> none;
  auto it = bans_.find(position);
  return it == bans_.end() ? none : it->second;
}

}  // namespace fabula
