// GGUF reader robustness: targeted corruptions name the offset and field; every header byte flipped and
// every truncation gives a clean error or a valid parse, never a crash.
#include <cstring>

#include <gtest/gtest.h>

#include "format/gguf.h"
#include "format_test_util.h"

namespace fabula {
namespace {

using test::Bytes;

struct Info {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t type;
  uint64_t offset;
  size_t n_bytes;
};

// A file with the given kv section (already encoded) and tensor infos; data are filler bytes, each padded.
std::vector<uint8_t> build(uint64_t n_kv, const Bytes& kvs, const std::vector<Info>& infos, uint32_t alignment = 32,
                           uint32_t version = 3, size_t* info_at = nullptr) {
  Bytes b;
  b.raw("GGUF").u32(version).u64(infos.size()).u64(n_kv);
  b.b.insert(b.b.end(), kvs.b.begin(), kvs.b.end());
  if (info_at) *info_at = b.size();
  for (const auto& t : infos) {
    b.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) b.i64(d);
    b.u32(t.type).u64(t.offset);
  }
  b.pad(alignment);
  for (size_t i = 0; i < infos.size(); ++i) {
    auto data = test::pattern(infos[i].n_bytes, static_cast<uint32_t>(i));
    b.b.insert(b.b.end(), data.begin(), data.end());
    b.pad(alignment);
  }
  return b.b;
}

Bytes basic_kvs() {
  Bytes kv;
  kv.str("general.architecture").u32(8).str("gemma4");
  kv.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("<pad>").str("<eos>").str("a");
  kv.str("tokenizer.ggml.scores").u32(9).u32(6).u64(2).put<float>(0.5f).put<float>(-1.0f);
  kv.str("gemma4.block_count").u32(4).u32(6);
  kv.str("gemma4.use_x").u32(7).u8(1);
  return kv;
}

std::vector<Info> basic_infos() {
  return {{"token_embd.weight", {8, 2}, 0, 0, 64},
          {"blk.0.attn_q.weight", {32, 2}, 8, 64, 68},
          {"blk.0.ffn_down_exps.weight", {256, 1, 2}, 12, 160, 288}};
}

std::vector<uint8_t> basic_file() { return build(5, basic_kvs(), basic_infos()); }

Result<GgufFile> parse(const std::vector<uint8_t>& bytes) { return GgufFile::from_bytes(bytes, "model.gguf"); }

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle,
                  ErrorCode code = ErrorCode::kCorrupt) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("model.gguf: ", 0), 0u) << r.error().message;
}

TEST(GgufCorrupt, BasicFileIsValid) {
  auto bytes = basic_file();
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tensors().size(), 3u);
  EXPECT_EQ(r->find_tensor("blk.0.ffn_down_exps.weight")->n_bytes(), 288u);
  EXPECT_EQ(r->tensors()[1].data.data(), bytes.data() + r->data_offset() + 64);
}

TEST(GgufCorrupt, ZeroDimNamesOffsetAndField) {
  auto infos = basic_infos();
  infos[1].dims = {32, 0};
  size_t info_at = 0;
  auto bytes = build(5, basic_kvs(), infos, 32, 3, &info_at);
  // tensor 0 info: 8+17 name, 4 n_dims, 16 dims, 4 type, 8 offset = 57; tensor 1: 8+19 name, 4 n_dims, dims[0] 8.
  size_t dims1_at = info_at + 57 + 8 + 19 + 4 + 8;
  expect_error(bytes, fmt::format("offset {:#x}: tensor 1 'blk.0.attn_q.weight': dims[1] = 0 (must be positive)",
                                  dims1_at));
}

TEST(GgufCorrupt, TargetedErrors) {
  {
    auto b = basic_file();
    b[4] = 1;
    expect_error(b, "offset 0x4: version = 1: GGUF v1 is no longer supported", ErrorCode::kUnsupported);
  }
  {
    auto b = basic_file();
    std::memcpy(b.data() + 4, "\0\0\0\3", 4);
    expect_error(b, "looks like a big-endian file", ErrorCode::kUnsupported);
  }
  {
    auto b = basic_file();
    b[0] = 'X';
    expect_error(b, "offset 0x0: magic = 58 47 55 46");
  }
  {
    auto b = basic_file();
    uint64_t huge = 1ull << 40;
    std::memcpy(b.data() + 16, &huge, 8);
    expect_error(b, "offset 0x10: n_kv = 1099511627776 cannot fit");
  }
  {
    Bytes kv = basic_kvs();
    kv.str("general.architecture").u32(8).str("again");
    expect_error(build(6, kv, basic_infos()), "kv 5 'general.architecture': duplicate key");
  }
  {
    Bytes kv;
    kv.str("a.nested").u32(9).u32(9).u64(0);
    expect_error(build(1, kv, {}), "offset 0x2c: kv 0 'a.nested': nested arrays are not allowed");
  }
  {
    Bytes kv;
    kv.str("a.bad").u32(13).u32(0);
    expect_error(build(1, kv, {}), "kv 0 'a.bad': value type = 13 (expected 0..12)");
  }
  {
    Bytes kv;
    kv.str("a.flag").u32(7).u8(2);
    expect_error(build(1, kv, {}), "kv 0 'a.flag': bool byte = 2 (must be 0 or 1)");
  }
  {
    Bytes kv;
    kv.str("a.s").u32(8).u64(1000).raw("short");
    expect_error(build(1, kv, {}), "kv 0 'a.s' length = 1000 exceeds");
  }
  {
    Bytes kv;
    kv.str("general.alignment").u32(4).u32(48);
    expect_error(build(1, kv, {}, 32), "general.alignment = 48 (must be a power of two)");
  }
  {
    Bytes kv;
    kv.str("general.alignment").u32(10).u64(32);
    expect_error(build(1, kv, {}, 32), "general.alignment has type u64 (must be u32)");
  }
  {
    auto infos = basic_infos();
    infos[2].name = "blk.0.attn_q.weight";
    expect_error(build(5, basic_kvs(), infos), "tensor 2 'blk.0.attn_q.weight': duplicate tensor name");
  }
  {
    auto infos = basic_infos();
    infos[0].name = std::string(64, 'n');
    expect_error(build(5, basic_kvs(), infos), "name is 64 bytes (at most 63)");
  }
  {
    auto infos = basic_infos();
    infos[0].dims = {8, 2, 1, 1, 1};
    expect_error(build(5, basic_kvs(), infos), "n_dims = 5 (expected 1..4)");
  }
  {
    auto infos = basic_infos();
    infos[1].type = 4;  // a removed ggml type id
    expect_error(build(5, basic_kvs(), infos), "'blk.0.attn_q.weight': ggml type = 4 is unknown",
                 ErrorCode::kUnsupported);
  }
  {
    auto infos = basic_infos();
    infos[1].dims = {48, 2};
    infos[1].n_bytes = 0;
    expect_error(build(5, basic_kvs(), infos), "dims[0] = 48 is not a multiple of the q8_0 block size 32");
  }
  {
    auto infos = basic_infos();
    infos[1].offset = 96;  // aligned but leaves a gap
    expect_error(build(5, basic_kvs(), infos), "offset = 96 (expected 64: tensor data is dense and in info order)");
  }
  {
    auto infos = basic_infos();
    infos[1].offset = 65;
    expect_error(build(5, basic_kvs(), infos), "offset = 65 is not a multiple of the alignment 32");
  }
  {
    auto b = basic_file();
    b.push_back(0);
    expect_error(b, "1 trailing bytes after the last tensor");
  }
  {
    auto b = basic_file();
    auto r = parse(b);
    ASSERT_TRUE(r.ok());
    size_t pad_at = r->data_offset() + 64 + 68;  // tensor 1 holds 68 bytes, padded to 96
    b[pad_at] = 0x5a;
    expect_error(b, fmt::format("offset {:#x}: tensor 1 'blk.0.attn_q.weight': padding byte is 0x5a", pad_at));
  }
  {
    auto b = basic_file();
    b.resize(b.size() - 40);
    expect_error(b, "tensor 2 'blk.0.ffn_down_exps.weight': data [");
  }
  {
    auto infos = basic_infos();
    infos[0].dims = {1ll << 40, 1ll << 40};
    expect_error(build(5, basic_kvs(), infos), "would need more bytes than the file has");
  }
}

TEST(GgufCorrupt, VersionTwoAccepted) {
  auto r = parse(build(5, basic_kvs(), basic_infos(), 32, 2));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->version(), 2u);
}

// Flips every byte of the header region (everything before the data section) to several values.
TEST(GgufCorrupt, EveryHeaderByteFlipped) {
  const auto original = basic_file();
  auto base = parse(original);
  ASSERT_TRUE(base.ok());
  const size_t header = base->data_offset();
  size_t errors = 0, parsed = 0;
  for (size_t i = 0; i < header; ++i) {
    for (int mode = 0; mode < 5; ++mode) {
      auto b = original;
      switch (mode) {
        case 0: b[i] ^= 0x01; break;
        case 1: b[i] ^= 0x80; break;
        case 2: b[i] = 0x00; break;
        case 3: b[i] = 0xff; break;
        case 4: b[i] ^= 0x20; break;
      }
      if (b == original) continue;
      auto r = parse(b);
      if (r.ok()) {
        ++parsed;
        // Whatever parsed must be self-consistent: every view inside the buffer.
        for (const auto& t : r->tensors()) {
          ASSERT_GE(t.data.data(), b.data());
          ASSERT_LE(t.data.data() + t.n_bytes(), b.data() + b.size());
        }
      } else {
        ++errors;
        ASSERT_EQ(r.error().message.rfind("model.gguf: offset 0x", 0), 0u) << r.error().message;
      }
    }
  }
  EXPECT_GT(errors, header * 2);  // most corruptions are caught
  EXPECT_GT(parsed, 0u);          // some are harmless (string bytes, float bits)
}

TEST(GgufCorrupt, EveryTruncationIsAnError) {
  const auto original = basic_file();
  for (size_t n = 0; n < original.size(); ++n) {
    std::vector<uint8_t> b(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse(b);
    ASSERT_FALSE(r.ok()) << "truncated to " << n << " bytes parsed";
    ASSERT_EQ(r.error().message.rfind("model.gguf: offset 0x", 0), 0u) << r.error().message;
  }
}

}  // namespace
}  // namespace fabula
