// Words and prose of docs/PROTOCOL.md §4: prose extraction, NFC + case-folded word tokenisation, n-grams.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/validator.h"

namespace fabula::eval {

// Words of `text`: maximal runs of Unicode letters (L*) or decimal digits (Nd), with combining marks
// (M*) after a letter kept, and inner apostrophes (' or ’) and hyphens kept when a letter/digit
// follows. Tokenises protocol::fold(text), so the words come out NFC + case-folded.
std::vector<std::string> words_of(std::string_view text);

// Prose of a beat, one entry per prose line: narration lines and the text of dialogue lines, read
// leniently (so a beat with errors still has prose); tool lines, speaker tags and quotes removed.
std::vector<std::string> extract_prose(std::string_view beat);
std::vector<std::string> extract_prose(const protocol::BeatReport& report);

// Word lists of prose lines (words never span lines).
std::vector<std::vector<std::string>> line_words(const std::vector<std::string>& prose_lines);

// All n-grams of each line, joined by a single space (n-grams do not cross lines).
std::vector<std::string> ngrams(const std::vector<std::vector<std::string>>& lines, int n);

}  // namespace fabula::eval
