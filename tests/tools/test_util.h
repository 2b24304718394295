// Helpers shared by the tools tests: scratch directories, whole-file reads, a content hash.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/scratch_dir.h"

namespace fabula::testing_tools {

using test_support::ScratchDir;

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// FNV-1a 64: enough to compare contents in assertion messages.
inline uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
inline uint64_t fnv1a(const std::vector<uint8_t>& v) { return fnv1a(v.data(), v.size()); }

}  // namespace fabula::testing_tools
