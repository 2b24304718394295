// LineSplitter: a byte-at-a-time state machine, so chunking never changes the output.
#include "protocol/line_splitter.h"

namespace fabula::protocol {

void LineSplitter::end_line(std::vector<LogicalLine>& out) {
  std::string text = std::move(current_);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  out.push_back(LogicalLine{std::move(text), start_line_});
  int next_line = line_;
  *this = LineSplitter();
  line_ = next_line;
  start_line_ = next_line;
}

void LineSplitter::feed(std::string_view bytes, std::vector<LogicalLine>& out) {
  for (char c : bytes) {
    if (c == '\n') {
      // Inside a string, a single-quoted JSON value or a bracket opened inside the line's own, the newline is
      // part of the line. With only the line's own '[' open, the line ends here: an unclosed [TOOL: is one
      // broken line, not the rest of the beat (a '{' line keeps going until it balances).
      bool hold = tracking_ && depth_ > 0 && (in_single_ || in_string_ || opener_ == '{' || depth_ > 1);
      // Recovery: a tool value like track="calm] whose quote never closed would swallow the rest of
      // the beat; if the open string already holds the ']' that closes the tool, end the line here.
      if (hold && in_string_ && !in_single_ && string_saw_close_) hold = false;
      if (hold) {
        current_.push_back(c);
        ++line_;
        continue;
      }
      ++line_;
      end_line(out);
      continue;
    }
    current_.push_back(c);
    bool blank = c == ' ' || c == '\t' || c == '\r';
    if (at_start_) {
      if (blank) continue;
      at_start_ = false;
      tracking_ = c == '[' || c == '{';
      opener_ = c;
    }
    if (!tracking_) continue;
    if (in_single_) {
      if (in_string_) {
        if (escape_) escape_ = false;
        else if (c == '\\') escape_ = true;
        else if (c == '"') in_string_ = false;
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '[' || c == '{') {
        ++single_depth_;
      } else if (c == ']' || c == '}') {
        if (single_depth_ > 0) --single_depth_;
      } else if (c == '\'' && single_depth_ == 0) {
        in_single_ = false;
        last_sig_ = c;
      }
      continue;
    }
    if (in_string_) {
      if (escape_) escape_ = false;
      else if (c == '\\') escape_ = true;
      else if (c == '"') in_string_ = false;
      else if (c == ']' && depth_ == 1) string_saw_close_ = true;
      continue;
    }
    if (c == '"') {
      in_string_ = true;
      string_saw_close_ = false;
    } else if (c == '[' || c == '{') {
      ++depth_;
    } else if (c == ']' || c == '}') {
      if (depth_ > 0) --depth_;
    } else if (c == '\'' && depth_ > 0 && last_sig_ == '=') {
      in_single_ = true;
      single_depth_ = 0;
    }
    if (!blank) last_sig_ = c;
  }
}

std::vector<LogicalLine> LineSplitter::feed(std::string_view bytes) {
  std::vector<LogicalLine> out;
  feed(bytes, out);
  return out;
}

std::optional<LogicalLine> LineSplitter::finish() {
  if (current_.empty()) {
    reset();
    return std::nullopt;
  }
  std::vector<LogicalLine> out;
  end_line(out);
  reset();
  return std::move(out.front());
}

std::vector<LogicalLine> split_lines(std::string_view text) {
  LineSplitter splitter;
  std::vector<LogicalLine> out;
  splitter.feed(text, out);
  if (auto last = splitter.finish()) out.push_back(std::move(*last));
  return out;
}

}  // namespace fabula::protocol
