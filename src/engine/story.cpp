// Story package loader: validates story.json field by field and resolves asset paths against the package root.
#include "engine/story.h"

#include <filesystem>

#include <fmt/format.h>

#include "base/file.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

Result<std::string> get_string(const json& j, const char* key, const std::string& where, bool required = true) {
  if (!j.contains(key)) {
    if (required) return make_error(ErrorCode::kParse, "{}: missing field \"{}\" (expected a string)", where, key);
    return std::string();
  }
  if (!j[key].is_string()) return make_error(ErrorCode::kParse, "{}: field \"{}\" must be a string", where, key);
  return j[key].get<std::string>();
}

Result<std::vector<std::string>> get_strings(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_array())
    return make_error(ErrorCode::kParse, "{}: missing field \"{}\" (expected an array of strings)", where, key);
  std::vector<std::string> out;
  for (size_t i = 0; i < j[key].size(); ++i) {
    const json& v = j[key][i];
    if (!v.is_string()) return make_error(ErrorCode::kParse, "{}: {}[{}] must be a string", where, key, i);
    out.push_back(v.get<std::string>());
  }
  if (out.empty()) return make_error(ErrorCode::kParse, "{}: \"{}\" is empty", where, key);
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
  auto join = [](const std::vector<std::string>& v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i];
    return r;
  };
  out += fmt::format(".\nEXPRESSIONS: {}.\nPOSITIONS: {}.\nTRANSITIONS: {}.\nMUSIC: {}.\nSOUNDS: {}.\n",
                     join(s.expressions), join(s.positions), join(s.transitions), join(s.music), join(s.sounds));
  return out;
}

Result<Story> story_from_json(const json& j, const std::string& root, const std::string& where) {
  if (!j.is_object()) return make_error(ErrorCode::kParse, "{}: expected a JSON object", where);
  Story s;
  s.root = root;
  s.raw = j;
  FABULA_ASSIGN(s.id, get_string(j, "id", where));
  FABULA_ASSIGN(s.title, get_string(j, "title", where));
  FABULA_ASSIGN(s.premise, get_string(j, "premise", where, false));
  FABULA_ASSIGN(s.pov, get_string(j, "pov", where, false));
  if (!j.contains("cast") || !j["cast"].is_array() || j["cast"].empty())
    return make_error(ErrorCode::kParse, "{}: missing field \"cast\" (expected a non-empty array)", where);
  for (size_t i = 0; i < j["cast"].size(); ++i) {
    const json& c = j["cast"][i];
    std::string w = fmt::format("{}: cast[{}]", where, i);
    if (!c.is_object()) return make_error(ErrorCode::kParse, "{}: expected an object", w);
    CastMember m;
    FABULA_ASSIGN(m.name, get_string(c, "name", w));
    FABULA_ASSIGN(m.personality, get_string(c, "personality", w, false));
    FABULA_ASSIGN(m.voice, get_string(c, "voice", w, false));
    FABULA_ASSIGN(m.sprites, get_string(c, "sprites", w, false));
    s.cast.push_back(std::move(m));
  }
  if (!j.contains("locations") || !j["locations"].is_array() || j["locations"].empty())
    return make_error(ErrorCode::kParse, "{}: missing field \"locations\" (expected a non-empty array)", where);
  for (size_t i = 0; i < j["locations"].size(); ++i) {
    const json& l = j["locations"][i];
    std::string w = fmt::format("{}: locations[{}]", where, i);
    Location loc;
    if (l.is_string()) {
      loc.id = loc.name = l.get<std::string>();
    } else if (l.is_object()) {
      FABULA_ASSIGN(loc.id, get_string(l, "id", w));
      FABULA_ASSIGN(loc.name, get_string(l, "name", w, false));
      FABULA_ASSIGN(loc.backdrop, get_string(l, "backdrop", w, false));
      if (loc.name.empty()) loc.name = loc.id;
    } else {
      return make_error(ErrorCode::kParse, "{}: expected a string or an object", w);
    }
    s.locations.push_back(std::move(loc));
  }
  FABULA_ASSIGN(s.expressions, get_strings(j, "expressions", where));
  FABULA_ASSIGN(s.positions, get_strings(j, "positions", where));
  FABULA_ASSIGN(s.transitions, get_strings(j, "transitions", where));
  FABULA_ASSIGN(s.music, get_strings(j, "music", where));
  FABULA_ASSIGN(s.sounds, get_strings(j, "sounds", where));

  if (j.contains("opening")) {
    const json& o = j["opening"];
    std::string w = where + ": opening";
    FABULA_ASSIGN(s.opening.place, get_string(o, "place", w));
    FABULA_ASSIGN(s.opening.time, get_string(o, "time", w, false));
    FABULA_ASSIGN(s.opening.player_choice, get_string(o, "player_choice", w, false));
    if (o.contains("cast")) {
      FABULA_ASSIGN(s.opening.cast, get_strings(o, "cast", w));
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

  if (j.contains("profiles") && j["profiles"].is_object()) {
    for (const auto& [name, p] : j["profiles"].items()) {
      std::string w = fmt::format("{}: profiles.{}", where, name);
      if (!p.is_object()) return make_error(ErrorCode::kParse, "{}: expected an object", w);
      NarratorProfile prof;
      prof.name = name;
      FABULA_ASSIGN(prof.system, get_string(p, "system", w, false));
      FABULA_ASSIGN(prof.user, get_string(p, "user", w, false));
      prof.memory = p.value("memory", false);
      prof.memory_tokens = p.value("memory_tokens", 1200);
      if (prof.system.empty()) prof.system = default_vn26b_system(s);
      if (prof.user.empty()) prof.user = kVn26bUser;
      s.profiles[name] = std::move(prof);
    }
  }
  if (s.profiles.empty()) {
    NarratorProfile prof{"vn26b", default_vn26b_system(s), kVn26bUser, true, 1200};
    s.profiles["vn26b"] = prof;
  }
  auto manifest = protocol::Manifest::from_json(j, where);
  if (!manifest) return manifest.take_error();
  s.manifest = std::move(*manifest);
  return s;
}

Result<Story> load_story(std::string_view id_or_path) {
  FABULA_ASSIGN(std::string path, protocol::resolve_story_path(id_or_path));
  FABULA_ASSIGN(std::string text, read_file_text(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(ErrorCode::kParse, "{}: not valid JSON", path);
  std::error_code ec;
  std::string root = std::filesystem::absolute(std::filesystem::path(path).parent_path(), ec).string();
  return story_from_json(j, root, path);
}

}  // namespace fabula::engine
