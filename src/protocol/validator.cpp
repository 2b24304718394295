// Validator: runs splitter + parser over a beat and applies the rules of docs/PROTOCOL.md §3 (errors, warnings).
#include "protocol/validator.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "base/ascii.h"
#include "protocol/unicode.h"

namespace fabula::protocol {

const std::vector<std::string>& narration_labels() {
  static const std::vector<std::string> labels = {
      "note",    "time",      "place",     "scene",   "setting",  "location", "chapter",  "act",      "day",
      "date",    "later",     "meanwhile", "morning", "afternoon", "evening", "night",    "music",    "sound",
      "mood",    "narrator",  "narration", "choice",  "choices",  "prompt",   "summary",  "title",    "sign",
      "caption", "flashback", "warning",   "monday",  "tuesday",  "wednesday", "thursday", "friday", "saturday",
      "sunday"};
  return labels;
}

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kToolSyntax: return "E_TOOL_SYNTAX";
    case Code::kToolUnknown: return "E_TOOL_UNKNOWN";
    case Code::kArgMissing: return "E_ARG_MISSING";
    case Code::kArgUnknown: return "E_ARG_UNKNOWN";
    case Code::kEnum: return "E_ENUM";
    case Code::kChoicesJson: return "E_CHOICES_JSON";
    case Code::kCastLock: return "E_CAST_LOCK";
    case Code::kFlow: return "E_FLOW";
    case Code::kEmpty: return "E_EMPTY";
    case Code::kLeak: return "E_LEAK";
    case Code::kHideOffStage: return "W_HIDE_OFFSTAGE";
    case Code::kSpeakerOffStage: return "W_SPEAKER_OFFSTAGE";
    case Code::kUnclosedQuote: return "W_UNCLOSED_QUOTE";
    case Code::kPovSlip: return "W_POV_SLIP";
    case Code::kLongLine: return "W_LONG_LINE";
  }
  return "E_UNKNOWN";
}

namespace {

bool code_is_error(Code code) { return code <= Code::kLeak; }

}  // namespace

bool BeatReport::needed_repair() const {
  for (const auto& l : lines) {
    if (!l.repairs.empty() || !l.parse_error.empty()) return true;
  }
  return false;
}

std::vector<std::string> BeatReport::codes() const {
  std::vector<std::string> out;
  for (const auto& e : errors) out.emplace_back(code_name(e.code));
  return out;
}

ChoicesCheck check_choices(std::string_view json_text, const ArgSpec& spec) {
  ChoicesCheck out;
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded()) {
    out.error = fmt::format("choices is not strict JSON: {}", json_text.substr(0, 80));
    return out;
  }
  if (!j.is_array()) {
    out.error = "choices must be a JSON array";
    return out;
  }
  if (static_cast<int>(j.size()) < spec.min_items || static_cast<int>(j.size()) > spec.max_items) {
    out.error = fmt::format("choices has {} items; expected {} to {}", j.size(), spec.min_items, spec.max_items);
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& item = j[i];
    std::string text;
    if (item.is_string()) {
      text = std::string(ascii_trim(item.get<std::string>()));
    } else if (item.is_object() && item.contains("text") && item["text"].is_string()) {
      text = std::string(ascii_trim(item["text"].get<std::string>()));
    } else {
      if (out.error.empty()) out.error = fmt::format("choice {} must be a string or an object with a string \"text\"", i + 1);
      continue;
    }
    if (out.error.empty()) {
      if (text.empty()) {
        out.error = fmt::format("choice {} is empty", i + 1);
      } else if (static_cast<int>(utf8_length(text)) > spec.max_item_chars) {
        out.error = fmt::format("choice {} has {} characters; at most {}", i + 1, utf8_length(text), spec.max_item_chars);
      } else if (!seen.insert(text).second) {
        out.error = fmt::format("choice {} duplicates an earlier one: \"{}\"", i + 1, text);
      }
    }
    out.items.push_back(std::move(text));
  }
  return out;
}

namespace {

bool is_letter(int32_t cp) {
  auto cat = utf8proc_category(cp);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

// Text with "..." and “...” spans removed (quoted speech inside narration is not narration).
std::string strip_quoted(std::string_view s) {
  std::string out;
  bool in_ascii = false, in_typo = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!in_typo && s[i] == '"') {
      in_ascii = !in_ascii;
      out.push_back(' ');
      continue;
    }
    if (!in_ascii && s.substr(i, 3) == "\xE2\x80\x9C") { in_typo = true; i += 2; continue; }
    if (!in_ascii && s.substr(i, 3) == "\xE2\x80\x9D") { in_typo = false; out.push_back(' '); i += 2; continue; }
    if (!in_ascii && !in_typo) out.push_back(s[i]);
  }
  return out;
}

// Does `s` look like a character name: 1-3 words, each starting with an upper-case or uncased letter?
bool looks_like_name(std::string_view s) {
  s = ascii_trim(s);
  if (s.empty() || utf8_length(s) > 40) return false;
  int words = 0;
  bool at_word_start = true;
  size_t pos = 0;
  while (pos < s.size()) {
    int32_t cp = utf8_next(s, pos);
    if (cp == ' ') {
      at_word_start = true;
      continue;
    }
    if (at_word_start) {
      auto cat = utf8proc_category(cp);
      if (cat != UTF8PROC_CATEGORY_LU && cat != UTF8PROC_CATEGORY_LT && cat != UTF8PROC_CATEGORY_LO) return false;
      ++words;
      at_word_start = false;
    } else if (!is_letter(cp) && cp != '\'' && cp != '-' && cp != '.' && cp != 0x2019) {
      return false;
    }
  }
  return words >= 1 && words <= 3;
}

bool is_exempt_label(std::string_view name) {
  const std::string folded = fold(std::string(ascii_trim(name)));
  for (const auto& label : narration_labels())
    if (folded == label) return true;
  return false;
}

// A name a narration line attributes speech to: `Name: "..."`, `Name: words` or `[Name] ...` (a capitalised
// name of 1-3 words, not one of the exempt labels); empty if none.
std::string narration_speaker(std::string_view text, bool bracket_line) {
  text = ascii_trim(text);
  if (bracket_line && !text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close != std::string_view::npos && looks_like_name(text.substr(1, close - 1))) {
      return nfc(ascii_trim(text.substr(1, close - 1)));
    }
    return "";
  }
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return "";
  std::string_view after = ascii_trim(text.substr(colon + 1));
  std::string_view name = text.substr(0, colon);
  if (after.empty() || !looks_like_name(name) || is_exempt_label(name)) return "";
  return nfc(ascii_trim(name));
}

struct Checker {
  const Manifest& manifest;
  std::vector<std::string> locked;
  std::vector<std::string> on_stage;
  BeatReport& report;

  void error(Code code, int line, std::string message) {
    report.errors.push_back({code, line, std::move(message)});
    report.valid = false;
  }
  void warn(Code code, int line, std::string message) { report.warnings.push_back({code, line, std::move(message)}); }

  bool in_locked(const std::string& name) const { return std::find(locked.begin(), locked.end(), name) != locked.end(); }

  std::string cast_hint(const std::string& name) const {
    std::string folded = fold(name);
    for (const auto& c : locked) {
      if (fold(c) == folded) return fmt::format(" (did you mean \"{}\"?)", c);
    }
    return "";
  }

  // Returns true if `name` is in the locked cast; otherwise reports E_CAST_LOCK.
  bool check_cast(const std::string& name, int line, std::string_view what) {
    if (in_locked(name)) return true;
    bool in_story = manifest.find_cast(name).has_value();
    error(Code::kCastLock, line,
          fmt::format("{} \"{}\" is not in the locked cast [{}]{}{}", what, name, fmt::join(locked, ", "),
                      in_story ? " (a story character outside this scene)" : "", cast_hint(name)));
    return false;
  }

  void check_tool(const Tool& tool, int line) {
    const ToolSpec* spec = manifest.find_tool(tool.name);
    if (!spec) {
      std::vector<std::string> names;
      for (const auto& t : manifest.tools()) names.push_back(t.name);
      error(Code::kToolUnknown, line,
            fmt::format("unknown tool \"{}\"; the manifest has: {}", tool.name, fmt::join(names, ", ")));
      return;
    }
    std::set<std::string> seen;
    std::string character;
    for (const auto& arg : tool.args) {
      if (!seen.insert(arg.key).second) {
        error(Code::kToolSyntax, line, fmt::format("tool \"{}\": argument \"{}\" given twice", tool.name, arg.key));
        continue;
      }
      const ArgSpec* as = spec->find_arg(arg.key);
      if (!as) {
        std::vector<std::string> names;
        for (const auto& a : spec->args) names.push_back(a.name);
        error(Code::kArgUnknown, line,
              fmt::format("tool \"{}\" takes no argument \"{}\" (it takes: {})", tool.name, arg.key,
                          names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
        continue;
      }
      check_value(tool, *as, arg, line, character);
    }
    for (const auto& as : spec->args) {
      if (as.required && !tool.find(as.name)) {
        error(Code::kArgMissing, line, fmt::format("tool \"{}\" needs argument \"{}\"", tool.name, as.name));
      }
    }
    if (character.empty()) return;
    auto stage_it = std::find(on_stage.begin(), on_stage.end(), character);
    if (spec->role == ToolRole::kShow && stage_it == on_stage.end()) {
      on_stage.push_back(character);
    } else if (spec->role == ToolRole::kHide) {
      if (stage_it == on_stage.end()) {
        warn(Code::kHideOffStage, line, fmt::format("hide of \"{}\", who is not on stage", character));
      } else {
        on_stage.erase(stage_it);
      }
    }
  }

  void check_value(const Tool& tool, const ArgSpec& as, const ToolArg& arg, int line, std::string& character) {
    switch (as.kind) {
      case ArgKind::kEnum: {
        if (arg.kind == ValueKind::kJson) {
          error(Code::kToolSyntax, line, fmt::format("argument \"{}\" takes a double-quoted value, not JSON", arg.key));
          return;
        }
        if (as.value_set == "cast") {
          std::string name = nfc(arg.value);
          if (check_cast(name, line, fmt::format("{} {}", tool.name, arg.key))) character = name;
          return;
        }
        if (!manifest.allows(as, arg.value)) {
          std::vector<std::string> allowed = as.also;
          if (const auto* set = manifest.value_set(as.value_set)) allowed.insert(allowed.end(), set->begin(), set->end());
          error(Code::kEnum, line,
                fmt::format("{} {}=\"{}\" is not one of the {}: {}", tool.name, arg.key, arg.value, as.value_set,
                            fmt::join(allowed, ", ")));
        }
        return;
      }
      case ArgKind::kText:
        if (arg.kind == ValueKind::kJson) {
          error(Code::kToolSyntax, line, fmt::format("argument \"{}\" takes double-quoted text, not JSON", arg.key));
        }
        return;
      case ArgKind::kChoicesJson: {
        if (arg.kind != ValueKind::kJson) {
          error(Code::kChoicesJson, line,
                fmt::format("argument \"{}\" must be a single-quoted JSON array ({}='[...]')", arg.key, arg.key));
          return;
        }
        ChoicesCheck check = check_choices(arg.value, as);
        if (!check.error.empty()) error(Code::kChoicesJson, line, check.error);
        return;
      }
    }
  }
};

Code code_for_repair(const Repair& r) {
  switch (r.kind) {
    case RepairKind::kControlText:
    case RepairKind::kToolFragment: return Code::kLeak;
    case RepairKind::kPythonList: return Code::kChoicesJson;
    case RepairKind::kDialogueUnclosedQuote: return Code::kUnclosedQuote;
    default: return r.in_json ? Code::kChoicesJson : Code::kToolSyntax;
  }
}

}  // namespace

bool is_first_person(std::string_view narration) {
  std::string text = strip_quoted(narration);
  size_t pos = 0;
  std::string word;
  auto check = [&]() {
    if (word.empty()) return false;
    std::string w = word;
    word.clear();
    if (w == "I" || w == "I'm" || w == "I've" || w == "I'd" || w == "I'll") return true;
    std::string lower = fold(w);
    return lower == "me" || lower == "my" || lower == "mine" || lower == "myself";
  };
  while (pos < text.size()) {
    size_t start = pos;
    int32_t cp = utf8_next(text, pos);
    if (is_letter(cp)) {
      word.append(text, start, pos - start);
    } else if ((cp == '\'' || cp == 0x2019) && !word.empty()) {
      word.push_back('\'');  // I’m -> I'm
    } else if (check()) {
      return true;
    }
  }
  return check();
}

BeatReport validate_beat(std::string_view beat, const Manifest& manifest, const ValidateOptions& options) {
  BeatReport report;
  Checker checker{manifest, {}, {}, report};
  for (const auto& name : options.locked_cast.empty() ? manifest.cast() : options.locked_cast) {
    checker.locked.push_back(nfc(name));
  }
  for (const auto& name : options.on_stage) checker.on_stage.push_back(nfc(name));

  int ends = 0;
  int end_line = 0;
  bool prose = false;
  for (auto& logical : split_lines(beat)) {
    BeatLine bl;
    bl.line = logical.line;
    bl.raw = std::move(logical.text);
    auto parsed = parse_line(bl.raw, bl.line);
    if (!parsed.ok()) {
      bl.parse_error = parsed.error().message;
      checker.error(Code::kToolSyntax, bl.line, bl.parse_error);
      for (auto token : control_tokens()) {
        if (bl.raw.find(token) != std::string::npos) {
          checker.error(Code::kLeak, bl.line, fmt::format("control text \"{}\" in the beat", token));
        }
      }
    } else {
      bl.content = std::move(parsed->line);
      bl.repairs = std::move(parsed->repairs);
    }
    const int line = bl.line;
    for (const auto& r : bl.repairs) {
      Code code = code_for_repair(r);
      if (code_is_error(code)) checker.error(code, line, r.message);
      else checker.warn(code, line, r.message);
    }
    bool blank = std::holds_alternative<Blank>(bl.content) && bl.parse_error.empty();
    if (ends > 0 && !blank) {
      checker.error(Code::kFlow, line, fmt::format("text after the beat ended on line {}", end_line));
    }
    if (static_cast<int>(utf8_length(bl.raw)) > options.long_line_chars) {
      checker.warn(Code::kLongLine, line,
                   fmt::format("line has {} characters (over {})", utf8_length(bl.raw), options.long_line_chars));
    }
    if (const auto* tool = std::get_if<Tool>(&bl.content)) {
      checker.check_tool(*tool, line);
      const ToolSpec* spec = manifest.find_tool(tool->name);
      if (spec && spec->ends_beat) {
        if (++ends > 1) {
          checker.error(Code::kFlow, line,
                        fmt::format("a second beat-ending tool (\"{}\"); the beat already ended on line {}", tool->name,
                                    end_line));
        } else {
          end_line = line;
        }
      }
    } else if (const auto* d = std::get_if<Dialogue>(&bl.content)) {
      if (!d->text.empty()) prose = true;
      if (checker.check_cast(d->speaker, line, "speaker") &&
          std::find(checker.on_stage.begin(), checker.on_stage.end(), d->speaker) == checker.on_stage.end()) {
        checker.warn(Code::kSpeakerOffStage, line, fmt::format("\"{}\" speaks but is not on stage", d->speaker));
      }
    } else if (const auto* n = std::get_if<Narration>(&bl.content)) {
      prose = true;
      bool bracket = std::any_of(bl.repairs.begin(), bl.repairs.end(),
                                 [](const Repair& r) { return r.kind == RepairKind::kBracketLine; });
      std::string speaker = narration_speaker(bracket ? ascii_trim(bl.raw) : std::string_view(n->text), bracket);
      if (!speaker.empty() && !checker.in_locked(speaker)) checker.check_cast(speaker, line, "narration names");
      if (is_first_person(n->text)) {
        checker.warn(Code::kPovSlip, line, "first-person narration (the narrator's POV is second person)");
      }
    }
    report.lines.push_back(std::move(bl));
  }
  if (ends == 0) {
    std::vector<std::string> enders;
    for (const auto& t : manifest.tools()) {
      if (t.ends_beat) enders.push_back(t.name);
    }
    int last = 1;
    for (const auto& l : report.lines) {
      if (!ascii_trim(l.raw).empty()) last = l.line;
    }
    checker.error(Code::kFlow, last, fmt::format("the beat does not end with {}", fmt::join(enders, " or ")));
  }
  if (!prose) checker.error(Code::kEmpty, 1, "the beat has no narration and no dialogue");
  return report;
}

}  // namespace fabula::protocol
