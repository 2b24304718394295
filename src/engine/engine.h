// The turn loop: prompt -> streamed narrator text -> logical lines -> scene state + events, with regeneration and fallback.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/events.h"
#include "engine/narrator.h"
#include "engine/prompt.h"
#include "engine/scene.h"
#include "engine/story.h"

namespace fabula::engine {

struct EngineOptions {
  std::string profile = "demo";
  Sampling sampling;
  int max_regenerations = 3;           // extra attempts (next seed each) when a beat has no choices/end_scene
  std::string fallback_choice = "Continue";
};

// Receives each scene event as soon as its line completes, and an AttemptEvent when an invalid attempt is
// retried (the player drops what that attempt showed and restores its state).
using EventSink = std::function<void(const Event& event)>;

struct BeatOutcome {
  std::string text;                     // raw narrator text of the attempt used
  std::vector<SceneEvent> events;
  SceneState state;                     // after the beat
  std::vector<std::string> choices;
  bool ended = false;
  bool fallback = false;                // every attempt was invalid: the engine offered fallback_choice
  uint64_t seed = 0;                    // seed of the attempt used
  int attempts = 0;
  std::vector<ChatMessage> prompt;      // the messages the narrator received for the attempt used
  std::vector<std::string> notes;       // repairs, cast-lock actions, regeneration reasons
  int cast_lock_violations = 0;
};

class Engine {
 public:
  Engine(const Story& story, Narrator& narrator, EngineOptions options = {});

  // Plays one beat in `scene` (already advanced for the player's choice). `cancel`, when set, stops the
  // narrator and returns kCancelled.
  Result<BeatOutcome> play_beat(const SceneState& scene, const std::vector<MemoryBeat>& history,
                                const std::string& player_choice, uint64_t seed, const EventSink& sink,
                                const std::atomic<bool>* cancel = nullptr);

  const Story& story() const { return story_; }
  const EngineOptions& options() const { return options_; }
  Narrator& narrator() { return narrator_; }

 private:
  const Story& story_;
  Narrator& narrator_;
  EngineOptions options_;
};

}  // namespace fabula::engine
