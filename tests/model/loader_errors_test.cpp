// Loading broken model files: every error names the file and the tensor or key at fault, and nothing crashes.
#include <gtest/gtest.h>

#include <fstream>

#include "format/gguf.h"
#include "model_test_util.h"

namespace fabula {
namespace {

using namespace model_test;

// Rewrites `in` into `out`, letting `edit` change a tensor's shape/bytes (return false to drop it) and the metadata.
struct TensorEdit {
  std::vector<uint64_t> shape;
  std::span<const uint8_t> data;
};
void rewrite(const GgufFile& in, const std::string& out,
             const std::function<bool(const std::string& name, TensorEdit& t)>& edit,
             const std::function<void(GgufWriter&)>& edit_metadata = {}) {
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) w.set(key, value);
  if (edit_metadata) edit_metadata(w);
  for (const auto& t : in.tensors()) {
    TensorEdit e{t.shape, t.data};
    if (!edit(t.name, e)) continue;
    w.add_tensor(t.name, t.type, e.shape, e.data);
  }
  auto st = w.write(out);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
}

class LoaderErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = convert_tiny(dir_, "f32");
    auto f = GgufFile::open(path_);
    ASSERT_TRUE(f.ok());
    file_ = std::make_unique<GgufFile>(std::move(*f));
  }
  std::string load_error(const std::string& path) {
    auto m = Model::load(path);
    EXPECT_FALSE(m.ok());
    return m.ok() ? "" : m.error().message;
  }
  ScratchDir dir_{"loader"};
  std::string path_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(LoaderErrors, TheConvertedFileLoads) {
  auto m = Model::load(path_);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(gemma4(**m).hparams().n_layer, 6);
}

TEST_F(LoaderErrors, TruncatedFileNamesTheTensor) {
  const auto bytes = [&] {
    std::ifstream in(path_, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  const std::string cut = dir_ / "cut.gguf";
  const size_t new_size = bytes.size() - 5000;
  std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(new_size));
  // The first tensor whose data no longer fits is the one to name.
  std::string expected;
  for (const auto& t : file_->tensors()) {
    if (file_->data_offset() + t.offset + t.n_bytes() > new_size) {
      expected = t.name;
      break;
    }
  }
  ASSERT_FALSE(expected.empty());
  const std::string msg = load_error(cut);
  EXPECT_NE(msg.find("cut.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find(expected), std::string::npos) << msg;
}

TEST_F(LoaderErrors, MisShapedTensorIsNamedWithBothShapes) {
  const std::string bad = dir_ / "bad-shape.gguf";
  rewrite(*file_, bad, [](const std::string& name, TensorEdit& t) {
    if (name == "blk.2.attn_q.weight") {  // {64, 128} -> {64, 64}
      t.shape = {64, 64};
      t.data = t.data.subspan(0, 64 * 64 * 4);
    }
    return true;
  });
  const std::string msg = load_error(bad);
  EXPECT_NE(msg.find("blk.2.attn_q.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("{64, 64}"), std::string::npos) << msg;
  EXPECT_NE(msg.find("{64, 128}"), std::string::npos) << msg;
}

TEST_F(LoaderErrors, MissingTensorIsNamed) {
  const std::string bad = dir_ / "missing.gguf";
  rewrite(*file_, bad, [](const std::string& name, TensorEdit&) { return name != "blk.4.ffn_down_exps.weight"; });
  const std::string msg = load_error(bad);
  EXPECT_NE(msg.find("missing tensor blk.4.ffn_down_exps.weight"), std::string::npos) << msg;
}

TEST_F(LoaderErrors, WrongExpertCountShowsInTheExpertTensorShape) {
  const std::string bad = dir_ / "experts.gguf";
  rewrite(*file_, bad, [](const std::string&, TensorEdit&) { return true; },
          [](GgufWriter& w) { w.set("gemma4.expert_count", GgufValue::u32(16)); });
  const std::string msg = load_error(bad);
  EXPECT_NE(msg.find("blk.0.ffn_gate_inp.weight"), std::string::npos) << msg;
}

TEST_F(LoaderErrors, BadMetadataNamesTheKey) {
  const std::string bad = dir_ / "kv.gguf";
  rewrite(*file_, bad, [](const std::string&, TensorEdit&) { return true; },
          [](GgufWriter& w) {
            w.set("gemma4.attention.head_count_kv", GgufValue::array(GgufValueType::kI32, std::vector<int64_t>{2, 2}));
          });
  EXPECT_NE(load_error(bad).find("gemma4.attention.head_count_kv"), std::string::npos);

  const std::string arch = dir_ / "arch.gguf";
  rewrite(*file_, arch, [](const std::string&, TensorEdit&) { return true; },
          [](GgufWriter& w) { w.set("general.architecture", GgufValue::string("llama")); });
  EXPECT_NE(load_error(arch).find("architecture 'llama' is not supported (fabula runs: gemma4)"), std::string::npos)
      << load_error(arch);
}

}  // namespace
}  // namespace fabula
