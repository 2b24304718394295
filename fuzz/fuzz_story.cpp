// libFuzzer target: story.json. Any bytes load or fail with an error naming the field (never a throw or crash);
// a story that loads writes back to JSON that loads to the same story, and every narrator profile builds a prompt.
// fuzz-link: fabula_engine fabula_voice
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/check.h"
#include "base/json_view.h"
#include "engine/prompt.h"
#include "engine/scene.h"
#include "engine/story.h"
#include "voice/story_audio.h"
#include "voice/voice_spec.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = parse_json(text, "story.json");
  if (!doc) {
    FABULA_CHECK(!doc.error().message.empty());
    return 0;
  }
  (void)voice::story_voices_from_json(*doc, "story.json");
  auto story = engine::story_from_json(*doc, "/nonexistent-package", "story.json");
  if (!story) {
    FABULA_CHECK(story.error().message.rfind("story.json", 0) == 0);
    return 0;
  }
  (void)voice::check_story_audio(*doc, story->root, story->music, story->sounds);
  // parse -> write -> parse: the same document and the same story.
  auto again_doc = parse_json(dump_json(story->raw), "again");
  FABULA_CHECK(again_doc.ok() && *again_doc == *doc);
  auto again = engine::story_from_json(*again_doc, story->root, "story.json");
  FABULA_CHECK(again.ok());
  FABULA_CHECK(again->id == story->id && again->title == story->title && again->cast.size() == story->cast.size());
  FABULA_CHECK(again->locations.size() == story->locations.size() && again->profiles.size() == story->profiles.size());
  FABULA_CHECK(again->manifest.tools().size() == story->manifest.tools().size());
  engine::SceneState scene = engine::opening_scene(*story);
  for (const auto& [name, profile] : story->profiles) {
    auto request = engine::build_request(*story, profile, scene, story->opening.player_choice, {}, {}, 1);
    FABULA_CHECK(!request.messages.empty());
  }
  for (const auto& c : story->cast) (void)engine::advance_scene(*story, scene, "Talk to " + c.name);
  return 0;
}
