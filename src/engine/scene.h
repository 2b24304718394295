// Scene state (backdrop, sprites on stage, music) and how one parsed protocol line changes it and what the player sees.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/story.h"
#include "protocol/parser.h"

namespace fabula::engine {

struct StageSprite {
  std::string character;
  std::string expression;
  std::string position;  // left | center | right (the story's positions)
};

struct SceneState {
  // The scene: what the next prompt names.
  std::string place;               // location id
  std::string time;
  std::vector<std::string> cast;   // the locked cast
  int scene_index = 0;
  bool ended = false;              // the last beat ended the scene
  // The stage.
  std::string background;          // location id shown ("" before the first background)
  std::string transition;
  std::vector<StageSprite> stage;  // in order of appearance
  std::string music;               // "" or "none": silence

  const StageSprite* on_stage(std::string_view character) const;
  nlohmann::json to_json() const;
  static Result<SceneState> from_json(const nlohmann::json& j);
};

// The opening scene of a story.
SceneState opening_scene(const Story& story);

// Runtime cast-lock and repair log of one beat (what the engine changed and why).
struct ApplyLog {
  std::vector<std::string> notes;  // "line 7: cast-lock: dialogue from Yuki became narration", ...
  int cast_lock_violations = 0;
};

// What one line did: zero or more player-visible events ({"type": "dialogue", ...}), and whether it ended the beat.
struct ApplyResult {
  std::vector<nlohmann::json> events;
  bool ends_beat = false;
  std::vector<std::string> choices;  // when a choices tool ended the beat
  bool end_scene = false;
};

// Applies one parsed line to the state. Enforces the cast-lock: dialogue from outside the locked cast becomes
// unattributed narration (its quoted words), and stage tools naming an outsider are dropped; both are logged.
// Tools with unknown names or values outside their sets are dropped and logged.
ApplyResult apply_line(SceneState& state, const Story& story, const protocol::Line& line, int line_no, ApplyLog& log);

}  // namespace fabula::engine
