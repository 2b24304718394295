// The VN protocol as a byte-level state machine (docs/PROTOCOL.md §1–3): lines, tools, arguments, enum values, choices.
#include "sample/constrained.h"

#include <algorithm>
#include <climits>

#include "protocol/validator.h"

namespace fabula {

namespace {

enum Mode : uint8_t {
  kLineStart,      // start of a line (blanks so far)
  kNarration,      // sub: 1 = after a ':' (blanks since)
  kChoice,         // matching one entry of a literal list
  kDialogue,       // inside [Name]: "...   sub: a non-blank was seen
  kDialogueEnd,    // after the closing quote: only '\n'
  kText,           // inside key="free text
  kAfterArg,       // after a value: ' ' next key, or ']'
  kItemStart,      // choices JSON: expecting '"' (sub: 1 after ',', 2 after ', ')
  kItem,           // inside a choices item
  kAfterItem,      // after an item: ',' or ']'
  kJsonClose,      // after the array's ']': expecting '\''
  kAfterTool,      // after a tool's ']': only '\n'
  kDone,           // the ending tool was written: '\n' or the end of turn
  kDoneNl,         // only the end of turn
};

enum class ListKind : uint8_t { kBracket, kToolName, kArgKey, kEnum };

constexpr uint64_t kFnvBasis = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

// Bytes that never appear in prose or quoted text: line structure, control text, escapes.
bool prose_forbidden(uint8_t b) {
  return (b < 0x20 && b != '\t') || b == 0x7F || b == '[' || b == '{' || b == '}' || b == '<' || b == '\\';
}

}  // namespace

struct ProtocolRecognizer::Grammar {
  struct Entry {
    std::string text;
    int payload = 0;
  };
  struct List {
    ListKind kind;
    std::vector<Entry> entries;  // sorted; no entry is a prefix of another
  };
  struct Arg {
    protocol::ArgKind kind;
    int value_list = -1;
    int min_items = 2, max_items = 4, max_chars = 120;
  };
  struct Tool {
    bool ends = false;
    std::vector<Arg> args;
    uint32_t required = 0;
    int key_list = -1;
  };
  std::vector<List> lists;
  std::vector<Tool> tools;
  int bracket = -1, tools_all = -1, tools_noend = -1;
  std::vector<uint64_t> speakers;  // FNV-1a of each locked-cast name: may open a narration line with ':'
  std::vector<uint64_t> labels;    // FNV-1a of each exempt narration label, lower case

  int add(ListKind kind, std::vector<Entry> entries) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.text < b.text; });
    entries.erase(std::unique(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.text == b.text; }),
                  entries.end());
    lists.push_back(List{kind, std::move(entries)});
    return static_cast<int>(lists.size()) - 1;
  }
};

Result<ProtocolRecognizer> ProtocolRecognizer::create(const protocol::Manifest& manifest,
                                                      const std::vector<std::string>& locked_cast) {
  auto g = std::make_shared<Grammar>();
  std::vector<std::string> cast;
  if (locked_cast.empty()) {
    cast = manifest.cast();
  } else {
    for (const auto& name : locked_cast) {
      auto canon = manifest.find_cast(name);
      if (!canon) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: cast member \"{}\" is not in the story", name);
      cast.push_back(*canon);
    }
  }
  if (cast.empty()) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the story has no cast");
  auto fnv = [](std::string_view text) {
    uint64_t h = kFnvBasis;
    for (char c : text) h = (h ^ static_cast<uint8_t>(c)) * kFnvPrime;
    return h;
  };
  for (const auto& name : cast) g->speakers.push_back(fnv(name));
  for (const auto& label : protocol::narration_labels()) g->labels.push_back(fnv(label));
  if (manifest.tools().empty()) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the manifest has no tools");

  auto quotable = [](std::string_view v) {
    return !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
      return c == '"' || c == '\\' || prose_forbidden(static_cast<uint8_t>(c));
    });
  };
  std::vector<Grammar::Entry> bracket{{"TOOL: ", -1}};
  for (size_t i = 0; i < cast.size(); ++i) {
    if (quotable(cast[i]) && cast[i].find(']') == std::string::npos)
      bracket.push_back({cast[i] + "]: \"", static_cast<int>(i)});
  }
  g->bracket = g->add(ListKind::kBracket, std::move(bracket));

  std::vector<Grammar::Entry> names_all, names_noend;
  bool any_end = false;
  for (size_t t = 0; t < manifest.tools().size(); ++t) {
    const protocol::ToolSpec& spec = manifest.tools()[t];
    Grammar::Tool tool;
    tool.ends = spec.ends_beat;
    any_end |= spec.ends_beat;
    if (spec.args.size() > 32) return make_error(ErrorCode::kUnsupported, "constrained decoding: tool \"{}\" has over 32 arguments", spec.name);
    std::vector<Grammar::Entry> keys;
    for (size_t i = 0; i < spec.args.size(); ++i) {
      const protocol::ArgSpec& a = spec.args[i];
      Grammar::Arg arg;
      arg.kind = a.kind;
      arg.min_items = std::max(1, a.min_items);
      arg.max_items = std::min(8, a.max_items);
      arg.max_chars = std::min(a.max_item_chars, 30000);
      if (arg.max_items < arg.min_items)
        return make_error(ErrorCode::kUnsupported, "constrained decoding: {}.{} allows {}..{} items (at most 8 supported)", spec.name, a.name, a.min_items, a.max_items);
      if (a.kind == protocol::ArgKind::kEnum) {
        std::vector<std::string> values;
        if (a.value_set == "cast") {
          values = cast;
        } else if (const auto* set = manifest.value_set(a.value_set)) {
          values = *set;
        } else if (a.also.empty()) {
          return make_error(ErrorCode::kInvalidArgument, "constrained decoding: {}.{} draws from unknown value set \"{}\"", spec.name, a.name, a.value_set);
        }
        values.insert(values.end(), a.also.begin(), a.also.end());
        std::vector<Grammar::Entry> entries;
        for (const auto& v : values)
          if (quotable(v)) entries.push_back({v + "\"", 0});
        if (entries.empty()) {
          if (a.required) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: {}.{} has no usable value", spec.name, a.name);
          continue;  // never offered
        }
        arg.value_list = g->add(ListKind::kEnum, std::move(entries));
      }
      if (a.required) tool.required |= 1u << i;
      keys.push_back({a.name + (a.kind == protocol::ArgKind::kChoicesJson ? "='[" : "=\""), static_cast<int>(i)});
      tool.args.push_back(arg);
    }
    // Unused (never offered) optional args keep their index so `used` bits line up with ArgSpec order.
    while (tool.args.size() < spec.args.size()) tool.args.push_back({});
    if (!keys.empty()) tool.key_list = g->add(ListKind::kArgKey, std::move(keys));
    const int id = static_cast<int>(t) * 2;
    if (tool.key_list >= 0) {
      names_all.push_back({spec.name + " ", id});
      if (!tool.ends) names_noend.push_back({spec.name + " ", id});
    }
    if (tool.required == 0) {
      names_all.push_back({spec.name + "]", id + 1});
      if (!tool.ends) names_noend.push_back({spec.name + "]", id + 1});
    }
    g->tools.push_back(std::move(tool));
  }
  if (!any_end) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the manifest has no beat-ending tool");
  g->tools_all = g->add(ListKind::kToolName, std::move(names_all));
  g->tools_noend = g->add(ListKind::kToolName, std::move(names_noend));
  return ProtocolRecognizer(std::move(g));
}

bool ProtocolRecognizer::enter_choice(ProtocolState& s, int list, uint32_t /*exclude*/) const {
  s.mode = kChoice;
  s.list = static_cast<int16_t>(list);
  s.lo = 0;
  s.hi = static_cast<int16_t>(g_->lists[static_cast<size_t>(list)].entries.size());
  s.pos = 0;
  return s.hi > 0;
}

bool ProtocolRecognizer::done_choice(ProtocolState& s, int payload) const {
  const Grammar& g = *g_;
  switch (g.lists[static_cast<size_t>(s.list)].kind) {
    case ListKind::kBracket:
      if (payload < 0) return enter_choice(s, s.has_prose ? g.tools_all : g.tools_noend, 0);
      s.mode = kDialogue;
      s.sub = 0;
      return true;
    case ListKind::kToolName: {
      s.tool = static_cast<int16_t>(payload / 2);
      s.used = 0;
      const Grammar::Tool& tool = g.tools[static_cast<size_t>(s.tool)];
      if (payload % 2 == 1) {
        s.mode = tool.ends ? kDone : kAfterTool;
        return true;
      }
      return enter_choice(s, tool.key_list, 0);
    }
    case ListKind::kArgKey: {
      s.arg = static_cast<int16_t>(payload);
      s.used |= 1u << payload;
      const Grammar::Arg& arg = g.tools[static_cast<size_t>(s.tool)].args[static_cast<size_t>(payload)];
      if (arg.kind == protocol::ArgKind::kEnum) return enter_choice(s, arg.value_list, 0);
      if (arg.kind == protocol::ArgKind::kText) {
        s.mode = kText;
        return true;
      }
      s.mode = kItemStart;
      s.sub = 0;
      s.items = 0;
      return true;
    }
    case ListKind::kEnum:
      s.mode = kAfterArg;
      return true;
  }
  return false;
}

bool ProtocolRecognizer::feed_byte(ProtocolState& s, uint8_t b) const {
  if (s.u8_need > 0) {
    if (b < s.u8_lo || b > s.u8_hi) return false;
    s.u8_need--;
    s.u8_lo = 0x80;
    s.u8_hi = 0xBF;
  } else if (b >= 0x80) {
    // Leads C2..F4 only (no overlongs, nothing past U+10FFFF); E0/ED/F0/F4 narrow the next byte (RFC 3629).
    if (b < 0xC2 || b > 0xF4) return false;
    s.u8_need = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
    s.u8_lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
    s.u8_hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
  }
  return mode_byte(s, b);
}

// The would-be speaker name of a narration line, byte by byte (as protocol::narration_speaker reads it, but
// stricter: any non-ASCII byte may be a capital or a letter, so such a name must be a cast member).
void ProtocolRecognizer::track_speaker(ProtocolState& s, uint8_t b) const {
  if (s.speaker == kSpeakerNo) return;
  const bool space_before = s.speaker & kSpeakerSpace;
  const uint8_t words = s.speaker & ~kSpeakerSpace;
  if (b == ' ' || b == '\t') {
    if (words > 0) s.speaker = static_cast<uint8_t>(words | kSpeakerSpace);
    return;
  }
  const bool letter = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80;
  if (space_before || words == 0) {  // a word starts: a capital
    if (!((b >= 'A' && b <= 'Z') || b >= 0x80) || words >= 3) {
      s.speaker = kSpeakerNo;
      return;
    }
    if (words > 0) {
      s.speaker_hash = (s.speaker_hash ^ ' ') * kFnvPrime;
      s.speaker_lower = (s.speaker_lower ^ ' ') * kFnvPrime;
    }
    s.speaker = static_cast<uint8_t>(words + 1);
  } else if (!letter && b != '\'' && b != '-' && b != '.') {
    s.speaker = kSpeakerNo;
    return;
  }
  const uint8_t lower = b >= 'A' && b <= 'Z' ? static_cast<uint8_t>(b + 32) : b;
  s.speaker_hash = (s.speaker_hash ^ b) * kFnvPrime;
  s.speaker_lower = (s.speaker_lower ^ lower) * kFnvPrime;
}

bool ProtocolRecognizer::speaker_allowed(const ProtocolState& s) const {
  if (s.speaker == kSpeakerNo || (s.speaker & ~kSpeakerSpace) == 0) return true;  // not a name
  const auto& g = *g_;
  return std::find(g.speakers.begin(), g.speakers.end(), s.speaker_hash) != g.speakers.end() ||
         std::find(g.labels.begin(), g.labels.end(), s.speaker_lower) != g.labels.end();
}

bool ProtocolRecognizer::mode_byte(ProtocolState& s, uint8_t b) const {
  const Grammar& g = *g_;
  switch (s.mode) {
    case kLineStart:
      if (b == ' ' || b == '\t' || b == '\n') return true;
      if (b == '[') return enter_choice(s, g.bracket, 0);
      if (prose_forbidden(b)) return false;
      s.mode = kNarration;
      s.has_prose = 1;
      s.sub = 0;
      s.speaker = kSpeakerSpace;
      s.speaker_hash = s.speaker_lower = kFnvBasis;
      return mode_byte(s, b);
    case kNarration:
      if (b == '\n') {
        s.mode = kLineStart;
        return true;
      }
      if (prose_forbidden(b)) return false;
      // `Name: "..."` would attribute speech to a name the validator checks against the cast: never quote after ':'.
      if (s.sub == 1) {
        if (b == ' ' || b == '\t') return true;
        if (b == '"' || b == '\'' || b == 0xE2 || b == 0xE3) return false;
        s.sub = 0;
      }
      if (b == ':') {
        // `Name: words` names a speaker the validator checks against the locked cast (labels like "Time" aside).
        if (!speaker_allowed(s)) return false;
        s.speaker = kSpeakerNo;
        s.sub = 1;
        return true;
      }
      track_speaker(s, b);
      return true;
    case kChoice: {
      const auto& list = g.lists[static_cast<size_t>(s.list)];
      const size_t pos = static_cast<size_t>(s.pos);
      int nlo = -1, nhi = -1;
      bool any = false;
      for (int i = s.lo; i < s.hi; ++i) {
        const auto& e = list.entries[static_cast<size_t>(i)];
        if (e.text.size() > pos && static_cast<uint8_t>(e.text[pos]) == b) {
          if (nlo < 0) nlo = i;
          nhi = i + 1;
          if (list.kind != ListKind::kArgKey || !(s.used & (1u << e.payload))) any = true;
        } else if (nlo >= 0) {
          break;  // sorted: the matching entries are contiguous
        }
      }
      if (!any) return false;
      s.lo = static_cast<int16_t>(nlo);
      s.hi = static_cast<int16_t>(nhi);
      s.pos++;
      const auto& first = list.entries[static_cast<size_t>(nlo)];
      if (first.text.size() == pos + 1) return done_choice(s, first.payload);  // unique: no entry prefixes another
      return true;
    }
    case kDialogue:
      if (b == '"') {
        if (!s.sub) return false;
        s.mode = kDialogueEnd;
        return true;
      }
      if (b == '\n' || prose_forbidden(b)) return false;
      if (b != ' ' && b != '\t') s.sub = 1;
      return true;
    case kDialogueEnd:
      if (b != '\n') return false;
      s.has_prose = 1;
      s.mode = kLineStart;
      return true;
    case kText:
      if (b == '"') {
        s.mode = kAfterArg;
        return true;
      }
      return !(b == '\n' || b == ']' || prose_forbidden(b));
    case kAfterArg: {
      const Grammar::Tool& tool = g.tools[static_cast<size_t>(s.tool)];
      if (b == ']') {
        if ((s.used & tool.required) != tool.required) return false;
        s.mode = tool.ends ? kDone : kAfterTool;
        return true;
      }
      if (b != ' ') return false;
      for (const auto& e : g.lists[static_cast<size_t>(tool.key_list)].entries)
        if (!(s.used & (1u << e.payload))) return enter_choice(s, tool.key_list, 0);
      return false;
    }
    case kItemStart:
      if (b == ' ' && s.sub == 1) {
        s.sub = 2;
        return true;
      }
      if (b != '"') return false;
      s.mode = kItem;
      s.cps = 0;
      s.hash = kFnvBasis;
      s.last = 0;
      return true;
    case kItem: {
      const Grammar::Arg& arg = g.tools[static_cast<size_t>(s.tool)].args[static_cast<size_t>(s.arg)];
      if (b == '"') {
        if (s.cps == 0 || s.last == ' ') return false;
        for (int i = 0; i < s.items; ++i)
          if (s.item_hash[i] == s.hash) return false;
        s.item_hash[s.items++] = s.hash;
        s.mode = kAfterItem;
        return true;
      }
      if (b == '\n' || b == '\t' || b == ']' || prose_forbidden(b)) return false;
      if (b == ' ' && s.cps == 0) return false;
      if ((b & 0xC0) != 0x80) {
        if (s.cps + 1 > arg.max_chars) return false;
        if (b == ' ' && s.cps + 1 == arg.max_chars) return false;  // would have to end on a blank
        s.cps++;
      }
      s.hash = (s.hash ^ b) * kFnvPrime;
      s.last = b;
      return true;
    }
    case kAfterItem: {
      const Grammar::Arg& arg = g.tools[static_cast<size_t>(s.tool)].args[static_cast<size_t>(s.arg)];
      if (b == ',') {
        if (s.items >= arg.max_items) return false;
        s.mode = kItemStart;
        s.sub = 1;
        return true;
      }
      if (b == ']') {
        if (s.items < arg.min_items) return false;
        s.mode = kJsonClose;
        return true;
      }
      return false;
    }
    case kJsonClose:
      if (b != '\'') return false;
      s.mode = kAfterArg;
      return true;
    case kAfterTool:
      if (b != '\n') return false;
      s.mode = kLineStart;
      return true;
    case kDone:
      if (b != '\n') return false;
      s.mode = kDoneNl;
      return true;
    default:
      return false;
  }
}

bool ProtocolRecognizer::feed(ProtocolState& state, std::string_view bytes) const {
  for (char c : bytes)
    if (!feed_byte(state, static_cast<uint8_t>(c))) return false;
  return true;
}

bool ProtocolRecognizer::feed(std::string_view bytes) {
  ProtocolState s = state_;
  if (!feed(s, bytes)) return false;
  state_ = s;
  return true;
}

bool ProtocolRecognizer::complete(const ProtocolState& state) const { return state.mode == kDone || state.mode == kDoneNl; }

bool ProtocolRecognizer::free_text(const ProtocolState& s, int32_t* budget) const {
  *budget = INT32_MAX;
  if (s.u8_need > 0) return false;  // mid-character: whole-character tokens do not fit
  switch (s.mode) {
    case kLineStart:
    case kDialogue:
    case kText:
      return true;
    case kNarration:
      return s.sub == 0;
    case kItem: {
      if (s.cps == 0) return false;
      const auto& arg = g_->tools[static_cast<size_t>(s.tool)].args[static_cast<size_t>(s.arg)];
      *budget = arg.max_chars - s.cps - 1;  // tokens that would fill the item exactly are simulated
      return true;
    }
    default:
      return false;
  }
}

}  // namespace fabula
