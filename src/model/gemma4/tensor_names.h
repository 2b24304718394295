// The one table of Gemma 4 tensor names: GGUF name, Hugging Face name, rank — shared by loader, converter,
// quantizer, synth and inspect (research/gemma4.md §3).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fabula {

enum class TensorKind {
  // Whole-model tensors.
  kTokenEmbd,         // {n_embd, n_vocab}; also the tied output projection
  kOutputNorm,        // {n_embd}
  kRopeFreqs,         // {head_dim_full / 2}: 1 / 1e30 per rotary pair (proportional RoPE of full layers)
  // Per-layer tensors ("blk.N.").
  kAttnNorm,          // {n_embd}
  kAttnQ,             // {n_embd, n_head * head_dim}
  kAttnK,             // {n_embd, n_head_kv * head_dim}
  kAttnV,             // {n_embd, n_head_kv * head_dim}; absent on K=V layers
  kAttnOutput,        // {n_head * head_dim, n_embd}
  kAttnQNorm,         // {head_dim}
  kAttnKNorm,         // {head_dim}
  kPostAttentionNorm, // {n_embd}
  kFfnNorm,           // {n_embd}   pre_feedforward_layernorm
  kFfnGate,           // {n_embd, n_ff}
  kFfnUp,             // {n_embd, n_ff}
  kFfnDown,           // {n_ff, n_embd}
  kPostFfwNorm1,      // {n_embd}
  kFfnGateInp,        // {n_embd, n_expert}  router projection
  kFfnGateInpScale,   // {n_embd}            router scale
  kPreFfwNorm2,       // {n_embd}
  kFfnGateUpExps,     // {n_embd, 2 * n_ff_exp, n_expert}  rows [0, n_ff_exp) gate, then up
  kFfnGateExps,       // {n_embd, n_ff_exp, n_expert}      split form (accepted by the loader)
  kFfnUpExps,         // {n_embd, n_ff_exp, n_expert}
  kFfnDownExps,       // {n_ff_exp, n_embd, n_expert}
  kFfnDownExpsScale,  // {n_expert}  router.per_expert_scale
  kPostFfwNorm2,      // {n_embd}
  kPostFfwNorm,       // {n_embd}
  kLayerOutputScale,  // {1}  layer_scalar
};

struct TensorNameInfo {
  TensorKind kind;
  const char* gguf;    // "blk.{}.attn_q.weight" — "{}" is the layer index; no "{}" for whole-model tensors
  const char* hf;      // after the text-model prefix ("model." / "model.language_model."); nullptr if generated
  const char* hf_alt;  // an older Hugging Face spelling, or nullptr
  int rank;            // number of dimensions
  bool per_layer;
};

// Every row of the table, in the order a converter writes them within a layer.
std::span<const TensorNameInfo> gemma4_tensor_table();
const TensorNameInfo& tensor_info(TensorKind kind);

// "blk.3.attn_q.weight" for (kAttnQ, 3); layer is ignored for whole-model tensors.
std::string gguf_tensor_name(TensorKind kind, int layer = -1);

// A tensor name resolved against the table.
struct TensorNameMatch {
  TensorKind kind;
  int layer = -1;  // -1 for whole-model tensors
};

// Parses a GGUF name ("blk.12.ffn_down_exps.scale") back to its kind and layer.
std::optional<TensorNameMatch> match_gguf_tensor_name(std::string_view name);
// Parses a Hugging Face name with the text prefix already removed ("layers.3.router.scale").
std::optional<TensorNameMatch> match_hf_tensor_name(std::string_view name);

// True for 1-D tensors (norms, scales, rope_freqs) that converters and quantizers keep in F32.
bool tensor_is_vector(TensorKind kind);

}  // namespace fabula
