// Gemma 4 hyper-parameters from a Hugging Face config.json (per_layer_config or global_head_dim forms), read through
// HfConfig; docs/GEMMA4.md §1 maps each field to its GGUF key.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "format/hf_config.h"
#include "model/gemma4/hparams.h"

namespace fabula {
namespace {

Error config_error(const HfConfig& c, const std::string& what) {
  return make_error(ErrorCode::kUnsupported, "{}: {}", c.name(), what);
}

}  // namespace

Result<Gemma4HParams> gemma4_hparams_from_hf(const HfConfig& c) {
  Gemma4HParams hp;
  FABULA_ASSIGN(hp.n_layer, c.get_int("num_hidden_layers"));
  FABULA_ASSIGN(hp.n_embd, c.get_int("hidden_size"));
  FABULA_ASSIGN(hp.n_head, c.get_int("num_attention_heads"));
  FABULA_ASSIGN(hp.n_vocab, c.get_int_or("vocab_size", 0));
  FABULA_ASSIGN(hp.n_ctx_train, c.get_int_or("max_position_embeddings", 0));
  if (hp.n_layer <= 0 || hp.n_layer > 4096 || hp.n_head <= 0 || hp.n_embd <= 0) {
    return config_error(c, "num_hidden_layers, hidden_size and num_attention_heads must be positive");
  }
  FABULA_ASSIGN(const int64_t base_kv, c.get_int_or("num_key_value_heads", hp.n_head));
  FABULA_ASSIGN(const int64_t base_hd, c.get_int_or("head_dim", hp.n_embd / hp.n_head));
  FABULA_ASSIGN(const int64_t global_hd, c.get_int_or("global_head_dim", base_hd));
  FABULA_ASSIGN(const int64_t global_kv, c.get_int_or("num_global_key_value_heads", base_kv));

  // Layer kinds: layer_types, else every sliding_window_pattern-th layer is full (and the last one always).
  if (c.has("layer_types")) {
    FABULA_ASSIGN(auto types, c.get_string_array("layer_types"));
    if (static_cast<int64_t>(types.size()) != hp.n_layer) {
      return config_error(c, fmt::format("layer_types has {} entries, num_hidden_layers is {}", types.size(),
                                         hp.n_layer));
    }
    for (const auto& t : types) {
      if (t != "sliding_attention" && t != "full_attention") {
        return config_error(c, "layer_types: unknown layer type '" + t + "'");
      }
      hp.sliding.push_back(t == "sliding_attention");
    }
  } else {
    FABULA_ASSIGN(const int64_t period, c.get_int_or("sliding_window_pattern", 6));
    for (int64_t l = 0; l < hp.n_layer; ++l) hp.sliding.push_back(period <= 0 || (l + 1) % period != 0);
    hp.sliding.back() = false;
  }

  // Per-layer overrides: {"5": {"head_dim": 128, "num_key_value_heads": 1}} (keys may be zero-padded: "05").
  std::map<int64_t, std::pair<int64_t, int64_t>> overrides;  // layer -> (head_dim, kv heads); 0 = not given
  if (c.has("per_layer_config")) {
    FABULA_ASSIGN(const HfConfig plc, c.get_object("per_layer_config"));
    for (const std::string& key : plc.keys()) {
      int64_t layer = -1;
      auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), layer);
      if (ec != std::errc() || end != key.data() + key.size()) layer = -1;
      if (layer < 0 || layer >= hp.n_layer) return config_error(c, "per_layer_config: bad layer key '" + key + "'");
      FABULA_ASSIGN(const HfConfig layer_config, plc.get_object(key));
      FABULA_ASSIGN(const int64_t hd, layer_config.get_int_or("head_dim", 0));
      FABULA_ASSIGN(const int64_t kv, layer_config.get_int_or("num_key_value_heads", 0));
      overrides[layer] = {hd, kv};
    }
  }
  int64_t hd_swa = 0, hd_full = 0;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const bool sliding = hp.sliding[static_cast<size_t>(l)];
    int64_t hd = sliding ? base_hd : global_hd;
    int64_t kv = sliding ? base_kv : global_kv;
    if (auto it = overrides.find(l); it != overrides.end()) {
      if (it->second.first > 0) hd = it->second.first;
      if (it->second.second > 0) kv = it->second.second;
    }
    int64_t& slot = sliding ? hd_swa : hd_full;
    if (slot != 0 && slot != hd) {
      return config_error(c, fmt::format("layer {}: head_dim {} differs from other {} layers ({}); GGUF has one "
                                         "key_length per layer kind", l, hd, sliding ? "sliding" : "full", slot));
    }
    slot = hd;
    hp.n_head_kv.push_back(kv);
  }
  hp.head_dim_swa = hd_swa != 0 ? hd_swa : hd_full;
  hp.head_dim_full = hd_full != 0 ? hd_full : hd_swa;

  FABULA_ASSIGN(hp.k_eq_v, c.get_bool_or("attention_k_eq_v", false));
  FABULA_ASSIGN(const bool double_wide, c.get_bool_or("use_double_wide_mlp", false));
  if (double_wide) return config_error(c, "use_double_wide_mlp is not supported");
  FABULA_ASSIGN(const int64_t n_ff, c.get_int("intermediate_size"));
  hp.n_ff.assign(static_cast<size_t>(hp.n_layer), n_ff);
  FABULA_ASSIGN(hp.sliding_window, c.get_int_or("sliding_window", 0));
  FABULA_ASSIGN(const bool moe, c.get_bool_or("enable_moe_block", false));
  if (moe) {
    FABULA_ASSIGN(hp.n_expert, c.get_int("num_experts"));
    FABULA_ASSIGN(hp.n_expert_used, c.get_int("top_k_experts"));
    FABULA_ASSIGN(hp.n_ff_exp, c.get_int("moe_intermediate_size"));
  }

  // RoPE: rope_parameters.{full,sliding}_attention (transformers 5), else rope_theta / rope_local_base_freq.
  FABULA_ASSIGN(const double theta, c.get_double_or("rope_theta", 1e6));
  FABULA_ASSIGN(const double theta_local, c.get_double_or("rope_local_base_freq", 1e4));
  FABULA_ASSIGN(hp.rope_base_full, c.get_double_or("rope_parameters.full_attention.rope_theta", theta));
  FABULA_ASSIGN(hp.rope_base_swa, c.get_double_or("rope_parameters.sliding_attention.rope_theta", theta_local));
  FABULA_ASSIGN(const std::string full_type,
                c.get_string_or("rope_parameters.full_attention.rope_type", "default"));
  FABULA_ASSIGN(const std::string swa_type,
                c.get_string_or("rope_parameters.sliding_attention.rope_type", "default"));
  FABULA_ASSIGN(hp.partial_rotary_full,
                c.get_double_or("rope_parameters.full_attention.partial_rotary_factor", 1.0));
  FABULA_ASSIGN(const double swa_partial,
                c.get_double_or("rope_parameters.sliding_attention.partial_rotary_factor", 1.0));
  if (swa_type != "default" || swa_partial != 1.0) {
    return config_error(c, "sliding_attention RoPE must be default with all dims rotated");
  }
  hp.n_rot_swa = hp.head_dim_swa;
  if (full_type == "proportional") {
    // llama.cpp: n_rot = head_dim with a rope_freqs tensor that freezes the unrotated pairs.
    hp.proportional_rope_full = true;
    hp.n_rot_full = hp.head_dim_full;
  } else if (full_type == "default") {
    hp.n_rot_full = static_cast<int64_t>(std::floor(static_cast<double>(hp.head_dim_full) * hp.partial_rotary_full));
    hp.n_rot_full -= hp.n_rot_full % 2;
  } else {
    return config_error(c, "full_attention rope_type '" + full_type + "' is not supported");
  }

  FABULA_ASSIGN(hp.rms_eps, c.get_double_or("rms_norm_eps", 1e-6));
  if (c.has("final_logit_softcapping")) {
    FABULA_ASSIGN(hp.final_softcap, c.get_double("final_logit_softcapping"));
  }
  if (c.has("attn_logit_softcapping")) return config_error(c, "attn_logit_softcapping is not supported");
  FABULA_ASSIGN(hp.shared_kv_layers, c.get_int_or("num_kv_shared_layers", 0));
  FABULA_ASSIGN(hp.n_embd_per_layer, c.get_int_or("hidden_size_per_layer_input", 0));
  FABULA_ASSIGN(const std::string act, c.get_string_or("hidden_activation", "gelu_pytorch_tanh"));
  if (act != "gelu_pytorch_tanh") return config_error(c, "hidden_activation '" + act + "' is not supported");
  FABULA_ASSIGN(const bool tied, c.get_bool_or("tie_word_embeddings", true));
  if (!tied) return config_error(c, "untied lm_head (tie_word_embeddings = false) is not supported");

  if (auto st = hp.validate(); !st.ok()) return make_error(st.error().code, "{}: {}", c.name(), st.error().message);
  return hp;
}

}  // namespace fabula
