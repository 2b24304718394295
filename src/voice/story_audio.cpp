// check_story_audio: the package's own music and sound files exist and name moods / sounds of its manifest.
#include "voice/story_audio.h"

#include <algorithm>
#include <filesystem>

namespace fabula::voice {

Status check_story_audio(const nlohmann::json& story, const std::string& root, const std::vector<std::string>& music,
                         const std::vector<std::string>& sounds) {
  if (!story.contains("audio")) return ok_status();
  const auto& audio = story["audio"];
  if (!audio.is_object()) return make_error(ErrorCode::kParse, "story.json: \"audio\" must be an object with music and sounds");
  for (const auto& [kind, entries] : audio.items()) {
    if (kind != "music" && kind != "sounds")
      return make_error(ErrorCode::kParse, "story.json: audio.{} is not known (music, sounds)", kind);
    if (!entries.is_object()) return make_error(ErrorCode::kParse, "story.json: audio.{} must map names to files", kind);
    const auto& known = kind == "music" ? music : sounds;
    for (const auto& [name, file] : entries.items()) {
      std::string at = "story.json: audio." + kind + "." + name;
      if (std::find(known.begin(), known.end(), name) == known.end())
        return make_error(ErrorCode::kParse, "{}: \"{}\" is not in the story's {} list", at, name, kind);
      if (!file.is_string()) return make_error(ErrorCode::kParse, "{}: expected a file path", at);
      std::filesystem::path rel(file.get<std::string>());
      if (rel.is_absolute() || rel.lexically_normal().string().starts_with(".."))
        return make_error(ErrorCode::kInvalidArgument, "{}: \"{}\" must stay inside the story package", at, rel.string());
      if (!std::filesystem::is_regular_file(std::filesystem::path(root) / rel))
        return make_error(ErrorCode::kNotFound, "{}: no file {} in {}", at, rel.string(), root);
    }
  }
  return ok_status();
}

}  // namespace fabula::voice
