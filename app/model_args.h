// Shared CLI helpers for commands that load a model: the default model path and --tokens parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace fabula::app {

// models/fabula-demo-v1.gguf, looked up next to the current directory, then relative to the fabula binary
// (build-*/fabula -> ../models/), so `fabula run` works from the repository or its build directory.
std::string default_model_path();

// "2,17,300" (spaces allowed, also a JSON-style "[2, 17, 300]") -> ids. Errors name the bad item.
Result<std::vector<int32_t>> parse_token_list(const std::string& text);

}  // namespace fabula::app
