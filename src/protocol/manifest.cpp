// Manifest: tool specs and value sets from story.json, the built-in default tools and story, story discovery.
#include "protocol/manifest.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "base/ascii.h"
#include "base/file.h"
#include "base/json_view.h"
#include "protocol/unicode.h"

namespace fabula::protocol {

namespace fs = std::filesystem;

const ArgSpec* ToolSpec::find_arg(std::string_view arg_name) const {
  for (const auto& a : args) {
    if (a.name == arg_name) return &a;
  }
  return nullptr;
}

const ToolSpec* Manifest::find_tool(std::string_view name) const {
  for (const auto& t : tools_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const std::vector<std::string>& Manifest::cast() const {
  static const std::vector<std::string> empty;
  auto it = sets_.find("cast");
  return it == sets_.end() ? empty : it->second;
}

const std::vector<std::string>* Manifest::value_set(std::string_view name) const {
  auto it = sets_.find(name);
  return it == sets_.end() ? nullptr : &it->second;
}

bool Manifest::allows(const ArgSpec& arg, std::string_view value) const {
  std::string v = nfc(value);
  for (const auto& a : arg.also) {
    if (a == v) return true;
  }
  const auto* set = value_set(arg.value_set);
  if (!set) return false;
  for (const auto& s : *set) {
    if (s == v) return true;
  }
  return false;
}

std::optional<std::string> Manifest::find_cast(std::string_view name) const {
  std::string v = nfc(ascii_trim(name));
  for (const auto& c : cast()) {
    if (c == v) return c;
  }
  return std::nullopt;
}

void Manifest::set_value_set(const std::string& name, std::vector<std::string> values) {
  for (auto& v : values) v = nfc(v);
  sets_[name] = std::move(values);
}

void Manifest::add_tool(ToolSpec tool) {
  for (auto& t : tools_) {
    if (t.name == tool.name) {
      t = std::move(tool);
      return;
    }
  }
  tools_.push_back(std::move(tool));
}

namespace {

ArgSpec enum_arg(std::string name, bool required, std::string set, std::vector<std::string> also = {}) {
  ArgSpec a;
  a.name = std::move(name);
  a.required = required;
  a.kind = ArgKind::kEnum;
  a.value_set = std::move(set);
  a.also = std::move(also);
  return a;
}

ArgSpec text_arg(std::string name, bool required) {
  ArgSpec a;
  a.name = std::move(name);
  a.required = required;
  a.kind = ArgKind::kText;
  return a;
}

// The default tools of docs/PROTOCOL.md §2.
std::vector<ToolSpec> default_tools() {
  std::vector<ToolSpec> tools;
  tools.push_back({"background", {enum_arg("name", true, "locations"), enum_arg("transition", false, "transitions")},
                   false, ToolRole::kOther});
  tools.push_back({"sprite",
                   {enum_arg("character", true, "cast"), enum_arg("expression", true, "expressions"),
                    enum_arg("position", false, "positions")},
                   false, ToolRole::kShow});
  tools.push_back({"hide", {enum_arg("character", true, "cast")}, false, ToolRole::kHide});
  tools.push_back({"music", {enum_arg("track", true, "music", {"none"})}, false, ToolRole::kOther});
  tools.push_back({"sfx", {enum_arg("name", true, "sounds")}, false, ToolRole::kOther});
  ArgSpec choices;
  choices.name = "choices";
  choices.required = true;
  choices.kind = ArgKind::kChoicesJson;
  tools.push_back({"choices", {choices, text_arg("prompt", false)}, true, ToolRole::kChoices});
  tools.push_back({"end_scene", {}, true, ToolRole::kEndScene});
  return tools;
}

// A value set from a story array: strings as they are; objects by "id", else "name".
Result<std::vector<std::string>> read_set(const JsonView& array) {
  FABULA_ASSIGN(auto items, array.elements());
  std::vector<std::string> out;
  for (const JsonView& item : items) {
    auto id = item.is_string() ? item.string() : item.has("id") ? item.string("id") : item.string("name");
    if (!id) return item.type_error("a string or an object with a string \"id\" or \"name\"");
    out.push_back(std::move(*id));
  }
  return out;
}

ToolRole infer_role(const ToolSpec& tool) {
  if (tool.ends_beat) {
    for (const auto& a : tool.args) {
      if (a.kind == ArgKind::kChoicesJson) return ToolRole::kChoices;
    }
    return ToolRole::kEndScene;
  }
  if (tool.name == "sprite" || tool.name == "show") return ToolRole::kShow;
  if (tool.name == "hide") return ToolRole::kHide;
  return ToolRole::kOther;
}

Result<ArgSpec> read_arg(const JsonView& aj) {
  ArgSpec a;
  FABULA_ASSIGN(a.name, aj.string("name"));
  FABULA_ASSIGN(a.required, aj.boolean_or("required", false));
  FABULA_ASSIGN(std::string kind, aj.string_or("kind", ""));
  if (aj.has("values")) {
    a.kind = ArgKind::kEnum;
    FABULA_ASSIGN(a.value_set, aj.string("values"));
  } else if (kind == "choices_json") {
    a.kind = ArgKind::kChoicesJson;
  } else if (kind == "text" || kind.empty()) {
    a.kind = ArgKind::kText;
  } else {
    return aj.error(ErrorCode::kParse, "unknown \"kind\" \"{}\" (expected choices_json or text)", kind);
  }
  FABULA_ASSIGN(auto also, aj.strings_or_empty("also"));
  for (auto& v : also) a.also.push_back(nfc(v));
  for (auto [key, field] : {std::pair{"min_items", &a.min_items}, std::pair{"max_items", &a.max_items},
                            std::pair{"max_item_chars", &a.max_item_chars}}) {
    FABULA_ASSIGN(int64_t v, aj.integer_or(key, *field, 0, 1 << 20));
    *field = static_cast<int>(v);
  }
  return a;
}

Result<ToolSpec> read_tool(const JsonView& j) {
  ToolSpec tool;
  FABULA_ASSIGN(tool.name, j.string("name"));
  FABULA_ASSIGN(tool.ends_beat, j.boolean_or("ends_beat", false));
  if (auto args = j.find("args")) {
    FABULA_ASSIGN(auto items, args->elements());
    for (const JsonView& aj : items) {
      FABULA_ASSIGN(ArgSpec a, read_arg(aj));
      tool.args.push_back(std::move(a));
    }
  }
  FABULA_ASSIGN(std::string role, j.string_or("role", ""));
  if (role == "show") tool.role = ToolRole::kShow;
  else if (role == "hide") tool.role = ToolRole::kHide;
  else if (role == "choices") tool.role = ToolRole::kChoices;
  else if (role == "end_scene") tool.role = ToolRole::kEndScene;
  else if (role.empty()) tool.role = infer_role(tool);
  else if (role == "other") tool.role = ToolRole::kOther;
  else return j.error(ErrorCode::kParse, "unknown \"role\" \"{}\"", role);
  return tool;
}

}  // namespace

Manifest Manifest::default_manifest() {
  Manifest m;
  m.id_ = "sakuragaoka";
  m.title_ = "Sakuragaoka After School";
  m.tools_ = default_tools();
  m.set_value_set("cast", {"Hana", "Ren", "Mio", "Kaito"});
  m.set_value_set("locations", {"classroom", "rooftop", "school_gate", "library", "shopping_street", "park", "cafe",
                                "train_station", "festival", "beach"});
  m.set_value_set("music", {"calm", "upbeat", "tense", "tender", "melancholy", "comedic"});
  m.set_value_set("sounds", {"door_slide", "school_bell", "footsteps", "rain", "crowd", "wind", "train"});
  m.set_value_set("expressions", {"neutral", "smile", "laugh", "sad", "angry", "surprised", "embarrassed"});
  m.set_value_set("positions", {"left", "center", "right"});
  m.set_value_set("transitions", {"fade", "dissolve", "cut"});
  return m;
}

Result<Manifest> Manifest::from_json(const nlohmann::json& doc, const std::string& where) {
  JsonView story(doc, where);
  FABULA_ASSIGN(auto fields, story.members());
  Manifest m;
  if (auto id = story.string_or("id", ""); id.ok()) m.id_ = *id;  // the story loader reports a wrong type
  if (auto title = story.string_or("title", ""); title.ok()) m.title_ = *title;
  // Every top-level array of strings or {id|name} objects is a value set the tools may name.
  for (const auto& [key, value] : fields) {
    if (!value.is_array() || key == "tools") continue;
    auto set = read_set(value);
    if (!set.ok()) {
      if (key == "cast" || key == "locations") return set.take_error();
      continue;  // not a value set (some other array); tools naming it fail below
    }
    m.set_value_set(key, std::move(set).value());
  }
  if (auto tools = story.find("tools")) {
    FABULA_ASSIGN(auto items, tools->elements());
    for (const JsonView& t : items) {
      FABULA_ASSIGN(ToolSpec tool, read_tool(t));
      m.add_tool(std::move(tool));
    }
  } else {
    m.tools_ = default_tools();
  }
  for (const auto& t : m.tools_) {
    for (const auto& a : t.args) {
      if (a.kind == ArgKind::kEnum && !m.value_set(a.value_set)) {
        return make_error(ErrorCode::kParse, "{}: tool \"{}\" argument \"{}\" names value set \"{}\", which the story lacks",
                          where, t.name, a.name, a.value_set);
      }
    }
  }
  return m;
}

Result<Manifest> Manifest::load(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  FABULA_ASSIGN(nlohmann::json j, parse_json(text, path));
  return from_json(j, path);
}

std::optional<std::string> find_in_repo(std::string_view relative) {
  std::error_code ec;
  if (const char* home = std::getenv("FABULA_HOME"); home != nullptr && *home != '\0') {
    fs::path candidate = fs::path(home) / fs::path(std::string(relative));
    if (fs::exists(candidate, ec)) return candidate.string();
  }
  std::vector<fs::path> starts;
  fs::path cwd = fs::current_path(ec);
  if (!ec) starts.push_back(cwd);
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) starts.push_back(fs::path(std::string(buf, static_cast<size_t>(n))).parent_path());
  for (const auto& start : starts) {
    for (fs::path dir = start;; dir = dir.parent_path()) {
      fs::path candidate = dir / fs::path(std::string(relative));
      if (fs::exists(candidate, ec)) return candidate.string();
      if (dir == dir.parent_path() || dir.empty()) break;
    }
  }
  return std::nullopt;
}

Result<std::string> resolve_story_path(std::string_view id_or_path) {
  std::error_code ec;
  fs::path p{std::string(id_or_path)};
  if (fs::is_regular_file(p, ec)) return p.string();
  if (fs::is_directory(p, ec) && fs::is_regular_file(p / "story.json", ec)) return (p / "story.json").string();
  bool looks_like_id = !id_or_path.empty() && id_or_path.find('/') == std::string_view::npos &&
                       id_or_path.find('.') == std::string_view::npos;
  if (looks_like_id) {
    if (const char* dirs = std::getenv("FABULA_STORIES"); dirs != nullptr) {
      for (const std::string_view dir : split(dirs, ':')) {
        fs::path candidate = fs::path(std::string(dir)) / std::string(id_or_path) / "story.json";
        if (!dir.empty() && fs::is_regular_file(candidate, ec)) return candidate.string();
      }
    }
    if (auto found = find_in_repo(fmt::format("stories/{}/story.json", id_or_path))) return *found;
  }
  return make_error(ErrorCode::kNotFound,
                    "story \"{}\": not a story.json file, a directory holding one, or an id under stories/<id>/story.json "
                    "(ids are looked up in $FABULA_STORIES, then in stories/ of the checkout or of $FABULA_HOME)",
                    id_or_path);
}

Result<Manifest> load_story_manifest(std::string_view id_or_path) {
  if (id_or_path.empty()) return Manifest::default_manifest();
  FABULA_ASSIGN(std::string path, resolve_story_path(id_or_path));
  return Manifest::load(path);
}

}  // namespace fabula::protocol
