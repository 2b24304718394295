// Voice specs from story.json, with range checks and a default voice per cast member.
#include "voice/voice_spec.h"

#include <fmt/format.h>

#include "base/json_view.h"

namespace fabula::voice {
namespace {

using nlohmann::json;

Result<std::string> name_field(const JsonView& j, const char* key, const std::string& fallback) {
  FABULA_ASSIGN(std::string v, j.string_or(key, fallback));
  // Names go to espeak-ng and into the environment of --tts-cmd: keep them to the characters voice names use.
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return j.error(ErrorCode::kParse, "\"{}\" is \"{}\" (letters, digits, - and _ only)", key, v);
  return v;
}

// A distinct voice per name when the story gives none: variant and pitch from a hash of the name.
VoiceSpec default_voice(std::string_view name) {
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  static const char* kVariants[] = {"f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4"};
  VoiceSpec v;
  v.variant = kVariants[h % 8];
  v.pitch = 35 + static_cast<int>((h >> 8) % 40);
  v.rate = 160 + static_cast<int>((h >> 16) % 30);
  return v;
}

}  // namespace

std::string VoiceSpec::espeak_name() const { return variant.empty() ? language : language + "+" + variant; }

std::string VoiceSpec::key() const { return fmt::format("{}|p{}|r{}", espeak_name(), pitch, rate); }

std::optional<VoiceSpec> StoryVoices::find(std::string_view speaker) const {
  if (speaker.empty() || speaker == "narration") return narration;
  auto it = cast.find(std::string(speaker));
  if (it == cast.end()) return std::nullopt;
  return it->second;
}

static Result<VoiceSpec> read_voice_spec(const JsonView& j) {
  if (!j.is_object()) return j.type_error("an object like {\"voice\": \"en\", \"pitch\": 50}");
  FABULA_TRY(j.only_fields({"voice", "variant", "pitch", "rate"}));
  VoiceSpec s;
  FABULA_ASSIGN(s.language, name_field(j, "voice", s.language));
  FABULA_ASSIGN(s.variant, name_field(j, "variant", ""));
  FABULA_ASSIGN(int64_t pitch, j.integer_or("pitch", s.pitch, 0, 100));
  FABULA_ASSIGN(int64_t rate, j.integer_or("rate", s.rate, 80, 450));
  s.pitch = static_cast<int>(pitch);
  s.rate = static_cast<int>(rate);
  if (s.language.empty()) return j.error(ErrorCode::kParse, "\"voice\" is empty");
  return s;
}

Result<VoiceSpec> voice_spec_from_json(const json& j, const std::string& where) {
  return read_voice_spec(JsonView(j, where));
}

Result<StoryVoices> story_voices_from_json(const json& doc, const std::string& where) {
  StoryVoices out;
  JsonView story(doc, where);
  if (auto cast = story.find("cast"); cast && cast->is_array()) {
    FABULA_ASSIGN(auto members, cast->elements());
    for (const JsonView& c : members) {
      auto name = c.string("name");
      if (!name) continue;  // the story loader reports these
      if (auto tts = c.find("tts")) {
        FABULA_ASSIGN(out.cast[*name], read_voice_spec(*tts));
      } else {
        out.cast[*name] = default_voice(*name);
      }
    }
  }
  if (auto narration = story.find("narration_tts")) {
    FABULA_ASSIGN(VoiceSpec n, read_voice_spec(*narration));
    out.narration = n;
  }
  return out;
}

}  // namespace fabula::voice
