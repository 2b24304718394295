// libFuzzer target: safetensors parse from memory, then read every float tensor as f32.
// fuzz-link: fabula_format
#include <cstdint>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fabula;
  auto file = SafetensorsFile::from_bytes(std::span<const uint8_t>(data, size), "fuzz.safetensors");
  if (!file.ok()) return 0;
  double sum = 0;
  for (const auto& t : file->tensors()) {
    for (uint8_t b : t.data) sum += b;
    auto f = safetensors_read_f32(t);
    if (f.ok()) {
      for (float x : *f) sum += x;
    }
  }
  for (const auto& [k, v] : file->metadata()) sum += static_cast<double>(k.size() + v.size());
  return sum == -1.0 ? 1 : 0;
}
