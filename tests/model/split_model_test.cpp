// A split model (llama.cpp gguf-split layout) loads from its first file and gives the same logits as the
// single file, bit for bit; convert writes the parts with --split-max-size.
#include <gtest/gtest.h>

#include <cstring>

#include "format/gguf.h"
#include "format/gguf_split.h"
#include "model_test_util.h"
#include "tools/quantize.h"

namespace fabula {
namespace {

using namespace model_test;

std::vector<float> logits_of_file(const std::string& path, const std::vector<int32_t>& tokens) {
  auto model = Model::load(path);
  EXPECT_TRUE(model.ok()) << (model.ok() ? "" : model.error().to_string());
  if (!model.ok()) return {};
  SessionOptions so;
  so.n_ctx = 64;
  so.n_threads = 2;
  return all_logits(**model, tokens, so);
}

TEST(SplitModel, SplitFilesGiveTheSameLogitsAsTheSingleFile) {
  ScratchDir dir("split_model");
  const std::string single = convert_tiny(dir, "f32");
  auto in = GgufFile::open(single);
  ASSERT_TRUE(in.ok());
  uint64_t data = 0;
  for (const auto& t : in->tensors()) data += t.n_bytes();

  GgufWriter writer(in->alignment(), in->version());
  gguf_copy_into(*in, writer);
  writer.set_split_max_bytes(data / 3);
  const std::string out = dir / "tiny-split.gguf";
  ASSERT_TRUE(writer.write(out).ok());
  ASSERT_GE(writer.written_paths().size(), 3u);
  const std::string first = writer.written_paths().front();
  EXPECT_EQ(first, gguf_split_path(dir / "tiny-split", 0, static_cast<uint32_t>(writer.written_paths().size())));
  EXPECT_FALSE(std::filesystem::exists(out)) << "a split write leaves no single file";

  auto split = GgufFile::open(first);
  ASSERT_TRUE(split.ok()) << split.error().to_string();
  EXPECT_EQ(split->n_shards(), writer.written_paths().size());
  EXPECT_EQ(split->tensors().size(), in->tensors().size());
  EXPECT_EQ(split->find("split.count"), nullptr) << "the view hides the bookkeeping keys";
  EXPECT_EQ(split->metadata().size(), in->metadata().size());
  for (const auto& t : in->tensors()) {
    const GgufTensor* s = split->find_tensor(t.name);
    ASSERT_NE(s, nullptr) << t.name;
    ASSERT_EQ(s->n_bytes(), t.n_bytes());
    EXPECT_EQ(std::memcmp(s->data.data(), t.data.data(), t.n_bytes()), 0) << t.name;
  }
  bool later_shard = false;
  for (const auto& t : split->tensors()) later_shard |= t.shard > 0;
  EXPECT_TRUE(later_shard);

  const std::vector<int32_t> tokens = {2, 17, 300, 41, 9, 120};
  const std::vector<float> a = logits_of_file(single, tokens);
  const std::vector<float> b = logits_of_file(first, tokens);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "split logits differ from single";

  // --no-mmap reads the same bytes.
  auto read = Model::load(first, ModelLoadOptions{.weights = WeightMemory::kRead});
  ASSERT_TRUE(read.ok()) << read.error().to_string();
}

TEST(SplitModel, ConvertWritesPartsWithSplitMaxSize) {
  ScratchDir dir("split_convert");
  ConvertOptions opt;
  opt.hf_dir = data_path("gemma4-tiny");
  opt.output = dir / "tiny.gguf";
  opt.outtype = "f32";
  opt.split_max_bytes = 200'000;
  auto report = convert_hf_to_gguf(opt);
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  ASSERT_GT(report->written.size(), 1u);
  auto name = parse_gguf_split_name(report->written.back());
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->count, report->written.size());
  auto model = Model::load(report->written.front());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
}

TEST(SplitModel, QuantizeWritesPartsThatMatchTheSingleOutput) {
  ScratchDir dir("split_quantize");
  auto in = GgufFile::open(convert_tiny(dir, "f32"));
  ASSERT_TRUE(in.ok());
  auto ftype = quant_ftype_from_name("F16");
  ASSERT_TRUE(ftype.ok());
  auto plan = plan_quantization(quant_inputs(*in), *ftype, quant_model_info(*in));
  ASSERT_TRUE(plan.ok());
  QuantizeOptions options;
  options.progress = false;
  ASSERT_TRUE(quantize_gguf(*in, *plan, dir / "single.gguf", options).ok());
  options.split_max_bytes = 100'000;
  ASSERT_TRUE(quantize_gguf(*in, *plan, dir / "parts.gguf", options).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "parts.gguf"));
  std::string first;
  for (auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("parts-00001-of-", 0) == 0) first = e.path().string();
  ASSERT_FALSE(first.empty()) << "no split output";
  const std::vector<int32_t> tokens = {2, 5, 77, 300};
  const auto a = logits_of_file(dir / "single.gguf", tokens);
  const auto b = logits_of_file(first, tokens);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace fabula
