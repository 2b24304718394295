// Words and prose (docs/PROTOCOL.md §4): utf8proc categories decide letters/digits; n-grams never cross lines.
#include "eval/words.h"

#include <utf8proc.h>

#include "protocol/unicode.h"

namespace fabula::eval {

namespace {

bool is_word_char(int32_t cp) {
  auto cat = utf8proc_category(cp);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || cat == UTF8PROC_CATEGORY_ND;
}

bool is_mark(int32_t cp) {
  auto cat = utf8proc_category(cp);
  return cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME;
}

// ' and ’ (apostrophes), - and U+2010/U+2011 (hyphens): kept only between word characters.
bool is_joiner(int32_t cp) { return cp == '\'' || cp == 0x2019 || cp == '-' || cp == 0x2010 || cp == 0x2011; }

// The prose of one line: a narration's text, a dialogue line's spoken text.
void add_prose(const protocol::Line& line, std::vector<std::string>& out) {
  if (const auto* n = std::get_if<protocol::Narration>(&line)) out.push_back(n->text);
  else if (const auto* d = std::get_if<protocol::Dialogue>(&line); d && !d->text.empty()) out.push_back(d->text);
}

}  // namespace

std::vector<std::string> words_of(std::string_view text) {
  std::string norm = protocol::fold(text);
  std::vector<std::string> out;
  std::string word;
  size_t pos = 0;
  while (pos < norm.size()) {
    size_t start = pos;
    int32_t cp = protocol::utf8_next(norm, pos);
    if (is_word_char(cp) || (is_mark(cp) && !word.empty())) {
      word.append(norm, start, pos - start);
      continue;
    }
    if (is_joiner(cp) && !word.empty() && pos < norm.size()) {
      size_t peek = pos;
      if (is_word_char(protocol::utf8_next(norm, peek))) {
        word.append(norm, start, pos - start);
        continue;
      }
    }
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

std::vector<std::string> extract_prose(const protocol::BeatReport& report) {
  std::vector<std::string> out;
  for (const auto& line : report.lines) add_prose(line.content, out);
  return out;
}

std::vector<std::string> extract_prose(std::string_view beat) {
  std::vector<std::string> out;
  for (const auto& logical : protocol::split_lines(beat))
    if (auto parsed = protocol::parse_line(logical.text, logical.line); parsed.ok()) add_prose(parsed->line, out);
  return out;
}

std::vector<std::vector<std::string>> line_words(const std::vector<std::string>& prose_lines) {
  std::vector<std::vector<std::string>> out;
  out.reserve(prose_lines.size());
  for (const auto& line : prose_lines) out.push_back(words_of(line));
  return out;
}

std::vector<std::string> ngrams(const std::vector<std::vector<std::string>>& lines, int n) {
  std::vector<std::string> out;
  if (n <= 0) return out;
  for (const auto& words : lines) {
    for (size_t i = 0; i + static_cast<size_t>(n) <= words.size(); ++i) {
      std::string gram = words[i];
      for (int k = 1; k < n; ++k) {
        gram += ' ';
        gram += words[i + static_cast<size_t>(k)];
      }
      out.push_back(std::move(gram));
    }
  }
  return out;
}

}  // namespace fabula::eval
