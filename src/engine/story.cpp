// Story package loader: validates story.json field by field and resolves asset paths against the package root.
#include "engine/story.h"

#include <filesystem>

#include <fmt/format.h>

#include "base/file.h"
#include "base/json_view.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

// A file path inside the package (art, audio): relative and never climbing out of it.
Status check_package_path(const JsonView& v, const std::string& path) {
  if (path.empty()) return ok_status();
  std::filesystem::path p(path);
  if (p.is_absolute()) return v.error(ErrorCode::kParse, "\"{}\" must be relative to the package", path);
  for (const auto& part : p)
    if (part == "..") return v.error(ErrorCode::kParse, "\"{}\" must stay inside the package (no \"..\")", path);
  return ok_status();
}

Result<std::string> package_path(const JsonView& obj, std::string_view key) {
  FABULA_ASSIGN(std::string path, obj.string_or(key, ""));
  if (auto f = obj.find(key)) {
    FABULA_TRY(check_package_path(*f, path));
  }
  return path;
}

Result<std::vector<std::string>> non_empty_strings(const JsonView& j, std::string_view key) {
  FABULA_ASSIGN(JsonView f, j.field(key));
  FABULA_ASSIGN(auto out, f.strings());
  if (out.empty()) return f.error(ErrorCode::kParse, "is empty (expected at least one string)");
  return out;
}

const char* kVn26bUser =
    "{memory}Scene: {place} ({place_name}), {time}.\n"
    "Cast in this scene (locked): {cast}.\n"
    "On stage now: {on_stage}.\n"
    "The player chose: \"{player_choice}\".\n"
    "Write the next beat.";

}  // namespace

const CastMember* Story::find_cast(std::string_view name) const {
  for (const auto& c : cast)
    if (c.name == name) return &c;
  return nullptr;
}

const Location* Story::find_location(std::string_view loc) const {
  for (const auto& l : locations)
    if (l.id == loc) return &l;
  return nullptr;
}

std::string Story::sprite_path(std::string_view character, std::string_view expression) const {
  const CastMember* c = find_cast(character);
  if (!c) return "";
  std::string expr(expression);
  bool known = false;
  for (const auto& e : expressions) known |= e == expr;
  return fmt::format("{}/{}.svg", c->sprites, known ? expr : std::string("neutral"));
}

Result<NarratorProfile> Story::profile(std::string_view name) const {
  auto it = profiles.find(std::string(name));
  if (it == profiles.end()) {
    std::string known;
    for (const auto& [k, v] : profiles) known += (known.empty() ? "" : ", ") + k;
    return make_error(ErrorCode::kNotFound, "story {}: no narrator profile \"{}\" (has: {})", id, name, known);
  }
  return it->second;
}

namespace {

// The vn26b system prompt built in code when a profile gives none: teaches the protocol, the cast with
// personalities and voices, places, expressions, music and sounds.
std::string default_vn26b_system(const Story& s) {
  std::string out = fmt::format(
      "You are the narrator and director of \"{}\", an anime visual novel. {}\n"
      "Write in the {}. Write one beat per turn: a short scene of narration and dialogue that ends by handing "
      "control to the player.\n\n",
      s.title, s.premise, s.pov.empty() ? "second person" : s.pov);
  out +=
      "FORMAT — one item per line:\n"
      "- Stage directions: [TOOL: name key=\"value\"]\n"
      "  [TOOL: background name=\"<place>\" transition=\"fade|dissolve|cut\"]  change the backdrop\n"
      "  [TOOL: sprite character=\"<Name>\" expression=\"<expression>\" position=\"left|center|right\"]  show a "
      "character or change their expression\n"
      "  [TOOL: hide character=\"<Name>\"]  take a character off stage\n"
      "  [TOOL: music track=\"<track>\"]  (or track=\"none\")\n"
      "  [TOOL: sfx name=\"<sound>\"]\n"
      "  [TOOL: choices choices='[\"option one\", \"option two\", \"option three\"]']  2 to 4 options, ends the beat\n"
      "  [TOOL: end_scene]  ends the scene instead of offering choices\n"
      "- Dialogue: [Name]: \"what they say\"\n"
      "- Narration: any other line, plain prose, never starting with [.\n"
      "RULES: only the locked cast of the scene may speak or appear. Show a character with a sprite before they "
      "speak. End every beat with exactly one choices or end_scene line and write nothing after it. Never write "
      "the player's lines or thoughts in the first person.\n\n";
  out += "CAST:\n";
  for (const auto& c : s.cast) out += fmt::format("- {}: {}. Voice: {}.\n", c.name, c.personality, c.voice);
  out += "\nPLACES: ";
  for (size_t i = 0; i < s.locations.size(); ++i)
    out += fmt::format("{}{} ({})", i ? ", " : "", s.locations[i].id, s.locations[i].name);
  out += fmt::format(".\nEXPRESSIONS: {}.\nPOSITIONS: {}.\nTRANSITIONS: {}.\nMUSIC: {}.\nSOUNDS: {}.\n",
                     fmt::join(s.expressions, ", "), fmt::join(s.positions, ", "), fmt::join(s.transitions, ", "),
                     fmt::join(s.music, ", "), fmt::join(s.sounds, ", "));
  return out;
}

}  // namespace

Result<Story> story_from_json(const json& doc, const std::string& root, const std::string& where) {
  JsonView j(doc, where);
  FABULA_TRY(j.expect_object());
  Story s;
  s.root = root;
  s.raw = doc;
  FABULA_ASSIGN(s.id, j.string("id"));
  FABULA_ASSIGN(s.title, j.string("title"));
  FABULA_ASSIGN(s.premise, j.string_or("premise", ""));
  FABULA_ASSIGN(s.pov, j.string_or("pov", ""));
  FABULA_ASSIGN(JsonView cast, j.field("cast"));
  FABULA_ASSIGN(auto cast_items, cast.elements());
  if (cast_items.empty()) return cast.error(ErrorCode::kParse, "is empty (expected at least one character)");
  for (const JsonView& c : cast_items) {
    CastMember m;
    FABULA_ASSIGN(m.name, c.string("name"));
    FABULA_ASSIGN(m.personality, c.string_or("personality", ""));
    FABULA_ASSIGN(m.voice, c.string_or("voice", ""));
    FABULA_ASSIGN(m.sprites, package_path(c, "sprites"));
    s.cast.push_back(std::move(m));
  }
  FABULA_ASSIGN(JsonView locations, j.field("locations"));
  FABULA_ASSIGN(auto location_items, locations.elements());
  if (location_items.empty()) return locations.error(ErrorCode::kParse, "is empty (expected at least one place)");
  for (const JsonView& l : location_items) {
    Location loc;
    if (l.is_string()) {
      FABULA_ASSIGN(loc.id, l.string());
      loc.name = loc.id;
    } else if (l.is_object()) {
      FABULA_ASSIGN(loc.id, l.string("id"));
      FABULA_ASSIGN(loc.name, l.string_or("name", loc.id));
      FABULA_ASSIGN(loc.backdrop, package_path(l, "backdrop"));
    } else {
      return l.type_error("a string or an object");
    }
    s.locations.push_back(std::move(loc));
  }
  FABULA_ASSIGN(s.expressions, non_empty_strings(j, "expressions"));
  FABULA_ASSIGN(s.positions, non_empty_strings(j, "positions"));
  FABULA_ASSIGN(s.transitions, non_empty_strings(j, "transitions"));
  FABULA_ASSIGN(s.music, non_empty_strings(j, "music"));
  FABULA_ASSIGN(s.sounds, non_empty_strings(j, "sounds"));

  if (auto o = j.find("opening")) {
    FABULA_ASSIGN(s.opening.place, o->string("place"));
    FABULA_ASSIGN(s.opening.time, o->string_or("time", ""));
    FABULA_ASSIGN(s.opening.player_choice, o->string_or("player_choice", ""));
    if (o->has("cast")) {
      FABULA_ASSIGN(s.opening.cast, non_empty_strings(*o, "cast"));
    }
  } else {
    s.opening.place = s.locations[0].id;
  }
  if (s.opening.time.empty()) s.opening.time = "after school";
  if (s.opening.player_choice.empty()) s.opening.player_choice = "Look around";
  if (s.opening.cast.empty())
    for (const auto& c : s.cast) s.opening.cast.push_back(c.name);
  if (!s.find_location(s.opening.place))
    return make_error(ErrorCode::kParse, "{}: opening.place \"{}\" is not a location", where, s.opening.place);
  for (const auto& n : s.opening.cast)
    if (!s.find_cast(n)) return make_error(ErrorCode::kParse, "{}: opening.cast names \"{}\", not in cast", where, n);

  if (auto profiles = j.find("profiles")) {
    FABULA_ASSIGN(auto members, profiles->members());
    for (const auto& [name, p] : members) {
      FABULA_TRY(p.expect_object());
      NarratorProfile prof;
      prof.name = name;
      FABULA_ASSIGN(prof.system, p.string_or("system", ""));
      FABULA_ASSIGN(prof.user, p.string_or("user", ""));
      FABULA_ASSIGN(prof.memory, p.boolean_or("memory", false));
      FABULA_ASSIGN(int64_t memory_tokens, p.integer_or("memory_tokens", 1200, 0, 1 << 20));
      prof.memory_tokens = static_cast<int>(memory_tokens);
      if (prof.system.empty()) prof.system = default_vn26b_system(s);
      if (prof.user.empty()) prof.user = kVn26bUser;
      s.profiles[name] = std::move(prof);
    }
  }
  if (s.profiles.empty()) {
    NarratorProfile prof{"vn26b", default_vn26b_system(s), kVn26bUser, true, 1200};
    s.profiles["vn26b"] = prof;
  }
  auto manifest = protocol::Manifest::from_json(doc, where);
  if (!manifest) return manifest.take_error();
  s.manifest = std::move(*manifest);
  return s;
}

Result<Story> load_story(std::string_view id_or_path) {
  FABULA_ASSIGN(std::string path, protocol::resolve_story_path(id_or_path));
  FABULA_ASSIGN(std::string text, read_file_text(path));
  FABULA_ASSIGN(json j, parse_json(text, path));
  std::error_code ec;
  std::string root = std::filesystem::absolute(std::filesystem::path(path).parent_path(), ec).string();
  return story_from_json(j, root, path);
}

}  // namespace fabula::engine
