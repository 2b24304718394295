// Shared CLI helpers for commands that load a model (see model_args.h).
#include "model_args.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>

namespace fabula::app {

std::string default_model_path() {
  namespace fs = std::filesystem;
  const char* kRelative = "models/fabula-demo-v1.gguf";
  std::vector<fs::path> candidates = {fs::path(kRelative)};
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    const fs::path dir = fs::path(exe).parent_path();
    candidates.push_back(dir / kRelative);
    candidates.push_back(dir.parent_path() / kRelative);
    candidates.push_back(dir.parent_path().parent_path() / kRelative);
  }
  std::error_code ec;
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c.lexically_normal().string();
  }
  return kRelative;  // the error on open names it
}

Result<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '[' || text[i] == ']' || text[i] == '\n')) ++i;
  };
  skip();
  while (i < text.size()) {
    int32_t id = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), id);
    if (ec != std::errc() || id < 0) {
      return make_error(ErrorCode::kParse, "--tokens: expected a non-negative integer at character {} of '{}'", i,
                        text);
    }
    ids.push_back(id);
    i = static_cast<size_t>(end - text.data());
    skip();
    if (i < text.size()) {
      if (text[i] != ',') {
        return make_error(ErrorCode::kParse, "--tokens: expected ',' at character {} of '{}'", i, text);
      }
      ++i;
      skip();
    }
  }
  if (ids.empty()) return make_error(ErrorCode::kParse, "--tokens: no token ids in '{}'", text);
  return ids;
}

}  // namespace fabula::app
