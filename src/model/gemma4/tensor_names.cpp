// The Gemma 4 tensor-name table and its lookups (GGUF names as llama.cpp's gguf-py spells them).
#include "model/gemma4/tensor_names.h"

#include <charconv>

#include "base/check.h"

namespace fabula {
namespace {

constexpr TensorNameInfo kTable[] = {
    {TensorKind::kTokenEmbd, "token_embd.weight", "embed_tokens.weight", nullptr, 2, false},
    {TensorKind::kOutputNorm, "output_norm.weight", "norm.weight", nullptr, 1, false},
    {TensorKind::kRopeFreqs, "rope_freqs.weight", nullptr, nullptr, 1, false},
    {TensorKind::kAttnNorm, "blk.{}.attn_norm.weight", "layers.{}.input_layernorm.weight", nullptr, 1, true},
    {TensorKind::kAttnQ, "blk.{}.attn_q.weight", "layers.{}.self_attn.q_proj.weight", nullptr, 2, true},
    {TensorKind::kAttnK, "blk.{}.attn_k.weight", "layers.{}.self_attn.k_proj.weight", nullptr, 2, true},
    {TensorKind::kAttnV, "blk.{}.attn_v.weight", "layers.{}.self_attn.v_proj.weight", nullptr, 2, true},
    {TensorKind::kAttnOutput, "blk.{}.attn_output.weight", "layers.{}.self_attn.o_proj.weight", nullptr, 2, true},
    {TensorKind::kAttnQNorm, "blk.{}.attn_q_norm.weight", "layers.{}.self_attn.q_norm.weight", nullptr, 1, true},
    {TensorKind::kAttnKNorm, "blk.{}.attn_k_norm.weight", "layers.{}.self_attn.k_norm.weight", nullptr, 1, true},
    {TensorKind::kPostAttentionNorm, "blk.{}.post_attention_norm.weight", "layers.{}.post_attention_layernorm.weight",
     nullptr, 1, true},
    {TensorKind::kFfnNorm, "blk.{}.ffn_norm.weight", "layers.{}.pre_feedforward_layernorm.weight", nullptr, 1, true},
    {TensorKind::kFfnGate, "blk.{}.ffn_gate.weight", "layers.{}.mlp.gate_proj.weight", nullptr, 2, true},
    {TensorKind::kFfnUp, "blk.{}.ffn_up.weight", "layers.{}.mlp.up_proj.weight", nullptr, 2, true},
    {TensorKind::kFfnDown, "blk.{}.ffn_down.weight", "layers.{}.mlp.down_proj.weight", nullptr, 2, true},
    {TensorKind::kPostFfwNorm1, "blk.{}.post_ffw_norm_1.weight", "layers.{}.post_feedforward_layernorm_1.weight",
     nullptr, 1, true},
    {TensorKind::kFfnGateInp, "blk.{}.ffn_gate_inp.weight", "layers.{}.router.proj.weight", nullptr, 2, true},
    {TensorKind::kFfnGateInpScale, "blk.{}.ffn_gate_inp.scale", "layers.{}.router.scale", nullptr, 1, true},
    {TensorKind::kPreFfwNorm2, "blk.{}.pre_ffw_norm_2.weight", "layers.{}.pre_feedforward_layernorm_2.weight",
     nullptr, 1, true},
    {TensorKind::kFfnGateUpExps, "blk.{}.ffn_gate_up_exps.weight", "layers.{}.experts.gate_up_proj",
     "layers.{}.moe.gate_up_proj", 3, true},
    {TensorKind::kFfnGateExps, "blk.{}.ffn_gate_exps.weight", nullptr, nullptr, 3, true},
    {TensorKind::kFfnUpExps, "blk.{}.ffn_up_exps.weight", nullptr, nullptr, 3, true},
    {TensorKind::kFfnDownExps, "blk.{}.ffn_down_exps.weight", "layers.{}.experts.down_proj", "layers.{}.moe.down_proj",
     3, true},
    {TensorKind::kFfnDownExpsScale, "blk.{}.ffn_down_exps.scale", "layers.{}.router.per_expert_scale",
     "layers.{}.moe.per_expert_scale", 1, true},
    {TensorKind::kPostFfwNorm2, "blk.{}.post_ffw_norm_2.weight", "layers.{}.post_feedforward_layernorm_2.weight",
     nullptr, 1, true},
    {TensorKind::kPostFfwNorm, "blk.{}.post_ffw_norm.weight", "layers.{}.post_feedforward_layernorm.weight", nullptr,
     1, true},
    {TensorKind::kLayerOutputScale, "blk.{}.layer_output_scale.weight", "layers.{}.layer_scalar", nullptr, 1, true},
};

// Matches `name` against `pattern` where "{}" stands for a decimal layer index; returns the index (or -1 when the
// pattern has no "{}") on success.
std::optional<int> match_pattern(std::string_view pattern, std::string_view name) {
  const size_t hole = pattern.find("{}");
  if (hole == std::string_view::npos) {
    if (pattern == name) return -1;
    return std::nullopt;
  }
  const std::string_view head = pattern.substr(0, hole);
  const std::string_view tail = pattern.substr(hole + 2);
  if (name.size() <= head.size() + tail.size()) return std::nullopt;
  if (name.substr(0, head.size()) != head) return std::nullopt;
  if (name.substr(name.size() - tail.size()) != tail) return std::nullopt;
  const std::string_view digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.empty() || digits.size() > 6) return std::nullopt;
  int layer = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), layer);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return layer;
}

}  // namespace

std::span<const TensorNameInfo> gemma4_tensor_table() { return kTable; }

const TensorNameInfo& tensor_info(TensorKind kind) {
  for (const auto& row : kTable) {
    if (row.kind == kind) return row;
  }
  FABULA_CHECK(false);
  return kTable[0];
}

std::string gguf_tensor_name(TensorKind kind, int layer) {
  std::string name = tensor_info(kind).gguf;
  const size_t hole = name.find("{}");
  if (hole != std::string::npos) name.replace(hole, 2, std::to_string(layer));
  return name;
}

std::optional<TensorNameMatch> match_gguf_tensor_name(std::string_view name) {
  for (const auto& row : kTable) {
    if (auto layer = match_pattern(row.gguf, name)) return TensorNameMatch{row.kind, *layer};
  }
  return std::nullopt;
}

std::optional<TensorNameMatch> match_hf_tensor_name(std::string_view name) {
  for (const auto& row : kTable) {
    for (const char* pattern : {row.hf, row.hf_alt}) {
      if (pattern == nullptr) continue;
      if (auto layer = match_pattern(pattern, name)) return TensorNameMatch{row.kind, *layer};
    }
  }
  return std::nullopt;
}

bool tensor_is_vector(TensorKind kind) { return tensor_info(kind).rank == 1; }

}  // namespace fabula
