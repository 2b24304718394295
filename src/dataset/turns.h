// Training turns read from play: one row per narrator turn of a save store (every beat, regenerated branches
// included) or of an eval run's beats.jsonl, with the exact messages the narrator received.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/story.h"
#include "text/chat_template.h"

namespace fabula::dataset {

struct TurnRow {
  std::string id;      // "<file>#<session>/<beat>" (saves) or "<file>#<eval row id>" (eval)
  std::string source;  // the file it came from
  std::string story;
  std::string place, time;          // the scene the prompt named
  std::vector<std::string> cast;    // its locked cast
  std::string player_choice;
  uint64_t seed = 0;
  std::string model;                // the narrator (describe() for saves, the label for eval); "" when unknown
  std::string profile;              // the narrator profile; "" when unknown
  nlohmann::json sampling;          // null when unknown
  std::vector<ChatMessage> messages;  // system, user: as the narrator received them; empty when not recorded
  std::string prompt_source;        // "recorded", "re-rendered" (from the story and the saved scene) or "" (none)
  std::string beat;                 // what the narrator wrote
  bool kept = true;                 // the branch the player kept (false: replaced by a regeneration)
  bool fallback = false;            // every attempt was invalid and the engine offered its fallback choice
  int64_t session = 0, beat_id = 0, parent_id = 0;

  // The split key: scenes are "<story>/<place>/<time>", so no place and time of day is in two splits.
  std::string scene() const { return story + "/" + place + "/" + time; }
};

// What a source lacked, for the export's report.
struct SourceReport {
  std::string path;
  std::string kind;          // "save" or "eval"
  int schema_version = 0;    // saves: the schema the file had before it was opened (1: no prompts recorded)
  int64_t sessions = 0;
  int64_t rows = 0;
  int64_t without_prompt = 0;    // rows whose prompt was not recorded and could not be re-rendered
  int64_t rerendered = 0;        // rows whose prompt was re-rendered
  int64_t without_sampling = 0;  // rows whose sampling settings are unknown
  std::vector<std::string> notes;  // what the file lacks and what to do about it, in words
};

// Finds a story by id (the session's or scene's story).
using StoryLookup = std::function<Result<const engine::Story*>(const std::string& id)>;

// Loads each story once with engine::load_story ($FABULA_STORIES, then the repository's stories/).
class StoryCache {
 public:
  Result<const engine::Story*> get(const std::string& id);
  StoryLookup lookup() {
    return [this](const std::string& id) { return get(id); };
  }

 private:
  std::map<std::string, engine::Story> stories_;
};

struct ReadOptions {
  // Saves from before prompts were recorded: re-render each beat's prompt with this story narrator profile from
  // the saved scene and history, exactly as the engine would build it now ("" = leave such rows without a prompt).
  std::string rerender_profile;
};

// Every beat of every session of a save store (SQLite; an older schema is migrated in place when opened).
Result<std::vector<TurnRow>> read_save_turns(const std::string& path, const StoryLookup& stories,
                                             const ReadOptions& options, SourceReport& report);

// Rows of an eval run's beats.jsonl. Eval rows record no messages; with `scenes` (the eval scenes file the run
// used) each prompt is re-rendered as the harness built it.
Result<std::vector<TurnRow>> read_eval_turns(const std::string& path, const std::string& scenes_path,
                                             const StoryLookup& stories, SourceReport& report);

}  // namespace fabula::dataset
