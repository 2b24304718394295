// WAV writer and header parser (PCM only: what espeak-ng and the usual local TTS engines write).
#include "voice/wav.h"

#include <cstring>

namespace fabula::voice {
namespace {

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint16_t get_u16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) | (static_cast<unsigned char>(s[at + 1]) << 8));
}

}  // namespace

double WavInfo::seconds() const {
  int frame = channels * (bits_per_sample / 8);
  return frame > 0 && sample_rate > 0 ? static_cast<double>(data_bytes) / frame / sample_rate : 0.0;
}

std::string wav_from_pcm16(const std::vector<int16_t>& samples, int sample_rate) {
  uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  std::string s;
  s.reserve(44 + data_bytes);
  s += "RIFF";
  put_u32(s, 36 + data_bytes);
  s += "WAVEfmt ";
  put_u32(s, 16);
  put_u16(s, 1);  // PCM
  put_u16(s, 1);  // mono
  put_u32(s, static_cast<uint32_t>(sample_rate));
  put_u32(s, static_cast<uint32_t>(sample_rate) * 2);
  put_u16(s, 2);
  put_u16(s, 16);
  s += "data";
  put_u32(s, data_bytes);
  for (int16_t v : samples) put_u16(s, static_cast<uint16_t>(v));
  return s;
}

Result<WavInfo> parse_wav(std::string_view b) {
  if (b.size() < 12) return make_error(ErrorCode::kCorrupt, "WAV: {} bytes, too short for a RIFF header", b.size());
  if (b.substr(0, 4) != "RIFF" || b.substr(8, 4) != "WAVE")
    return make_error(ErrorCode::kCorrupt, "WAV: not a RIFF/WAVE file (starts with \"{}\")",
                      std::string(b.substr(0, std::min<size_t>(4, b.size()))));
  WavInfo info;
  bool have_fmt = false;
  size_t at = 12;
  while (at + 8 <= b.size()) {
    std::string_view id = b.substr(at, 4);
    uint32_t size = get_u32(b, at + 4);
    size_t body = at + 8;
    if (id == "data") {
      if (!have_fmt) return make_error(ErrorCode::kCorrupt, "WAV: data chunk before the fmt chunk");
      info.data_offset = body;
      size_t left = b.size() - body;
      // 0 / 0xFFFFFFFF: written to a pipe, length unknown; the data runs to the end.
      info.data_bytes = (size == 0 || size == 0xFFFFFFFFu || size > left) ? left : size;
      if (size != 0 && size != 0xFFFFFFFFu && size > left)
        return make_error(ErrorCode::kCorrupt, "WAV: data chunk says {} bytes, only {} follow", size, left);
      return info;
    }
    if (size > b.size() - body)
      return make_error(ErrorCode::kCorrupt, "WAV: chunk \"{}\" at byte {} runs past the end", std::string(id), at);
    if (id == "fmt ") {
      if (size < 16) return make_error(ErrorCode::kCorrupt, "WAV: fmt chunk of {} bytes (needs 16)", size);
      uint16_t format = get_u16(b, body);
      if (format != 1 && format != 3 && format != 0xFFFE)
        return make_error(ErrorCode::kCorrupt, "WAV: format {} is not PCM", format);
      info.channels = get_u16(b, body + 2);
      info.sample_rate = static_cast<int>(get_u32(b, body + 4));
      info.bits_per_sample = get_u16(b, body + 14);
      if (info.channels == 0 || info.sample_rate == 0 || info.bits_per_sample == 0)
        return make_error(ErrorCode::kCorrupt, "WAV: fmt chunk has 0 channels, rate or bits");
      have_fmt = true;
    }
    at = body + size + (size & 1);  // chunks are padded to even sizes
  }
  return make_error(ErrorCode::kCorrupt, "WAV: no data chunk");
}

}  // namespace fabula::voice
