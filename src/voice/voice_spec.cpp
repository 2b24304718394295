// Voice specs from story.json, with range checks and a default voice per cast member.
#include "voice/voice_spec.h"

#include <fmt/format.h>

namespace fabula::voice {
namespace {

using nlohmann::json;

Result<int> int_in_range(const json& j, const char* key, int fallback, int lo, int hi, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number_integer())
    return make_error(ErrorCode::kParse, "{}: \"{}\" must be an integer ({}..{})", where, key, lo, hi);
  int v = j[key].get<int>();
  if (v < lo || v > hi) return make_error(ErrorCode::kOutOfRange, "{}: \"{}\" is {}, expected {}..{}", where, key, v, lo, hi);
  return v;
}

Result<std::string> name_field(const json& j, const char* key, const std::string& fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_string()) return make_error(ErrorCode::kParse, "{}: \"{}\" must be a string", where, key);
  std::string v = j[key].get<std::string>();
  // Names go to espeak-ng and into the environment of --tts-cmd: keep them to the characters voice names use.
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return make_error(ErrorCode::kParse, "{}: \"{}\" is \"{}\" (letters, digits, - and _ only)", where, key, v);
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

Result<VoiceSpec> voice_spec_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) return make_error(ErrorCode::kParse, "{}: expected an object like {{\"voice\": \"en\", \"pitch\": 50}}", where);
  for (const auto& [k, v] : j.items())
    if (k != "voice" && k != "variant" && k != "pitch" && k != "rate")
      return make_error(ErrorCode::kParse, "{}: unknown field \"{}\" (voice, variant, pitch, rate)", where, k);
  VoiceSpec s;
  FABULA_ASSIGN(s.language, name_field(j, "voice", s.language, where));
  FABULA_ASSIGN(s.variant, name_field(j, "variant", "", where));
  FABULA_ASSIGN(s.pitch, int_in_range(j, "pitch", s.pitch, 0, 100, where));
  FABULA_ASSIGN(s.rate, int_in_range(j, "rate", s.rate, 80, 450, where));
  if (s.language.empty()) return make_error(ErrorCode::kParse, "{}: \"voice\" is empty", where);
  return s;
}

Result<StoryVoices> story_voices_from_json(const json& story, const std::string& where) {
  StoryVoices out;
  if (story.contains("cast") && story["cast"].is_array()) {
    for (size_t i = 0; i < story["cast"].size(); ++i) {
      const json& c = story["cast"][i];
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;  // the story loader reports these
      std::string name = c["name"].get<std::string>();
      if (c.contains("tts")) {
        FABULA_ASSIGN(out.cast[name], voice_spec_from_json(c["tts"], fmt::format("{}: cast[{}].tts", where, i)));
      } else {
        out.cast[name] = default_voice(name);
      }
    }
  }
  if (story.contains("narration_tts") && !story["narration_tts"].is_null()) {
    FABULA_ASSIGN(VoiceSpec n, voice_spec_from_json(story["narration_tts"], where + ": narration_tts"));
    out.narration = n;
  }
  return out;
}

}  // namespace fabula::voice
