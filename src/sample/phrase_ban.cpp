// Phrase matching on word boundaries and the rewind bookkeeping for phrase-ban backtracking.
#include "sample/phrase_ban.h"

#include <fstream>
#include <sstream>

namespace fabula {

namespace {

bool word_byte(uint8_t b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b >= 0x80; }

}  // namespace

std::vector<PhraseWord> phrase_words(std::string_view text) {
  std::vector<PhraseWord> out;
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<uint8_t>(text[i]);
    // ’ (E2 80 99) is an apostrophe, not a letter; other punctuation in E2 80 xx (dashes, quotes) separates.
    const bool punct = b == 0xE2 && i + 1 < text.size() && static_cast<uint8_t>(text[i + 1]) == 0x80;
    if (!word_byte(b) || punct) {
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
        if (i + n < text.size() && word_byte(static_cast<uint8_t>(text[i + n])) &&
            !(static_cast<uint8_t>(text[i + n]) == 0xE2)) {
          w.word += '\'' == c || apos_curly ? '\'' : '-';
          i += n;
          continue;
        }
        break;
      }
      if (c == 0xE2 && i + 1 < text.size() && static_cast<uint8_t>(text[i + 1]) == 0x80) break;
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
    if (!words.empty()) phrases_.push_back(std::move(words));
  }
}

Result<PhraseMatcher> PhraseMatcher::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kIo, "{}: cannot open the ban list", path);
  std::vector<std::string> phrases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    phrases.push_back(line);
  }
  return PhraseMatcher(phrases);
}

Result<PhraseMatcher> PhraseMatcher::load_tells(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kIo, "{}: cannot open the tell list", path);
  std::vector<std::string> phrases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("re:", 0) == 0 || line.find('{') != std::string::npos) continue;
    phrases.push_back(line);
  }
  return PhraseMatcher(phrases);
}

std::optional<size_t> PhraseMatcher::find_completed(std::string_view text, size_t from) const {
  std::vector<PhraseWord> words = phrase_words(text);
  // The last word is complete only if a non-word byte follows it.
  if (!words.empty() && words.back().end == text.size()) words.pop_back();
  if (words.empty() || words.back().end <= from) return std::nullopt;
  std::optional<size_t> best;
  for (const auto& p : phrases_) {
    if (p.size() > words.size()) continue;
    const size_t off = words.size() - p.size();
    bool eq = true;
    for (size_t k = 0; k < p.size() && eq; ++k) eq = words[off + k].word == p[k];
    if (eq && (!best || words[off].begin < *best)) best = words[off].begin;
  }
  return best;
}

void PhraseBacktracker::reset() {
  backtracks_ = 0;
  text_.clear();
  ids_.clear();
  ends_.clear();
  bans_.clear();
}

std::optional<size_t> PhraseBacktracker::on_token(int32_t id, std::string_view bytes) {
  const size_t before = text_.size();
  text_.append(bytes);
  ids_.push_back(id);
  ends_.push_back(text_.size());
  if (backtracks_ >= max_backtracks_) return std::nullopt;
  // Only a phrase whose last word ends inside text this token (or the byte it released) completed can be new.
  const size_t from = before > 0 ? before - 1 : 0;
  auto start = matcher_->find_completed(text_, from);
  if (!start) return std::nullopt;
  size_t k = 0;  // the token holding the phrase's first byte
  while (k < ends_.size() && ends_[k] <= *start) ++k;
  if (k >= ids_.size()) return std::nullopt;
  const int32_t culprit = ids_[k];
  ++backtracks_;
  bans_.erase(bans_.upper_bound(k), bans_.end());  // later positions get a fresh prefix
  bans_[k].insert(culprit);
  ids_.resize(k);
  ends_.resize(k);
  text_.resize(k > 0 ? ends_[k - 1] : 0);
  return k;
}

const std::set<int32_t>& PhraseBacktracker::banned(size_t position) const {
  static const std::set<int32_t> none;
  auto it = bans_.find(position);
  return it == bans_.end() ? none : it->second;
}

}  // namespace fabula
