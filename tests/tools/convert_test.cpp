// fabula convert: Hugging Face config forms (per_layer_config, global_head_dim, 26B), architectures, prefixes,
// outtypes and the GGUF keys llama.cpp reads.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "format/gguf.h"
#include "format/hf_config.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/gemma4/hparams.h"
#include "model/model.h"
#include "test_util.h"
#include "tools/convert.h"

namespace fabula {
namespace {

using testing_tools::ScratchDir;
const std::string kData = FABULA_TEST_DATA;

Gemma4HParams hparams_of(const std::string& json_text) {
  auto c = HfConfig::parse(json_text);
  EXPECT_TRUE(c.ok());
  auto hp = gemma4_hparams_from_hf(*c);
  EXPECT_TRUE(hp.ok()) << hp.error().to_string();
  return hp.ok() ? *hp : Gemma4HParams{};
}

TEST(ConvertConfig, TinyPerLayerConfig) {
  auto text = read_file_text(kData + "/gemma4-tiny/config.json");
  ASSERT_TRUE(text.ok());
  const Gemma4HParams hp = hparams_of(*text);
  EXPECT_EQ(hp.sliding, (std::vector<bool>{true, true, false, true, true, false}));
  EXPECT_EQ(hp.n_head_kv, (std::vector<int64_t>{2, 2, 1, 2, 2, 1}));
  EXPECT_EQ(hp.head_dim_swa, 16);
  EXPECT_EQ(hp.head_dim_full, 32);
  EXPECT_EQ(hp.n_rot_full, 32);
  EXPECT_TRUE(hp.proportional_rope_full);
  EXPECT_EQ(gemma4_rope_freqs(hp), (std::vector<float>{1, 1, 1, 1, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f, 1e30f,
                                                         1e30f, 1e30f, 1e30f, 1e30f, 1e30f}));
}

TEST(ConvertConfig, The26BConfigGivesTheSpecValues) {
  std::ifstream in(kData + "/tools/gemma4-26b-a4b-hf-layout.txt");
  std::string first_line;
  std::getline(in, first_line);  // the config.json of 26B-A4B (per_layer_config with "05"-style keys)
  ASSERT_FALSE(first_line.empty());
  const Gemma4HParams hp = hparams_of(first_line);
  ASSERT_EQ(hp.n_layer, 30);
  for (int64_t l = 0; l < 30; ++l) {
    EXPECT_EQ(hp.is_sliding(l), l % 6 != 5) << l;
    EXPECT_EQ(hp.n_kv(l), l % 6 == 5 ? 2 : 8) << l;
  }
  EXPECT_EQ(hp.head_dim_swa, 256);
  EXPECT_EQ(hp.head_dim_full, 512);
  EXPECT_EQ(hp.n_expert, 128);
  EXPECT_EQ(hp.n_expert_used, 8);
  EXPECT_EQ(hp.n_ff_exp, 704);
  EXPECT_EQ(hp.n_ff[0], 2112);
  EXPECT_EQ(hp.sliding_window, 1024);
  EXPECT_DOUBLE_EQ(hp.rope_base_full, 1e6);
  EXPECT_DOUBLE_EQ(hp.rope_base_swa, 1e4);
  const auto f = gemma4_rope_freqs(hp);
  ASSERT_EQ(f.size(), 256u);
  EXPECT_EQ(std::count(f.begin(), f.end(), 1.0f), 64);
}

TEST(ConvertConfig, GlobalHeadDimFormEqualsPerLayerForm) {
  const std::string base = R"("num_hidden_layers": 6, "hidden_size": 64, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 96, "vocab_size": 512, "sliding_window": 8,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
                    "sliding_attention", "full_attention"],
    "enable_moe_block": true, "num_experts": 8, "top_k_experts": 2, "moe_intermediate_size": 24,
    "final_logit_softcapping": 30.0,
    "rope_parameters": {"full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0,
                        "rope_type": "proportional"}, "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}})";
  const Gemma4HParams a = hparams_of("{" + base + R"(, "global_head_dim": 32, "num_global_key_value_heads": 1})");
  const Gemma4HParams b = hparams_of("{" + base +
                                     R"(, "per_layer_config": {"2": {"head_dim": 32, "num_key_value_heads": 1},
                                          "5": {"head_dim": 32, "num_key_value_heads": 1}}})");
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim_full, 32);
  EXPECT_EQ(b.head_dim_full, 32);
  EXPECT_EQ(a.head_dim_swa, b.head_dim_swa);
}

TEST(Convert, RefusesOtherArchitecturesClearly) {
  ScratchDir dir("convert_arch");
  ASSERT_TRUE(write_file_atomic(dir / "config.json", std::string(R"({"architectures": ["LlamaForCausalLM"],
      "model_type": "llama"})")).ok());
  ConvertOptions opt;
  opt.hf_dir = dir.path().string();
  opt.output = dir / "out.gguf";
  auto r = convert_hf_to_gguf(opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(r.error().message.find("LlamaForCausalLM"), std::string::npos) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(opt.output));
}

// The tiny checkpoint re-wrapped as Gemma4ForConditionalGeneration (model.language_model. prefix, text_config,
// a vision tensor) converts to the same tensors as the ForCausalLM original.
TEST(Convert, ConditionalGenerationLayoutConvertsTheTextModelOnly) {
  ScratchDir dir("convert_cg");
  auto src = SafetensorsFile::open(kData + "/gemma4-tiny/model.safetensors");
  ASSERT_TRUE(src.ok());
  SafetensorsWriter w;
  w.set_metadata({{"format", "pt"}});
  for (const auto& t : src->tensors()) {
    ASSERT_EQ(t.name.rfind("model.", 0), 0u);
    w.add_tensor("model.language_model." + t.name.substr(6), t.dtype, t.shape, t.data);
  }
  static const float vision[4] = {1, 2, 3, 4};
  w.add_tensor("model.vision_tower.patch_embed.weight", SafetensorsDtype::kF32, {2, 2},
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(vision), sizeof(vision)));
  ASSERT_TRUE(w.write(dir / "model.safetensors").ok());
  auto text_config = read_file_text(kData + "/gemma4-tiny/config.json");
  ASSERT_TRUE(text_config.ok());
  const std::string config = R"({"architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
      "text_config": )" + *text_config + "}";
  ASSERT_TRUE(write_file_atomic(dir / "config.json", config).ok());

  ConvertOptions a;
  a.hf_dir = dir.path().string();
  a.output = dir / "cg.gguf";
  auto ra = convert_hf_to_gguf(a);
  ASSERT_TRUE(ra.ok()) << ra.error().to_string();
  EXPECT_EQ(ra->n_skipped, 1);
  ConvertOptions b;
  b.hf_dir = kData + "/gemma4-tiny";
  b.output = dir / "causal.gguf";
  ASSERT_TRUE(convert_hf_to_gguf(b).ok());

  auto fa = GgufFile::open(a.output);
  auto fb = GgufFile::open(b.output);
  ASSERT_TRUE(fa.ok() && fb.ok());
  ASSERT_EQ(fa->tensors().size(), fb->tensors().size());
  for (size_t i = 0; i < fa->tensors().size(); ++i) {
    const auto& ta = fa->tensors()[i];
    const auto& tb = fb->tensors()[i];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.shape, tb.shape);
    EXPECT_TRUE(std::equal(ta.data.begin(), ta.data.end(), tb.data.begin(), tb.data.end())) << ta.name;
  }
}

TEST(Convert, WritesTheKeysAndTensorsLlamaCppReads) {
  ScratchDir dir("convert_keys");
  ConvertOptions opt;
  opt.hf_dir = kData + "/gemma4-tiny";
  opt.output = dir / "tiny.gguf";
  opt.outtype = "f16";
  auto r = convert_hf_to_gguf(opt);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->n_tensors, 4 * 22 + 2 * 21 + 3);
  auto f = GgufFile::open(opt.output);
  ASSERT_TRUE(f.ok());
  // 4 sliding layers x 22 + 2 full (no attn_v) x 21 + token_embd, output_norm, rope_freqs.
  EXPECT_EQ(f->tensors().size(), 4u * 22 + 2u * 21 + 3);
  EXPECT_EQ(*f->get_string("general.architecture"), "gemma4");
  EXPECT_EQ(*f->get_u64("general.file_type"), 1u);  // MOSTLY_F16
  EXPECT_EQ(*f->get_i64_array("gemma4.attention.head_count_kv"), (std::vector<int64_t>{2, 2, 1, 2, 2, 1}));
  EXPECT_EQ(*f->get_u64("gemma4.attention.key_length"), 32u);
  EXPECT_EQ(*f->get_u64("gemma4.attention.key_length_swa"), 16u);
  EXPECT_EQ(*f->get_u64("gemma4.rope.dimension_count"), 32u);
  EXPECT_EQ(*f->get_u64("gemma4.expert_feed_forward_length"), 24u);
  EXPECT_EQ(*f->get_u64("gemma4.attention.sliding_window"), 8u);
  EXPECT_DOUBLE_EQ(*f->get_f64("gemma4.final_logit_softcapping"), 30.0);
  const GgufValue* pattern = f->find("gemma4.attention.sliding_window_pattern");
  ASSERT_NE(pattern, nullptr);
  EXPECT_EQ(std::get<std::vector<bool>>(pattern->data), (std::vector<bool>{true, true, false, true, true, false}));
  // Matrices in the outtype; vectors and the router in F32; fused experts {in, 2 * n_ff_exp, n_expert}.
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, GgmlType::kF16);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate_inp.weight")->type, GgmlType::kF32);
  EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->type, GgmlType::kF32);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate_up_exps.weight")->shape, (std::vector<uint64_t>{64, 48, 8}));
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down_exps.weight")->shape, (std::vector<uint64_t>{24, 64, 8}));
  EXPECT_EQ(f->find_tensor("blk.2.attn_v.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.5.layer_output_scale.weight")->shape, (std::vector<uint64_t>{1}));
  EXPECT_EQ(f->find("tokenizer.ggml.tokens"), nullptr);  // the tiny checkpoint has no tokenizer
}

TEST(Convert, Q8_0KeepsRowsThatDoNotFitBlocksInF16AndStillRuns) {
  ScratchDir dir("convert_q8");
  ConvertOptions opt;
  opt.hf_dir = kData + "/gemma4-tiny";
  opt.output = dir / "tiny-q8.gguf";
  opt.outtype = "q8_0";
  ASSERT_TRUE(convert_hf_to_gguf(opt).ok());
  auto m = Model::load(opt.output);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  const auto& f = (*m)->gguf();
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, GgmlType::kQ8_0);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down_exps.weight")->type, GgmlType::kF16);  // 24 columns
  EXPECT_EQ(f.find_tensor("blk.0.ffn_gate_inp.weight")->type, GgmlType::kF32);

  // The tiny model has random weights, so quantisation noise flips near-tied expert choices and single logits can
  // move far; the logits as a whole must still track the fp32 reference recognisably (f16 already moves single logits by up to 3).
  auto golden = SafetensorsFile::open(kData + "/gemma4-tiny/golden.safetensors");
  ASSERT_TRUE(golden.ok());
  auto g = safetensors_read_f32(*golden->find_tensor("logits.0"));
  const std::vector<int32_t> ids = {2, 17, 300, 45, 45, 45, 9, 128, 77, 501, 3, 260, 19, 88, 400, 12, 5, 6, 7, 99,
                                    311, 42, 42, 250};
  Session s(**m);
  ASSERT_TRUE(s.decode(ids, LogitsMode::kAll).ok());
  double dot = 0, na = 0, nb = 0, max_diff = 0;
  for (size_t i = 0; i < g->size(); ++i) {
    const double a = s.logits()[i], b = (*g)[i];
    dot += a * b;
    na += a * a;
    nb += b * b;
    max_diff = std::max(max_diff, std::fabs(a - b));
  }
  EXPECT_GT(max_diff, 0.0);  // quantised: not bit-identical
  EXPECT_GT(dot / std::sqrt(na * nb), 0.75);  // measured 0.84; a mis-laid-out conversion gives ~0
}

}  // namespace
}  // namespace fabula
