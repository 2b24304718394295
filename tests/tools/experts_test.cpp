// Un-fuse -> re-fuse round trips (safetensors file, sharded HF directory, GGUF) and the safetensors writer.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "tensor/quant.h"
#include "test_util.h"
#include "tools/experts.h"

namespace fabula {
namespace {

using testing_tools::fnv1a;
using testing_tools::read_bytes;
using testing_tools::ScratchDir;

const std::string kTiny = std::string(FABULA_TEST_DATA) + "/gemma4-tiny/model.safetensors";

TEST(SafetensorsWriter, RewritesTheTinyCheckpointByteForByte) {
  auto in = SafetensorsFile::open(kTiny);
  ASSERT_TRUE(in.ok()) << in.error().to_string();
  SafetensorsWriter w;
  w.set_metadata(safetensors_metadata_of(*in));
  for (const auto& t : in->tensors()) w.add_tensor(t.name, t.dtype, t.shape, t.data);
  ScratchDir dir("stw");
  ASSERT_TRUE(w.write(dir / "copy.safetensors").ok());
  EXPECT_EQ(fnv1a(read_bytes(dir / "copy.safetensors")), fnv1a(read_bytes(kTiny)));
  EXPECT_EQ(w.header().size() % 8, 0u);
}

TEST(SafetensorsWriter, PadsHeaderWithSpacesAndRoundTrips) {
  SafetensorsWriter w;
  const uint16_t v[3] = {0x3f80, 0x4000, 0xc040};
  w.add_tensor("a\"b", SafetensorsDtype::kBF16, {3},
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v), sizeof(v)));
  w.add_tensor("s", SafetensorsDtype::kF32, {}, [](std::span<uint8_t> out) -> Status {
    const float x = 2.5f;
    std::memcpy(out.data(), &x, 4);
    return ok_status();
  });
  const std::string h = w.header();
  EXPECT_EQ(h.size() % 8, 0u);
  EXPECT_EQ(h.substr(0, h.find_last_not_of(' ') + 1),
            R"({"a\"b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"s":{"dtype":"F32","shape":[],)"
            R"("data_offsets":[6,10]}})");
  ScratchDir dir("stw2");
  ASSERT_TRUE(w.write(dir / "x.safetensors").ok());
  auto back = SafetensorsFile::open(dir / "x.safetensors");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  ASSERT_EQ(back->tensors().size(), 2u);
  EXPECT_EQ(back->tensors()[0].name, "a\"b");
  float s = 0;
  std::memcpy(&s, back->tensors()[1].data.data(), 4);
  EXPECT_EQ(s, 2.5f);
}

TEST(Experts, NamingHelpers) {
  EXPECT_EQ(expert_unfused_name("model.layers.3.experts.gate_up_proj", 7),
            std::optional<std::string>("model.layers.3.experts.gate_up.7.weight"));
  EXPECT_EQ(expert_unfused_name("blk.2.ffn_down_exps.weight", 0), std::optional<std::string>("blk.2.ffn_down.0.weight"));
  EXPECT_FALSE(expert_unfused_name("blk.2.ffn_down.weight", 0).has_value());
  auto ref = expert_parse_unfused("blk.29.ffn_gate_up.127.weight");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->fused, "blk.29.ffn_gate_up_exps.weight");
  EXPECT_EQ(ref->expert, 127);
  EXPECT_FALSE(expert_parse_unfused("blk.2.ffn_down.weight").has_value());
  EXPECT_FALSE(expert_parse_unfused("blk.2.ffn_down_exps.scale").has_value());
  EXPECT_FALSE(expert_parse_unfused("model.layers.1.experts.down.01.weight").has_value());
}

TEST(Experts, UnfuseRefuseTinySafetensorsIsByteIdentical) {
  ScratchDir dir("exp");
  auto st = experts_convert(kTiny, dir / "unfused.safetensors", ExpertsOp::kUnfuse);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(st->fused_tensors, 12u);   // 6 layers x (gate_up, down)
  EXPECT_EQ(st->expert_tensors, 96u);  // x 8 experts

  auto orig = SafetensorsFile::open(kTiny);
  auto un = SafetensorsFile::open(dir / "unfused.safetensors");
  ASSERT_TRUE(orig.ok() && un.ok());
  EXPECT_EQ(un->tensors().size(), orig->tensors().size() - 12 + 96);
  EXPECT_EQ(un->find_tensor("model.layers.0.experts.gate_up_proj"), nullptr);
  // Expert 5 of layer 4's down_proj [8, 64, 24] is rows 5*64..6*64 of the fused tensor.
  const auto* fused = orig->find_tensor("model.layers.4.experts.down_proj");
  const auto* e5 = un->find_tensor("model.layers.4.experts.down.5.weight");
  ASSERT_TRUE(fused && e5);
  EXPECT_EQ(e5->shape, (std::vector<uint64_t>{64, 24}));
  ASSERT_EQ(e5->data.size(), 64u * 24 * 4);
  EXPECT_EQ(std::memcmp(e5->data.data(), fused->data.data() + 5 * 64 * 24 * 4, e5->data.size()), 0);

  auto back = experts_convert(dir / "unfused.safetensors", dir / "refused.safetensors", ExpertsOp::kRefuse);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->fused_tensors, 12u);
  auto re = SafetensorsFile::open(dir / "refused.safetensors");
  ASSERT_TRUE(re.ok());
  ASSERT_EQ(re->tensors().size(), orig->tensors().size());
  for (size_t i = 0; i < re->tensors().size(); ++i) {
    const auto& a = orig->tensors()[i];
    const auto& b = re->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(fnv1a(a.data.data(), a.data.size()), fnv1a(b.data.data(), b.data.size())) << a.name;
  }
  EXPECT_EQ(fnv1a(read_bytes(dir / "refused.safetensors")), fnv1a(read_bytes(kTiny)));
}

// Splits the tiny checkpoint into two shards + index (as save_pretrained does) and round-trips the directory.
TEST(Experts, ShardedDirectoryRoundTrip) {
  ScratchDir dir("shard");
  auto orig = SafetensorsFile::open(kTiny);
  ASSERT_TRUE(orig.ok());
  std::filesystem::create_directories(dir.path() / "base");
  nlohmann::json index;
  index["metadata"]["total_size"] = orig->bytes().size() - orig->data_offset();
  SafetensorsWriter shard[2];
  const char* names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  for (size_t i = 0; i < orig->tensors().size(); ++i) {
    const auto& t = orig->tensors()[i];
    const int s = i < orig->tensors().size() / 2 ? 0 : 1;
    shard[s].set_metadata({{"format", "pt"}});
    shard[s].add_tensor(t.name, t.dtype, t.shape, t.data);
    index["weight_map"][t.name] = names[s];
  }
  for (int s = 0; s < 2; ++s) ASSERT_TRUE(shard[s].write((dir.path() / "base" / names[s]).string()).ok());
  ASSERT_TRUE(write_file_atomic((dir.path() / "base/model.safetensors.index.json").string(), index.dump(2) + "\n").ok());
  ASSERT_TRUE(write_file_atomic((dir.path() / "base/config.json").string(), std::string("{\"x\": 1}\n")).ok());

  auto un = experts_convert(dir / "base", dir / "unfused", ExpertsOp::kUnfuse);
  ASSERT_TRUE(un.ok()) << un.error().to_string();
  EXPECT_EQ(un->files, 2u);
  EXPECT_EQ(un->expert_tensors, 96u);
  auto idx_text = read_file_text(dir / "unfused/model.safetensors.index.json");
  ASSERT_TRUE(idx_text.ok());
  auto idx = nlohmann::json::parse(*idx_text);
  EXPECT_EQ(idx["weight_map"]["model.layers.5.experts.gate_up.7.weight"], names[1]);
  EXPECT_FALSE(idx["weight_map"].contains("model.layers.5.experts.gate_up_proj"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "unfused/config.json"));

  auto re = experts_convert(dir / "unfused", dir / "refused", ExpertsOp::kRefuse);
  ASSERT_TRUE(re.ok()) << re.error().to_string();
  for (const char* f : {names[0], names[1], "model.safetensors.index.json", "config.json"}) {
    EXPECT_EQ(fnv1a(read_bytes((dir.path() / "base" / f).string())),
              fnv1a(read_bytes((dir.path() / "refused" / f).string())))
        << f;
  }
}

TEST(Experts, GgufRoundTripWithQuantizedExperts) {
  ScratchDir dir("gguf");
  const uint64_t H = 64, I = 32, E = 4;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> gate_up(H * 2 * I * E), down(I * H * E), norm(H);
  for (auto* v : {&gate_up, &down, &norm})
    for (float& x : *v) x = normal(rng);
  // ffn_gate_up_exps as q8_0 (rows of 64 = 2 blocks), ffn_down_exps as f32.
  std::vector<uint8_t> gu_q(2 * I * E * row_bytes(GgmlType::kQ8_0, H));
  for (uint64_t r = 0; r < 2 * I * E; ++r)
    quantize_row(GgmlType::kQ8_0, gate_up.data() + r * H, gu_q.data() + r * row_bytes(GgmlType::kQ8_0, H), H);
  auto bytes_of = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
  };
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma4"));
  w.set("gemma4.expert_count", GgufValue::u32(E));
  w.add_tensor("blk.0.attn_norm.weight", GgmlType::kF32, {H}, bytes_of(norm));
  w.add_tensor("blk.0.ffn_gate_up_exps.weight", GgmlType::kQ8_0, {H, 2 * I, E}, gu_q);
  w.add_tensor("blk.0.ffn_down_exps.weight", GgmlType::kF32, {I, H, E}, bytes_of(down));
  w.add_tensor("blk.0.ffn_down_exps.scale", GgmlType::kF32, {E}, bytes_of(norm).subspan(0, E * 4));
  ASSERT_TRUE(w.write(dir / "fused.gguf").ok());

  auto un = experts_convert(dir / "fused.gguf", dir / "unfused.gguf", ExpertsOp::kUnfuse);
  ASSERT_TRUE(un.ok()) << un.error().to_string();
  auto g = GgufFile::open(dir / "unfused.gguf");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->tensors().size(), 2u + 2 * E);
  const auto* e2 = g->find_tensor("blk.0.ffn_gate_up.2.weight");
  ASSERT_NE(e2, nullptr);
  EXPECT_EQ(e2->type, GgmlType::kQ8_0);
  EXPECT_EQ(e2->shape, (std::vector<uint64_t>{H, 2 * I}));
  std::vector<float> row(H);
  dequantize_row(GgmlType::kQ8_0, e2->data.data(), row.data(), H);  // expert 2, row 0 = fused row 2*2I
  EXPECT_NEAR(row[5], gate_up[(2 * 2 * I) * H + 5], 0.05f);
  const auto* d3 = g->find_tensor("blk.0.ffn_down.3.weight");
  ASSERT_NE(d3, nullptr);
  EXPECT_EQ(std::memcmp(d3->data.data(), down.data() + 3 * I * H, I * H * 4), 0);

  auto re = experts_convert(dir / "unfused.gguf", dir / "refused.gguf", ExpertsOp::kRefuse);
  ASSERT_TRUE(re.ok()) << re.error().to_string();
  EXPECT_EQ(fnv1a(read_bytes(dir / "refused.gguf")), fnv1a(read_bytes(dir / "fused.gguf")));
}

TEST(Experts, RefuseRejectsMissingExpert) {
  ScratchDir dir("miss");
  auto in = SafetensorsFile::open(kTiny);
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(experts_convert(kTiny, dir / "un.safetensors", ExpertsOp::kUnfuse).ok());
  auto un = SafetensorsFile::open(dir / "un.safetensors");
  ASSERT_TRUE(un.ok());
  SafetensorsWriter w;
  for (const auto& t : un->tensors())
    if (t.name != "model.layers.2.experts.down.7.weight") w.add_tensor(t.name, t.dtype, t.shape, t.data);
  ASSERT_TRUE(w.write(dir / "hole.safetensors").ok());
  auto re = experts_convert(dir / "hole.safetensors", dir / "re.safetensors", ExpertsOp::kRefuse);
  ASSERT_FALSE(re.ok());
  EXPECT_NE(re.error().message.find("model.layers.2.experts.down_proj"), std::string::npos) << re.error().message;
}

}  // namespace
}  // namespace fabula
