// Manifest: the tool protocol of one story (tools, their arguments, and the value sets they draw from).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace fabula::protocol {

// How an argument's value is checked.
enum class ArgKind {
  kEnum,         // one of a named value set ("cast", "locations", ...) plus `also` extras
  kText,         // any double-quoted text
  kChoicesJson,  // single-quoted JSON array of choices (docs/PROTOCOL.md §2, "The choices value")
};

struct ArgSpec {
  std::string name;
  bool required = false;
  ArgKind kind = ArgKind::kText;
  std::string value_set;          // kEnum: the set's name ("cast", "locations", "music", ...)
  std::vector<std::string> also;  // kEnum: extra allowed values (e.g. "none" for music)
  int min_items = 2;              // kChoicesJson limits
  int max_items = 4;
  int max_item_chars = 120;       // in Unicode code points, after trimming
};

// What a tool does to the stage; the validator uses it for flow and on-stage warnings.
// Read from the tool's optional "role" in story.json, else inferred from the default names.
enum class ToolRole {
  kOther,
  kShow,      // sprite: puts `character` on stage
  kHide,      // hide: takes `character` off stage
  kChoices,   // ends the beat, hands control to the player
  kEndScene,  // ends the beat and the scene
};

struct ToolSpec {
  std::string name;
  std::vector<ArgSpec> args;
  bool ends_beat = false;
  ToolRole role = ToolRole::kOther;

  const ArgSpec* find_arg(std::string_view arg_name) const;
};

class Manifest {
 public:
  // The default tools (docs/PROTOCOL.md §2) bound to the value sets of Sakuragaoka After School
  // (stories/sakuragaoka); used when no story is given.
  static Manifest default_manifest();
  // From a parsed story.json. `where` names the source in error messages. A story without "tools"
  // gets the default tools bound to its own value sets.
  static Result<Manifest> from_json(const nlohmann::json& story, const std::string& where = "story.json");
  // From a story.json file.
  static Result<Manifest> load(const std::string& path);

  const std::string& id() const { return id_; }
  const std::string& title() const { return title_; }
  const std::vector<ToolSpec>& tools() const { return tools_; }
  const ToolSpec* find_tool(std::string_view name) const;

  // The story's cast, NFC-normalised, in manifest order.
  const std::vector<std::string>& cast() const;
  // Named value set ("cast", "locations", "music", "sounds", "expressions", "positions",
  // "transitions", or any other string/object array of the story); nullptr if unknown.
  const std::vector<std::string>* value_set(std::string_view name) const;
  // Whether `value` is allowed for `arg` (value set + `also`; exact match after NFC).
  bool allows(const ArgSpec& arg, std::string_view value) const;
  // The canonical cast name equal to `name` after NFC (exact), or nullopt.
  std::optional<std::string> find_cast(std::string_view name) const;

  // Adds or replaces a value set (tests, stories built in code).
  void set_value_set(const std::string& name, std::vector<std::string> values);
  void add_tool(ToolSpec tool);

 private:
  std::string id_, title_;
  std::vector<ToolSpec> tools_;
  std::map<std::string, std::vector<std::string>, std::less<>> sets_;
};

// Resolves a story argument, the one place every command (play, run, eval, validate, metrics, serve) finds a
// story: an existing story.json path, a directory holding story.json, or a story id looked up as
// <dir>/<id>/story.json in each directory of $FABULA_STORIES (colon-separated), then as stories/<id>/story.json
// found by find_in_repo.
Result<std::string> resolve_story_path(std::string_view id_or_path);
// Loads resolve_story_path(id_or_path); "" gives the built-in manifest (no --story).
Result<Manifest> load_story_manifest(std::string_view id_or_path);

// Finds one of the project's own files (`relative`, e.g. "data/slop-tells-v1.txt") under $FABULA_HOME when set,
// else in the current directory, the directory of the running executable, or any of their ancestors (so a
// build inside the checkout finds stories/, data/, models/ and web/); nullopt if none has it.
std::optional<std::string> find_in_repo(std::string_view relative);

}  // namespace fabula::protocol
