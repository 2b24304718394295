// Audio files a story package ships ("audio" in story.json), checked when the story is played.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace fabula::voice {

// "audio": {"music": {"<mood>": "file"}, "sounds": {"<sound>": "file"}} with paths relative to the package root.
// Errors name the entry: a mood or sound the manifest does not list, a path leaving the package, a missing file.
Status check_story_audio(const nlohmann::json& story, const std::string& root, const std::vector<std::string>& music,
                         const std::vector<std::string>& sounds);

}  // namespace fabula::voice
