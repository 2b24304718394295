// Slow interop check: the demo narrator quantized by `fabula quantize` loads in llama.cpp (node-llama-cpp) and
// both engines produce the same greedy continuation (Q8_0 and Q4_K_M).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

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

TEST(LlamaCppInterop, SlowGreedyContinuationsMatchOnQuantizedDemo) {
  const std::string src = FABULA_SOURCE_DIR;
  const std::string model = src + "/models/fabula-demo-v1.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "no " << model;
  if (!std::filesystem::exists(src + "/node_modules/node-llama-cpp")) GTEST_SKIP() << "node-llama-cpp not installed";
  int status = 0;
  if (last_line("node --version 2>/dev/null", &status).empty()) GTEST_SKIP() << "node not found";
  ScratchDir dir("interop");
  const std::string fabula = FABULA_BINARY;
  for (const char* type : {"Q8_0", "Q4_K_M"}) {
    const std::string q = dir / (std::string(type) + ".gguf");
    last_line(fabula + " quantize " + model + " " + q + " " + type + " 2>/dev/null", &status);
    ASSERT_EQ(status, 0) << type;
    for (const char* prompt : {"2,651,1379,266,349", "2,6,100,200,300,400,500,7"}) {
      const std::string ours =
          last_line(fabula + " run -m " + q + " --temp 0 -n 32 --ids --tokens " + prompt + " 2>/dev/null", &status);
      ASSERT_EQ(status, 0) << type;
      const std::string theirs = last_line(
          "cd " + src + " && node tests/tools/llamacpp_greedy.mjs " + q + " " + prompt + " 32 2>/dev/null", &status);
      ASSERT_EQ(status, 0) << type << ": llama.cpp failed to load or run the file";
      ASSERT_FALSE(ours.empty());
      EXPECT_EQ(ours, theirs) << type << " prompt " << prompt;
    }
  }
}

}  // namespace
}  // namespace fabula
