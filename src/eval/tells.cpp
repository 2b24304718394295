// Slop-tell list parsing and matching: word-sequence phrases with {X} wildcards (1-3 words) and std::regex patterns.
#include "eval/tells.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "base/ascii.h"
#include "base/file.h"
#include "base/lines.h"
#include "eval/words.h"
#include "protocol/manifest.h"
#include "protocol/unicode.h"

namespace fabula::eval {

namespace {

constexpr std::string_view kWildcard = "{X}";

// Word comparison key: ’ and ' compare equal (the list is typed with ', models write either).
std::string key_of(std::string_view word) { return replace_all(word, "\xE2\x80\x99", "'"); }

// std::regex throws on a bad pattern or an over-complex search; this adapter keeps exceptions out.
Result<std::shared_ptr<const std::regex>> compile_regex(const std::string& pattern, const std::string& where) {
  try {
    return std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return make_error(ErrorCode::kParse, "{}: bad regular expression \"{}\": {}", where, pattern, e.what());
  }
}

template <typename F>
bool for_each_regex_match(const std::regex& re, const std::string& text, F&& on_match) {
  try {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
      if (it->length(0) == 0) continue;
      on_match(it->str(0));
    }
    return true;
  } catch (const std::regex_error&) {
    return false;  // too complex for this line: no matches counted
  }
}

// Shortest match of tokens[k..] at words[j..]; returns the end index or -1.
long match_at(const std::vector<std::string>& tokens, size_t k, const std::vector<std::string>& words, size_t j) {
  if (k == tokens.size()) return static_cast<long>(j);
  if (tokens[k] == kWildcard) {
    for (size_t take = 1; take <= 3 && j + take <= words.size(); ++take) {
      long end = match_at(tokens, k + 1, words, j + take);
      if (end >= 0) return end;
    }
    return -1;
  }
  if (j >= words.size() || words[j] != tokens[k]) return -1;
  return match_at(tokens, k + 1, words, j + 1);
}

}  // namespace

Result<TellList> TellList::parse(std::string_view text, const std::string& where) {
  TellList list;
  FABULA_TRY(for_each_line(text, [&](std::string_view line, int line_no, bool) -> Status {
    if (line[0] == '#') {
      std::string_view body = ascii_trim(line.substr(1));
      if (body.substr(0, 8) == "version:") list.version = std::string(ascii_trim(body.substr(8)));
      return ok_status();
    }
    TellPattern p;
    p.source = std::string(line);
    std::string at = fmt::format("{}:{}", where, line_no);
    if (line.substr(0, 3) == "re:") {
      p.is_regex = true;
      FABULA_ASSIGN(p.regex, compile_regex(std::string(line.substr(3)), at));
    } else {
      // Split at {X} (case-insensitive), tokenise the literal parts the way prose is tokenised.
      std::string_view rest = line;
      while (!rest.empty()) {
        size_t w = rest.find('{');
        std::string_view literal = rest.substr(0, w);
        for (auto& word : words_of(literal)) p.tokens.push_back(key_of(word));
        if (w == std::string_view::npos) break;
        if (rest.size() < w + 3 || (rest.substr(w, 3) != "{X}" && rest.substr(w, 3) != "{x}")) {
          return make_error(ErrorCode::kParse, "{}: only {{X}} may appear in braces: \"{}\"", at, line);
        }
        p.tokens.emplace_back(kWildcard);
        rest = rest.substr(w + 3);
      }
      bool literal = false;
      for (const auto& t : p.tokens) literal = literal || t != kWildcard;
      if (!literal) return make_error(ErrorCode::kParse, "{}: a pattern needs at least one word: \"{}\"", at, line);
    }
    list.patterns.push_back(std::move(p));
    return ok_status();
  }));
  if (list.patterns.empty()) return make_error(ErrorCode::kParse, "{}: no patterns", where);
  return list;
}

Result<TellList> TellList::load(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  return parse(text, path);
}

Result<TellList> load_default_tells() {
  auto path = protocol::find_in_repo("data/slop-tells-v1.txt");
  if (!path) {
    return make_error(ErrorCode::kNotFound,
                      "data/slop-tells-v1.txt not found in the current directory, the executable's directory or "
                      "their parents; run from the repository or pass --tells FILE");
  }
  return TellList::load(*path);
}

Result<std::shared_ptr<const PhraseMatcher>> load_phrase_bans(const std::string& ban_list, bool ban_tells) {
  if (ban_list.empty() && !ban_tells) return std::shared_ptr<const PhraseMatcher>();
  std::vector<std::string> phrases;
  if (!ban_list.empty()) {
    auto text = read_file_text(ban_list);
    if (!text) return make_error(text.error().code, "--ban-list: {}", text.error().message);
    FABULA_TRY(for_each_line(*text, [&](std::string_view line, int, bool) {
      if (line[0] != '#') phrases.emplace_back(line);
      return ok_status();
    }));
  }
  if (ban_tells) {
    auto path = protocol::find_in_repo("data/slop-tells-v1.txt");
    if (!path) return make_error(ErrorCode::kNotFound, "--ban-tells: data/slop-tells-v1.txt not found near the binary");
    FABULA_ASSIGN(TellList tells, TellList::load(*path));
    for (const auto& p : tells.patterns)
      if (!p.is_regex && std::count(p.tokens.begin(), p.tokens.end(), kWildcard) == 0) phrases.push_back(p.source);
  }
  return std::shared_ptr<const PhraseMatcher>(std::make_shared<PhraseMatcher>(phrases));
}

std::vector<TellHit> match_tells(const TellList& tells, const std::vector<std::string>& prose_lines,
                                 const std::vector<std::string>& cast_words) {
  std::set<std::string> cast;
  for (const auto& w : cast_words) cast.insert(key_of(w));
  // Index phrase patterns by their first literal token; a pattern with a cast word never matches.
  std::unordered_map<std::string, std::vector<size_t>> by_first;
  std::vector<size_t> wildcard_first, regexes;
  for (size_t i = 0; i < tells.patterns.size(); ++i) {
    const auto& p = tells.patterns[i];
    if (p.is_regex) {
      regexes.push_back(i);
      continue;
    }
    bool has_cast = false;
    for (const auto& t : p.tokens) has_cast = has_cast || (t != kWildcard && cast.count(t));
    if (has_cast) continue;
    if (p.tokens[0] == kWildcard) wildcard_first.push_back(i);
    else by_first[p.tokens[0]].push_back(i);
  }
  std::vector<TellHit> hits;
  std::vector<size_t> next_ok(tells.patterns.size());
  for (const auto& line : prose_lines) {
    std::vector<std::string> words = words_of(line);
    for (auto& w : words) w = key_of(w);
    std::fill(next_ok.begin(), next_ok.end(), 0);
    auto try_pattern = [&](size_t pi, size_t j) {
      if (j < next_ok[pi]) return;
      long end = match_at(tells.patterns[pi].tokens, 0, words, j);
      if (end < 0) return;
      std::string text;
      for (size_t k = j; k < static_cast<size_t>(end); ++k) text += (k > j ? " " : "") + words[k];
      hits.push_back({pi, std::move(text)});
      next_ok[pi] = static_cast<size_t>(end);
    };
    for (size_t j = 0; j < words.size(); ++j) {
      if (auto it = by_first.find(words[j]); it != by_first.end()) {
        for (size_t pi : it->second) try_pattern(pi, j);
      }
      for (size_t pi : wildcard_first) try_pattern(pi, j);
    }
    if (regexes.empty()) continue;
    std::string norm = protocol::fold(line);
    for (size_t pi : regexes) {
      for_each_regex_match(*tells.patterns[pi].regex, norm, [&](const std::string& m) {
        auto mw = words_of(m);
        bool all_cast = !mw.empty();
        for (const auto& w : mw) all_cast = all_cast && cast.count(key_of(w));
        if (!all_cast) hits.push_back({pi, m});
      });
    }
  }
  return hits;
}

}  // namespace fabula::eval
