// Parser: one logical line -> Tool / Dialogue / Narration / Blank, recording every repair it had to make.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace fabula::protocol {

enum class ValueKind {
  kString,  // key="text" (escapes \" and \\ resolved)
  kJson,    // key='<json>' (raw JSON text; a Python-style list is converted to JSON and repaired)
};

struct ToolArg {
  std::string key;
  std::string value;
  ValueKind kind = ValueKind::kString;
};

struct Tool {
  std::string name;
  std::vector<ToolArg> args;  // in line order
  const ToolArg* find(std::string_view key) const;
};

struct Dialogue {
  std::string speaker;  // NFC, trimmed
  std::string text;
};

struct Narration {
  std::string text;
};

struct Blank {};

using Line = std::variant<Blank, Narration, Dialogue, Tool>;

// Every repair the lenient reader can make. The strict validator turns each into an error
// (E_TOOL_SYNTAX unless noted), except kDialogueUnclosedQuote, which is only a warning (docs/PROTOCOL.md §1).
enum class RepairKind {
  kUnquotedValue,          // key=value or key=[...] without quotes
  kTypographicQuotes,      // “ ” ‘ ’ used as value/dialogue/JSON-string quotes
  kMissingClosingQuote,    // key="value with no closing quote (runs to the closing bracket)
  kPythonList,             // JSON value in Python repr: 'single-quoted' items, True/False/None, trailing comma -> E_CHOICES_JSON
  kTrailingText,           // text after the closing ] of a tool, or after the closing quote of dialogue
  kToolKeywordCase,        // [tool: ...] / [Tool: ...] instead of [TOOL: ...]
  kSingleQuotedText,       // key='text' whose content is not JSON (kept as a string)
  kDialogueUnquoted,       // [Name]: text  (no quotes at all)
  kDialogueNoColon,        // [Name] "text" (no colon)
  kDialogueUnclosedQuote,  // [Name]: "text  -- a warning, not an error
  kBracketLine,            // a line starting with [ that is neither a tool nor dialogue (kept as narration)
  kControlText,            // a chat control token (<turn|>, <|channel>, <eos>, ...) stripped -> E_LEAK
  kToolFragment,           // "[TOOL" inside a non-tool line (fragment cut off) -> E_LEAK
};

std::string_view repair_kind_name(RepairKind kind);  // "unquoted_value", ...

struct Repair {
  RepairKind kind;
  int line = 0;  // 1-based physical line of the logical line
  std::string message;
  bool in_json = false;  // made inside a JSON value (strictly: not JSON -> E_CHOICES_JSON)
};

struct ParsedLine {
  Line line;
  std::vector<Repair> repairs;  // empty: the line is strictly well-formed
};

// Parses one logical line (as produced by LineSplitter; it may contain inner newlines).
// `line_no` is only copied into repairs and error messages. Leading/trailing blanks are ignored.
// Returns an error (ErrorCode::kParse, message "line N: ...") only for a tool line that cannot be
// recovered (no name, unbalanced brackets, a bad argument); everything else parses, with repairs.
Result<ParsedLine> parse_line(std::string_view text, int line_no);

// Lenient JSON for a choices-like value: strict JSON as is; else Python repr / typographic quotes are
// converted (repair kinds appended to `repairs`). Returns the JSON text, or an error if unrecoverable.
Result<std::string> repair_json_value(std::string_view text, int line_no, std::vector<Repair>& repairs);

// The control tokens that must never appear in a beat (docs/PROTOCOL.md §6, E_LEAK).
const std::vector<std::string_view>& control_tokens();

}  // namespace fabula::protocol
