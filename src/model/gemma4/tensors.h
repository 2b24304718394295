// The one table of Gemma 4 tensors (docs/GEMMA4.md §2): GGUF and Hugging Face names, rank, presence and
// quantisation policy of each, and their shapes computed from the hyper-parameters. The loader checks files against
// it; convert, synth, quantize, experts and the LoRA planner plan from it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fabula {

struct Gemma4HParams;

enum class TensorKind {
  // Whole-model tensors.
  kTokenEmbd,  // also the tied output projection
  kOutputNorm,
  kRopeFreqs,  // proportional RoPE factors of full layers
  // Per-layer tensors ("blk.N.").
  kAttnNorm,
  kAttnQ,
  kAttnK,
  kAttnV,  // absent on K=V layers
  kAttnOutput,
  kAttnQNorm,
  kAttnKNorm,
  kPostAttentionNorm,
  kFfnNorm,  // pre_feedforward_layernorm
  kFfnGate,
  kFfnUp,
  kFfnDown,
  kPostFfwNorm1,
  kFfnGateInp,       // router projection
  kFfnGateInpScale,  // router scale
  kPreFfwNorm2,
  kFfnGateUpExps,  // per expert: n_ff_exp gate rows, then n_ff_exp up rows
  kFfnGateExps,    // split form of kFfnGateUpExps (read, never written)
  kFfnUpExps,
  kFfnDownExps,
  kFfnDownExpsScale,  // router.per_expert_scale
  kPostFfwNorm2,
  kPostFfwNorm,
  kLayerOutputScale,  // layer_scalar
};

enum class TensorPresence : uint8_t {
  kRequired,     // in every file (per-layer tensors: in every layer)
  kMoe,          // in every layer that has experts
  kOptional,     // may be left out: attn_v (K=V layers), rope_freqs, layer_output_scale
  kAlternative,  // the split expert stacks, accepted instead of the fused one; never written
};

struct TensorInfo {
  TensorKind kind;
  const char* gguf;    // "blk.{}.attn_q.weight": "{}" is the layer index (absent for whole-model tensors)
  const char* hf;      // after the text-model prefix ("model." / "model.language_model."); nullptr if generated
  const char* hf_alt;  // an older Hugging Face spelling, or nullptr
  int rank;
  bool per_layer;
  TensorPresence presence;
  bool quantizable;  // false: kept in F32 by convert and quantize (vectors, the router)
};

// Every row, in the order a converter writes them within a layer.
std::span<const TensorInfo> gemma4_tensor_table();
const TensorInfo& tensor_info(TensorKind kind);

// "blk.3.attn_q.weight" for (kAttnQ, 3); layer is ignored for whole-model tensors.
std::string gguf_tensor_name(TensorKind kind, int layer = -1);
// "layers.3.self_attn.q_proj.weight" (without the text-model prefix); "" for generated tensors.
std::string hf_tensor_name(TensorKind kind, int layer = -1);

struct TensorNameMatch {
  TensorKind kind;
  int layer = -1;  // -1 for whole-model tensors
};
// Parses a GGUF name ("blk.12.ffn_down_exps.scale") back to its kind and layer.
std::optional<TensorNameMatch> match_gguf_tensor_name(std::string_view name);
// Parses a Hugging Face name with the text prefix already removed ("layers.3.router.scale").
std::optional<TensorNameMatch> match_hf_tensor_name(std::string_view name);
// A full Hugging Face name ("model.language_model.layers.7.experts.down_proj") to its GGUF name; nullopt for names
// with no GGUF tensor (rotary buffers, embed_scale, vision tower).
std::optional<std::string> gemma4_hf_to_gguf_name(std::string_view hf_name);

// The shape of `kind` at `layer` in ggml order (shape[0] is the row length).
std::vector<uint64_t> gemma4_tensor_shape(const Gemma4HParams& hp, TensorKind kind, int layer = -1);

struct TensorSpec {
  std::string name;  // GGUF name
  std::vector<uint64_t> shape;
  TensorKind kind;
  int layer = -1;
  uint64_t n_elements() const;
};

// Every tensor a converter writes for `hp`, in order (658 for 26B-A4B): fused expert stacks, no attn_v on K=V full
// layers, rope_freqs when full layers use proportional RoPE, no expert tensors when n_expert is 0.
std::vector<TensorSpec> gemma4_tensors(const Gemma4HParams& hp);

// Parameters of the Hugging Face checkpoint (as transformers counts them: no generated rope_freqs, no buffers).
uint64_t gemma4_hf_parameter_count(const Gemma4HParams& hp);

}  // namespace fabula
