// Split GGUF files: names, sizes, and the errors of a broken set (missing part, wrong file, foreign part).
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "common/scratch_dir.h"
#include "format/gguf.h"
#include "format/gguf_split.h"

namespace fabula {
namespace {

using test_support::ScratchDir;

TEST(GgufSplitName, FormatsAndParsesLlamaCppNames) {
  EXPECT_EQ(gguf_split_path("dir/model", 0, 3), "dir/model-00001-of-00003.gguf");
  auto n = parse_gguf_split_name("dir/model-Q8_0-00002-of-00003.gguf");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->prefix, "dir/model-Q8_0");
  EXPECT_EQ(n->index, 1u);
  EXPECT_EQ(n->count, 3u);
  EXPECT_FALSE(parse_gguf_split_name("model-Q8_0.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model-00004-of-00003.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model-1-of-3.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model-00001-of-00003.bin").has_value());
  // split.count is a u16: 65535 parts at most.
  EXPECT_EQ(parse_gguf_split_name("model-00001-of-65535.gguf")->count, 65535u);
  EXPECT_FALSE(parse_gguf_split_name("model-00001-of-65536.gguf").has_value());
  EXPECT_FALSE(parse_gguf_split_name("model-00001-of-055550008.gguf").has_value());
}

TEST(GgufSplitName, ParsesSplitSizes) {
  EXPECT_EQ(parse_split_size("2G"), 2'000'000'000u);
  EXPECT_EQ(parse_split_size("500M"), 500'000'000u);
  EXPECT_EQ(parse_split_size("1.5G"), 1'500'000'000u);
  EXPECT_EQ(parse_split_size("4096"), 4096u);
  EXPECT_FALSE(parse_split_size("").has_value());
  EXPECT_FALSE(parse_split_size("G").has_value());
  EXPECT_FALSE(parse_split_size("-1M").has_value());
  EXPECT_FALSE(parse_split_size("2T").has_value());
}

// Three f32 tensors of 4 KiB written as one file per tensor.
std::vector<std::string> write_split(const ScratchDir& dir, const std::string& stem) {
  static std::vector<float> values(1024, 0.5f);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4);
  GgufWriter w;
  w.set("general.name", GgufValue::string(stem));
  for (int i = 0; i < 3; ++i) w.add_tensor(fmt::format("t{}", i), GgmlType::kF32, {1024}, bytes);
  w.set_split_max_bytes(4096);
  EXPECT_TRUE(w.write(dir / (stem + ".gguf")).ok());
  return w.written_paths();
}

TEST(GgufSplit, OpensEveryPartFromTheFirst) {
  ScratchDir dir("gguf_split");
  auto parts = write_split(dir, "m");
  ASSERT_EQ(parts.size(), 3u);
  auto f = GgufFile::open(parts[0]);
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  EXPECT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensors()[2].shard, 2u);
  EXPECT_EQ(f->shard_paths(), parts);
  EXPECT_EQ(f->get_string("general.name").value(), "m");
  EXPECT_EQ(f->find("split.no"), nullptr);
  // Each part alone is a valid GGUF with its split keys.
  auto second = GgufFile::from_bytes(MappedFile::open(parts[1])->bytes(), parts[1]);
  ASSERT_TRUE(second.ok());
}

TEST(GgufSplit, NamesTheMissingPart) {
  ScratchDir dir("gguf_split_missing");
  auto parts = write_split(dir, "m");
  std::filesystem::remove(parts[2]);
  auto f = GgufFile::open(parts[0]);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::kNotFound);
  EXPECT_NE(f.error().message.find("part 3 of 3"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("m-00003-of-00003.gguf"), std::string::npos) << f.error().message;
}

TEST(GgufSplit, OpeningALaterPartNamesTheFirst) {
  ScratchDir dir("gguf_split_later");
  auto parts = write_split(dir, "m");
  auto f = GgufFile::open(parts[1]);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("part 2 of 3"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("m-00001-of-00003.gguf"), std::string::npos) << f.error().message;
}

TEST(GgufSplit, RejectsAPartOfAnotherModelAndARenamedFirstFile) {
  ScratchDir dir("gguf_split_mixed");
  auto a = write_split(dir, "a");
  ScratchDir other("gguf_split_other");
  GgufWriter w;  // a two-part model whose part 2 is copied over a's
  static std::vector<float> values(1024, 1.0f);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4);
  for (int i = 0; i < 2; ++i) w.add_tensor(fmt::format("x{}", i), GgmlType::kF32, {1024}, bytes);
  w.set_split_max_bytes(4096);
  ASSERT_TRUE(w.write(other / "b.gguf").ok());
  std::filesystem::copy_file(w.written_paths()[1], a[1], std::filesystem::copy_options::overwrite_existing);
  auto f = GgufFile::open(a[0]);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(f.error().message.find("another model"), std::string::npos) << f.error().message;

  auto b = write_split(dir, "c");
  std::filesystem::rename(b[0], dir / "renamed.gguf");
  auto r = GgufFile::open(dir / "renamed.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("gguf-split names"), std::string::npos) << r.error().message;
}

TEST(GgufSplit, AModelUnderTheLimitStaysOneFile) {
  ScratchDir dir("gguf_split_one");
  static std::vector<float> values(16, 1.0f);
  GgufWriter w;
  w.add_tensor("t", GgmlType::kF32, {16},
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()), 64));
  w.set_split_max_bytes(1 << 20);
  ASSERT_TRUE(w.write(dir / "one.gguf").ok());
  EXPECT_EQ(w.written_paths(), std::vector<std::string>{dir / "one.gguf"});
  EXPECT_TRUE(GgufFile::open(dir / "one.gguf").ok());
}

TEST(GgufSparse, WritesAFullSizeFileOfZeroWeights) {
  ScratchDir dir("gguf_sparse");
  GgufWriter w;
  w.add_tensor("big", GgmlType::kF32, {1024, 1024}, [](std::span<uint8_t>) -> Status {
    return make_error(ErrorCode::kInternal, "a sparse write must not produce tensors");
  });
  w.set_sparse_data(true);
  ASSERT_TRUE(w.write(dir / "sparse.gguf").ok());
  auto f = GgufFile::open(dir / "sparse.gguf");
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  EXPECT_EQ(f->tensors()[0].n_bytes(), 4u << 20);
  EXPECT_EQ(f->tensors()[0].data[12345], 0);
}

}  // namespace
}  // namespace fabula
