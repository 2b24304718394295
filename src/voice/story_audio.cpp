// check_story_audio: the package's own music and sound files exist and name moods / sounds of its manifest.
#include "voice/story_audio.h"

#include <algorithm>
#include <filesystem>

#include "base/json_view.h"

namespace fabula::voice {

Status check_story_audio(const nlohmann::json& story, const std::string& root, const std::vector<std::string>& music,
                         const std::vector<std::string>& sounds) {
  auto audio = JsonView(story, "story.json").find("audio");
  if (!audio) return ok_status();
  FABULA_ASSIGN(auto kinds, audio->members());
  for (const auto& [kind, entries] : kinds) {
    if (kind != "music" && kind != "sounds")
      return entries.error(ErrorCode::kParse, "is not known (music, sounds)");
    FABULA_ASSIGN(auto files, entries.members());
    const auto& known = kind == "music" ? music : sounds;
    for (const auto& [name, file] : files) {
      if (std::find(known.begin(), known.end(), name) == known.end())
        return file.error(ErrorCode::kParse, "\"{}\" is not in the story's {} list", name, kind);
      FABULA_ASSIGN(std::string path, file.string());
      std::filesystem::path rel(path);
      if (rel.is_absolute() || rel.lexically_normal().string().starts_with(".."))
        return file.error(ErrorCode::kInvalidArgument, "\"{}\" must stay inside the story package", rel.string());
      if (!std::filesystem::is_regular_file(std::filesystem::path(root) / rel))
        return file.error(ErrorCode::kNotFound, "no file {} in {}", rel.string(), root);
    }
  }
  return ok_status();
}

}  // namespace fabula::voice
