// fabula quantize end to end on a small gemma4-shaped GGUF, and quantize -> dequantize error per type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "format/gguf.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"
#include "test_util.h"
#include "tools/quantize.h"

namespace fabula {
namespace {

using testing_tools::ScratchDir;

// llama.cpp tests/test-quantize-fns.cpp: data 0.1 + 2 cos(i + offset), error = sqrt(sum diff^2) / n, and the limits
// MAX_QUANTIZATION_TOTAL_ERROR = 0.002 (3-bit 0.004, 2-bit 0.0075; all our types are 4 bits or more).
float llama_total_error(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(type, x.size()));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(type, q.data(), y.data(), static_cast<int64_t>(x.size()));
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return static_cast<float>(std::sqrt(sum) / x.size());
}

TEST(Quantize, RoundTripErrorWithinLlamaCppLimits) {
  std::vector<float> x(32 * 128);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f + 2 * std::cos(static_cast<float>(i) + 0.0f);
  for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ4_K,
                     GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kF16, GgmlType::kBF16}) {
    const float err = llama_total_error(t, x);
    EXPECT_LT(err, 0.002f) << type_name(t);
    EXPECT_GT(err, 0.0f) << type_name(t);  // a lossy type that came back exact would mean the test is broken
  }
  // More bits, less error: the order llama.cpp's figures imply.
  EXPECT_LT(llama_total_error(GgmlType::kQ8_0, x), llama_total_error(GgmlType::kQ5_0, x));
  EXPECT_LT(llama_total_error(GgmlType::kQ6_K, x), llama_total_error(GgmlType::kQ4_K, x));
}

// A 2-layer gemma4 with 256-wide rows (k-quants fit) but a dense FFN of 320 and experts of 64 (they don't).
Gemma4HParams small_shape() {
  Gemma4HParams s = *gemma4_preset("gemma4-tiny-moe");
  s.n_layer = 2; s.n_embd = 256; s.n_vocab = 300; s.n_head = 2;
  s.n_head_kv = {1, 1}; s.head_dim_swa = s.head_dim_full = s.n_rot_swa = s.n_rot_full = 128;
  s.n_ff = {320, 320}; s.n_expert = 4; s.n_expert_used = 2; s.n_ff_exp = 64;
  s.sliding = {true, false};
  return s;
}

struct SourceModel {
  std::vector<std::vector<uint8_t>> data;  // kept alive until the writer has written
};

std::string write_source(const std::string& path, SourceModel& src) {
  const Gemma4HParams s = small_shape();
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma4"));
  w.set("gemma4.block_count", GgufValue::u32(static_cast<uint32_t>(s.n_layer)));
  w.set("gemma4.expert_count", GgufValue::u32(static_cast<uint32_t>(s.n_expert)));
  w.set("general.file_type", GgufValue::u32(32));
  uint32_t seed = 1;
  for (const auto& in : quant_inputs(s)) {
    uint64_t n = 1;
    for (uint64_t d : in.shape) n *= d;
    std::vector<uint8_t> bytes(n * (in.type == GgmlType::kF32 ? 4 : 2));
    for (uint64_t i = 0; i < n; ++i) {
      const float v = 0.1f + 2 * std::cos(static_cast<float>(i) * 0.37f + static_cast<float>(seed));
      if (in.type == GgmlType::kF32) {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = fp32_to_bf16(v * 0.05f);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    }
    ++seed;
    src.data.push_back(std::move(bytes));
    w.add_tensor(in.name, in.type, in.shape, std::span<const uint8_t>(src.data.back()));
  }
  Status st = w.write(path);
  return st.ok() ? "" : st.error().to_string();
}

TEST(Quantize, Q4KMFileMatchesPlanAndRowQuantizer) {
  ScratchDir dir("quant");
  SourceModel src;
  ASSERT_EQ(write_source(dir / "in.gguf", src), "");
  auto in = GgufFile::open(dir / "in.gguf");
  ASSERT_TRUE(in.ok()) << in.error().to_string();
  auto plan = plan_quantization(quant_inputs(*in), QuantFtype::kQ4_K_M, quant_model_info(*in));
  ASSERT_TRUE(plan.ok());
  // ffn_down (ne0 320) and ffn_down_exps (ne0 64) of both layers cannot hold 256-blocks.
  EXPECT_EQ(plan->n_fallback, 4u);
  std::vector<std::string> lines;
  QuantizeOptions options;
  options.n_threads = 2;
  options.progress = false;
  options.log = [&](const std::string& l) { lines.push_back(l); };
  Status st = quantize_gguf(*in, *plan, dir / "out.gguf", options);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines.back(), "4/" + std::to_string(in->tensors().size()) + " tensors required fallback quantization");
  EXPECT_NE(lines[0].find("blk.0.ffn_down.weight"), std::string::npos) << lines[0];

  EXPECT_EQ(std::filesystem::file_size(dir / "out.gguf"),
            gguf_file_size(quantized_metadata(*in, QuantFtype::kQ4_K_M), *plan, in->alignment()));
  auto out = GgufFile::open(dir / "out.gguf");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out->get_u64("general.file_type"), 15u);
  EXPECT_EQ(*out->get_u64("general.quantization_version"), 2u);
  ASSERT_EQ(out->tensors().size(), in->tensors().size());
  std::map<GgmlType, int> seen;
  for (size_t i = 0; i < out->tensors().size(); ++i) {
    const auto& a = in->tensors()[i];
    const auto& b = out->tensors()[i];
    ASSERT_EQ(a.name, b.name);
    EXPECT_EQ(b.type, plan->tensors[i].target) << b.name;
    ++seen[b.type];
    if (a.type == b.type) {
      EXPECT_EQ(std::memcmp(a.data.data(), b.data.data(), a.data.size()), 0) << b.name;
      continue;
    }
    // Every row equals the tensor library's quantizer applied to the bf16 row.
    const uint64_t ne0 = a.shape[0], rows = a.n_elements() / ne0;
    std::vector<float> row(ne0);
    std::vector<uint8_t> q(row_bytes(b.type, ne0));
    for (uint64_t r = 0; r < rows; ++r) {
      dequantize_row(a.type, a.data.data() + r * row_bytes(a.type, ne0), row.data(), ne0);
      quantize_row(b.type, row.data(), q.data(), ne0);
      ASSERT_EQ(std::memcmp(q.data(), b.data.data() + r * q.size(), q.size()), 0) << b.name << " row " << r;
    }
  }
  EXPECT_GT(seen[GgmlType::kQ4_K], 0);
  EXPECT_GT(seen[GgmlType::kQ6_K], 0);  // token_embd (tied) and use_more_bits tensors
  EXPECT_GT(seen[GgmlType::kQ8_0], 0);  // ffn_down* of use_more_bits layers, fallen back from q6_K
  EXPECT_EQ(out->find_tensor("token_embd.weight")->type, GgmlType::kQ6_K);
  EXPECT_EQ(out->find_tensor("blk.0.ffn_gate_inp.weight")->type, GgmlType::kF32);
}

TEST(Quantize, EveryFileTypeWritesAValidFile) {
  ScratchDir dir("quant_all");
  SourceModel src;
  ASSERT_EQ(write_source(dir / "in.gguf", src), "");
  auto in = GgufFile::open(dir / "in.gguf");
  ASSERT_TRUE(in.ok());
  for (QuantFtype f : {QuantFtype::kQ8_0, QuantFtype::kQ4_0, QuantFtype::kQ5_K_M, QuantFtype::kQ6_K, QuantFtype::kF16}) {
    auto plan = plan_quantization(quant_inputs(*in), f, quant_model_info(*in));
    ASSERT_TRUE(plan.ok());
    QuantizeOptions options;
    options.progress = false;
    const std::string path = dir / (std::string(quant_ftype_name(f)) + ".gguf");
    ASSERT_TRUE(quantize_gguf(*in, *plan, path, options).ok()) << quant_ftype_name(f);
    auto out = GgufFile::open(path);
    ASSERT_TRUE(out.ok()) << quant_ftype_name(f) << ": " << out.error().to_string();
    EXPECT_EQ(*out->get_u64("general.file_type"), static_cast<uint32_t>(f));
    // Dequantized weights stay close to the source (bf16 values of magnitude <= 0.105).
    const auto* t = out->find_tensor("blk.1.attn_q.weight");
    const auto* s = in->find_tensor("blk.1.attn_q.weight");
    std::vector<float> a(t->shape[0]), b(t->shape[0]);
    dequantize_row(t->type, t->data.data(), a.data(), t->shape[0]);
    dequantize_row(s->type, s->data.data(), b.data(), s->shape[0]);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 0.01f) << quant_ftype_name(f) << " " << i;
  }
}

}  // namespace
}  // namespace fabula
