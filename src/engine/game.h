// Game: one playthrough over a SaveStore — beats generated in the background, an event log for live viewers,
// rollback, regenerate-as-branch and branch switching. Shared by the web player and the terminal player.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/events.h"
#include "engine/save_store.h"

namespace fabula::engine {

// What the prompt of a beat of a saved session is built from: the scene it plays in (the parent's state moved on by
// the player's choice, or the session's opening state for a root beat) and the beats before it (memory).
struct BeatContext {
  SceneState scene;
  std::vector<MemoryBeat> history;
};
Result<BeatContext> beat_context(SaveStore& store, const Story& story, const SessionInfo& session, int64_t parent_id,
                                 const std::string& player_choice);

struct GameOptions {
  EngineOptions engine;
  uint64_t seed = 1;       // base seed; beat k of a session uses seed + 16 * k (+ attempt)
  bool resume = true;      // open the story's latest session instead of starting a new one
};

class Game {
 public:
  Game(const Story& story, Narrator& narrator, SaveStore& store, GameOptions options = {});
  ~Game();  // waits for a beat in progress (after asking it to stop)

  // Opens the latest session of this story (resume) or a new one. Does not generate.
  Status open();
  Status new_session();
  // Imports an exported session of this story as a new session and switches to it. All or nothing: a bad
  // document (or one of another story) changes nothing.
  Result<int64_t> import_session(const nlohmann::json& doc);

  // Starts the opening beat in the background (the story's opening choice). kInvalidArgument once a beat exists.
  Status start();
  // Starts the next beat in the background: index into the current beat's choices (after a beat that ended the
  // scene, 0 is its one "Continue"). kInvalidArgument before the first beat, kOutOfRange out of range, and
  // kInvalidArgument (as from every action that changes the session) while a beat is being written (writing()).
  Status choose(int64_t index);
  // Regenerates the current beat as a new branch (same parent and choice, next seed); the old one is kept.
  Status regenerate();
  // Rollback / branch switch: the session's current beat becomes beat_id.
  Status go_to(int64_t beat_id);
  // Switches to the sibling `offset` away (±1) of the current beat, then to that branch's newest leaf.
  Status switch_branch(int64_t offset);
  Status save_slot(const std::string& name);
  Result<int64_t> load_slot(const std::string& name);  // kNotFound: no such slot

  // Asks the beat being written, if any, to stop (it ends with an error event "beat cancelled" and is not saved).
  void cancel_beat() { cancel_ = true; }
  // Blocks until no beat is being written.
  void wait_idle();
  bool writing() const { return writing_.load(); }
  // The error was a refusal because a beat was being written (the game API answers it with 409).
  static bool refused_while_writing(const Error& e);

  // {"session", "story", "narrator", "status": "idle"|"writing", "beat": {...} or null, "path": [...],
  //  "branches": {"index", "count"}, "slots": [...], "seq"}
  nlohmann::json snapshot();
  // Beats of the session for the branch view: [{id, parent_id, player_choice, current, on_path}].
  nlohmann::json tree();

  // Live events after sequence number `after`; waits up to timeout_ms for one to arrive.
  std::vector<std::pair<uint64_t, Event>> events_after(uint64_t after, int timeout_ms);
  uint64_t last_seq();

  int64_t session_id() const { return session_id_; }
  SaveStore& store() { return store_; }
  const Story& story() const { return story_; }
  std::string last_error();

 private:
  Status start_beat(int64_t parent_id, const std::string& choice, int choice_index);
  void run_beat(int64_t parent_id, std::string choice, int choice_index, SceneState scene,
                std::vector<MemoryBeat> history, uint64_t seed);
  void publish(Event event);
  Result<int64_t> newest_leaf(int64_t beat_id);
  void join_worker();

  const Story& story_;
  Narrator& narrator_;
  SaveStore& store_;
  GameOptions options_;
  Engine engine_;
  std::mutex mu_;  // guards everything below and the store
  std::condition_variable cv_;
  int64_t session_id_ = 0;
  std::atomic<bool> writing_{false};
  std::atomic<bool> cancel_{false};
  std::thread worker_;
  std::deque<std::pair<uint64_t, Event>> events_;
  uint64_t seq_ = 0;
  std::string last_error_;
};

}  // namespace fabula::engine
