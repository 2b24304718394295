#include "model/available_memory.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "format/gguf_split.h"

namespace fabula {

std::optional<uint64_t> available_memory() {
  if (const char* injected = std::getenv("FABULA_MEM_AVAILABLE"); injected != nullptr && *injected != '\0') {
    if (auto v = parse_split_size(injected)) return *v;
  }
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;  // the kernel reports kB
  }
  return std::nullopt;
}

}  // namespace fabula
