// Replays the saved fuzz corpora (fuzz/corpus/gguf, fuzz/corpus/safetensors) through the parsers as tests.
#include <filesystem>

#include <gtest/gtest.h>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "format_test_util.h"

namespace fabula {
namespace {

std::vector<std::filesystem::path> corpus(const std::string& name) {
  std::vector<std::filesystem::path> out;
  std::filesystem::path dir = std::filesystem::path(FABULA_SOURCE_DIR) / "fuzz" / "corpus" / name;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(FuzzCorpus, GgufReplays) {
  auto files = corpus("gguf");
  ASSERT_GE(files.size(), 3u);
  size_t valid = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto bytes = test::read_bytes(path.string());
    auto r = GgufFile::from_bytes(bytes, path.filename().string());
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty());
      continue;
    }
    ++valid;
    // A valid file copies to the same bytes.
    GgufWriter w;
    gguf_copy_into(*r, w);
    std::string out = test::temp_path("replay.gguf");
    ASSERT_TRUE(w.write(out).ok());
    EXPECT_EQ(test::read_bytes(out), bytes);
  }
  EXPECT_GE(valid, 3u);  // the seeds are valid files
}

TEST(FuzzCorpus, SafetensorsReplays) {
  auto files = corpus("safetensors");
  ASSERT_GE(files.size(), 2u);
  size_t valid = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto bytes = test::read_bytes(path.string());
    auto r = SafetensorsFile::from_bytes(bytes, path.filename().string());
    if (!r.ok()) continue;
    ++valid;
    for (const auto& t : r->tensors()) {
      auto f = safetensors_read_f32(t);
      EXPECT_EQ(f.ok(), t.dtype == SafetensorsDtype::kF32 || t.dtype == SafetensorsDtype::kF16 ||
                            t.dtype == SafetensorsDtype::kBF16);
    }
  }
  EXPECT_GE(valid, 2u);
}

}  // namespace
}  // namespace fabula
