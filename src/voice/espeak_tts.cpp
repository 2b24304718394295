// espeak-ng in-process: synchronous synthesis into a buffer, one call at a time under a process-wide mutex.
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "voice/tts.h"
#include "voice/wav.h"

#if FABULA_HAVE_ESPEAK
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#endif

namespace fabula::voice {

#if FABULA_HAVE_ESPEAK
namespace {

std::mutex g_espeak_mu;  // libespeak-ng keeps one global synthesizer
int g_sample_rate = 0;

int collect(short* wav, int n, espeak_EVENT* events) {
  if (wav && n > 0) {
    auto* out = static_cast<std::vector<int16_t>*>(events->user_data);
    out->insert(out->end(), wav, wav + n);
  }
  return 0;
}

class EspeakTts : public TtsEngine {
 public:
  Result<std::string> synthesize(std::string_view text, const VoiceSpec& voice, std::string_view) override {
    std::lock_guard lock(g_espeak_mu);
    if (espeak_SetVoiceByName(voice.espeak_name().c_str()) != EE_OK &&
        espeak_SetVoiceByName(voice.language.c_str()) != EE_OK)
      return make_error(ErrorCode::kNotFound, "espeak-ng has no voice \"{}\" (espeak-ng --voices lists them)",
                        voice.espeak_name());
    espeak_SetParameter(espeakPITCH, voice.pitch, 0);
    espeak_SetParameter(espeakRATE, voice.rate, 0);
    std::vector<int16_t> samples;
    std::string t(text);
    espeak_ERROR e = espeak_Synth(t.c_str(), t.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, &samples);
    if (e != EE_OK) return make_error(ErrorCode::kInternal, "espeak-ng could not speak the line (error {})", static_cast<int>(e));
    espeak_Synchronize();
    if (samples.empty()) return make_error(ErrorCode::kInternal, "espeak-ng produced no audio for \"{}\"", t.substr(0, 40));
    return wav_from_pcm16(samples, g_sample_rate);
  }
  std::string describe() const override { return "espeak-ng"; }
};

}  // namespace

bool espeak_compiled_in() { return true; }

Result<std::unique_ptr<TtsEngine>> make_espeak_tts() {
  std::lock_guard lock(g_espeak_mu);
  if (g_sample_rate <= 0) {
    // The espeak_ng_* calls report a missing data folder as a status (espeak_Initialize would exit()).
    espeak_ng_InitializePath(nullptr);
    espeak_ng_ERROR_CONTEXT context = nullptr;
    espeak_ng_STATUS st = espeak_ng_Initialize(&context);
    if (st != ENS_OK) {
      char msg[512] = {0};
      espeak_ng_GetStatusCodeMessage(st, msg, sizeof msg);
      espeak_ng_ClearErrorContext(&context);
      return make_error(ErrorCode::kNotFound, "espeak-ng could not start ({}): apt-get install espeak-ng-data", msg);
    }
    st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 200, nullptr);
    int rate = espeak_ng_GetSampleRate();
    if (st != ENS_OK || rate <= 0) return make_error(ErrorCode::kInternal, "espeak-ng could not set up synchronous output");
    espeak_SetSynthCallback(collect);
    g_sample_rate = rate;
  }
  return std::unique_ptr<TtsEngine>(std::make_unique<EspeakTts>());
}

#else

bool espeak_compiled_in() { return false; }

Result<std::unique_ptr<TtsEngine>> make_espeak_tts() {
  return make_error(ErrorCode::kUnsupported,
                    "this build has no espeak-ng (apt-get install libespeak-ng-dev espeak-ng-data and rebuild), or use --tts-cmd");
}

#endif

}  // namespace fabula::voice
