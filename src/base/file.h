// Whole-file helpers: read text, write atomically (temp file + fsync + rename, so a crash never leaves half a file).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace fabula {

Result<std::string> read_file_text(const std::string& path);
Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
Status write_file_atomic(const std::string& path, const std::string& text);
bool file_exists(const std::string& path);

}  // namespace fabula
