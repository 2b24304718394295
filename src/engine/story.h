// Story packages: stories/<id>/story.json + art, loaded into a Story (cast, places, assets, narrator profiles).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "protocol/manifest.h"

namespace fabula::engine {

struct CastMember {
  std::string name;
  std::string personality;
  std::string voice;
  std::string sprites;  // folder relative to the package root holding <expression>.svg
};

struct Location {
  std::string id;
  std::string name;
  std::string backdrop;  // file relative to the package root
};

// How one narrator profile turns the scene into a prompt.
struct NarratorProfile {
  std::string name;
  std::string system;         // system text; may use {title} {premise} {pov} {cast_sheet} {places} ...
  std::string user;           // user-turn template: {cast} {place} {time} {expressions} {player_choice} {memory}
  bool memory = false;        // carry recent beats + a summary of older ones
  int memory_tokens = 1200;   // budget for the recent-beats window (estimated tokens)
};

struct Opening {
  std::string place;
  std::string time;
  std::vector<std::string> cast;
  std::string player_choice;
};

struct Story {
  std::string id;
  std::string title;
  std::string premise;
  std::string pov;
  std::string root;  // absolute directory of the package
  std::vector<CastMember> cast;
  std::vector<Location> locations;
  std::vector<std::string> expressions, positions, transitions, music, sounds;
  Opening opening;
  std::map<std::string, NarratorProfile> profiles;
  protocol::Manifest manifest;
  nlohmann::json raw;  // the manifest as read (for the web player)

  const CastMember* find_cast(std::string_view name) const;
  const Location* find_location(std::string_view id) const;
  // Sprite file (relative to root) for a character and expression, falling back to neutral.
  std::string sprite_path(std::string_view character, std::string_view expression) const;
  Result<NarratorProfile> profile(std::string_view name) const;
};

// id_or_path: a story id (stories/<id>/ under the repository), a package directory or a story.json path.
Result<Story> load_story(std::string_view id_or_path);
// From parsed JSON; `root` is the package directory (asset paths are relative to it).
Result<Story> story_from_json(const nlohmann::json& j, const std::string& root, const std::string& where);

}  // namespace fabula::engine
