// Result<T>, the FABULA_TRY/ASSIGN macros, atomic file writes and MappedFile.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "base/file.h"
#include "base/mapped_file.h"
#include "base/result.h"

namespace fabula {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(ErrorCode::kInvalidArgument, "value {} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  FABULA_ASSIGN(int x, parse_positive(v));
  return 2 * x;
}

TEST(Result, CarriesValueOrError) {
  auto good = doubled(4);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().to_string(), "invalid argument: value -1 is not positive");
}

TEST(File, AtomicWriteThenMap) {
  auto dir = std::filesystem::temp_directory_path() / ("fabula_base_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "x.bin").string();
  ASSERT_TRUE(write_file_atomic(path, std::string("hello")).ok());
  EXPECT_FALSE(file_exists(path + ".tmp"));
  auto text = read_file_text(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello");
  auto mapped = MappedFile::open(path);
  ASSERT_TRUE(mapped.ok());
  ASSERT_EQ(mapped->size(), 5u);
  EXPECT_EQ(mapped->data()[4], 'o');
  auto missing = MappedFile::open((dir / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
}

}  // namespace
}  // namespace fabula
