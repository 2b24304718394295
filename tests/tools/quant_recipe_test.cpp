// The gemma4 quantization recipe against llama.cpp's llama_tensor_get_type (types per tensor, fallbacks, sizes).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "model/gemma4/hparams.h"
#include "tools/quant_recipe.h"
#include "tools/quantize.h"

namespace fabula {
namespace {

QuantPlan plan_for(const std::string& shape_name, QuantFtype ftype) {
  auto shape = gemma4_preset(shape_name);
  EXPECT_TRUE(shape.ok());
  auto plan = plan_quantization(quant_inputs(*shape), ftype, quant_model_info(*shape));
  EXPECT_TRUE(plan.ok());
  return *plan;
}

std::map<std::string, QuantDecision> by_name(const QuantPlan& plan) {
  std::map<std::string, QuantDecision> m;
  for (const auto& t : plan.tensors) m[t.name] = t;
  return m;
}

std::string blk(int i, const char* s) { return "blk." + std::to_string(i) + "." + s; }

TEST(QuantRecipe, UseMoreBitsLayersFor30) {
  // llama.cpp's use_more_bits(i, n): i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2; for n = 30 the layers below.
  std::set<int> expected = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29};
  std::set<int> got;
  for (int i = 0; i < 30; ++i)
    if (quant_use_more_bits(i, 30)) got.insert(i);
  EXPECT_EQ(got, expected);
}

TEST(QuantRecipe, Gemma4_26bQ4KM) {
  QuantPlan plan = plan_for("gemma4-26b-a4b", QuantFtype::kQ4_K_M);
  ASSERT_EQ(plan.tensors.size(), 658u);
  EXPECT_EQ(plan.n_fallback, 60u);
  auto m = by_name(plan);
  EXPECT_EQ(m["token_embd.weight"].target, GgmlType::kQ6_K);  // tied embedding = output head
  EXPECT_FALSE(m["token_embd.weight"].fallback);
  const std::set<int> more = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29};
  // attn_v exists on the 25 sliding layers; use_more_bits runs over its own counter (n = 25).
  const std::set<int> v_q6 = {0, 1, 2, 6, 9, 13, 16, 20, 24, 25, 26, 27, 28};
  for (int i = 0; i < 30; ++i) {
    const bool full = (i + 1) % 6 == 0;
    for (const char* down : {"ffn_down_exps.weight", "ffn_down.weight"}) {
      const auto& d = m[blk(i, down)];
      EXPECT_TRUE(d.fallback) << d.name;
      EXPECT_EQ(d.wanted, more.count(i) ? GgmlType::kQ6_K : GgmlType::kQ4_K) << d.name;
      EXPECT_EQ(d.target, more.count(i) ? GgmlType::kQ8_0 : GgmlType::kQ5_0) << d.name;
    }
    EXPECT_EQ(m[blk(i, "ffn_gate_up_exps.weight")].target, GgmlType::kQ4_K);
    EXPECT_EQ(m[blk(i, "ffn_gate.weight")].target, GgmlType::kQ4_K);
    EXPECT_EQ(m[blk(i, "attn_q.weight")].target, GgmlType::kQ4_K);
    EXPECT_EQ(m[blk(i, "attn_k.weight")].target, GgmlType::kQ4_K);
    EXPECT_EQ(m[blk(i, "attn_output.weight")].target, GgmlType::kQ4_K);
    EXPECT_EQ(m[blk(i, "ffn_gate_inp.weight")].target, GgmlType::kF32);
    EXPECT_FALSE(m[blk(i, "ffn_gate_inp.weight")].quantize);
    EXPECT_EQ(m[blk(i, "ffn_down_exps.scale")].target, GgmlType::kF32);
    EXPECT_EQ(m[blk(i, "layer_output_scale.weight")].target, GgmlType::kF32);
    EXPECT_EQ(m.count(blk(i, "attn_v.weight")), full ? 0u : 1u);
    if (!full) {
      EXPECT_EQ(m[blk(i, "attn_v.weight")].target, v_q6.count(i) ? GgmlType::kQ6_K : GgmlType::kQ4_K) << i;
    }
  }
  // Bytes, recomputed from the block geometry (src/tensor/types.h) rather than row_bytes.
  auto blocks = [](uint64_t n, uint64_t qk, uint64_t b) { return n / qk * b; };
  EXPECT_EQ(m["token_embd.weight"].bytes, blocks(2816ull * 262144, 256, 210));
  EXPECT_EQ(m["blk.3.ffn_down_exps.weight"].bytes, blocks(704ull * 2816 * 128, 32, 22));
  EXPECT_EQ(m["blk.2.ffn_down_exps.weight"].bytes, blocks(704ull * 2816 * 128, 32, 34));
  EXPECT_EQ(m["blk.0.ffn_gate_up_exps.weight"].bytes, blocks(2816ull * 1408 * 128, 256, 144));
  // The card's "Q4_K_M ≈ 16.8 GB" (decimal GB); tensor data alone must be within 1%.
  const double gb = static_cast<double>(plan.data_bytes()) / 1e9;
  EXPECT_NEAR(gb, 16.8, 0.168);
}

TEST(QuantRecipe, Gemma4_26bQ8_0IsUniform) {
  QuantPlan plan = plan_for("gemma4-26b-a4b", QuantFtype::kQ8_0);
  EXPECT_EQ(plan.n_fallback, 0u);
  uint64_t expect = 0;
  for (const auto& t : plan.tensors) {
    const bool vector = t.shape.size() == 1 || t.name.find("ffn_gate_inp.weight") != std::string::npos;
    EXPECT_EQ(t.target, vector ? GgmlType::kF32 : GgmlType::kQ8_0) << t.name;
    expect += vector ? t.n_elements() * 4 : t.n_elements() / 32 * 34;
  }
  uint64_t unpadded = 0;
  for (const auto& t : plan.tensors) unpadded += t.bytes;
  EXPECT_EQ(unpadded, expect);
  EXPECT_NEAR(static_cast<double>(plan.data_bytes()) / 1e9, 26.9, 0.269);
}

TEST(QuantRecipe, OtherFileTypes) {
  {
    QuantPlan plan = plan_for("gemma4-26b-a4b", QuantFtype::kQ6_K);
    EXPECT_EQ(plan.n_fallback, 60u);
    for (const auto& t : plan.tensors) {
      if (t.fallback) {
        EXPECT_EQ(t.target, GgmlType::kQ8_0) << t.name;
      }
    }
  }
  {
    QuantPlan plan = plan_for("gemma4-26b-a4b", QuantFtype::kQ5_K_M);
    EXPECT_EQ(plan.n_fallback, 60u);
    auto m = by_name(plan);
    EXPECT_EQ(m["blk.3.ffn_down.weight"].target, GgmlType::kQ5_1);
    EXPECT_EQ(m["blk.2.ffn_down.weight"].target, GgmlType::kQ8_0);
    EXPECT_EQ(m["blk.3.attn_q.weight"].target, GgmlType::kQ5_K);
  }
  {
    QuantPlan plan = plan_for("gemma4-26b-a4b", QuantFtype::kQ4_0);
    EXPECT_EQ(plan.n_fallback, 0u);
    auto m = by_name(plan);
    EXPECT_EQ(m["token_embd.weight"].target, GgmlType::kQ6_K);
    EXPECT_EQ(m["blk.2.ffn_down_exps.weight"].target, GgmlType::kQ4_0);
  }
}

TEST(QuantRecipe, TinyShapesFallBackToF16AndEightExpertRules) {
  QuantPlan plan = plan_for("gemma4-tiny-moe", QuantFtype::kQ4_K_M);
  auto m = by_name(plan);
  // ne0 = 64 < 256: the head goes straight to q8_0 (no fallback counted, as in llama.cpp).
  EXPECT_EQ(m["token_embd.weight"].target, GgmlType::kQ8_0);
  EXPECT_FALSE(m["token_embd.weight"].fallback);
  // ffn_down_exps rows have 24 elements: not even a block of 32 -> F16.
  EXPECT_EQ(m["blk.3.ffn_down_exps.weight"].target, GgmlType::kF16);
  EXPECT_TRUE(m["blk.3.ffn_down_exps.weight"].fallback);
  // 8 experts: llama.cpp's Mixtral rules (attn_v, attn_k -> q8_0; attn_output -> q5_K, then its fallback q5_1).
  EXPECT_EQ(m["blk.0.attn_v.weight"].target, GgmlType::kQ8_0);
  EXPECT_EQ(m["blk.0.attn_k.weight"].target, GgmlType::kQ8_0);
  EXPECT_EQ(m["blk.0.attn_output.weight"].wanted, GgmlType::kQ5_K);
  EXPECT_EQ(m["blk.0.attn_output.weight"].target, GgmlType::kQ5_1);
  const std::string line = quant_fallback_line(m["blk.3.ffn_down_exps.weight"]);
  EXPECT_NE(line.find("ncols     24 not divisible by 256"), std::string::npos) << line;
  EXPECT_NE(line.find("must use F16"), std::string::npos) << line;
}

TEST(QuantRecipe, FtypeNames) {
  EXPECT_EQ(static_cast<uint32_t>(*quant_ftype_from_name("q4_k_m")), 15u);
  EXPECT_EQ(static_cast<uint32_t>(*quant_ftype_from_name("Q8_0")), 7u);
  EXPECT_FALSE(quant_ftype_from_name("Q3_K_S").ok());
}

}  // namespace
}  // namespace fabula
