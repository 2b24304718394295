// LoRA merge checked bit-exactly against an independently computed W + s·B·A, and the 26B module plan.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "tensor/fp16.h"
#include "test_util.h"
#include "tools/experts.h"
#include "tools/lora.h"

namespace fabula {
namespace {

using testing_tools::fnv1a;
using testing_tools::read_bytes;
using testing_tools::ScratchDir;

const std::string kTinyDir = std::string(FABULA_TEST_DATA) + "/gemma4-tiny";

// The tiny checkpoint converted to bf16 (the dtype real checkpoints ship in), plus config and a stand-in tokenizer.
void write_bf16_base(const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto in = SafetensorsFile::open(kTinyDir + "/model.safetensors");
  ASSERT_TRUE(in.ok());
  SafetensorsWriter w;
  w.set_metadata({{"format", "pt"}});
  for (const auto& t : in->tensors()) {
    w.add_tensor(t.name, SafetensorsDtype::kBF16, t.shape, [&t](std::span<uint8_t> out) -> Status {
      auto f = safetensors_read_f32(t);
      if (!f.ok()) return f.take_error();
      for (size_t i = 0; i < f->size(); ++i) {
        const uint16_t h = fp32_to_bf16((*f)[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      return ok_status();
    });
  }
  ASSERT_TRUE(w.write(dir + "/model.safetensors").ok());
  std::filesystem::copy_file(kTinyDir + "/config.json", dir + "/config.json");
  ASSERT_TRUE(write_file_atomic(dir + "/tokenizer.json", std::string("{\"model\": {}}\n")).ok());
}

struct FakeModule {
  std::string name;
  uint64_t in, out;
  uint32_t r;
  std::vector<float> a, b;  // [r, in], [out, r]
};

// Writes adapter_config.json + adapter_model.safetensors (A as F32, B as BF16-representable F32 values).
void write_adapter(const std::string& dir, std::vector<FakeModule>& modules, uint32_t r, double alpha,
                   const nlohmann::json& extra_config) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  SafetensorsWriter w;
  w.set_metadata({{"format", "pt"}});
  for (auto& m : modules) {
    m.a.resize(m.r * m.in);
    m.b.resize(m.out * m.r);
    for (float& x : m.a) x = normal(rng);
    for (float& x : m.b) x = bf16_to_fp32(fp32_to_bf16(normal(rng)));
    auto bytes = [](const std::vector<float>& v) {
      return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
    };
    w.add_tensor("base_model.model." + m.name + ".lora_A.weight", SafetensorsDtype::kF32, {m.r, m.in}, bytes(m.a));
    w.add_tensor("base_model.model." + m.name + ".lora_B.weight", SafetensorsDtype::kF32, {m.out, m.r}, bytes(m.b));
  }
  ASSERT_TRUE(w.write(dir + "/adapter_model.safetensors").ok());
  nlohmann::json config = {{"peft_type", "LORA"}, {"r", r}, {"lora_alpha", alpha}, {"use_rslora", false}};
  std::vector<std::string> targets;
  for (const auto& m : modules) targets.push_back(m.name.substr(m.name.rfind("layers.")));
  config["target_modules"] = targets;
  config.update(extra_config);
  ASSERT_TRUE(write_file_atomic(dir + "/adapter_config.json", config.dump(2)).ok());
}

// Independent reference: every element, plain loops, f32 accumulation over k in order, one bf16 rounding.
std::vector<uint16_t> reference_merge(const std::vector<uint16_t>& w, const FakeModule& m, float scale) {
  std::vector<uint16_t> out(w.size());
  for (uint64_t o = 0; o < m.out; ++o) {
    for (uint64_t i = 0; i < m.in; ++i) {
      float acc = 0.0f;
      for (uint32_t k = 0; k < m.r; ++k) acc += m.b[o * m.r + k] * m.a[k * m.in + i];
      const float scaled = scale * acc;
      out[o * m.in + i] = fp32_to_bf16(bf16_to_fp32(w[o * m.in + i]) + scaled);
    }
  }
  return out;
}

std::vector<uint16_t> slice_u16(const SafetensorsTensor& t, size_t begin, size_t count) {
  std::vector<uint16_t> v(count);
  std::memcpy(v.data(), t.data.data() + begin * 2, count * 2);
  return v;
}

TEST(Lora, MergeMatchesIndependentProductBitExactly) {
  ScratchDir dir("lora");
  write_bf16_base(dir / "base");
  // Tiny: H=64, q=64 (sliding), F=96, I=24, E=8. Only some experts of layers 1 and 5 are targeted.
  std::vector<FakeModule> modules = {
      {"model.layers.0.self_attn.q_proj", 64, 64, 4, {}, {}},
      {"model.layers.2.mlp.down_proj", 96, 64, 4, {}, {}},
      {"model.layers.1.experts.gate_up.3", 64, 48, 4, {}, {}},
      {"model.layers.5.experts.down.0", 24, 64, 2, {}, {}},  // rank_pattern: r = 2, alpha_pattern: 3
      {"model.layers.5.experts.down.7", 24, 64, 4, {}, {}},
  };
  write_adapter(dir / "adapter", modules, 4, 8.0,
                {{"rank_pattern", {{"layers.5.experts.down.0", 2}}}, {"alpha_pattern", {{"layers.5.experts.down.0", 3}}}});
  auto stats = lora_merge(dir / "base", dir / "adapter", dir / "out");
  ASSERT_TRUE(stats.ok()) << stats.error().to_string();
  EXPECT_EQ(stats->modules, 5u);
  EXPECT_EQ(stats->tensors, 4u);  // layer 5's down_proj holds two of the merges
  EXPECT_EQ(stats->files_copied, 2u);
  EXPECT_EQ(fnv1a(read_bytes(dir / "out/tokenizer.json")), fnv1a(read_bytes(dir / "base/tokenizer.json")));

  auto base = SafetensorsFile::open(dir / "base/model.safetensors");
  auto out = SafetensorsFile::open(dir / "out/model.safetensors");
  ASSERT_TRUE(base.ok() && out.ok());
  ASSERT_EQ(base->tensors().size(), out->tensors().size());
  struct Where {
    std::string tensor;
    size_t offset;  // elements
    const FakeModule* m;
    float scale;
  };
  std::vector<Where> merged = {
      {"model.layers.0.self_attn.q_proj.weight", 0, &modules[0], 2.0f},
      {"model.layers.2.mlp.down_proj.weight", 0, &modules[1], 2.0f},
      {"model.layers.1.experts.gate_up_proj", 3 * 48 * 64, &modules[2], 2.0f},
      {"model.layers.5.experts.down_proj", 0, &modules[3], 1.5f},
      {"model.layers.5.experts.down_proj", 7 * 64 * 24, &modules[4], 2.0f},
  };
  std::map<std::string, std::vector<uint16_t>> expected;  // whole tensors, base with merged slices replaced
  for (const auto& w : merged) {
    const auto* bt = base->find_tensor(w.tensor);
    ASSERT_NE(bt, nullptr);
    auto& e = expected[w.tensor];
    if (e.empty()) e = slice_u16(*bt, 0, bt->n_elements());
    const size_t n = w.m->in * w.m->out;
    auto ref = reference_merge(slice_u16(*bt, w.offset, n), *w.m, w.scale);
    std::copy(ref.begin(), ref.end(), e.begin() + w.offset);
  }
  for (size_t i = 0; i < base->tensors().size(); ++i) {
    const auto& b = base->tensors()[i];
    const auto& o = out->tensors()[i];
    ASSERT_EQ(b.name, o.name);
    ASSERT_EQ(b.shape, o.shape);
    auto it = expected.find(b.name);
    if (it == expected.end()) {
      EXPECT_EQ(std::memcmp(b.data.data(), o.data.data(), b.data.size()), 0) << b.name << " changed";
      continue;
    }
    auto got = slice_u16(o, 0, o.n_elements());
    size_t mismatches = 0, changed = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      mismatches += got[k] != it->second[k];
      changed += got[k] != slice_u16(b, k, 1)[0];
    }
    EXPECT_EQ(mismatches, 0u) << b.name;
    EXPECT_GT(changed, got.size() / 20) << b.name << ": the merge should move many weights";
  }
}

TEST(Lora, UnfusedBaseGivesTheSameFusedResult) {
  ScratchDir dir("lora2");
  write_bf16_base(dir / "base");
  std::vector<FakeModule> modules = {{"model.layers.4.experts.gate_up.6", 64, 48, 8, {}, {}}};
  write_adapter(dir / "adapter", modules, 8, 16.0, nlohmann::json::object());
  ASSERT_TRUE(lora_merge(dir / "base", dir / "adapter", dir / "out").ok());
  ASSERT_TRUE(experts_convert(dir / "base", dir / "base_unfused", ExpertsOp::kUnfuse).ok());
  auto st = lora_merge(dir / "base_unfused", dir / "adapter", dir / "out2");
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(fnv1a(read_bytes(dir / "out2/model.safetensors")), fnv1a(read_bytes(dir / "out/model.safetensors")));
}

TEST(Lora, RejectsModulesThatMatchNothing) {
  ScratchDir dir("lora3");
  write_bf16_base(dir / "base");
  std::vector<FakeModule> modules = {{"model.layers.2.self_attn.v_proj", 64, 32, 4, {}, {}}};  // layer 2 is full: K=V
  write_adapter(dir / "adapter", modules, 4, 4.0, nlohmann::json::object());
  auto st = lora_merge(dir / "base", dir / "adapter", dir / "out");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("model.layers.2.self_attn.v_proj"), std::string::npos) << st.error().message;
}

// A bad adapter_config.json is an error naming the file and the field, never a crash (an exception).
TEST(Lora, RejectsABadAdapterConfig) {
  ScratchDir dir("lora4");
  write_bf16_base(dir / "base");
  std::vector<FakeModule> modules = {{"model.layers.4.experts.gate_up.6", 64, 48, 8, {}, {}}};
  const nlohmann::json bad[] = {{{"use_dora", "yes"}}, {{"use_dora", true}}, {{"r", 0}}, {{"r", "8"}},
                                {{"lora_alpha", nullptr}}, {{"rank_pattern", {{"q_proj", "high"}}}},
                                {{"alpha_pattern", {{".*proj", 8}}}}};
  for (const auto& extra : bad) {
    write_adapter(dir / "adapter", modules, 8, 16.0, extra);
    auto st = lora_merge(dir / "base", dir / "adapter", dir / "out");
    ASSERT_FALSE(st.ok()) << extra.dump();
    EXPECT_NE(st.error().message.find("adapter_config.json"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find(extra.begin().key()), std::string::npos) << st.error().message;
  }
}

// `fabula lora plan --list`: the module names an adapter's target_modules use, with in/out features, one a line.
TEST(Lora, PlanListsTheTargetModulesOfAConfig) {
  const char* env = std::getenv("FABULA_BINARY");
  const std::string cmd = std::string("'") + (env ? env : FABULA_BINARY) + "' lora plan --config '" +
                          FABULA_TEST_DATA + "/demo/config.json' --targets experts --list 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0) << out;
  std::vector<std::string> lines;
  for (size_t pos = 0, end; pos < out.size(); pos = end + 1) {
    end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    lines.push_back(out.substr(pos, end - pos));
  }
  // The demo narrator: 6 layers x 8 experts x (gate_up 256 -> 2 x 128, down 128 -> 256).
  ASSERT_EQ(lines.size(), 6u * 8 * 2);
  EXPECT_EQ(lines[0], "model.layers.0.experts.gate_up.0\t256\t256");
  EXPECT_EQ(lines[8], "model.layers.0.experts.down.0\t128\t256");
  EXPECT_EQ(lines.back(), "model.layers.5.experts.down.7\t128\t256");
}

TEST(Lora, Plan26bCountsModules) {
  auto shape = gemma4_preset("gemma4-26b-a4b");
  ASSERT_TRUE(shape.ok());
  auto modules = lora_modules(*shape, {"experts", "attention", "mlp"});
  ASSERT_TRUE(modules.ok());
  // 30 x 128 x 2 expert modules + 25 sliding x 7 + 5 full x 6 (no v_proj).
  EXPECT_EQ(modules->size(), 30u * 128 * 2 + 25 * 7 + 5 * 6);
  EXPECT_EQ(modules->size(), 7885u);
  const LoraPlan plan = lora_plan(*modules, 16);
  // Parameters recomputed from the 26B-A4B shapes: r * (in + out) per module.
  const uint64_t r = 16;
  const uint64_t experts = 30 * 128 * r * ((2816 + 1408) + (704 + 2816));
  const uint64_t sliding = 25 * r * ((2816 + 4096) + 2 * (2816 + 2048) + (4096 + 2816));
  const uint64_t full = 5 * r * ((2816 + 8192) + (2816 + 1024) + (8192 + 2816));
  const uint64_t mlp = 30 * r * (3 * (2816 + 2112));
  EXPECT_EQ(plan.params, experts + sliding + full + mlp);
  EXPECT_FALSE(lora_modules(*shape, {"embeddings"}).ok());
}

}  // namespace
}  // namespace fabula
