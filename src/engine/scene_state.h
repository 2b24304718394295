// Scene state: the scene the next prompt names (place, time, locked cast) and the stage the player sees.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace fabula::engine {

struct StageSprite {
  std::string character;
  std::string expression = "neutral";
  std::string position = "center";  // left | center | right (the story's positions)

  bool operator==(const StageSprite&) const = default;
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
  bool operator==(const SceneState&) const = default;

  // The "scene_state" of docs/events.schema.json. from_json requires "place"; other fields default when absent
  // (older saves), and a field of the wrong type is an error naming it.
  nlohmann::json to_json() const;
  static Result<SceneState> from_json(const nlohmann::json& j);
};

}  // namespace fabula::engine
