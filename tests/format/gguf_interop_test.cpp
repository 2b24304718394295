// Interop: a GGUF written by GgufWriter is read by node-llama-cpp's independent reader (tests/format/gguf_interop.mjs)
// and must show the same metadata values, tensor names, shapes, types and file offsets.
#include <cstdio>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format_test_util.h"

namespace fabula {
namespace {

using Json = nlohmann::json;

// Our value as node-llama-cpp prints it: 64-bit integers as decimal strings, everything else as JSON.
Json expected_json(const GgufValue& v) {
  const bool wide = v.type == GgufValueType::kU64 || v.type == GgufValueType::kI64 ||
                    (v.type == GgufValueType::kArray &&
                     (v.array_type == GgufValueType::kU64 || v.array_type == GgufValueType::kI64));
  return std::visit(
      [&](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
          return wide ? Json(fmt::format("{}", x)) : Json(x);
        } else if constexpr (std::is_same_v<T, std::vector<uint64_t>> || std::is_same_v<T, std::vector<int64_t>>) {
          Json a = Json::array();
          for (auto e : x) a.push_back(wide ? Json(fmt::format("{}", e)) : Json(e));
          return a;
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          Json a = Json::array();
          for (bool e : x) a.push_back(e);
          return a;
        } else {
          return Json(x);
        }
      },
      v.data);
}

TEST(GgufInterop, NodeLlamaCppReadsOurFile) {
  const std::string root = FABULA_SOURCE_DIR;
  if (!std::filesystem::exists(root + "/node_modules/node-llama-cpp/package.json") || std::system("node --version >/dev/null 2>&1") != 0) {
    FAIL() << "node or node_modules/node-llama-cpp missing (scripts/setup installs them)";
  }
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma4"));
  w.set("t.u8", GgufValue::u8(250));
  w.set("t.i8", GgufValue::i8(-100));
  w.set("t.u16", GgufValue::u16(65000));
  w.set("t.i16", GgufValue::i16(-20000));
  w.set("t.u32", GgufValue::u32(4000000000u));
  w.set("t.i32", GgufValue::i32(-2000000000));
  w.set("t.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
  w.set("t.i64", GgufValue::i64(std::numeric_limits<int64_t>::min()));
  w.set("t.f32", GgufValue::f32(0.1f));
  w.set("t.f64", GgufValue::f64(0.1));
  w.set("t.flag", GgufValue::boolean(true));
  w.set("t.text", GgufValue::string("\xe2\x96\x81hello"));
  w.set("t.tokens", GgufValue::array(std::vector<std::string>{"<pad>", "<eos>", "x"}));
  w.set("t.scores", GgufValue::array(GgufValueType::kF32, std::vector<double>{0.5, -1.25}));
  w.set("t.types", GgufValue::array(GgufValueType::kI32, std::vector<int64_t>{1, -3}));
  w.set("t.u16s", GgufValue::array(GgufValueType::kU16, std::vector<uint64_t>{1, 65535}));
  w.set("t.i64s", GgufValue::array(GgufValueType::kI64, std::vector<int64_t>{-5, 1ll << 60}));
  w.set("t.bools", GgufValue::array(std::vector<bool>{false, true}));
  std::vector<std::vector<uint8_t>> blobs;
  for (uint32_t id = 0; id < 64; ++id) {
    auto traits = type_traits(id);
    if (!traits) continue;
    std::vector<uint64_t> shape = {traits->block_size * 2ull, 3};
    blobs.push_back(test::pattern(row_bytes(traits->type, shape[0]) * 3, id));
    w.add_tensor(fmt::format("t.{}", traits->name), traits->type, shape, blobs.back());
  }
  std::string path = test::temp_path("interop.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto ours = GgufFile::open(path);
  ASSERT_TRUE(ours.ok());

  std::string cmd = "cd '" + root + "' && node tests/format/gguf_interop.mjs '" + path + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0) << out;
  Json theirs = Json::parse(out, nullptr, false);
  ASSERT_FALSE(theirs.is_discarded()) << out;

  EXPECT_EQ(theirs["version"], 3);
  for (const auto& [key, value] : ours->metadata()) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(theirs["metadata"].contains(key));
    EXPECT_EQ(theirs["metadata"][key], expected_json(value)) << theirs["metadata"][key].dump();
  }
  ASSERT_EQ(theirs["tensors"].size(), ours->tensors().size());
  for (size_t i = 0; i < ours->tensors().size(); ++i) {
    const auto& t = ours->tensors()[i];
    const auto& j = theirs["tensors"][i];
    EXPECT_EQ(j["name"], t.name);
    EXPECT_EQ(j["dims"], Json(t.shape));
    EXPECT_EQ(j["type"], static_cast<uint32_t>(t.type));
    EXPECT_EQ(j["fileOffset"], ours->data_offset() + t.offset);
  }
}

}  // namespace
}  // namespace fabula
