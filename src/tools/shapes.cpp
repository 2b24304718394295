// Gemma 4 MoE shape tables and the HF -> GGUF tensor name mapping (research/gemma4.md §1, §3).
#include "tools/shapes.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "model/gemma4/tensor_names.h"

namespace fabula {
namespace {

// Full attention every `period` layers, last layer always full (as HF's config forces).
std::vector<bool> full_pattern(uint32_t n_layer, uint32_t period) {
  std::vector<bool> full(n_layer, false);
  for (uint32_t i = 0; i < n_layer; ++i) full[i] = (i + 1) % period == 0;
  if (n_layer > 0) full[n_layer - 1] = true;
  return full;
}

Gemma4Shape make_26b() {
  Gemma4Shape s;
  s.name = "gemma4-26b-a4b";
  s.n_layer = 30; s.n_embd = 2816; s.n_vocab = 262144; s.n_head = 16;
  s.n_head_kv_swa = 8; s.n_head_kv_full = 2; s.head_dim_swa = 256; s.head_dim_full = 512;
  s.n_ff = 2112; s.n_expert = 128; s.n_expert_used = 8; s.n_ff_exp = 704;
  s.is_full = full_pattern(30, 6);
  return s;
}

// A quick-to-synthesise model of the same structure (~2.0 B parameters, ~0.6 B active); 384 % 256 != 0 keeps the
// k-quant fallback path exercised like the real 704.
Gemma4Shape make_2b() {
  Gemma4Shape s;
  s.name = "gemma4-2b-a0.5b";
  s.n_layer = 12; s.n_embd = 1536; s.n_vocab = 262144; s.n_head = 8;
  s.n_head_kv_swa = 4; s.n_head_kv_full = 1; s.head_dim_swa = 256; s.head_dim_full = 512;
  s.n_ff = 1152; s.n_expert = 64; s.n_expert_used = 4; s.n_ff_exp = 384;
  s.is_full = full_pattern(12, 6);
  return s;
}

Gemma4Shape make_demo() {  // /work/shared/models/fabula-demo-v1/config.json
  Gemma4Shape s;
  s.name = "gemma4-demo";
  s.n_layer = 6; s.n_embd = 256; s.n_vocab = 2273; s.n_head = 4;
  s.n_head_kv_swa = 2; s.n_head_kv_full = 1; s.head_dim_swa = 64; s.head_dim_full = 128;
  s.n_ff = 384; s.n_expert = 8; s.n_expert_used = 2; s.n_ff_exp = 128;
  s.is_full = full_pattern(6, 6);
  return s;
}

Gemma4Shape make_tiny() {  // tests/data/gemma4-tiny/config.json
  Gemma4Shape s;
  s.name = "gemma4-tiny-moe";
  s.n_layer = 6; s.n_embd = 64; s.n_vocab = 512; s.n_head = 4;
  s.n_head_kv_swa = 2; s.n_head_kv_full = 1; s.head_dim_swa = 16; s.head_dim_full = 32;
  s.n_ff = 96; s.n_expert = 8; s.n_expert_used = 2; s.n_ff_exp = 24;
  s.is_full = full_pattern(6, 3);
  return s;
}

// Roles are this file's view of the model engineer's TensorKind table (model/tensor_names.h), which spells every
// GGUF and HF name once.
TensorKind kind_of(TensorRole role) {
  using R = TensorRole;
  using K = TensorKind;
  switch (role) {
    case R::kTokenEmbd: return K::kTokenEmbd;
    case R::kOutputNorm: return K::kOutputNorm;
    case R::kRopeFreqs: return K::kRopeFreqs;
    case R::kAttnNorm: return K::kAttnNorm;
    case R::kAttnQ: return K::kAttnQ;
    case R::kAttnK: return K::kAttnK;
    case R::kAttnV: return K::kAttnV;
    case R::kAttnOutput: return K::kAttnOutput;
    case R::kAttnQNorm: return K::kAttnQNorm;
    case R::kAttnKNorm: return K::kAttnKNorm;
    case R::kPostAttnNorm: return K::kPostAttentionNorm;
    case R::kFfnNorm: return K::kFfnNorm;
    case R::kFfnGate: return K::kFfnGate;
    case R::kFfnUp: return K::kFfnUp;
    case R::kFfnDown: return K::kFfnDown;
    case R::kPostFfwNorm1: return K::kPostFfwNorm1;
    case R::kFfnGateInp: return K::kFfnGateInp;
    case R::kFfnGateInpScale: return K::kFfnGateInpScale;
    case R::kPreFfwNorm2: return K::kPreFfwNorm2;
    case R::kFfnGateUpExps: return K::kFfnGateUpExps;
    case R::kFfnDownExps: return K::kFfnDownExps;
    case R::kFfnDownExpsScale: return K::kFfnDownExpsScale;
    case R::kPostFfwNorm2: return K::kPostFfwNorm2;
    case R::kPostFfwNorm: return K::kPostFfwNorm;
    case R::kLayerOutputScale: return K::kLayerOutputScale;
  }
  return K::kTokenEmbd;
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

uint32_t Gemma4Shape::n_full() const {
  uint32_t n = 0;
  for (bool f : is_full) n += f ? 1 : 0;
  return n;
}

std::vector<std::string> gemma4_shape_names() {
  return {"gemma4-26b-a4b", "gemma4-2b-a0.5b", "gemma4-demo", "gemma4-tiny-moe"};
}

Result<Gemma4Shape> gemma4_shape(std::string_view name) {
  if (name == "gemma4-26b-a4b") return make_26b();
  if (name == "gemma4-2b-a0.5b") return make_2b();
  if (name == "gemma4-demo") return make_demo();
  if (name == "gemma4-tiny-moe" || name == "gemma4-tiny") return make_tiny();
  std::string known;
  for (const auto& n : gemma4_shape_names()) known += (known.empty() ? "" : ", ") + n;
  return make_error(ErrorCode::kNotFound, "unknown shape '{}' (known: {})", name, known);
}

Result<Gemma4Shape> gemma4_shape_from_hf_config(const std::string& json_text, const std::string& source_name) {
  auto root = nlohmann::json::parse(json_text, nullptr, false);
  if (root.is_discarded() || !root.is_object())
    return make_error(ErrorCode::kParse, "{}: not a JSON object", source_name);
  const nlohmann::json& c = root.contains("text_config") && root["text_config"].is_object() ? root["text_config"] : root;
  auto get = [&](const char* key, uint32_t& out, bool required) -> Status {
    if (!c.contains(key) || !c[key].is_number_integer()) {
      if (!required) return ok_status();
      return make_error(ErrorCode::kParse, "{}: field '{}' missing or not an integer", source_name, key);
    }
    out = c[key].get<uint32_t>();
    return ok_status();
  };
  Gemma4Shape s;
  s.name = source_name;
  FABULA_TRY(get("num_hidden_layers", s.n_layer, true));
  FABULA_TRY(get("hidden_size", s.n_embd, true));
  FABULA_TRY(get("vocab_size", s.n_vocab, true));
  FABULA_TRY(get("num_attention_heads", s.n_head, true));
  FABULA_TRY(get("num_key_value_heads", s.n_head_kv_swa, true));
  FABULA_TRY(get("head_dim", s.head_dim_swa, true));
  FABULA_TRY(get("intermediate_size", s.n_ff, true));
  FABULA_TRY(get("num_experts", s.n_expert, true));
  FABULA_TRY(get("top_k_experts", s.n_expert_used, true));
  FABULA_TRY(get("moe_intermediate_size", s.n_ff_exp, true));
  s.n_head_kv_full = s.n_head_kv_swa;
  s.head_dim_full = s.head_dim_swa;
  FABULA_TRY(get("num_global_key_value_heads", s.n_head_kv_full, false));
  FABULA_TRY(get("global_head_dim", s.head_dim_full, false));
  if (c.contains("attention_k_eq_v") && c["attention_k_eq_v"].is_boolean()) s.k_eq_v = c["attention_k_eq_v"].get<bool>();
  if (!c.contains("layer_types") || !c["layer_types"].is_array() || c["layer_types"].size() != s.n_layer)
    return make_error(ErrorCode::kParse, "{}: 'layer_types' must be an array of {} strings", source_name, s.n_layer);
  for (const auto& t : c["layer_types"]) s.is_full.push_back(t.is_string() && t.get<std::string>() == "full_attention");
  // per_layer_config (the tiny test model): {"5": {"head_dim": 32, "num_key_value_heads": 1}}; keys may be "05".
  if (c.contains("per_layer_config") && c["per_layer_config"].is_object()) {
    for (const auto& [key, value] : c["per_layer_config"].items()) {
      int layer = -1;
      auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), layer);
      if (ec != std::errc() || layer < 0 || static_cast<uint32_t>(layer) >= s.n_layer || !value.is_object())
        return make_error(ErrorCode::kParse, "{}: per_layer_config key '{}' is not a layer index", source_name, key);
      if (!s.is_full[layer]) continue;  // only full layers differ in this architecture
      if (value.contains("head_dim") && value["head_dim"].is_number_integer())
        s.head_dim_full = value["head_dim"].get<uint32_t>();
      if (value.contains("num_key_value_heads") && value["num_key_value_heads"].is_number_integer())
        s.n_head_kv_full = value["num_key_value_heads"].get<uint32_t>();
    }
  }
  return s;
}

std::string_view tensor_role_name(TensorRole role) {
  switch (role) {
    case TensorRole::kTokenEmbd: return "token_embd";
    case TensorRole::kOutputNorm: return "output_norm";
    case TensorRole::kRopeFreqs: return "rope_freqs";
    case TensorRole::kAttnNorm: return "attn_norm";
    case TensorRole::kAttnQ: return "attn_q";
    case TensorRole::kAttnK: return "attn_k";
    case TensorRole::kAttnV: return "attn_v";
    case TensorRole::kAttnOutput: return "attn_output";
    case TensorRole::kAttnQNorm: return "attn_q_norm";
    case TensorRole::kAttnKNorm: return "attn_k_norm";
    case TensorRole::kPostAttnNorm: return "post_attention_norm";
    case TensorRole::kFfnNorm: return "ffn_norm";
    case TensorRole::kFfnGate: return "ffn_gate";
    case TensorRole::kFfnUp: return "ffn_up";
    case TensorRole::kFfnDown: return "ffn_down";
    case TensorRole::kPostFfwNorm1: return "post_ffw_norm_1";
    case TensorRole::kFfnGateInp: return "ffn_gate_inp";
    case TensorRole::kFfnGateInpScale: return "ffn_gate_inp.scale";
    case TensorRole::kPreFfwNorm2: return "pre_ffw_norm_2";
    case TensorRole::kFfnGateUpExps: return "ffn_gate_up_exps";
    case TensorRole::kFfnDownExps: return "ffn_down_exps";
    case TensorRole::kFfnDownExpsScale: return "ffn_down_exps.scale";
    case TensorRole::kPostFfwNorm2: return "post_ffw_norm_2";
    case TensorRole::kPostFfwNorm: return "post_ffw_norm";
    case TensorRole::kLayerOutputScale: return "layer_output_scale";
  }
  return "?";
}

uint64_t TensorSpec::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

std::vector<TensorSpec> gemma4_tensors(const Gemma4Shape& s) {
  std::vector<TensorSpec> out;
  using R = TensorRole;
  auto add = [&](TensorRole role, int layer, std::vector<uint64_t> dims) {
    out.push_back({gguf_tensor_name(kind_of(role), layer), std::move(dims), role, layer});
  };
  const uint64_t E = s.n_embd;
  add(R::kTokenEmbd, -1, {E, s.n_vocab});
  add(R::kOutputNorm, -1, {E});
  // Proportional RoPE of the full layers: one factor per rotated pair of head_dim_full.
  add(R::kRopeFreqs, -1, {s.head_dim_full / 2u});
  for (uint32_t i = 0; i < s.n_layer; ++i) {
    const int L = static_cast<int>(i);
    const bool full = s.is_full[i];
    const uint64_t hd = full ? s.head_dim_full : s.head_dim_swa;
    const uint64_t q = s.n_head * hd;
    const uint64_t kv = (full ? s.n_head_kv_full : s.n_head_kv_swa) * hd;
    add(R::kAttnNorm, L, {E});
    add(R::kAttnQ, L, {E, q});
    add(R::kAttnK, L, {E, kv});
    if (!(full && s.k_eq_v)) add(R::kAttnV, L, {E, kv});
    add(R::kAttnOutput, L, {q, E});
    add(R::kAttnQNorm, L, {hd});
    add(R::kAttnKNorm, L, {hd});
    add(R::kPostAttnNorm, L, {E});
    add(R::kFfnNorm, L, {E});
    add(R::kFfnGate, L, {E, s.n_ff});
    add(R::kFfnUp, L, {E, s.n_ff});
    add(R::kFfnDown, L, {s.n_ff, E});
    add(R::kPostFfwNorm1, L, {E});
    add(R::kFfnGateInp, L, {E, s.n_expert});
    add(R::kFfnGateInpScale, L, {E});
    add(R::kPreFfwNorm2, L, {E});
    add(R::kFfnGateUpExps, L, {E, 2ull * s.n_ff_exp, s.n_expert});
    add(R::kFfnDownExps, L, {s.n_ff_exp, E, s.n_expert});
    add(R::kFfnDownExpsScale, L, {s.n_expert});
    add(R::kPostFfwNorm2, L, {E});
    add(R::kPostFfwNorm, L, {E});
    add(R::kLayerOutputScale, L, {1});
  }
  return out;
}

uint64_t gemma4_hf_parameter_count(const Gemma4Shape& shape) {
  uint64_t n = 0;
  for (const auto& t : gemma4_tensors(shape)) {
    // rope_freqs is generated by the converter and layer_scalar is a buffer, not a parameter, in transformers.
    if (t.role == TensorRole::kRopeFreqs || t.role == TensorRole::kLayerOutputScale) continue;
    n += t.n_elements();
  }
  return n;
}

std::optional<std::string> gemma4_hf_to_gguf_name(std::string_view hf) {
  if (!consume(hf, "model.language_model.")) {
    if (!consume(hf, "model.")) return std::nullopt;
  }
  auto match = match_hf_tensor_name(hf);
  if (!match) return std::nullopt;
  return gguf_tensor_name(match->kind, match->layer);
}

}  // namespace fabula
