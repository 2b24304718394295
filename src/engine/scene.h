// How one parsed protocol line changes the scene state (engine/scene_state.h) and what the player sees.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "engine/events.h"
#include "engine/scene_state.h"
#include "engine/story.h"
#include "protocol/parser.h"

namespace fabula::engine {

// The opening scene of a story.
SceneState opening_scene(const Story& story);

// Runtime cast-lock and repair log of one beat (what the engine changed and why).
struct ApplyLog {
  std::vector<std::string> notes;  // "line 7: cast-lock: dialogue from Yuki became narration", ...
  int cast_lock_violations = 0;
};

// What one line did: zero or more player-visible events, and whether it ended the beat.
struct ApplyResult {
  std::vector<SceneEvent> events;
  bool ends_beat = false;
  std::vector<std::string> choices;  // when a choices tool ended the beat
  bool end_scene = false;
};

// Applies one parsed line to the state. Enforces the cast-lock: dialogue from outside the locked cast becomes
// unattributed narration (its quoted words), and stage tools naming an outsider are dropped; both are logged.
// Tools with unknown names or values outside their sets are dropped and logged.
ApplyResult apply_line(SceneState& state, const Story& story, const protocol::Line& line, int line_no, ApplyLog& log);

}  // namespace fabula::engine
