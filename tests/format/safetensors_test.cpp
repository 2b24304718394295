// safetensors reader: valid files, f32 conversion, header corruption, the gemma4-tiny golden model, and the shard
// list of a checkpoint directory.
#include <cmath>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.h"
#include "format/safetensors.h"
#include "format_test_util.h"

namespace fabula {
namespace {

std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  test::Bytes b;
  b.u64(header.size()).raw(header);
  b.b.insert(b.b.end(), data.begin(), data.end());
  return b.b;
}

Result<SafetensorsFile> parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::from_bytes(bytes, "model.safetensors");
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle, ErrorCode code = ErrorCode::kCorrupt) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("model.safetensors: ", 0), 0u) << r.error().message;
}

// f32 [2], f16 [2, 2], bf16 [3], i8 [] (a scalar), in that data order.
std::vector<uint8_t> sample_data() {
  test::Bytes d;
  d.put<float>(1.5f).put<float>(-3.25f);
  d.put<uint16_t>(0x3c00).put<uint16_t>(0xc000).put<uint16_t>(0x7bff).put<uint16_t>(0x0001);
  d.put<uint16_t>(0x3f80).put<uint16_t>(0xc2f7).put<uint16_t>(0x7f80);
  d.put<int8_t>(-7);
  return d.b;
}

const char* kSampleHeader =
    R"({"__metadata__":{"format":"pt"},"w.f32":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("w.f16":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]},)"
    R"("w.bf16":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
    R"("s.i8":{"dtype":"I8","shape":[],"data_offsets":[22,23]}}  )";

TEST(Safetensors, ParsesAndConverts) {
  auto bytes = make_file(kSampleHeader, sample_data());
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->tensors().size(), 4u);
  EXPECT_EQ(r->tensors()[0].name, "w.f32");  // header order is kept
  EXPECT_EQ(r->metadata().at("format"), "pt");
  const auto* f16 = r->find_tensor("w.f16");
  ASSERT_NE(f16, nullptr);
  EXPECT_EQ(f16->shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(f16->data.data(), bytes.data() + r->data_offset() + 8);

  auto a = safetensors_read_f32(*r->find_tensor("w.f32"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<float>{1.5f, -3.25f}));
  auto h = safetensors_read_f32(*f16);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)[0], 1.0f);
  EXPECT_EQ((*h)[1], -2.0f);
  EXPECT_EQ((*h)[2], 65504.0f);
  EXPECT_EQ((*h)[3], std::ldexp(1.0f, -24));  // smallest subnormal
  auto bf = safetensors_read_f32(*r->find_tensor("w.bf16"));
  ASSERT_TRUE(bf.ok());
  EXPECT_EQ((*bf)[0], 1.0f);
  EXPECT_EQ((*bf)[1], -123.5f);
  EXPECT_TRUE(std::isinf((*bf)[2]));
  const auto* s = r->find_tensor("s.i8");
  EXPECT_EQ(s->n_elements(), 1u);
  auto not_float = safetensors_read_f32(*s);
  ASSERT_FALSE(not_float.ok());
  EXPECT_EQ(not_float.error().code, ErrorCode::kUnsupported);
}

TEST(Safetensors, HalfConversionMatchesEveryValue) {
  // Every f16 bit pattern against a reference computed from the definition.
  test::Bytes d;
  for (uint32_t i = 0; i < 65536; ++i) d.put<uint16_t>(static_cast<uint16_t>(i));
  auto bytes = make_file(R"({"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}})", d.b);
  auto r = parse(bytes);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto v = safetensors_read_f32(r->tensors()[0]);
  ASSERT_TRUE(v.ok());
  for (uint32_t i = 0; i < 65536; ++i) {
    int exp = static_cast<int>((i >> 10) & 0x1f), mant = static_cast<int>(i & 0x3ff);
    float sign = (i & 0x8000) ? -1.0f : 1.0f;
    float want;
    if (exp == 31) {
      want = mant ? NAN : sign * INFINITY;
    } else if (exp == 0) {
      want = sign * std::ldexp(static_cast<float>(mant), -24);
    } else {
      want = sign * std::ldexp(static_cast<float>(1024 + mant), exp - 25);
    }
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan((*v)[i])) << i;
    } else {
      ASSERT_EQ((*v)[i], want) << i;
    }
  }
}

TEST(Safetensors, HeaderErrors) {
  auto data = sample_data();
  {
    test::Bytes b;
    b.u64(1ull << 40).raw("{}");
    expect_error(b.b, "offset 0x0: header length = 1099511627776 (at most 100000000)");
  }
  {
    test::Bytes b;
    b.u64(50).raw("{}");
    expect_error(b.b, "offset 0x0: header length = 50 exceeds the 2 bytes after it");
  }
  expect_error({1, 0, 0}, "too short for the 8-byte header length");
  expect_error(make_file("[1,2]", {}), "must be a JSON object");
  expect_error(make_file("{\"a\":", {}), "is not a valid JSON object");
  expect_error(make_file(R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", {0}),
               "tensor 'w': dtype 'F8_E4M3' is not supported", ErrorCode::kUnsupported);
  expect_error(make_file(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", {0}),
               "tensor 'w': dtype 'Q4' is unknown");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", {0}),
               "tensor 'w': shape[0] = -1 (must be a non-negative integer)");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}})", {0}),
               "data_offsets [0, 1] hold 1 bytes; U8 shape [2] needs 2");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", {0}),
               "data_offsets [0, 2] outside the data region [0, 1]");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", {0, 0}), "outside the data");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[2]}})", {0, 0}), "'data_offsets' must be [begin, end]");
  expect_error(make_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                         R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                         {0, 0, 0}),
               "tensor 'b': data_offsets [1, 3] overlap the previous tensor (ends at 2)");
  expect_error(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", {0, 0}), "leave a gap");
  expect_error(make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", {0, 0}),
               "1 bytes after the last tensor");
  expect_error(make_file(R"({"__metadata__":{"k":1}})", {}), "__metadata__['k'] must be a string");
  expect_error(make_file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,1]}})",
                         {0}),
               "needs 18446744073709551615");
}

TEST(Safetensors, EveryHeaderByteFlippedAndEveryTruncation) {
  const auto original = make_file(kSampleHeader, sample_data());
  size_t errors = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0x22}, uint8_t{0xff}}) {
      auto b = original;
      b[i] ^= x;
      auto r = parse(b);
      if (!r.ok()) {
        ++errors;
        ASSERT_EQ(r.error().message.rfind("model.safetensors: ", 0), 0u);
      } else {
        for (const auto& t : r->tensors()) {
          ASSERT_LE(t.data.data() + t.n_bytes(), b.data() + b.size());
          if (t.dtype == SafetensorsDtype::kF32 || t.dtype == SafetensorsDtype::kF16 ||
              t.dtype == SafetensorsDtype::kBF16) {
            ASSERT_TRUE(safetensors_read_f32(t).ok());
          }
        }
      }
    }
  }
  EXPECT_GT(errors, original.size());
  for (size_t n = 0; n < original.size(); ++n) {
    std::vector<uint8_t> b(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n));
    ASSERT_FALSE(parse(b).ok()) << n;
  }
}

TEST(Safetensors, GoldenTinyModel) {
  auto r = SafetensorsFile::open(std::string(FABULA_TEST_DATA) + "/gemma4-tiny/model.safetensors");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tensors().size(), 132u);
  const auto* embed = r->find_tensor("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, SafetensorsDtype::kF32);
  EXPECT_EQ(embed->shape, (std::vector<uint64_t>{512, 64}));
  const auto* experts = r->find_tensor("model.layers.0.experts.gate_up_proj");
  ASSERT_NE(experts, nullptr);
  EXPECT_EQ(experts->shape, (std::vector<uint64_t>{8, 48, 64}));
  auto v = safetensors_read_f32(*embed);
  ASSERT_TRUE(v.ok());
  double sum_sq = 0;
  for (float x : *v) sum_sq += static_cast<double>(x) * x;
  EXPECT_GT(sum_sq, 0.0);  // random init, not zeros
  EXPECT_TRUE(std::isfinite(sum_sq));
  uint64_t total = 0;
  for (const auto& t : r->tensors()) total += t.n_bytes();
  EXPECT_EQ(r->data_offset() + total, r->bytes().size());
}

TEST(Safetensors, MissingFileIsNotFound) {
  auto r = SafetensorsFile::open(test::temp_path("does-not-exist.safetensors"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST(Safetensors, ShardsOfACheckpointDirectory) {
  namespace fs = std::filesystem;
  const fs::path dir = test::temp_path("shards");
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto none = safetensors_shards(dir.string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(write_file_atomic((dir / "model.safetensors").string(), std::string("x")).ok());
  auto single = safetensors_shards(dir.string());
  ASSERT_TRUE(single.ok()) << single.error().message;
  EXPECT_EQ(*single, std::vector<std::string>{"model.safetensors"});
  // The index wins; each shard once, in the order of the first tensor naming it (tensor names sort).
  const std::string index = (dir / "model.safetensors.index.json").string();
  ASSERT_TRUE(write_file_atomic(index, std::string(R"({"metadata": {}, "weight_map": {"a.weight": "m-2.safetensors",
      "b.weight": "m-1.safetensors", "c.weight": "m-2.safetensors"}})")).ok());
  auto sharded = safetensors_shards(dir.string());
  ASSERT_TRUE(sharded.ok()) << sharded.error().message;
  EXPECT_EQ(*sharded, (std::vector<std::string>{"m-2.safetensors", "m-1.safetensors"}));
  for (const char* bad : {R"({"weight_map": {"a": "../x.safetensors"}})", R"({"weight_map": {"a": ".."}})",
                          R"({"weight_map": {"a": 3}})", R"({"weight_map": []})", R"({"metadata": {}})", "[1"}) {
    ASSERT_TRUE(write_file_atomic(index, std::string(bad)).ok());
    auto r = safetensors_shards(dir.string());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("model.safetensors.index.json"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace fabula
