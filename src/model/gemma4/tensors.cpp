// The Gemma 4 tensor table (GGUF names as llama.cpp's gguf-py spells them), its name lookups and shapes.
#include "model/gemma4/tensors.h"

#include <algorithm>
#include <charconv>

#include "base/check.h"
#include "model/gemma4/hparams.h"

namespace fabula {
namespace {

using K = TensorKind;
using P = TensorPresence;

constexpr TensorInfo kTable[] = {
    {K::kTokenEmbd, "token_embd.weight", "embed_tokens.weight", nullptr, 2, false, P::kRequired, true},
    {K::kOutputNorm, "output_norm.weight", "norm.weight", nullptr, 1, false, P::kRequired, false},
    {K::kRopeFreqs, "rope_freqs.weight", nullptr, nullptr, 1, false, P::kOptional, false},
    {K::kAttnNorm, "blk.{}.attn_norm.weight", "layers.{}.input_layernorm.weight", nullptr, 1, true, P::kRequired,
     false},
    {K::kAttnQ, "blk.{}.attn_q.weight", "layers.{}.self_attn.q_proj.weight", nullptr, 2, true, P::kRequired, true},
    {K::kAttnK, "blk.{}.attn_k.weight", "layers.{}.self_attn.k_proj.weight", nullptr, 2, true, P::kRequired, true},
    {K::kAttnV, "blk.{}.attn_v.weight", "layers.{}.self_attn.v_proj.weight", nullptr, 2, true, P::kOptional, true},
    {K::kAttnOutput, "blk.{}.attn_output.weight", "layers.{}.self_attn.o_proj.weight", nullptr, 2, true,
     P::kRequired, true},
    {K::kAttnQNorm, "blk.{}.attn_q_norm.weight", "layers.{}.self_attn.q_norm.weight", nullptr, 1, true, P::kRequired,
     false},
    {K::kAttnKNorm, "blk.{}.attn_k_norm.weight", "layers.{}.self_attn.k_norm.weight", nullptr, 1, true, P::kRequired,
     false},
    {K::kPostAttentionNorm, "blk.{}.post_attention_norm.weight", "layers.{}.post_attention_layernorm.weight",
     nullptr, 1, true, P::kRequired, false},
    {K::kFfnNorm, "blk.{}.ffn_norm.weight", "layers.{}.pre_feedforward_layernorm.weight", nullptr, 1, true,
     P::kRequired, false},
    {K::kFfnGate, "blk.{}.ffn_gate.weight", "layers.{}.mlp.gate_proj.weight", nullptr, 2, true, P::kRequired, true},
    {K::kFfnUp, "blk.{}.ffn_up.weight", "layers.{}.mlp.up_proj.weight", nullptr, 2, true, P::kRequired, true},
    {K::kFfnDown, "blk.{}.ffn_down.weight", "layers.{}.mlp.down_proj.weight", nullptr, 2, true, P::kRequired, true},
    {K::kPostFfwNorm1, "blk.{}.post_ffw_norm_1.weight", "layers.{}.post_feedforward_layernorm_1.weight", nullptr, 1,
     true, P::kMoe, false},
    {K::kFfnGateInp, "blk.{}.ffn_gate_inp.weight", "layers.{}.router.proj.weight", nullptr, 2, true, P::kMoe, false},
    {K::kFfnGateInpScale, "blk.{}.ffn_gate_inp.scale", "layers.{}.router.scale", nullptr, 1, true, P::kMoe, false},
    {K::kPreFfwNorm2, "blk.{}.pre_ffw_norm_2.weight", "layers.{}.pre_feedforward_layernorm_2.weight", nullptr, 1,
     true, P::kMoe, false},
    {K::kFfnGateUpExps, "blk.{}.ffn_gate_up_exps.weight", "layers.{}.experts.gate_up_proj",
     "layers.{}.moe.gate_up_proj", 3, true, P::kMoe, true},
    {K::kFfnGateExps, "blk.{}.ffn_gate_exps.weight", nullptr, nullptr, 3, true, P::kAlternative, true},
    {K::kFfnUpExps, "blk.{}.ffn_up_exps.weight", nullptr, nullptr, 3, true, P::kAlternative, true},
    {K::kFfnDownExps, "blk.{}.ffn_down_exps.weight", "layers.{}.experts.down_proj", "layers.{}.moe.down_proj", 3,
     true, P::kMoe, true},
    {K::kFfnDownExpsScale, "blk.{}.ffn_down_exps.scale", "layers.{}.router.per_expert_scale",
     "layers.{}.moe.per_expert_scale", 1, true, P::kMoe, false},
    {K::kPostFfwNorm2, "blk.{}.post_ffw_norm_2.weight", "layers.{}.post_feedforward_layernorm_2.weight", nullptr, 1,
     true, P::kMoe, false},
    {K::kPostFfwNorm, "blk.{}.post_ffw_norm.weight", "layers.{}.post_feedforward_layernorm.weight", nullptr, 1, true,
     P::kRequired, false},
    {K::kLayerOutputScale, "blk.{}.layer_output_scale.weight", "layers.{}.layer_scalar", nullptr, 1, true,
     P::kOptional, false},
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

std::string fill_pattern(const char* pattern, int layer) {
  if (pattern == nullptr) return {};
  std::string name = pattern;
  const size_t hole = name.find("{}");
  if (hole != std::string::npos) name.replace(hole, 2, std::to_string(layer));
  return name;
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

std::span<const TensorInfo> gemma4_tensor_table() { return kTable; }

const TensorInfo& tensor_info(TensorKind kind) {
  for (const auto& row : kTable) {
    if (row.kind == kind) return row;
  }
  FABULA_CHECK(false);
  return kTable[0];
}

std::string gguf_tensor_name(TensorKind kind, int layer) { return fill_pattern(tensor_info(kind).gguf, layer); }
std::string hf_tensor_name(TensorKind kind, int layer) { return fill_pattern(tensor_info(kind).hf, layer); }

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

std::optional<std::string> gemma4_hf_to_gguf_name(std::string_view hf) {
  if (!consume(hf, "model.language_model.") && !consume(hf, "model.")) return std::nullopt;
  auto match = match_hf_tensor_name(hf);
  if (!match) return std::nullopt;
  return gguf_tensor_name(match->kind, match->layer);
}

std::vector<uint64_t> gemma4_tensor_shape(const Gemma4HParams& hp, TensorKind kind, int l) {
  auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  const uint64_t E = u(hp.n_embd), NE = u(hp.n_expert), FE = u(hp.n_ff_exp);
  // Sizes that differ between layers (read only for per-layer tensors).
  const bool in_layer = l >= 0 && l < hp.n_layer;
  const uint64_t hd = in_layer ? u(hp.head_dim(l)) : 0, q = u(hp.n_head) * hd;
  const uint64_t kv = in_layer ? u(hp.n_kv(l)) * hd : 0, F = in_layer ? u(hp.n_ff[static_cast<size_t>(l)]) : 0;
  switch (kind) {
    case K::kTokenEmbd: return {E, u(hp.n_vocab)};
    case K::kRopeFreqs: return {u(hp.n_rot_full / 2)};
    case K::kAttnQ: return {E, q};
    case K::kAttnK: case K::kAttnV: return {E, kv};
    case K::kAttnOutput: return {q, E};
    case K::kAttnQNorm: case K::kAttnKNorm: return {hd};
    case K::kFfnGate: case K::kFfnUp: return {E, F};
    case K::kFfnDown: return {F, E};
    case K::kFfnGateInp: return {E, NE};
    case K::kFfnGateUpExps: return {E, 2 * FE, NE};
    case K::kFfnGateExps: case K::kFfnUpExps: return {E, FE, NE};
    case K::kFfnDownExps: return {FE, E, NE};
    case K::kFfnDownExpsScale: return {NE};
    case K::kLayerOutputScale: return {1};
    case K::kOutputNorm: case K::kAttnNorm: case K::kPostAttentionNorm: case K::kFfnNorm: case K::kPostFfwNorm1:
    case K::kFfnGateInpScale: case K::kPreFfwNorm2: case K::kPostFfwNorm2: case K::kPostFfwNorm:
      return {E};
  }
  return {};
}

uint64_t TensorSpec::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

std::vector<TensorSpec> gemma4_tensors(const Gemma4HParams& hp) {
  const bool any_full = std::find(hp.sliding.begin(), hp.sliding.end(), false) != hp.sliding.end();
  std::vector<TensorSpec> out;
  auto add = [&](TensorKind kind, int layer) {
    out.push_back({gguf_tensor_name(kind, layer), gemma4_tensor_shape(hp, kind, layer), kind, layer});
  };
  for (const TensorInfo& row : kTable) {
    if (row.per_layer || (row.kind == K::kRopeFreqs && !(hp.proportional_rope_full && any_full))) continue;
    add(row.kind, -1);
  }
  for (int l = 0; l < hp.n_layer; ++l) {
    for (const TensorInfo& row : kTable) {
      if (!row.per_layer || row.presence == P::kAlternative) continue;
      if (row.presence == P::kMoe && hp.n_expert == 0) continue;
      if (row.kind == K::kAttnV && hp.k_eq_v && !hp.is_sliding(l)) continue;
      add(row.kind, l);
    }
  }
  return out;
}

uint64_t gemma4_hf_parameter_count(const Gemma4HParams& hp) {
  uint64_t n = 0;
  for (const auto& t : gemma4_tensors(hp)) {
    // rope_freqs is generated by the converter and layer_scalar is a buffer, not a parameter, in transformers.
    if (t.kind == K::kRopeFreqs || t.kind == K::kLayerOutputScale) continue;
    n += t.n_elements();
  }
  return n;
}

}  // namespace fabula
