// SaveStore: sessions and their beat trees in SQLite (WAL); every completed beat is committed in its own transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/events.h"
#include "engine/narrator.h"

struct sqlite3;

namespace fabula::engine {

struct SessionInfo {
  int64_t id = 0;
  std::string story;
  std::string title;
  std::string narrator;
  int64_t head_beat = 0;  // 0: no beat yet
  nlohmann::json initial_state;  // the scene state before the first beat
  std::string created_at, updated_at;
  int64_t beat_count = 0;
};

// One beat: a node of the session's tree. The player's choice that led to it belongs to the beat (its edge).
struct BeatRecord {
  int64_t id = 0;
  int64_t session_id = 0;
  int64_t parent_id = 0;         // 0: a root beat (the scene's opening)
  std::string player_choice;     // what the player chose before this beat
  int choice_index = -1;         // index in the parent's choices (-1: opening or free text)
  std::string text;              // the narrator's raw text (final attempt)
  std::vector<SceneEvent> events;  // what the player saw, in order
  nlohmann::json state;          // scene state snapshot after the beat
  std::vector<std::string> choices;  // offered at the end (empty if the scene ended)
  bool ended = false;            // end_scene
  bool fallback = false;         // the engine supplied a "Continue" choice
  uint64_t seed = 0;
  int attempts = 1;
  std::string created_at;         // "" when adding: now
  // What the narrator was given (schema 2; saves written before it have none, and say so through has_request()):
  std::vector<ChatMessage> prompt;  // the chat messages of the attempt used, before the model's chat template
  nlohmann::json sampling;          // sampling_to_json() of the settings used; null when not recorded
  std::string model;                // the narrator's describe() ("local: fabula-demo-v1.gguf", ...)
  std::string profile;              // the story narrator profile that built the prompt ("demo", "vn26b")

  bool has_request() const { return !prompt.empty(); }
};

// The sampling settings as a save records them: {"temperature", "top_p", "top_k", "min_p", "repeat_penalty",
// "max_tokens", "stop", "constrained", "banned_phrases" (how many)}. Floats are written as their shortest decimal.
nlohmann::json sampling_to_json(const Sampling& sampling);

// The save file's schema version (PRAGMA user_version). 1: beats without their prompt; 2: prompt, sampling,
// model and profile per beat. Older files are migrated in place when opened (the new columns stay empty).
inline constexpr int kSaveSchemaVersion = 2;

class SaveStore {
 public:
  // Opens (creating if needed) a save file; ":memory:" for tests. A file of an older schema is migrated.
  static Result<std::unique_ptr<SaveStore>> open(const std::string& path);
  // The schema version the file had when it was opened (before migration).
  int opened_schema_version() const { return opened_version_; }
  ~SaveStore();
  SaveStore(const SaveStore&) = delete;
  SaveStore& operator=(const SaveStore&) = delete;

  // created_at: "" for now (an import keeps the exported one).
  Result<int64_t> create_session(const std::string& story, const std::string& title, const std::string& narrator,
                                 const nlohmann::json& initial_state, const std::string& created_at = "");
  Result<SessionInfo> session(int64_t id);
  Result<std::vector<SessionInfo>> sessions();  // newest first
  Result<std::optional<SessionInfo>> latest_session();

  // Inserts the beat, its choices and its state snapshot, and moves the session's head to it — atomically.
  Result<int64_t> add_beat(const BeatRecord& beat);
  Result<BeatRecord> beat(int64_t id);
  // Root ... beat_id, following parent links.
  Result<std::vector<BeatRecord>> path_to(int64_t beat_id);
  // All beats of a session (tree order by id), without their text (for the branch view).
  Result<std::vector<BeatRecord>> beats(int64_t session_id);
  // Beats sharing beat_id's parent (including itself), oldest first: the branches at that point.
  Result<std::vector<BeatRecord>> siblings(int64_t beat_id);
  // Makes beat_id the session's current beat (rollback / branch switch); later beats are kept.
  Status set_head(int64_t session_id, int64_t beat_id);

  // Named save slots pointing at beats.
  Status save_slot(int64_t session_id, const std::string& name, int64_t beat_id);
  Result<std::vector<std::pair<std::string, int64_t>>> slots(int64_t session_id);

  // {"format": "fabula-save/1", "session": {...}, "beats": [...], "slots": [...]}; beats are numbered 1..N in
  // the export, so export -> import -> export gives the same bytes.
  Result<nlohmann::json> export_session(int64_t session_id);
  // Imports as a new session (ids are remapped); returns its id. All or nothing: the document is checked
  // field by field (errors name the JSON path) before one transaction writes it.
  Result<int64_t> import_session(const nlohmann::json& doc);

 private:
  explicit SaveStore(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  Status migrate();
  Result<BeatRecord> read_beat_row(void* stmt, bool with_text);
  sqlite3* db_;
  int opened_version_ = kSaveSchemaVersion;
};

}  // namespace fabula::engine
