// LineSplitter: streaming logical-line splitter (docs/PROTOCOL.md §1): newlines inside [ ] { } or quotes don't split.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabula::protocol {

struct LogicalLine {
  std::string text;  // without the terminating newline (a trailing '\r' is dropped); may hold inner newlines
  int line = 0;      // 1-based physical line on which it starts
};

// Feed bytes as they arrive; complete logical lines come out as soon as their newline is seen.
// The output depends only on the concatenated input, never on how it was chunked.
//
// Rules (why: the narrator streams, and a multi-line JSON `choices` must stay one line):
// - Bracket depth ([ { vs ] }) is tracked only on lines whose first non-blank byte is '[' or '{',
//   so a stray '[' in narration cannot swallow the rest of the beat.
// - Inside brackets, "..." strings (with \ escapes) are tracked, and a value opened by '=' followed
//   by ' is a single-quoted JSON value: it closes at the first ' at its own bracket depth 0
//   outside a JSON string, so apostrophes inside the JSON's strings never close it.
// - At depth 0 (e.g. the text after `[Name]:`), quotes only hide brackets: a newline always ends
//   the line, so an unclosed dialogue quote never merges lines.
// - Recovery: a newline inside an unclosed "..." tool value that already contains the tool's closing
//   ']' (track="calm]) ends the line, so one missing quote cannot swallow the rest of the beat.
class LineSplitter {
 public:
  // Appends the logical lines completed by `bytes` to `out`.
  void feed(std::string_view bytes, std::vector<LogicalLine>& out);
  std::vector<LogicalLine> feed(std::string_view bytes);
  // Flushes the final line if the input did not end with a newline (even if brackets are open).
  std::optional<LogicalLine> finish();
  // Bytes of the incomplete current line.
  std::string_view pending() const { return current_; }
  void reset() { *this = LineSplitter(); }

 private:
  void end_line(std::vector<LogicalLine>& out);

  std::string current_;
  int line_ = 1;          // physical line of the next byte
  int start_line_ = 1;    // physical line where current_ started
  bool at_start_ = true;  // only blanks seen so far on this logical line
  bool tracking_ = false; // line starts with [ or {
  char opener_ = 0;       // that first byte
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool string_saw_close_ = false;  // the open "..." string holds a ']' at tool depth 1
  bool in_single_ = false;  // inside a '...' JSON value
  int single_depth_ = 0;
  char last_sig_ = 0;       // last non-blank byte outside strings
};

// Splits a whole text (feed + finish).
std::vector<LogicalLine> split_lines(std::string_view text);

}  // namespace fabula::protocol
