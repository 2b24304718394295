// libFuzzer target: the WAV header parser (bytes from --tts-cmd engines) and the story voice-spec reader.
// fuzz-link: fabula_voice
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "voice/voice_spec.h"
#include "voice/wav.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto info = voice::parse_wav(bytes);
  // An accepted file's data lies inside the bytes.
  if (info.ok() && (info->data_offset > size || info->data_bytes > size - info->data_offset)) std::abort();
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_discarded()) (void)voice::story_voices_from_json(j, "fuzz");
  return 0;
}
