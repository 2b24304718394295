// GGUF writer -> reader round trips: every metadata value type, every tensor type, byte-identical copies.
#include <cmath>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "format/gguf.h"
#include "format_test_util.h"

namespace fabula {
namespace {

using test::pattern;
using test::read_bytes;
using test::temp_path;

std::vector<std::pair<std::string, GgufValue>> all_values() {
  float nan_payload;
  uint32_t nan_bits = 0x7fa00001u;  // a signalling NaN with a payload: must survive bit for bit
  std::memcpy(&nan_payload, &nan_bits, 4);
  return {
      {"t.u8", GgufValue::u8(255)},
      {"t.i8", GgufValue::i8(-128)},
      {"t.u16", GgufValue::u16(65535)},
      {"t.i16", GgufValue::i16(-32768)},
      {"t.u32", GgufValue::u32(4000000000u)},
      {"t.i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", GgufValue::i64(std::numeric_limits<int64_t>::min())},
      {"t.f32", GgufValue::f32(0.1f)},
      {"t.f32_nan", GgufValue::f32(nan_payload)},
      {"t.f64", GgufValue::f64(-1.0e300)},
      {"t.bool_true", GgufValue::boolean(true)},
      {"t.bool_false", GgufValue::boolean(false)},
      {"t.string", GgufValue::string("Gemma 4 \xe3\x81\x95\xe3\x81\x8f\xe3\x82\x89")},
      {"t.string_empty", GgufValue::string("")},
      {"t.string_nul", GgufValue::string(std::string("a\0b", 3))},
      {"t.arr_u8", GgufValue::array(GgufValueType::kU8, std::vector<uint64_t>{0, 1, 255})},
      {"t.arr_i8", GgufValue::array(GgufValueType::kI8, std::vector<int64_t>{-128, 0, 127})},
      {"t.arr_u16", GgufValue::array(GgufValueType::kU16, std::vector<uint64_t>{65535, 7})},
      {"t.arr_i16", GgufValue::array(GgufValueType::kI16, std::vector<int64_t>{-32768, 32767})},
      {"t.arr_u32", GgufValue::array(GgufValueType::kU32, std::vector<uint64_t>{4294967295u, 0})},
      {"t.arr_i32", GgufValue::array(GgufValueType::kI32, std::vector<int64_t>{-5, 2147483647})},
      {"t.arr_u64", GgufValue::array(GgufValueType::kU64, std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()})},
      {"t.arr_i64", GgufValue::array(GgufValueType::kI64, std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 3})},
      {"t.arr_f32", GgufValue::array(GgufValueType::kF32, std::vector<double>{0.5, -0.0, std::ldexp(1.0, -149), INFINITY})},
      {"t.arr_f64", GgufValue::array(GgufValueType::kF64, std::vector<double>{0.1, -2.5e-310})},
      {"t.arr_bool", GgufValue::array(std::vector<bool>{true, false, true})},
      {"t.arr_string", GgufValue::array(std::vector<std::string>{"<pad>", "", "\xe2\x96\x81the"})},
      {"t.arr_empty", GgufValue::array(GgufValueType::kI32, std::vector<int64_t>{})},
      {"t.arr_empty_strings", GgufValue::array(std::vector<std::string>{})},
  };
}

// Bit-level equality of two values (NaN payloads and -0.0 included).
void expect_same(const GgufValue& a, const GgufValue& b, const std::string& key) {
  SCOPED_TRACE(key);
  ASSERT_EQ(a.type, b.type);
  if (a.type == GgufValueType::kArray) {
    ASSERT_EQ(a.array_type, b.array_type);
  }
  ASSERT_EQ(a.data.index(), b.data.index());
  if (const auto* d = std::get_if<double>(&a.data)) {
    double e = std::get<double>(b.data);
    EXPECT_EQ(std::memcmp(d, &e, 8), 0) << *d << " vs " << e;
  } else if (const auto* v = std::get_if<std::vector<double>>(&a.data)) {
    const auto& w = std::get<std::vector<double>>(b.data);
    ASSERT_EQ(v->size(), w.size());
    EXPECT_EQ(std::memcmp(v->data(), w.data(), v->size() * 8), 0);
  } else {
    EXPECT_TRUE(a.data == b.data);
  }
}

TEST(GgufRoundTrip, EveryMetadataValueType) {
  GgufWriter writer;
  auto values = all_values();
  for (const auto& [k, v] : values) writer.set(k, v);
  std::string path = temp_path("values.gguf");
  ASSERT_TRUE(writer.write(path).ok());

  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  ASSERT_EQ(file->metadata().size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(file->metadata()[i].first, values[i].first);  // order is kept
    expect_same(file->metadata()[i].second, values[i].second, values[i].first);
  }
  EXPECT_EQ(*file->get_u64("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*file->get_i64("t.i8"), -128);
  EXPECT_EQ(*file->get_u64("t.u8"), 255u);  // lenient: any integer type that fits
  EXPECT_FLOAT_EQ(static_cast<float>(*file->get_f64("t.f32")), 0.1f);
  EXPECT_TRUE(*file->get_bool("t.bool_true"));
  EXPECT_EQ(file->get_string("t.string_nul")->size(), 3u);
  EXPECT_EQ((*file->get_strings("t.arr_string"))[2], "\xe2\x96\x81the");
  EXPECT_EQ((*file->get_i64_array("t.arr_u32"))[0], 4294967295);
  EXPECT_EQ(file->find("t.arr_bool")->array_size(), 3u);
  EXPECT_FALSE(file->get_u64("t.i8").ok());  // negative does not fit u64
}

TEST(GgufRoundTrip, LookupErrorsNameTheKey) {
  GgufWriter writer;
  writer.set("general.name", GgufValue::string("x"));
  std::string path = temp_path("lookup.gguf");
  ASSERT_TRUE(writer.write(path).ok());
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  auto missing = file->get_u64("llama.block_count");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("'llama.block_count'"), std::string::npos);
  auto wrong = file->get_u64("general.name");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("'general.name' is string"), std::string::npos) << wrong.error().message;
  EXPECT_EQ(file->find_tensor("nope"), nullptr);
}

// Every type with a block layout: two blocks per row, three rows, distinct bytes per tensor.
TEST(GgufRoundTrip, EveryTensorType) {
  GgufWriter writer;
  std::vector<std::pair<TypeTraits, std::vector<uint8_t>>> expected;
  for (uint32_t id = 0; id < 64; ++id) {
    auto traits = type_traits(id);
    if (!traits) continue;
    std::vector<uint64_t> shape = {traits->block_size * 2ull, 3};
    auto bytes = pattern(row_bytes(traits->type, shape[0]) * 3, id);
    expected.emplace_back(*traits, bytes);
    writer.add_tensor(fmt::format("t.{}", traits->name), traits->type, shape,
                      [bytes](std::span<uint8_t> out) -> Status {
                        if (out.size() != bytes.size()) return make_error(ErrorCode::kInternal, "size");
                        std::memcpy(out.data(), bytes.data(), bytes.size());
                        return ok_status();
                      });
  }
  ASSERT_EQ(expected.size(), 20u);
  std::string path = temp_path("types.gguf");
  uint64_t last_done = 0, last_total = 0;
  int calls = 0;
  ASSERT_TRUE(writer.write(path, [&](uint64_t done, uint64_t total) {
                      EXPECT_GT(done, last_done);
                      last_done = done;
                      last_total = total;
                      ++calls;
                    }).ok());
  EXPECT_EQ(calls, 20);
  EXPECT_EQ(last_done, last_total);

  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  ASSERT_EQ(file->tensors().size(), expected.size());
  EXPECT_EQ(file->data_offset() % 32, 0u);
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& t = file->tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.type, expected[i].first.type);
    EXPECT_EQ(t.shape, (std::vector<uint64_t>{expected[i].first.block_size * 2ull, 3}));
    EXPECT_EQ(t.n_elements(), expected[i].first.block_size * 6ull);
    EXPECT_EQ(t.offset % 32, 0u);
    ASSERT_EQ(t.n_bytes(), expected[i].second.size());
    EXPECT_EQ(std::memcmp(t.data.data(), expected[i].second.data(), t.n_bytes()), 0);
    // Zero-copy: the view points into the file's bytes at data_offset + offset.
    EXPECT_EQ(t.data.data(), file->bytes().data() + file->data_offset() + t.offset);
    EXPECT_EQ(file->find_tensor(t.name), &t);
  }
}

// Writes a mixed file, then read -> copy -> write twice: all three files must be the same bytes.
void expect_copy_identical(const std::string& first) {
  auto a = GgufFile::open(first);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  GgufWriter w2(/*alignment=*/8, /*version=*/3);  // the copy must take version and alignment from the input
  gguf_copy_into(*a, w2);
  std::string second = first + ".copy";
  ASSERT_TRUE(w2.write(second).ok());
  auto b = GgufFile::open(second);
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  GgufWriter w3;
  gguf_copy_into(*b, w3);
  std::string third = first + ".copy2";
  ASSERT_TRUE(w3.write(third).ok());
  auto bytes1 = read_bytes(first);
  EXPECT_EQ(bytes1, read_bytes(second));
  EXPECT_EQ(bytes1, read_bytes(third));
}

TEST(GgufRoundTrip, ReadWriteReadWriteIsByteIdentical) {
  for (uint32_t alignment : {32u, 1u, 64u, 256u}) {
    for (uint32_t version : {3u, 2u}) {
      SCOPED_TRACE(fmt::format("alignment {} version {}", alignment, version));
      GgufWriter writer(alignment, version);
      for (const auto& [k, v] : all_values()) writer.set(k, v);
      auto q = pattern(34 * 4, 1), f = pattern(4 * 7, 2), k4 = pattern(144, 3);
      writer.add_tensor("blk.0.attn_q.weight", GgmlType::kQ8_0, {64, 2}, q);
      writer.add_tensor("output_norm.weight", GgmlType::kF32, {7}, f);
      writer.add_tensor("blk.0.ffn_gate_exps.weight", GgmlType::kQ4_K, {256, 1, 1, 1}, k4);
      std::string path = temp_path(fmt::format("mixed_{}_{}.gguf", alignment, version));
      ASSERT_TRUE(writer.write(path).ok());
      auto file = GgufFile::open(path);
      ASSERT_TRUE(file.ok()) << file.error().to_string();
      EXPECT_EQ(file->alignment(), alignment);
      EXPECT_EQ(file->version(), version);
      EXPECT_EQ(file->find("general.alignment") != nullptr, alignment != 32);
      EXPECT_EQ(file->find_tensor("blk.0.ffn_gate_exps.weight")->shape.size(), 4u);  // trailing 1s are kept
      expect_copy_identical(path);
    }
  }
}

// The reader must accept a file built byte by byte without our writer, and copying it must reproduce it.
TEST(GgufRoundTrip, HandBuiltFileParsesAndCopiesIdentically) {
  test::Bytes b;
  b.raw("GGUF").u32(3).u64(2).u64(2);
  b.str("general.architecture").u32(8).str("gemma4");
  b.str("general.alignment").u32(4).u32(16);
  b.str("token_embd.weight").u32(2).i64(4).i64(2).u32(0).u64(0);  // f32 [4, 2]: 32 bytes
  b.str("blk.0.attn_norm.weight").u32(1).i64(3).u32(30).u64(32);  // bf16 [3]: 6 bytes
  b.pad(16);
  size_t data_at = b.size();
  auto t0 = pattern(32, 7), t1 = pattern(6, 8);
  b.b.insert(b.b.end(), t0.begin(), t0.end());
  b.b.insert(b.b.end(), t1.begin(), t1.end());
  b.pad(16);
  std::string path = temp_path("hand.gguf");
  test::write_bytes(path, b.b);
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_EQ(file->data_offset(), data_at);
  EXPECT_EQ(file->alignment(), 16u);
  EXPECT_EQ(*file->get_string("general.architecture"), "gemma4");
  const GgufTensor* norm = file->find_tensor("blk.0.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, GgmlType::kBF16);
  EXPECT_EQ(norm->offset, 32u);
  EXPECT_EQ(std::vector<uint8_t>(norm->data.begin(), norm->data.end()), t1);
  expect_copy_identical(path);
}

TEST(GgufRoundTrip, ProducerErrorLeavesNoFile) {
  GgufWriter writer;
  writer.add_tensor("a", GgmlType::kF32, {4}, [](std::span<uint8_t>) -> Status {
    return make_error(ErrorCode::kIo, "source went away");
  });
  std::string path = temp_path("failed.gguf");
  Status s = writer.write(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("tensor 'a': source went away"), std::string::npos) << s.error().message;
  EXPECT_FALSE(test::read_bytes(path).size() > 0);
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(GgufRoundTrip, WriterRejectsInvalidInput) {
  auto expect_rejected = [](GgufWriter& w, const std::string& needle) {
    Status s = w.write(temp_path("rejected.gguf"));
    ASSERT_FALSE(s.ok()) << "expected: " << needle;
    EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().message;
  };
  std::vector<uint8_t> four(16);
  {
    GgufWriter w;
    w.add_tensor("a", GgmlType::kF32, {4}, four);
    w.add_tensor("a", GgmlType::kF32, {4}, four);
    expect_rejected(w, "duplicate tensor 'a'");
  }
  {
    GgufWriter w;
    w.add_tensor(std::string(64, 'x'), GgmlType::kF32, {4}, four);
    expect_rejected(w, "must be 1..63 bytes");
  }
  {
    GgufWriter w;
    w.add_tensor("q", GgmlType::kQ8_0, {16}, four);
    expect_rejected(w, "not a multiple of the block size");
  }
  {
    GgufWriter w;
    w.add_tensor("z", GgmlType::kF32, {4, 0}, four);
    expect_rejected(w, "dimension of 0");
  }
  {
    GgufWriter w;
    w.add_tensor("s", GgmlType::kF32, {5}, four);
    expect_rejected(w, "has 16 bytes, its shape needs 20");
  }
  {
    GgufWriter w;
    GgufValue v = GgufValue::u8(1);
    v.data = uint64_t{300};
    w.set("bad.u8", v);
    expect_rejected(w, "'bad.u8': value does not match its type u8");
  }
  {
    GgufWriter w;
    w.set("general.alignment", GgufValue::u32(24));
    expect_rejected(w, "alignment 24 is not a power of two");
  }
}

TEST(GgufRoundTrip, SetReplacesInPlace) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::string("x"));
  std::string path = temp_path("replace.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->metadata().size(), 2u);
  EXPECT_EQ(file->metadata()[0].first, "a");
  EXPECT_EQ(*file->get_string("a"), "x");
}

}  // namespace
}  // namespace fabula
