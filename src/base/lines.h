// The line loop of line-based files: JSONL (scenes, beats, scripted narrators, validate input), tell and ban lists.
#pragma once

#include <string_view>

#include "base/ascii.h"
#include "base/result.h"

namespace fabula {

// Calls fn(line, line_no, last) -> Status for each line of `text` that is not blank, trimmed; line_no counts every
// line from 1 (for error messages), last: no newline follows it. Stops at the first error.
template <typename Fn>
Status for_each_line(std::string_view text, Fn&& fn) {
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = ascii_trim(text.substr(pos, end - pos));
    ++line_no;
    bool last = end == text.size();
    pos = end + 1;
    if (line.empty()) continue;
    FABULA_TRY(fn(line, line_no, last));
  }
  return ok_status();
}

}  // namespace fabula
