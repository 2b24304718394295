// The row loop of JSONL inputs read through JsonView (beat rows, eval scenes, tokenize batches).
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/json_view.h"
#include "base/lines.h"

namespace fabula {

// Calls fn(row) -> Status for each non-blank line of `text`, parsed as a JSON object; row.where() is
// "where:line_no", the prefix of every error about the line. Stops at the first error.
template <typename Fn>
Status for_each_jsonl_object(std::string_view text, std::string_view where, Fn&& fn) {
  return for_each_line(text, [&](std::string_view line, int line_no, bool) -> Status {
    const std::string at = fmt::format("{}:{}", where, line_no);
    FABULA_ASSIGN(nlohmann::json doc, parse_json(line, at));
    const JsonView row(doc, at);
    FABULA_TRY(row.expect_object());
    return fn(row);
  });
}

}  // namespace fabula
