// MappedFile::read: the same bytes whether it reads past the page cache (direct reads, in block-aligned pieces
// whose last one runs past the file's end) or through it, for sizes around a block and a read chunk, and on a file
// system that refuses direct reads (tmpfs), where it falls back to buffered reads.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/mapped_file.h"

namespace fabula {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Reads `path` both ways and checks each against `want`.
void expect_read_both_ways(const fs::path& path, const std::vector<uint8_t>& want) {
  for (const ReadCache cache : {ReadCache::kBypass, ReadCache::kThrough}) {
    SCOPED_TRACE(cache == ReadCache::kBypass ? "past the page cache" : "through the page cache");
    auto read = MappedFile::read(path.string(), cache);
    ASSERT_TRUE(read.ok()) << read.error().message;
    EXPECT_TRUE(read->is_copy());
    ASSERT_EQ(read->size(), want.size());
    // One comparison, then the first differing byte for the message.
    if (want.empty()) continue;
    if (std::memcmp(read->data(), want.data(), want.size()) != 0) {
      size_t i = 0;
      while (read->data()[i] == want[i]) ++i;
      ADD_FAILURE() << "byte " << i << " of " << want.size() << " differs";
    }
  }
}

class MappedFileRead : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fabula_mapped_file_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(MappedFileRead, SameBytesPastAndThroughThePageCache) {
  // 0, 1 byte, around one 4 KiB block, and around the 64 MiB read chunk (the second chunk ends mid-block).
  constexpr size_t kChunk = size_t{64} << 20;
  uint32_t seed = 1;
  for (const size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{100000},
                            kChunk - 1, kChunk + 4096 + 123}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::vector<uint8_t> bytes = random_bytes(size, seed++);
    const fs::path path = dir_ / ("file_" + std::to_string(size));
    write_file(path, bytes);
    expect_read_both_ways(path, bytes);
  }
}

TEST_F(MappedFileRead, FallsBackWhereDirectReadsAreRefused) {
  // tmpfs takes no O_DIRECT: the read goes through the page cache and still gets every byte.
  const fs::path shm = "/dev/shm";
  ASSERT_TRUE(fs::is_directory(shm)) << "this test reads a file on /dev/shm (tmpfs, as on every Linux with glibc)";
  const fs::path path = shm / ("fabula_mapped_file_" + std::to_string(::getpid()));
  const std::vector<uint8_t> bytes = random_bytes(3 * 4096 + 17, 99);
  write_file(path, bytes);
  expect_read_both_ways(path, bytes);
  fs::remove(path);
}

TEST_F(MappedFileRead, MissingFileNamesThePath) {
  auto read = MappedFile::read((dir_ / "absent.gguf").string());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::kNotFound);
  EXPECT_NE(read.error().message.find("absent.gguf"), std::string::npos);
}

}  // namespace
}  // namespace fabula
