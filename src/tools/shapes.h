// Gemma 4 MoE shape tables: hyper-parameters -> the GGUF tensor list (name, ggml shape, role), plus HF name mapping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula {

// The hyper-parameters that fix every tensor shape of a Gemma 4 MoE text model (research/gemma4.md §1).
struct Gemma4Shape {
  std::string name;
  uint32_t n_layer = 0;
  uint32_t n_embd = 0;
  uint32_t n_vocab = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv_swa = 0;   // sliding layers
  uint32_t n_head_kv_full = 0;  // full (global) layers
  uint32_t head_dim_swa = 0;
  uint32_t head_dim_full = 0;
  uint32_t n_ff = 0;            // dense MLP, present in every layer
  uint32_t n_expert = 0;
  uint32_t n_expert_used = 0;
  uint32_t n_ff_exp = 0;        // per expert
  bool k_eq_v = true;           // full layers have no v_proj (V = K)
  std::vector<bool> is_full;    // per layer: true = full attention

  uint32_t n_full() const;
  uint32_t n_sliding() const { return n_layer - n_full(); }
};

// Built-in shapes: "gemma4-26b-a4b" (the real model), "gemma4-2b-a0.5b" (same structure, ~2 B parameters),
// "gemma4-demo" (models/fabula-demo-v1), "gemma4-tiny-moe" (tests/data/gemma4-tiny).
std::vector<std::string> gemma4_shape_names();
Result<Gemma4Shape> gemma4_shape(std::string_view name);

// Reads a HF config.json (text_config or flat; per_layer_config or global_head_dim/num_global_key_value_heads).
Result<Gemma4Shape> gemma4_shape_from_hf_config(const std::string& json_text, const std::string& source_name);

enum class TensorRole {
  kTokenEmbd, kOutputNorm, kRopeFreqs,
  kAttnNorm, kAttnQ, kAttnK, kAttnV, kAttnOutput, kAttnQNorm, kAttnKNorm, kPostAttnNorm,
  kFfnNorm, kFfnGate, kFfnUp, kFfnDown, kPostFfwNorm1,
  kFfnGateInp, kFfnGateInpScale, kPreFfwNorm2, kFfnGateUpExps, kFfnDownExps, kFfnDownExpsScale,
  kPostFfwNorm2, kPostFfwNorm, kLayerOutputScale,
};
std::string_view tensor_role_name(TensorRole role);

struct TensorSpec {
  std::string name;             // GGUF name
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the row length (in-features)
  TensorRole role;
  int layer = -1;               // -1 for model-level tensors
  uint64_t n_elements() const;
};

// Every GGUF tensor of the model, in llama.cpp's converter order (658 for gemma4-26b-a4b).
std::vector<TensorSpec> gemma4_tensors(const Gemma4Shape& shape);

// Parameters of the HF checkpoint (what transformers counts: no buffers, no generated rope_freqs).
uint64_t gemma4_hf_parameter_count(const Gemma4Shape& shape);

// HF parameter/buffer name -> GGUF name ("model." or "model.language_model." prefix; fused experts).
// nullopt for names that have no GGUF tensor (rotary buffers, embed_scale, vision tower).
std::optional<std::string> gemma4_hf_to_gguf_name(std::string_view hf_name);

}  // namespace fabula
