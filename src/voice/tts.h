// Text to speech engines: espeak-ng in-process (the default) or a local command (--tts-cmd).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "voice/voice_spec.h"

namespace fabula::voice {

class TtsEngine {
 public:
  virtual ~TtsEngine() = default;
  // The line spoken in the given voice, as WAV bytes. `speaker` is the cast name ("" for narration).
  virtual Result<std::string> synthesize(std::string_view text, const VoiceSpec& voice, std::string_view speaker) = 0;
  virtual std::string describe() const = 0;
};

// espeak-ng through libespeak-ng (one synthesis at a time: the library keeps global state).
// Errors when the build has no libespeak-ng or its voice data is missing (apt-get install espeak-ng-data).
Result<std::unique_ptr<TtsEngine>> make_espeak_tts();

// A command run by /bin/sh for each line: the text arrives on stdin; the WAV is read from stdout, or from the
// file named by {out} when the command contains it (e.g. "piper -m voice.onnx -f {out}"). The voice is passed
// in the environment: FABULA_SPEAKER, FABULA_VOICE (espeak-style "en-us+f3"), FABULA_LANGUAGE, FABULA_VARIANT,
// FABULA_PITCH (0..100), FABULA_RATE (words per minute). A command that fails, hangs past timeout_s or writes
// something that is not WAV is an error that quotes its stderr.
std::unique_ptr<TtsEngine> make_command_tts(std::string command, int timeout_s = 60);

bool espeak_compiled_in();

}  // namespace fabula::voice
