// Gemma 4 hyper-parameters: read from GGUF metadata (llama.cpp's gemma4.* keys) or a Hugging Face config, written
// to GGUF, or taken from a named preset (docs/GEMMA4.md §1). Nothing here is specific to one model size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula {

class GgufFile;
class GgufWriter;
class HfConfig;

struct Gemma4HParams {
  int64_t n_layer = 0;
  int64_t n_embd = 0;              // hidden_size
  int64_t n_vocab = 0;             // from token_embd (0 until a loader or converter fills it)
  int64_t n_ctx_train = 0;         // max_position_embeddings
  int64_t n_head = 0;              // query heads, all layers
  std::vector<int64_t> n_head_kv;  // per layer
  std::vector<int64_t> n_ff;       // dense MLP width, per layer
  std::vector<bool> sliding;       // per layer: true = sliding-window attention, false = full
  int64_t head_dim_full = 0;       // key_length (= value_length) of full layers
  int64_t head_dim_swa = 0;        // key_length_swa of sliding layers
  int64_t sliding_window = 0;      // a query sees itself and the window-1 previous positions
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;            // expert intermediate width
  double rope_base_full = 1e6;
  double rope_base_swa = 1e4;
  int64_t n_rot_full = 0;          // rope.dimension_count (rotary dims of full layers, before rope_freqs)
  int64_t n_rot_swa = 0;           // rope.dimension_count_swa
  double rms_eps = 1e-6;
  double final_softcap = 0;        // 0 = none
  int64_t shared_kv_layers = 0;    // must be 0 (KV sharing of E2B/E4B is not implemented)
  int64_t n_embd_per_layer = 0;    // must be 0 (per-layer embeddings of E2B/E4B are not implemented)
  // fabula extension (key fabula.rope_inv_freq_type = "bf16"): round RoPE inverse frequencies to bf16, as
  // transformers does when it runs a bf16 checkpoint (its inv_freq buffer takes the model dtype). llama.cpp ignores it.
  bool rope_inv_freq_bf16 = false;
  // Full layers have no V projection (V = the raw K). Not a GGUF key: such a file has no attn_v on those layers.
  bool k_eq_v = false;
  // Converter-side only (not a GGUF key; GGUF encodes it in the rope_freqs tensor).
  double partial_rotary_full = 1.0;
  bool proportional_rope_full = false;

  bool operator==(const Gemma4HParams&) const = default;

  bool is_sliding(int64_t layer) const { return sliding[static_cast<size_t>(layer)]; }
  int64_t head_dim(int64_t layer) const { return is_sliding(layer) ? head_dim_swa : head_dim_full; }
  int64_t n_kv(int64_t layer) const { return n_head_kv[static_cast<size_t>(layer)]; }
  int64_t n_rot(int64_t layer) const { return is_sliding(layer) ? n_rot_swa : n_rot_full; }
  int64_t max_head_dim() const { return head_dim_full > head_dim_swa ? head_dim_full : head_dim_swa; }
  int64_t max_ff() const;

  // Cross-field consistency (positive sizes, per-layer vector lengths, heads divisible by kv heads, ...).
  Status validate() const;
};

// general.architecture of this family (registered in model/family.cpp).
inline constexpr const char* kGemma4Architecture = "gemma4";

// GGUF keys (llama.cpp spelling). The architecture prefix is always "gemma4".
namespace gemma4_keys {
inline constexpr const char* kArchitecture = "general.architecture";
inline constexpr const char* kBlockCount = "gemma4.block_count";
inline constexpr const char* kContextLength = "gemma4.context_length";
inline constexpr const char* kEmbeddingLength = "gemma4.embedding_length";
inline constexpr const char* kFeedForwardLength = "gemma4.feed_forward_length";
inline constexpr const char* kHeadCount = "gemma4.attention.head_count";
inline constexpr const char* kHeadCountKv = "gemma4.attention.head_count_kv";
inline constexpr const char* kRopeFreqBase = "gemma4.rope.freq_base";
inline constexpr const char* kRopeFreqBaseSwa = "gemma4.rope.freq_base_swa";
inline constexpr const char* kRmsEps = "gemma4.attention.layer_norm_rms_epsilon";
inline constexpr const char* kExpertCount = "gemma4.expert_count";
inline constexpr const char* kExpertUsedCount = "gemma4.expert_used_count";
inline constexpr const char* kKeyLength = "gemma4.attention.key_length";
inline constexpr const char* kValueLength = "gemma4.attention.value_length";
inline constexpr const char* kFinalSoftcap = "gemma4.final_logit_softcapping";
inline constexpr const char* kSlidingWindow = "gemma4.attention.sliding_window";
inline constexpr const char* kSharedKvLayers = "gemma4.attention.shared_kv_layers";
inline constexpr const char* kEmbdPerLayerInput = "gemma4.embedding_length_per_layer_input";
inline constexpr const char* kSlidingWindowPattern = "gemma4.attention.sliding_window_pattern";
inline constexpr const char* kKeyLengthSwa = "gemma4.attention.key_length_swa";
inline constexpr const char* kValueLengthSwa = "gemma4.attention.value_length_swa";
inline constexpr const char* kExpertFeedForwardLength = "gemma4.expert_feed_forward_length";
inline constexpr const char* kRopeDimensionCount = "gemma4.rope.dimension_count";
inline constexpr const char* kRopeDimensionCountSwa = "gemma4.rope.dimension_count_swa";
// Not a llama.cpp key: see Gemma4HParams::rope_inv_freq_bf16.
inline constexpr const char* kRopeInvFreqType = "fabula.rope_inv_freq_type";
}  // namespace gemma4_keys

// Reads and validates every gemma4.* key; an error names the key and what was expected. The architecture itself is
// checked by the registry (model/family.h) before a family reads its keys.
// n_vocab is left 0 (the weights loader takes it from token_embd).
Result<Gemma4HParams> gemma4_hparams_from_gguf(const GgufFile& file);

// The text model's hyper-parameters from a Hugging Face config (the text sub-config for ForConditionalGeneration).
// Reads per_layer_config and global_head_dim / num_global_key_value_heads alike. n_vocab = vocab_size.
Result<Gemma4HParams> gemma4_hparams_from_hf(const HfConfig& text_config);

// Named shapes: "gemma4-26b-a4b" (the real model), "gemma4-2b-a0.5b" (same structure, ~2 B parameters),
// "gemma4-demo" (models/fabula-demo-v1), "gemma4-tiny-moe" (tests/data/gemma4-tiny; "gemma4-tiny" also works).
Result<Gemma4HParams> gemma4_preset(std::string_view name);

// Writes general.architecture and every gemma4.* key, in llama.cpp's order.
void gemma4_hparams_to_gguf(const Gemma4HParams& hp, GgufWriter& writer);

// The rope_freqs tensor for proportional RoPE on full layers: head_dim_full / 2 factors, 1 for the rotated pairs
// (int(partial * head_dim_full) / 2 of them) and 1e30 for the rest (ggml divides the angle by the factor).
std::vector<float> gemma4_rope_freqs(const Gemma4HParams& hp);

}  // namespace fabula
