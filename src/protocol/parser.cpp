// Parser: tool calls with bracket- and string-aware value scanning, dialogue, narration, and the lenient repairs.
#include "protocol/parser.h"

#include <nlohmann/json.hpp>

#include "base/ascii.h"
#include "protocol/unicode.h"

namespace fabula::protocol {

namespace {

constexpr std::string_view kLeftDq = "\xE2\x80\x9C";   // “
constexpr std::string_view kRightDq = "\xE2\x80\x9D";  // ”
constexpr std::string_view kLeftSq = "\xE2\x80\x98";   // ‘
constexpr std::string_view kRightSq = "\xE2\x80\x99";  // ’

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident(char c) { return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

size_t skip_blanks(std::string_view s, size_t pos) {
  while (pos < s.size() && is_blank(s[pos])) ++pos;
  return pos;
}

bool starts_with_at(std::string_view s, size_t pos, std::string_view prefix) {
  return s.size() >= pos + prefix.size() && s.substr(pos, prefix.size()) == prefix;
}

size_t find_ci(std::string_view s, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= s.size(); ++i)
    if (ascii_iequals(s.substr(i, needle.size()), needle)) return i;
  return std::string_view::npos;
}

// s[pos] is '"': the index of the '"' that closes it (a backslash escapes the next character), s.size() if none.
size_t closing_quote(std::string_view s, size_t pos) {
  bool escape = false;
  for (size_t i = pos + 1; i < s.size(); ++i) {
    if (escape) escape = false;
    else if (s[i] == '\\') escape = true;
    else if (s[i] == '"') return i;
  }
  return s.size();
}

// s[pos] is '[' or '{': returns one past the bracket that closes it, tracking "..." JSON strings so
// brackets and apostrophes inside strings don't count; npos if it never closes.
size_t scan_json(std::string_view s, size_t pos) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = pos; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// The closing quote `close` of a quoted text starting at pos: the first one followed by a blank,
// ']' or the end (so an apostrophe inside the text does not close it).
size_t find_text_close(std::string_view s, size_t pos, std::string_view close) {
  for (size_t i = pos; i + close.size() <= s.size(); ++i) {
    if (s.substr(i, close.size()) != close) continue;
    size_t after = i + close.size();
    if (after >= s.size() || is_blank(s[after]) || s[after] == ']') return i;
  }
  return std::string_view::npos;
}

std::string unescape_dq(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\')) {
      out.push_back(s[++i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Repair repair(RepairKind kind, int line, std::string message, bool in_json = false) {
  return Repair{kind, line, std::move(message), in_json};
}

Error line_error(int line, std::string_view what) {
  return make_error(ErrorCode::kParse, "line {}: {}", line, what);
}

// Cuts a "[TOOL" fragment out of free text (E_LEAK); returns the text before it.
std::string_view cut_tool_fragment(std::string_view text, int line, std::vector<Repair>& repairs) {
  size_t at = find_ci(text, "[TOOL");
  if (at == std::string_view::npos) return text;
  repairs.push_back(repair(RepairKind::kToolFragment, line,
                           fmt::format("a \"[TOOL\" fragment inside a non-tool line was cut off: \"{}\"",
                                       ascii_trim(text.substr(at)).substr(0, 60))));
  return ascii_trim(text.substr(0, at));
}

// Scans a JSON value that starts at pos ('[' or '{') and is closed by `close` (empty: unquoted).
Result<size_t> scan_json_value(std::string_view s, size_t pos, int line, std::string_view key) {
  size_t end = scan_json(s, pos);
  if (end == std::string_view::npos) {
    return line_error(line, fmt::format("unbalanced brackets in the JSON value of \"{}\"", key));
  }
  return end;
}

Result<Tool> parse_tool(std::string_view t, int line, std::vector<Repair>& repairs) {
  if (t.substr(0, 5) != "[TOOL") {
    repairs.push_back(repair(RepairKind::kToolKeywordCase, line,
                             fmt::format("\"{}\" should be spelled \"[TOOL\"", t.substr(0, 5))));
  }
  size_t pos = skip_blanks(t, 5);
  if (pos >= t.size() || t[pos] != ':') return line_error(line, "expected ':' after \"[TOOL\"");
  pos = skip_blanks(t, pos + 1);
  Tool tool;
  size_t name_start = pos;
  if (pos < t.size() && is_ident_start(t[pos])) {
    while (pos < t.size() && is_ident(t[pos])) ++pos;
  }
  tool.name = std::string(t.substr(name_start, pos - name_start));
  if (tool.name.empty()) return line_error(line, "missing tool name after \"[TOOL:\"");
  if (pos < t.size() && !is_blank(t[pos]) && t[pos] != ']') {
    return line_error(line, fmt::format("unexpected '{}' after tool name \"{}\"", t[pos], tool.name));
  }
  for (;;) {
    pos = skip_blanks(t, pos);
    if (pos >= t.size()) return line_error(line, fmt::format("unbalanced brackets: tool \"{}\" has no closing ']'", tool.name));
    if (t[pos] == ']') {
      std::string_view rest = ascii_trim(t.substr(pos + 1));
      if (!rest.empty()) {
        size_t before = repairs.size();
        cut_tool_fragment(rest, line, repairs);
        if (repairs.size() == before) {
          repairs.push_back(repair(RepairKind::kTrailingText, line,
                                   fmt::format("text after the closing ']' was dropped: \"{}\"", rest.substr(0, 60))));
        }
      }
      return tool;
    }
    size_t key_start = pos;
    if (!is_ident_start(t[pos])) {
      return line_error(line, fmt::format("expected an argument name or ']' in tool \"{}\", found '{}'", tool.name, t[pos]));
    }
    while (pos < t.size() && is_ident(t[pos])) ++pos;
    ToolArg arg;
    arg.key = std::string(t.substr(key_start, pos - key_start));
    pos = skip_blanks(t, pos);
    if (pos >= t.size() || t[pos] != '=') {
      return line_error(line, fmt::format("argument \"{}\" of tool \"{}\" has no '='", arg.key, tool.name));
    }
    pos = skip_blanks(t, pos + 1);
    if (pos >= t.size()) return line_error(line, fmt::format("argument \"{}\" has no value", arg.key));
    char c = t[pos];
    if (c == '"') {
      const size_t i = closing_quote(t, pos);
      if (i < t.size()) {
        arg.value = unescape_dq(t.substr(pos + 1, i - pos - 1));
        pos = i + 1;
      } else {
        // No closing quote: the value runs to the last ']' of the line.
        size_t close = t.rfind(']');
        if (close == std::string_view::npos || close <= pos) {
          return line_error(line, fmt::format("argument \"{}\": missing closing quote and ']'", arg.key));
        }
        arg.value = unescape_dq(ascii_trim(t.substr(pos + 1, close - pos - 1)));
        repairs.push_back(repair(RepairKind::kMissingClosingQuote, line,
                                 fmt::format("argument \"{}\" has no closing '\"'", arg.key)));
        pos = close;
      }
    } else if (c == '\'' || starts_with_at(t, pos, kLeftSq)) {
      bool typographic = c != '\'';
      std::string_view close_quote = typographic ? kRightSq : std::string_view("'");
      size_t open_len = typographic ? kLeftSq.size() : 1;
      size_t body = skip_blanks(t, pos + open_len);
      if (typographic) {
        repairs.push_back(repair(RepairKind::kTypographicQuotes, line,
                                 fmt::format("argument \"{}\" is quoted with ‘ ’ instead of '", arg.key)));
      }
      if (body < t.size() && (t[body] == '[' || t[body] == '{')) {
        FABULA_ASSIGN(size_t end, scan_json_value(t, body, line, arg.key));
        size_t after = skip_blanks(t, end);
        arg.kind = ValueKind::kJson;
        std::string_view json = t.substr(body, end - body);
        // Unrecoverable JSON stays as written: the validator reports it as E_CHOICES_JSON.
        auto fixed = repair_json_value(json, line, repairs);
        arg.value = fixed.ok() ? std::move(fixed).value() : std::string(json);
        if (starts_with_at(t, after, close_quote)) {
          pos = after + close_quote.size();
        } else if (after < t.size() && t[after] == ']') {
          repairs.push_back(repair(RepairKind::kMissingClosingQuote, line,
                                   fmt::format("argument \"{}\": the JSON value has no closing quote", arg.key)));
          pos = after;
        } else {
          return line_error(line, fmt::format("argument \"{}\": expected a closing quote after the JSON value", arg.key));
        }
      } else {
        size_t close = find_text_close(t, pos + open_len, close_quote);
        if (close == std::string_view::npos) {
          return line_error(line, fmt::format("argument \"{}\": missing closing quote", arg.key));
        }
        arg.value = std::string(t.substr(pos + open_len, close - pos - open_len));
        if (!typographic) {
          repairs.push_back(repair(RepairKind::kSingleQuotedText, line,
                                   fmt::format("argument \"{}\" is single-quoted text; only JSON values take ' '", arg.key)));
        }
        pos = close + close_quote.size();
      }
    } else if (starts_with_at(t, pos, kLeftDq) || starts_with_at(t, pos, kRightDq)) {
      size_t start = pos + kLeftDq.size();
      size_t close = find_text_close(t, start, kRightDq);
      if (close == std::string_view::npos) close = find_text_close(t, start, kLeftDq);
      if (close == std::string_view::npos) {
        return line_error(line, fmt::format("argument \"{}\": missing closing quote", arg.key));
      }
      arg.value = std::string(t.substr(start, close - start));
      repairs.push_back(repair(RepairKind::kTypographicQuotes, line,
                               fmt::format("argument \"{}\" is quoted with “ ” instead of \"", arg.key)));
      pos = close + kRightDq.size();
    } else if (c == '[' || c == '{') {
      FABULA_ASSIGN(size_t end, scan_json_value(t, pos, line, arg.key));
      arg.kind = ValueKind::kJson;
      repairs.push_back(repair(RepairKind::kUnquotedValue, line,
                               fmt::format("argument \"{}\": the JSON value is not in ' '", arg.key)));
      auto fixed = repair_json_value(t.substr(pos, end - pos), line, repairs);
      arg.value = fixed.ok() ? std::move(fixed).value() : std::string(t.substr(pos, end - pos));
      pos = end;
    } else {
      size_t start = pos;
      while (pos < t.size() && !is_blank(t[pos]) && t[pos] != ']') ++pos;
      arg.value = std::string(t.substr(start, pos - start));
      if (arg.value.empty()) return line_error(line, fmt::format("argument \"{}\" has no value", arg.key));
      repairs.push_back(repair(RepairKind::kUnquotedValue, line,
                               fmt::format("argument \"{}\" value \"{}\" is not quoted", arg.key, arg.value)));
    }
    if (pos < t.size() && !is_blank(t[pos]) && t[pos] != ']') {
      return line_error(line, fmt::format("unexpected '{}' after the value of \"{}\"", t[pos], arg.key));
    }
    tool.args.push_back(std::move(arg));
  }
}

// `[Name]: "text"` and its repairable variants; nullopt if the line is not dialogue-shaped.
std::optional<Dialogue> parse_dialogue(std::string_view t, int line, std::vector<Repair>& repairs) {
  size_t close = t.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view name = ascii_trim(t.substr(1, close - 1));
  if (name.empty() || name.size() > 64 || name.find_first_of("[\n\"") != std::string_view::npos) return std::nullopt;
  size_t pos = skip_blanks(t, close + 1);
  bool colon = pos < t.size() && t[pos] == ':';
  std::string_view body = ascii_trim(t.substr(colon ? pos + 1 : pos));
  bool quoted = !body.empty() && (body[0] == '"' || starts_with_at(body, 0, kLeftDq));
  if (!colon && !quoted) return std::nullopt;  // [Name] narration: a bracket line, not dialogue
  Dialogue d;
  d.speaker = nfc(name);
  if (!colon) {
    repairs.push_back(repair(RepairKind::kDialogueNoColon, line,
                             fmt::format("dialogue of \"{}\" has no ':' after the name", d.speaker)));
  }
  std::string_view text;
  std::string_view trailing;
  if (!body.empty() && body[0] == '"') {
    size_t last = body.rfind('"');
    if (last == 0) {
      text = body.substr(1);
      repairs.push_back(repair(RepairKind::kDialogueUnclosedQuote, line,
                               fmt::format("dialogue of \"{}\" has no closing '\"'", d.speaker)));
    } else {
      text = body.substr(1, last - 1);
      trailing = ascii_trim(body.substr(last + 1));
    }
  } else if (starts_with_at(body, 0, kLeftDq)) {
    repairs.push_back(repair(RepairKind::kTypographicQuotes, line,
                             fmt::format("dialogue of \"{}\" is quoted with “ ” instead of \"", d.speaker)));
    std::string_view inner = body.substr(kLeftDq.size());
    size_t last = inner.rfind(kRightDq);
    if (last == std::string_view::npos) {
      text = inner;
      repairs.push_back(repair(RepairKind::kDialogueUnclosedQuote, line,
                               fmt::format("dialogue of \"{}\" has no closing quote", d.speaker)));
    } else {
      text = inner.substr(0, last);
      trailing = ascii_trim(inner.substr(last + kRightDq.size()));
    }
  } else {
    text = body;
    repairs.push_back(repair(RepairKind::kDialogueUnquoted, line,
                             fmt::format("dialogue of \"{}\" is not in quotes", d.speaker)));
  }
  size_t before = repairs.size();
  text = cut_tool_fragment(text, line, repairs);
  if (!trailing.empty()) {
    if (cut_tool_fragment(trailing, line, repairs).size() == trailing.size() && repairs.size() == before) {
      repairs.push_back(repair(RepairKind::kTrailingText, line,
                               fmt::format("text after the closing quote was dropped: \"{}\"", trailing.substr(0, 60))));
    }
  }
  d.text = unescape_dq(ascii_trim(text));
  return d;
}

// Python repr / typographic quotes -> JSON (see repair_json_value).
std::string python_to_json(std::string_view s, bool& python, bool& typographic) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  auto emit_string = [&](std::string_view content) {
    out.push_back('"');
    for (size_t k = 0; k < content.size(); ++k) {
      char c = content[k];
      if (c == '\\' && k + 1 < content.size()) {
        char n = content[++k];
        if (n == '\'') out.push_back('\'');
        else { out.push_back('\\'); out.push_back(n); }
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  };
  auto delimiter_follows = [&](size_t after) {
    size_t k = skip_blanks(s, after);
    return k >= s.size() || s[k] == ',' || s[k] == ']' || s[k] == '}' || s[k] == ':';
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      const size_t k = closing_quote(s, i);
      out.append(s.substr(i, std::min(k + 1, s.size()) - i));
      i = k + 1;
    } else if (c == '\'' || starts_with_at(s, i, kLeftSq) || starts_with_at(s, i, kLeftDq)) {
      std::string_view close = c == '\'' ? std::string_view("'") : starts_with_at(s, i, kLeftSq) ? kRightSq : kRightDq;
      size_t open_len = c == '\'' ? 1 : 3;
      (c == '\'' ? python : typographic) = true;
      size_t k = i + open_len;
      while (k < s.size()) {
        if (s[k] == '\\' && c == '\'') { k += 2; continue; }
        if (starts_with_at(s, k, close) && delimiter_follows(k + close.size())) break;
        ++k;
      }
      emit_string(s.substr(i + open_len, std::min(k, s.size()) - i - open_len));
      i = std::min(k + close.size(), s.size());
    } else if (c == ',') {
      size_t k = skip_blanks(s, i + 1);
      if (k < s.size() && (s[k] == ']' || s[k] == '}')) {
        python = true;  // trailing comma
      } else {
        out.push_back(c);
      }
      ++i;
    } else if (is_ident_start(c)) {
      size_t k = i;
      while (k < s.size() && is_ident(s[k])) ++k;
      std::string_view word = s.substr(i, k - i);
      if (word == "True") { out += "true"; python = true; }
      else if (word == "False") { out += "false"; python = true; }
      else if (word == "None") { out += "null"; python = true; }
      else out.append(word);
      i = k;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

}  // namespace

const ToolArg* Tool::find(std::string_view key) const {
  for (const auto& a : args) {
    if (a.key == key) return &a;
  }
  return nullptr;
}

std::string_view repair_kind_name(RepairKind kind) {
  switch (kind) {
    case RepairKind::kUnquotedValue: return "unquoted_value";
    case RepairKind::kTypographicQuotes: return "typographic_quotes";
    case RepairKind::kMissingClosingQuote: return "missing_closing_quote";
    case RepairKind::kPythonList: return "python_list";
    case RepairKind::kTrailingText: return "trailing_text";
    case RepairKind::kToolKeywordCase: return "tool_keyword_case";
    case RepairKind::kSingleQuotedText: return "single_quoted_text";
    case RepairKind::kDialogueUnquoted: return "dialogue_unquoted";
    case RepairKind::kDialogueNoColon: return "dialogue_no_colon";
    case RepairKind::kDialogueUnclosedQuote: return "dialogue_unclosed_quote";
    case RepairKind::kBracketLine: return "bracket_line";
    case RepairKind::kControlText: return "control_text";
    case RepairKind::kToolFragment: return "tool_fragment";
  }
  return "unknown";
}

const std::vector<std::string_view>& control_tokens() {
  static const std::vector<std::string_view> tokens = {"<|channel>", "<channel|>", "<|turn>", "<turn|>",
                                                       "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>"};
  return tokens;
}

Result<std::string> repair_json_value(std::string_view text, int line, std::vector<Repair>& repairs) {
  auto strict = nlohmann::json::parse(text, nullptr, false);
  if (!strict.is_discarded()) return std::string(text);
  bool python = false, typographic = false;
  std::string converted = python_to_json(text, python, typographic);
  auto j = nlohmann::json::parse(converted, nullptr, false);
  if (j.is_discarded() || (!python && !typographic)) {
    return line_error(line, fmt::format("not JSON: {}", text.substr(0, 80)));
  }
  if (python) {
    repairs.push_back(repair(RepairKind::kPythonList, line,
                             "the JSON value is in Python style (single-quoted strings, True/False/None or a trailing comma)",
                             true));
  }
  if (typographic) {
    repairs.push_back(repair(RepairKind::kTypographicQuotes, line, "the JSON value quotes its strings with “ ” or ‘ ’", true));
  }
  return j.dump();
}

Result<ParsedLine> parse_line(std::string_view text, int line_no) {
  ParsedLine out;
  std::string cleaned;
  std::string_view src = text;
  for (auto token : control_tokens()) {
    if (src.find(token) == std::string_view::npos) continue;
    if (cleaned.empty()) cleaned = std::string(text);
    size_t at;
    while ((at = cleaned.find(token)) != std::string::npos) cleaned.erase(at, token.size());
    src = cleaned;
    out.repairs.push_back(repair(RepairKind::kControlText, line_no, fmt::format("control text \"{}\" was stripped", token)));
  }
  std::string_view t = ascii_trim(src);
  if (t.empty()) {
    out.line = Blank{};
    return out;
  }
  if (find_ci(t.substr(0, 5), "[TOOL") == 0) {
    FABULA_ASSIGN(Tool tool, parse_tool(t, line_no, out.repairs));
    out.line = std::move(tool);
    return out;
  }
  if (t[0] == '[') {
    if (auto d = parse_dialogue(t, line_no, out.repairs)) {
      out.line = std::move(*d);
      return out;
    }
    out.repairs.push_back(repair(RepairKind::kBracketLine, line_no,
                                 "a line starting with '[' is neither a tool call nor dialogue; read as narration"));
  }
  std::string_view narration = cut_tool_fragment(t, line_no, out.repairs);
  if (narration.empty()) {
    out.line = Blank{};
  } else {
    out.line = Narration{std::string(narration)};
  }
  return out;
}

}  // namespace fabula::protocol
