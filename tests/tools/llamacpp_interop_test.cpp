// Slow interop check: the demo narrator quantized by `fabula quantize` loads in llama.cpp (node-llama-cpp) and
// both engines produce the same 64-token greedy continuation (Q8_0 and Q4_K_M); where they first differ, the
// step must be an honest tie: our two best logits there within 1e-2 of each other.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "format/safetensors.h"
#include "test_util.h"

namespace fabula {
namespace {

using testing_tools::ScratchDir;

// Runs a shell command and returns its stdout's last non-empty line ("" on failure).
std::string last_line(const std::string& command, int* status) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return "";
  std::string out, line;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), p)) {
    line = buf;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) out = line;
  }
  *status = ::pclose(p);
  return out;
}

std::vector<std::string> split_ids(std::string s) {
  std::vector<std::string> ids;
  for (char& c : s) if (c == '[' || c == ']' || c == ' ') c = ',';
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) ids.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return ids;
}

// Gap between the two largest logits our engine gives after `tokens` (comma-separated ids).
float top2_gap(const std::string& fabula, const std::string& model, const std::string& tokens, const std::string& out) {
  int status = 0;
  last_line(fabula + " logits -m " + model + " --last --tokens " + tokens + " --output " + out + " 2>/dev/null", &status);
  EXPECT_EQ(status, 0);
  auto file = SafetensorsFile::open(out);
  EXPECT_TRUE(file.ok());
  if (!file.ok()) return 1e9f;
  auto logits = safetensors_read_f32(*file->find_tensor("logits"));
  EXPECT_TRUE(logits.ok());
  if (!logits.ok() || logits->size() < 2) return 1e9f;
  float best = -1e30f, second = -1e30f;
  for (float v : *logits) {
    if (v > best) { second = best; best = v; } else if (v > second) second = v;
  }
  return best - second;
}

TEST(LlamaCppInterop, SlowGreedyContinuationsMatchOnQuantizedDemo) {
  const std::string src = FABULA_SOURCE_DIR;
  const std::string model = src + "/models/fabula-demo-v1.gguf";
  if (!std::filesystem::exists(model)) FAIL() << "no " << model;
  if (!std::filesystem::exists(src + "/node_modules/node-llama-cpp")) FAIL() << "node-llama-cpp not installed";
  int status = 0;
  if (last_line("node --version 2>/dev/null", &status).empty()) FAIL() << "node not found";
  ScratchDir dir("interop");
  const std::string fabula = FABULA_BINARY;
  for (const char* type : {"Q8_0", "Q4_K_M"}) {
    const std::string q = dir / (std::string(type) + ".gguf");
    last_line(fabula + " quantize " + model + " " + q + " " + type + " 2>/dev/null", &status);
    ASSERT_EQ(status, 0) << type;
    for (const char* prompt : {"2,651,1379,266,349", "2,6,100,200,300,400,500,7"}) {
      const std::string ours =
          last_line(fabula + " run -m " + q + " --temp 0 -n 64 --ids --tokens " + prompt + " 2>/dev/null", &status);
      ASSERT_EQ(status, 0) << type;
      const std::string theirs = last_line(
          "cd " + src + " && node tests/tools/llamacpp_greedy.mjs " + q + " " + prompt + " 64 2>/dev/null", &status);
      ASSERT_EQ(status, 0) << type << ": llama.cpp failed to load or run the file";
      ASSERT_FALSE(ours.empty());
      const auto a = split_ids(ours), b = split_ids(theirs);
      ASSERT_FALSE(a.empty()) << ours;  // up to 64 ids: both engines stop early at an end-of-generation token
      size_t first_diff = 0;
      while (first_diff < a.size() && first_diff < b.size() && a[first_diff] == b[first_diff]) ++first_diff;
      if (first_diff == a.size() && a.size() == b.size()) continue;  // identical
      std::string context = prompt;
      for (size_t i = 0; i < first_diff; ++i) context += "," + a[i];
      const float gap = top2_gap(fabula, q, context, dir / "gap.safetensors");
      std::printf("%s prompt %s: first difference at step %zu, our top-2 logit gap %.5f\n", type, prompt, first_diff, gap);
      EXPECT_LE(gap, 1e-2f) << type << " prompt " << prompt << ": not a tie at step " << first_diff << "\nours:   " << ours
                            << "\ntheirs: " << theirs;
    }
  }
}

}  // namespace
}  // namespace fabula
