// Who sounds how: a TTS voice per cast member and for narration, read from the story package.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace fabula::voice {

// One voice, in espeak-ng's terms (other engines get the same values through the environment).
struct VoiceSpec {
  std::string language = "en";  // espeak-ng voice name: en, en-us, en-gb-x-rp, ja, ...
  std::string variant;          // espeak-ng variant: f1..f5, m1..m7, klatt, ...; empty: the voice's own
  int pitch = 50;               // 0..100 (espeak-ng's base pitch)
  int rate = 175;               // words per minute, 80..450

  std::string espeak_name() const;  // "en-us+f3"
  std::string key() const;          // stable text identifying the voice (part of the cache key)
};

// The story's voices: story.json's cast[i].tts and top-level narration_tts (null or absent: narration is not
// spoken). A cast member without tts gets a distinct default voice derived from their name.
struct StoryVoices {
  std::map<std::string, VoiceSpec> cast;
  std::optional<VoiceSpec> narration;

  // The voice for a dialogue speaker ("" or "narration": the narration voice); nullopt: not spoken.
  std::optional<VoiceSpec> find(std::string_view speaker) const;
};

// Parses {"voice": "en-us", "variant": "f3", "pitch": 70, "rate": 190}; errors name the field and the range.
Result<VoiceSpec> voice_spec_from_json(const nlohmann::json& j, const std::string& where);
// From the story.json document as read.
Result<StoryVoices> story_voices_from_json(const nlohmann::json& story, const std::string& where);

}  // namespace fabula::voice
