// llama.cpp's split GGUF layout (gguf-split): NAME-00001-of-0000N.gguf, each file a complete GGUF holding some of
// the tensors; the first also holds the model's metadata. Every file carries split.no / split.count /
// split.tensors.count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fabula {

inline constexpr std::string_view kSplitNoKey = "split.no";                   // u16, 0-based
inline constexpr std::string_view kSplitCountKey = "split.count";             // u16
inline constexpr std::string_view kSplitTensorsKey = "split.tensors.count";   // i32, over all files

// "dir/model" + (0, 3) -> "dir/model-00001-of-00003.gguf" (llama_split_path).
std::string gguf_split_path(const std::string& prefix, uint32_t index, uint32_t count);

// split.count is a u16, so no split model has more parts than this.
inline constexpr uint32_t kGgufSplitMaxCount = 65535;

// The prefix of a split file's name ("dir/model-00002-of-00003.gguf" -> "dir/model"), with its 0-based index and
// count; nullopt when the name does not follow the pattern or counts more than kGgufSplitMaxCount parts.
struct GgufSplitName {
  std::string prefix;
  uint32_t index = 0;
  uint32_t count = 0;
};
std::optional<GgufSplitName> parse_gguf_split_name(std::string_view path);

// "2G", "500M", "1.5G", "4096" (bytes) -> bytes; nullopt when malformed (what --split-max-size accepts: llama.cpp's
// M and G suffixes, decimal as there; K also taken).
std::optional<uint64_t> parse_split_size(std::string_view text);

}  // namespace fabula
