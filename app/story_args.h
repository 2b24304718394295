// The protocol manifest a CLI command judges beats by: the story named by --story, or the built-in one.
#pragma once

#include <optional>
#include <string>

#include "protocol/manifest.h"

namespace fabula::app {

// Loads the manifest of `story` (an id or a path to story.json); the built-in manifest when `story` is empty.
// On failure prints the error and returns nullopt (the command then exits 2).
std::optional<protocol::Manifest> manifest_for_story_option(const std::string& story);

}  // namespace fabula::app
