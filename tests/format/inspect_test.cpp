// `fabula inspect` end to end: runs the built binary on the golden safetensors and on a GGUF written here.
#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format_test_util.h"

namespace fabula {
namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun run(const std::string& args) {
  std::string cmd = std::string(FABULA_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

TEST(Inspect, SafetensorsJsonListsEveryTensor) {
  CliRun r = run("inspect " + std::string(FABULA_TEST_DATA) + "/gemma4-tiny/model.safetensors --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out.substr(0, 500);
  ASSERT_EQ(j["tensors"].size(), 132u);
  EXPECT_EQ(j["metadata"]["format"], "pt");
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "model.embed_tokens.weight") {
      found = true;
      EXPECT_EQ(t["shape"], nlohmann::json::array({512, 64}));
      EXPECT_EQ(t["type"], "F32");
      EXPECT_EQ(t["bytes"], 512 * 64 * 4);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Inspect, GgufTextAndJson) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma4"));
  std::vector<std::string> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(i == 0 ? "<pad>" : i == 1 ? "<eos>" : fmt::format("t{}", i));
  w.set("tokenizer.ggml.tokens", GgufValue::array(tokens));
  w.set("gemma4.block_count", GgufValue::u32(6));
  auto bytes = test::pattern(34 * 2, 5);
  w.add_tensor("blk.0.attn_q.weight", GgmlType::kQ8_0, {32, 2}, bytes);
  std::string path = test::temp_path("inspect.gguf");
  ASSERT_TRUE(w.write(path).ok());

  CliRun text = run("inspect " + path);
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("tokenizer.ggml.tokens: [40 strings: \"<pad>\", \"<eos>\", \"t2\", \"t3\", ...]"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("gemma4.block_count: u32 6"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("blk.0.attn_q.weight"), std::string::npos);

  CliRun js = run("inspect " + path + " --json");
  ASSERT_EQ(js.status, 0) << js.out;
  auto j = nlohmann::json::parse(js.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.out;
  EXPECT_EQ(j["metadata"]["general.architecture"], "gemma4");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["count"], 40);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["head"].size(), 16u);
  ASSERT_EQ(j["tensors"].size(), 1u);
  EXPECT_EQ(j["tensors"][0]["type"], "q8_0");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({32, 2}));
  EXPECT_EQ(j["tensors"][0]["bytes"], 68);
  EXPECT_EQ(j["tensors"][0]["offset"], j["data_offset"]);

  CliRun full = run("inspect " + path + " --json --full");
  auto jf = nlohmann::json::parse(full.out, nullptr, false);
  ASSERT_FALSE(jf.is_discarded());
  EXPECT_EQ(jf["metadata"]["tokenizer.ggml.tokens"].size(), 40u);
}

TEST(Inspect, CorruptFileFails) {
  std::string path = test::temp_path("bad.gguf");
  test::write_bytes(path, {'G', 'G', 'U', 'F', 1, 0, 0, 0});
  CliRun r = run("inspect " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("GGUF v1 is no longer supported"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace fabula
