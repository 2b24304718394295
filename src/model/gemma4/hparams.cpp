// Gemma 4 hyper-parameters <-> GGUF metadata (gemma4.* keys as llama.cpp's converter writes them; docs/GEMMA4.md §1).
#include "model/gemma4/hparams.h"

#include <algorithm>
#include <cmath>

#include "format/gguf.h"

namespace fabula {
namespace {

namespace k = gemma4_keys;

Result<int64_t> get_int(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing metadata key {}", f.name(), key);
  auto i = v->as_i64();
  if (!i) return make_error(ErrorCode::kCorrupt, "{}: metadata {} must be an integer", f.name(), key);
  return *i;
}

int64_t get_int_or(const GgufFile& f, const char* key, int64_t fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  return v->as_i64().value_or(fallback);
}

Result<double> get_float(const GgufFile& f, const char* key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing metadata key {}", f.name(), key);
  auto d = v->as_f64();
  if (!d) return make_error(ErrorCode::kCorrupt, "{}: metadata {} must be a number", f.name(), key);
  return *d;
}

double get_float_or(const GgufFile& f, const char* key, double fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  return v->as_f64().value_or(fallback);
}

// A key that is either one integer for every layer or an integer array with one entry per layer.
Result<std::vector<int64_t>> get_per_layer_int(const GgufFile& f, const char* key, int64_t n_layer) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing metadata key {}", f.name(), key);
  if (v->type != GgufValueType::kArray) {
    auto i = v->as_i64();
    if (!i) return make_error(ErrorCode::kCorrupt, "{}: metadata {} must be an integer", f.name(), key);
    return std::vector<int64_t>(static_cast<size_t>(n_layer), *i);
  }
  std::vector<int64_t> out;
  if (auto* s = std::get_if<std::vector<int64_t>>(&v->data)) {
    out = *s;
  } else if (auto* u = std::get_if<std::vector<uint64_t>>(&v->data)) {
    for (uint64_t x : *u) out.push_back(static_cast<int64_t>(x));
  } else {
    return make_error(ErrorCode::kCorrupt, "{}: metadata {} must be an integer array", f.name(), key);
  }
  if (static_cast<int64_t>(out.size()) != n_layer) {
    return make_error(ErrorCode::kCorrupt, "{}: metadata {} has {} entries, expected block_count = {}", f.name(), key,
                      out.size(), n_layer);
  }
  return out;
}

}  // namespace

int64_t Gemma4HParams::max_ff() const {
  int64_t m = 0;
  for (int64_t x : n_ff) m = std::max(m, x);
  return m;
}

Status Gemma4HParams::validate() const {
  auto bad = [](const char* what) { return make_error(ErrorCode::kCorrupt, "gemma4 hyper-parameters: {}", what); };
  if (n_layer <= 0 || n_layer > 4096) return bad("block_count must be in [1, 4096]");
  if (n_embd <= 0 || n_head <= 0) return bad("embedding_length and head_count must be positive");
  const size_t nl = static_cast<size_t>(n_layer);
  if (n_head_kv.size() != nl || n_ff.size() != nl || sliding.size() != nl) {
    return bad("per-layer head_count_kv / feed_forward_length / sliding_window_pattern must have block_count entries");
  }
  for (size_t l = 0; l < nl; ++l) {
    if (n_head_kv[l] <= 0 || n_head % n_head_kv[l] != 0) return bad("head_count must be a multiple of head_count_kv");
    if (n_ff[l] <= 0) return bad("feed_forward_length must be positive");
  }
  const bool any_sliding = std::find(sliding.begin(), sliding.end(), true) != sliding.end();
  const bool any_full = std::find(sliding.begin(), sliding.end(), false) != sliding.end();
  if (any_full && (head_dim_full <= 0 || head_dim_full % 2 != 0)) return bad("key_length must be positive and even");
  if (any_sliding && (head_dim_swa <= 0 || head_dim_swa % 2 != 0)) {
    return bad("key_length_swa must be positive and even");
  }
  if (any_sliding && sliding_window <= 0) return bad("sliding_window must be positive");
  if (any_full && (n_rot_full <= 0 || n_rot_full > head_dim_full || n_rot_full % 2 != 0)) {
    return bad("rope.dimension_count must be even and in [2, key_length]");
  }
  if (any_sliding && (n_rot_swa <= 0 || n_rot_swa > head_dim_swa || n_rot_swa % 2 != 0)) {
    return bad("rope.dimension_count_swa must be even and in [2, key_length_swa]");
  }
  if (n_expert < 0 || n_expert_used < 0 || n_expert_used > n_expert) return bad("expert_used_count > expert_count");
  if (n_expert > 0 && (n_expert_used == 0 || n_ff_exp <= 0)) {
    return bad("a MoE model needs expert_used_count and expert_feed_forward_length");
  }
  if (!(rms_eps > 0) || !(rope_base_full > 0) || !(rope_base_swa > 0)) return bad("eps and rope bases must be > 0");
  if (final_softcap < 0) return bad("final_logit_softcapping must be >= 0");
  if (shared_kv_layers != 0) return make_error(ErrorCode::kUnsupported, "gemma4: shared_kv_layers != 0 (E2B/E4B)");
  if (n_embd_per_layer != 0) {
    return make_error(ErrorCode::kUnsupported, "gemma4: per-layer input embeddings (E2B/E4B) are not supported");
  }
  return ok_status();
}

Result<Gemma4HParams> gemma4_hparams_from_gguf(const GgufFile& f) {
  Gemma4HParams hp;
  FABULA_ASSIGN(hp.n_layer, get_int(f, k::kBlockCount));
  if (hp.n_layer <= 0 || hp.n_layer > 4096) {
    return make_error(ErrorCode::kCorrupt, "{}: {} = {} out of range", f.name(), k::kBlockCount, hp.n_layer);
  }
  FABULA_ASSIGN(hp.n_embd, get_int(f, k::kEmbeddingLength));
  hp.n_ctx_train = get_int_or(f, k::kContextLength, 0);
  FABULA_ASSIGN(hp.n_head, get_int(f, k::kHeadCount));
  FABULA_ASSIGN(hp.n_head_kv, get_per_layer_int(f, k::kHeadCountKv, hp.n_layer));
  FABULA_ASSIGN(hp.n_ff, get_per_layer_int(f, k::kFeedForwardLength, hp.n_layer));

  const GgufValue* pattern = f.find(k::kSlidingWindowPattern);
  if (pattern == nullptr) {
    return make_error(ErrorCode::kNotFound, "{}: missing metadata key {}", f.name(), k::kSlidingWindowPattern);
  }
  if (auto* bools = std::get_if<std::vector<bool>>(&pattern->data); bools && pattern->type == GgufValueType::kArray) {
    if (static_cast<int64_t>(bools->size()) != hp.n_layer) {
      return make_error(ErrorCode::kCorrupt, "{}: {} has {} entries, expected block_count = {}", f.name(),
                        k::kSlidingWindowPattern, bools->size(), hp.n_layer);
    }
    hp.sliding = *bools;
  } else if (auto period = pattern->as_i64(); period && *period > 0) {
    // Older scalar form: every period-th layer is full.
    for (int64_t l = 0; l < hp.n_layer; ++l) hp.sliding.push_back((l + 1) % *period != 0);
  } else {
    return make_error(ErrorCode::kCorrupt, "{}: {} must be a bool array", f.name(), k::kSlidingWindowPattern);
  }

  FABULA_ASSIGN(hp.head_dim_full, get_int(f, k::kKeyLength));
  if (get_int_or(f, k::kValueLength, hp.head_dim_full) != hp.head_dim_full) {
    return make_error(ErrorCode::kUnsupported, "{}: {} != {}", f.name(), k::kValueLength, k::kKeyLength);
  }
  hp.head_dim_swa = get_int_or(f, k::kKeyLengthSwa, hp.head_dim_full);
  if (get_int_or(f, k::kValueLengthSwa, hp.head_dim_swa) != hp.head_dim_swa) {
    return make_error(ErrorCode::kUnsupported, "{}: {} != {}", f.name(), k::kValueLengthSwa, k::kKeyLengthSwa);
  }
  hp.sliding_window = get_int_or(f, k::kSlidingWindow, 0);
  hp.n_expert = get_int_or(f, k::kExpertCount, 0);
  hp.n_expert_used = get_int_or(f, k::kExpertUsedCount, 0);
  hp.n_ff_exp = get_int_or(f, k::kExpertFeedForwardLength, 0);
  FABULA_ASSIGN(hp.rope_base_full, get_float(f, k::kRopeFreqBase));
  hp.rope_base_swa = get_float_or(f, k::kRopeFreqBaseSwa, hp.rope_base_full);
  hp.n_rot_full = get_int_or(f, k::kRopeDimensionCount, hp.head_dim_full);
  hp.n_rot_swa = get_int_or(f, k::kRopeDimensionCountSwa, hp.head_dim_swa);
  FABULA_ASSIGN(hp.rms_eps, get_float(f, k::kRmsEps));
  hp.final_softcap = get_float_or(f, k::kFinalSoftcap, 0.0);
  hp.shared_kv_layers = get_int_or(f, k::kSharedKvLayers, 0);
  hp.n_embd_per_layer = get_int_or(f, k::kEmbdPerLayerInput, 0);

  if (const GgufValue* v = f.find(k::kRopeInvFreqType); v != nullptr) {
    const std::string* s = v->as_string();
    if (s == nullptr || (*s != "bf16" && *s != "f32")) {
      return make_error(ErrorCode::kCorrupt, "{}: metadata {} must be \"f32\" or \"bf16\"", f.name(),
                        k::kRopeInvFreqType);
    }
    hp.rope_inv_freq_bf16 = *s == "bf16";
  }

  if (auto st = hp.validate(); !st.ok()) {
    return make_error(st.error().code, "{}: {}", f.name(), st.error().message);
  }
  return hp;
}

void gemma4_hparams_to_gguf(const Gemma4HParams& hp, GgufWriter& w) {
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  auto f32 = [](double v) { return GgufValue::f32(static_cast<float>(v)); };
  const bool kv_uniform = std::all_of(hp.n_head_kv.begin(), hp.n_head_kv.end(),
                                      [&](int64_t x) { return x == hp.n_head_kv.front(); });
  const bool ff_uniform =
      std::all_of(hp.n_ff.begin(), hp.n_ff.end(), [&](int64_t x) { return x == hp.n_ff.front(); });

  w.set(k::kArchitecture, GgufValue::string(kGemma4Architecture));
  w.set(k::kBlockCount, u32(hp.n_layer));
  w.set(k::kContextLength, u32(hp.n_ctx_train));
  w.set(k::kEmbeddingLength, u32(hp.n_embd));
  if (ff_uniform) {
    w.set(k::kFeedForwardLength, u32(hp.n_ff.front()));
  } else {
    w.set(k::kFeedForwardLength, GgufValue::array(GgufValueType::kI32, hp.n_ff));
  }
  w.set(k::kHeadCount, u32(hp.n_head));
  // llama.cpp writes the per-layer array (its loader accepts both); a uniform model gets the scalar.
  if (kv_uniform) {
    w.set(k::kHeadCountKv, u32(hp.n_head_kv.front()));
  } else {
    w.set(k::kHeadCountKv, GgufValue::array(GgufValueType::kI32, hp.n_head_kv));
  }
  w.set(k::kRopeFreqBase, f32(hp.rope_base_full));
  w.set(k::kRopeFreqBaseSwa, f32(hp.rope_base_swa));
  w.set(k::kRmsEps, f32(hp.rms_eps));
  if (hp.n_expert > 0) {
    w.set(k::kExpertCount, u32(hp.n_expert));
    w.set(k::kExpertUsedCount, u32(hp.n_expert_used));
  }
  w.set(k::kKeyLength, u32(hp.head_dim_full));
  w.set(k::kValueLength, u32(hp.head_dim_full));
  if (hp.final_softcap > 0) w.set(k::kFinalSoftcap, f32(hp.final_softcap));
  w.set(k::kSlidingWindow, u32(hp.sliding_window));
  w.set(k::kSharedKvLayers, u32(hp.shared_kv_layers));
  w.set(k::kEmbdPerLayerInput, u32(hp.n_embd_per_layer));
  w.set(k::kSlidingWindowPattern, GgufValue::array(hp.sliding));
  w.set(k::kKeyLengthSwa, u32(hp.head_dim_swa));
  w.set(k::kValueLengthSwa, u32(hp.head_dim_swa));
  if (hp.n_expert > 0) w.set(k::kExpertFeedForwardLength, u32(hp.n_ff_exp));
  w.set(k::kRopeDimensionCount, u32(hp.n_rot_full));
  w.set(k::kRopeDimensionCountSwa, u32(hp.n_rot_swa));
  if (hp.rope_inv_freq_bf16) w.set(k::kRopeInvFreqType, GgufValue::string("bf16"));
}

std::vector<float> gemma4_rope_freqs(const Gemma4HParams& hp) {
  const int64_t n_pairs = hp.head_dim_full / 2;
  // transformers: rope_angles = int(partial_rotary_factor * head_dim // 2).
  const auto rotated = static_cast<int64_t>(std::floor(hp.partial_rotary_full * static_cast<double>(hp.head_dim_full) / 2.0));
  std::vector<float> f(static_cast<size_t>(n_pairs), 1e30f);
  for (int64_t i = 0; i < std::min(rotated, n_pairs); ++i) f[static_cast<size_t>(i)] = 1.0f;
  return f;
}

}  // namespace fabula
