// WAV (RIFF PCM) writing and checking: the TTS engines hand back WAV bytes, the player and aplay take them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula::voice {

struct WavInfo {
  int channels = 0;
  int sample_rate = 0;
  int bits_per_sample = 0;
  size_t data_offset = 0;  // byte offset of the sample data
  size_t data_bytes = 0;   // length of the "data" chunk
  double seconds() const;
};

// 16-bit mono PCM samples as a complete WAV file.
std::string wav_from_pcm16(const std::vector<int16_t>& samples, int sample_rate);

// Reads the RIFF/WAVE header and finds the fmt and data chunks. Errors name what is wrong (not RIFF, no data
// chunk, a chunk running past the end...). Streams whose sizes are 0 or 0xFFFFFFFF (written by a pipe that
// could not seek back) are accepted: the data then runs to the end of the bytes.
Result<WavInfo> parse_wav(std::string_view bytes);

}  // namespace fabula::voice
