// The Gemma 4 model (hyper-parameters and weights from GGUF) and its session around the forward pass: KV cache and
// scratch allocation, token stepping, rollback.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/log.h"
#include "model/gemma4/kv_layout.h"
#include "model/gemma4/session_state.h"
#include "tensor/fp16.h"
#include "tensor/kv_attention.h"

namespace fabula {

Result<std::unique_ptr<Model>> gemma4_load_model(GgufFile file) {
  std::unique_ptr<Gemma4Model> m(new Gemma4Model(std::move(file)));
  FABULA_ASSIGN(m->hp_, gemma4_hparams_from_gguf(m->file_));
  FABULA_ASSIGN(m->w_, gemma4_bind_weights(m->file_, m->hp_));
  const Gemma4HParams& hp = m->hp_;
  m->info_ = {kGemma4Architecture, hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_ctx_train, hp.n_expert, hp.n_expert_used};
  return std::unique_ptr<Model>(std::move(m));
}

std::unique_ptr<SessionState> Gemma4Model::new_session(const SessionOptions& options, ThreadPool* pool) const {
  return std::make_unique<Gemma4Session>(*this, options, pool);
}

const QuantizedActivations& SharedActivations::for_weight(GgmlType weight_type, ThreadPool* pool) {
  const GgmlType t = vec_dot_type(weight_type);
  for (auto& slot : slots_) {
    if (slot.valid && slot.type == t) return slot.q;
  }
  for (auto& slot : slots_) {
    if (!slot.valid) {
      slot.q.quantize(t, x_, rows_, cols_, pool);
      slot.type = t;
      slot.valid = true;
      return slot.q;
    }
  }
  slots_[0].q.quantize(t, x_, rows_, cols_, pool);  // more than 4 types for one input: recycle
  slots_[0].type = t;
  return slots_[0].q;
}

namespace {

std::vector<float> inverse_frequencies(int64_t n_rot, double base, const std::vector<float>& factors, bool bf16) {
  std::vector<float> inv(static_cast<size_t>(n_rot / 2));
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    // transformers computes base ** (2i / dim) in f32; ggml divides by the frequency factor.
    float f = static_cast<float>(1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(n_rot)));
    if (!factors.empty()) f /= factors[static_cast<size_t>(i)];
    // transformers keeps the inv_freq buffer in the checkpoint's dtype: a bf16 checkpoint rotates by bf16 angles.
    if (bf16) f = bf16_to_fp32(fp32_to_bf16(f));
    inv[static_cast<size_t>(i)] = f;
  }
  return inv;
}

}  // namespace

int64_t Gemma4Session::scores_per_thread(int64_t max_cap) const {
  return std::min<int64_t>(hp->n_head, kKvMaxHeadsPerCall) * max_cap;
}

Gemma4Session::Gemma4Session(const Gemma4Model& model, SessionOptions options, ThreadPool* pool, bool with_cache) {
  Gemma4Session& s = *this;
  const Gemma4HParams& hp = model.hparams();
  s.hp = &hp;
  s.w = &model.weights();
  options.n_ctx = std::max<int64_t>(1, options.n_ctx);
  options.n_ubatch = std::clamp<int64_t>(options.n_ubatch, 1, options.n_ctx);
  s.opt = options;
  s.n_ctx = options.n_ctx;
  if (pool == nullptr) {
    s.own_pool = std::make_unique<ThreadPool>(options.n_threads);
    pool = s.own_pool.get();
  }
  s.pool = pool;

  const int64_t U = options.n_ubatch, E = hp.n_embd;
  int64_t qd = 0, kd = 0, max_cap = 1;
  s.cache.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    LayerKvCache& c = s.cache[static_cast<size_t>(l)];
    const int64_t hd = hp.head_dim(l), n_kv = hp.n_kv(l);
    FABULA_CHECK(hd <= kKvMaxHeadDim);
    c.capacity = gemma4_kv_capacity(hp, l, options.n_ctx, U);
    c.k_type = options.cache_type.k;
    c.v_type = options.cache_type.v;
    c.k_head = kv_head_bytes(c.k_type, hd);
    c.v_head = kv_head_bytes(c.v_type, hd);
    c.k_row = n_kv * static_cast<int64_t>(c.k_head);
    c.v_row = n_kv * static_cast<int64_t>(c.v_head);
    if (with_cache) {
      c.k.assign(static_cast<size_t>(c.capacity * c.k_row), 0);
      c.v.assign(static_cast<size_t>(c.capacity * c.v_row), 0);
      max_cap = std::max(max_cap, c.capacity);
    }
    qd = std::max(qd, hp.n_head * hd);
    kd = std::max(kd, n_kv * hd);
  }
  s.inv_freq_full = inverse_frequencies(hp.n_rot_full, hp.rope_base_full, s.w->rope_freqs, hp.rope_inv_freq_bf16);
  s.inv_freq_swa = inverse_frequencies(hp.n_rot_swa, hp.rope_base_swa, {}, hp.rope_inv_freq_bf16);

  auto sz = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  s.x.resize(sz(U, E));
  s.a.resize(sz(U, E));
  s.q.resize(sz(U, qd));
  s.k.resize(sz(U, kd));
  s.v.resize(sz(U, kd));
  s.attn.resize(sz(U, qd));
  s.o.resize(sz(U, E));
  s.gate.resize(sz(U, hp.max_ff()));
  s.up.resize(sz(U, hp.max_ff()));
  s.moe.resize(sz(U, E));
  s.z.resize(sz(U, E));
  const int64_t NE = std::max<int64_t>(hp.n_expert, 1), K = std::max<int64_t>(hp.n_expert_used, 1);
  const int64_t FE = std::max<int64_t>(hp.n_ff_exp, 1);
  s.router.resize(sz(U, NE));
  s.sel.resize(sz(U, K));
  s.sel_w.resize(sz(U, K));
  s.exp_rows.resize(sz(U, K));
  s.exp_count.resize(static_cast<size_t>(NE));
  s.exp_end.resize(static_cast<size_t>(NE));
  s.exp_token.resize(sz(U, K));
  s.exp_pos.resize(sz(U, K));
  s.exp_gemm.resize(static_cast<size_t>(NE));
  s.exp_tmp.resize(sz(U, K));
  s.row_seg.resize(static_cast<size_t>(U));
  s.egu.resize(sz(U * K, 2 * FE));
  s.eact.resize(sz(U * K, FE));
  s.eout.resize(sz(U * K, E));
  s.moe_jobs.reserve(static_cast<size_t>(2 * NE + 3));  // experts' gate and up, plus the dense products
  s.scores.resize(sz(pool->size(), s.scores_per_thread(max_cap)));
  s.rope_cs.resize(sz(pool->size(), std::max(hp.n_rot_full, hp.n_rot_swa)));
  s.attn_blocks.reserve(sz(U, hp.n_head));  // at most one block per token and head
  s.logits.resize(static_cast<size_t>(hp.n_vocab));
  s.row_pos.resize(static_cast<size_t>(U));
  s.row_cache.resize(static_cast<size_t>(U));
  s.logit_rows.reserve(static_cast<size_t>(U));
}

Status Gemma4Session::decode(std::span<const int32_t> tokens, LogitsMode mode) {
  Gemma4Session& s = *this;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "decode: no tokens");
  if (s.n_past + n > s.opt.n_ctx) {
    return make_error(ErrorCode::kOutOfRange, "decode: {} + {} tokens exceed the context of {}", s.n_past, n,
                      s.opt.n_ctx);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[static_cast<size_t>(i)] < 0 || tokens[static_cast<size_t>(i)] >= s.hp->n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "decode: token {} at index {} is outside the vocabulary [0, {})",
                        tokens[static_cast<size_t>(i)], i, s.hp->n_vocab);
    }
  }
  const int64_t V = s.hp->n_vocab;
  s.logits_rows = mode == LogitsMode::kAll ? n : mode == LogitsMode::kLast ? 1 : 0;
  if (s.logits.size() < static_cast<size_t>(s.logits_rows * V)) s.logits.resize(static_cast<size_t>(s.logits_rows * V));

  for (int64_t begin = 0; begin < n; begin += s.opt.n_ubatch) {
    const int64_t step = std::min(s.opt.n_ubatch, n - begin);
    const bool last_step = begin + step == n;
    s.logit_rows.clear();
    if (mode == LogitsMode::kAll) {
      for (int64_t t = 0; t < step; ++t) s.logit_rows.push_back(t);
    } else if (mode == LogitsMode::kLast && last_step) {
      s.logit_rows.push_back(step - 1);
    }
    for (int64_t t = 0; t < step; ++t) {
      s.row_pos[static_cast<size_t>(t)] = s.n_past + t;
      s.row_cache[static_cast<size_t>(t)] = s.cache.data();
    }
    s.seg_end.assign(1, step);
    s.forward_step(tokens.data() + begin, step, s.logits.data() + (mode == LogitsMode::kAll ? begin * V : 0));
    s.n_past += step;
  }
  return ok_status();
}

Status Gemma4Session::truncate(int64_t n) {
  Gemma4Session& s = *this;
  if (n < 0 || n > s.n_past) {
    return make_error(ErrorCode::kOutOfRange, "truncate: {} is outside [0, {}]", n, s.n_past);
  }
  for (int64_t l = 0; l < s.hp->n_layer; ++l) {
    const LayerKvCache& c = s.cache[static_cast<size_t>(l)];
    if (!s.hp->is_sliding(l) || n == 0) continue;
    // The ring holds positions [n_past - capacity, n_past); a query at n needs n - window + 1 ...
    const int64_t oldest_needed = std::max<int64_t>(0, n - s.hp->sliding_window + 1);
    if (oldest_needed < s.n_past - c.capacity) {
      return make_error(ErrorCode::kOutOfRange,
                        "truncate: cannot roll back {} positions (the sliding-window cache keeps {} beyond the "
                        "window; raise n_ubatch)", s.n_past - n, c.capacity - s.hp->sliding_window + 1);
    }
  }
  s.n_past = n;
  return ok_status();
}

Status Gemma4Session::copy_cache_from(const SessionState& other) {
  const auto* src = dynamic_cast<const Gemma4Session*>(&other);
  if (src == nullptr || src->hp != hp) return make_error(ErrorCode::kInvalidArgument, "copy_cache_from: another model");
  if (src->n_ctx != n_ctx || src->opt.n_ubatch != opt.n_ubatch || src->cache.size() != cache.size())
    return make_error(ErrorCode::kInvalidArgument, "copy_cache_from: the sessions differ in n_ctx or n_ubatch");
  std::vector<float> values(static_cast<size_t>(kKvMaxHeadDim));
  auto convert = [&](KvType from, const uint8_t* in, size_t in_head, KvType to, uint8_t* out, size_t out_head,
                     int64_t heads, int64_t d) {
    if (from == to) {  // the bytes as they are (a rotated type would not survive a second rounding unchanged)
      std::memcpy(out, in, static_cast<size_t>(heads) * in_head);
      return;
    }
    for (int64_t h = 0; h < heads; ++h) {
      kv_dequantize_head(from, in + h * in_head, d, values.data());
      kv_quantize_head(to, values.data(), d, out + h * out_head);
    }
  };
  for (int64_t l = 0; l < hp->n_layer; ++l) {
    const LayerKvCache& a = src->cache[static_cast<size_t>(l)];
    LayerKvCache& b = cache[static_cast<size_t>(l)];
    if (a.k.empty() || b.k.empty() || a.capacity != b.capacity)
      return make_error(ErrorCode::kInvalidArgument, "copy_cache_from: layer {} has no cache of the same size", l);
    const int64_t slots = std::min(src->n_past, a.capacity), heads = hp->n_kv(l), d = hp->head_dim(l);
    for (int64_t slot = 0; slot < slots; ++slot) {
      convert(a.k_type, a.k.data() + slot * a.k_row, a.k_head, b.k_type, b.k.data() + slot * b.k_row, b.k_head, heads, d);
      convert(a.v_type, a.v.data() + slot * a.v_row, a.v_head, b.v_type, b.v.data() + slot * b.v_row, b.v_head, heads, d);
    }
  }
  n_past = src->n_past;
  return ok_status();
}

}  // namespace fabula
