// Slop-tell list (data/slop-tells-v1.txt) and its matcher: phrases on word boundaries, {X} wildcards, re: regexes.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sample/phrase_ban.h"

namespace fabula::eval {

// File format: UTF-8, one pattern a line. '#' starts a comment line; "# version: <v>" names the
// version. A phrase is matched case-insensitively on word boundaries (compared as words_of() words);
// "{X}" stands for one to three words. "re:<ECMAScript regex>" is searched in each normalised
// (NFC, case-folded) prose line, so a regex must be written in lower case (no icase: it is slow).
struct TellPattern {
  std::string source;               // the line as written
  std::vector<std::string> tokens;  // phrase: words, "{X}" for a wildcard; empty for a regex
  bool is_regex = false;
  std::shared_ptr<const std::regex> regex;
};

struct TellList {
  std::string version;
  std::vector<TellPattern> patterns;

  static Result<TellList> parse(std::string_view text, const std::string& where);
  static Result<TellList> load(const std::string& path);
};

// The default list, found with protocol::find_in_repo("data/slop-tells-v1.txt").
Result<TellList> load_default_tells();

// The commands' --ban-list FILE (one phrase a line; blank lines and lines starting with '#' are skipped) and
// --ban-tells (the plain phrases of the default tell list; its "{X}" and "re:" patterns are skipped): one matcher
// over both; nullptr when neither is asked for.
Result<std::shared_ptr<const PhraseMatcher>> load_phrase_bans(const std::string& ban_list, bool ban_tells);

struct TellHit {
  size_t pattern = 0;  // index in TellList::patterns
  std::string text;    // matched words (phrases) or matched text (regexes)
};

// Matches of `tells` in prose lines. Per pattern, matches are leftmost and non-overlapping (a {X}
// takes the fewest words that complete the match); different patterns count separately.
// Cast names never match a tell: a phrase hit is dropped if one of its literal words is a word of a
// cast name, a regex hit if all of its words are cast-name words. `cast_words` must be words_of()
// output (case-folded).
std::vector<TellHit> match_tells(const TellList& tells, const std::vector<std::string>& prose_lines,
                                 const std::vector<std::string>& cast_words);

}  // namespace fabula::eval
