// --story handling shared by validate and metrics.
#include "story_args.h"

#include "command.h"

namespace fabula::app {

std::optional<protocol::Manifest> manifest_for_story_option(const std::string& story) {
  auto loaded = protocol::load_story_manifest(story);
  if (!loaded.ok()) {
    report_error(loaded.error());
    return std::nullopt;
  }
  return std::move(loaded).value();
}

}  // namespace fabula::app
