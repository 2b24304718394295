// The Gemma 4 forward pass for one step of n tokens; reads top to bottom next to transformers'
// Gemma4TextDecoderLayer.forward (docs/GEMMA4.md §3). Shapes: n tokens, E = n_embd, H heads of hd dims,
// KV kv-heads, F = n_ff, NE experts (top K), FE = n_ff_exp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "model/gemma4/ops.h"
#include "model/gemma4/session_state.h"
#include "model/step_profile.h"
#include "tensor/activations.h"
#include "tensor/kv_attention.h"

namespace fabula {
void Gemma4Session::forward_step(const int32_t* tokens, int64_t n, float* logits_out) {
  const Gemma4HParams& h = *hp;
  const int64_t E = h.n_embd;
  const float eps = static_cast<float>(h.rms_eps);

  // x = embed_tokens[token] * sqrt(E)                                       x: [n][E]
  const float embed_scale = std::sqrt(static_cast<float>(E));
  std::optional<PhaseTimer> timer(std::in_place, StepPhase::kEmbed);
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = w->token_embd.data + static_cast<size_t>(tokens[t]) * w->token_embd.row_stride;
    float* xt = x.data() + t * E;
    dequantize_row(w->token_embd.type, row, xt, E);
    for (int64_t i = 0; i < E; ++i) xt[i] *= embed_scale;
  }
  timer.reset();
  if (hook) hook(0, n_past, x.data(), n, E);

  for (int l = 0; l < h.n_layer; ++l) {
    attention_block(l, n);
    ffn_block(l, n);
    if (hook) hook(l + 1, n_past, x.data(), n, E);
  }

  // Final norm and tied output projection, only for the rows whose logits are wanted (gathered into rows 0..m-1).
  const int64_t m = static_cast<int64_t>(logit_rows.size());
  const PhaseTimer head_timer(StepPhase::kHead);
  if (hook) {
    ops::rmsnorm_rows(x.data(), w->output_norm.data(), a.data(), n, E, eps);
    hook(static_cast<int>(h.n_layer) + 1, n_past, a.data(), n, E);
  }
  if (m > 0) {
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = logit_rows[static_cast<size_t>(i)];  // r >= i: rows ascend
      if (!hook) ops::rmsnorm(x.data() + r * E, w->output_norm.data(), a.data() + i * E, E, eps);
      else if (r != i) std::memmove(a.data() + i * E, a.data() + r * E, static_cast<size_t>(E) * sizeof(float));
    }
    const int64_t rows = m;
    float* out = logits_out;
    acts.set(a.data(), rows, E);
    // logits = softcap(a @ embed_tokens^T)                                 [rows][n_vocab]
    // Each thread caps its own rows while they are in cache (no serial pass over 262k logits after the head).
    const MatrixView& head = w->token_embd;
    const QuantizedActivations& hq = acts.for_weight(head.type, pool);
    const float cap = static_cast<float>(h.final_softcap);
    const int64_t V = h.n_vocab, tile = matmul_row_tile();
    pool->parallel_for((head.rows + tile - 1) / tile, [&](int64_t t0, int64_t t1, int) {
      const int64_t r0 = t0 * tile, r1 = std::min(head.rows, t1 * tile);
      matmul_row_range(head, hq, out, r0, r1, V);
      if (cap > 0) {
        for (int64_t t = 0; t < rows; ++t) ops::softcap(out + t * V + r0, r1 - r0, cap);
      }
    });
  }
}

void Gemma4Session::attention_block(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, H = h.n_head, KV = h.n_kv(l), hd = h.head_dim(l);
  const int64_t QD = H * hd, KD = KV * hd, group = H / KV;
  const float eps = static_cast<float>(h.rms_eps);
  const bool sliding = h.is_sliding(l);
  const int64_t n_rot = h.n_rot(l);
  const float* inv_freq = sliding ? inv_freq_swa.data() : inv_freq_full.data();

  // a = input_layernorm(x)                                                  a: [n][E]
  std::optional<PhaseTimer> timer(std::in_place, StepPhase::kAttnQkv);
  ops::rmsnorm_rows(x.data(), L.attn_norm.data(), a.data(), n, E, eps);

  // q = a Wq^T: [n][H][hd];  k = a Wk^T: [n][KV][hd];  v = a Wv^T, or the raw k on K=V layers
  // (one parallel region for the three products; perf)
  acts.set(a.data(), n, E);
  {
    const MatmulJob jobs[3] = {{L.attn_q, &acts.for_weight(L.attn_q.type, pool), q.data()},
                               {L.attn_k, &acts.for_weight(L.attn_k.type, pool), k.data()},
                               {L.attn_v, L.attn_v.data ? &acts.for_weight(L.attn_v.type, pool) : nullptr, v.data()}};
    matmul_jobs(std::span<const MatmulJob>(jobs, L.attn_v.data != nullptr ? 3 : 2), pool);
  }
  if (L.attn_v.data == nullptr) std::memcpy(v.data(), k.data(), static_cast<size_t>(n * KD) * sizeof(float));

  // Per-head norms: q_norm and k_norm with weights, v_norm without; then RoPE on q and k (never v). Each row then
  // goes into its cache in the cache's types (quantising is per head, so rows run in parallel).
  timer.emplace(StepPhase::kAttention);
  pool->parallel_for(n, [&](int64_t t0, int64_t t1, int thread) {
    float* cs = rope_cs.data() + static_cast<size_t>(thread) * (rope_cs.size() / static_cast<size_t>(pool->size()));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pos = row_pos[static_cast<size_t>(t)];
      LayerKvCache& c = row_cache[static_cast<size_t>(t)][l];
      ops::rope_angles(n_rot, inv_freq, pos, cs);  // the row's angles, shared by its q and k heads
      for (int64_t hh = 0; hh < H; ++hh) {
        float* qh = q.data() + t * QD + hh * hd;
        ops::rmsnorm(qh, L.attn_q_norm.data(), qh, hd, eps);
        ops::rope_neox_cs(qh, n_rot, cs);
      }
      for (int64_t g = 0; g < KV; ++g) {
        float* kh = k.data() + t * KD + g * hd;
        float* vh = v.data() + t * KD + g * hd;
        ops::rmsnorm(kh, L.attn_k_norm.data(), kh, hd, eps);
        ops::rope_neox_cs(kh, n_rot, cs);
        ops::rmsnorm(vh, nullptr, vh, hd, eps);
        // The cache keeps k and v of every position (sliding layers: a ring of the last capacity positions).
        kv_quantize_head(c.k_type, kh, hd, c.k_slot(pos) + g * c.k_head);
        kv_quantize_head(c.v_type, vh, hd, c.v_slot(pos) + g * c.v_head);
      }
    }
  });

  // attn[t][hh] = softmax(q·k * 1.0 over visible keys) v; query head hh reads kv head hh / group, straight from
  // the cache's blocks (tensor/kv_attention.h). Full layers see positions 0..pos; sliding layers
  // pos - window + 1 .. pos, of the row's own sequence.
  const int64_t window = h.sliding_window;
  const size_t score_stride = scores.size() / static_cast<size_t>(pool->size());
  pool->parallel_for(n * H, [&](int64_t begin, int64_t end, int thread) {
    float* sc = scores.data() + static_cast<size_t>(thread) * score_stride;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / H, hh = i % H, g = hh / group, pos = row_pos[static_cast<size_t>(t)];
      LayerKvCache& c = row_cache[static_cast<size_t>(t)][l];
      const int64_t lo = sliding ? std::max<int64_t>(0, pos - window + 1) : 0;
      // Keys lo..pos sit at ring slots j % capacity: at most two contiguous runs of cache rows.
      KvRun runs[2];
      int n_runs = 0;
      for (int64_t j = lo; j <= pos;) {
        const int64_t len = std::min(pos - j + 1, c.capacity - j % c.capacity);
        runs[n_runs++] = {c.k_slot(j) + g * c.k_head, c.v_slot(j) + g * c.v_head, len};
        j += len;
      }
      const KvHeadFormat format{c.k_type, c.v_type, c.k_row, c.v_row};
      attend_head_kv(q.data() + t * QD + hh * hd, runs, n_runs, format, hd, sc, attn.data() + t * QD + hh * hd);
    }
  });

  // o = post_attention_layernorm(attn Wo^T); x = x + o                       o: [n][E]
  timer.emplace(StepPhase::kAttnOut);
  acts.set(attn.data(), n, QD);
  matmul(L.attn_output, acts.for_weight(L.attn_output.type, pool), o.data(), pool);
  ops::rmsnorm_rows(o.data(), L.post_attention_norm.data(), o.data(), n, E, eps);
  for (int64_t i = 0; i < n * E; ++i) x[static_cast<size_t>(i)] += o[static_cast<size_t>(i)];
}

void Gemma4Session::ffn_block(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, F = h.n_ff[static_cast<size_t>(l)];
  const float eps = static_cast<float>(h.rms_eps);

  // The dense MLP and the routed experts both read x, so their products share parallel regions (perf: decode
  // streams weights with both threads and no barrier between products that do not depend on each other):
  //   1. dense gate and up, and the router;   2. dense down, and every chosen expert's gate_up;   3. expert downs.
  // Dense MLP: o = down(gelu(gate(a)) * up(a)), a = pre_feedforward_layernorm(x)   gate, up: [n][F]; o: [n][E]
  std::optional<PhaseTimer> timer(std::in_place, StepPhase::kFfnGateUp);
  ops::rmsnorm_rows(x.data(), L.ffn_norm.data(), a.data(), n, E, eps);
  acts.set(a.data(), n, E);
  moe_jobs.clear();
  moe_jobs.push_back({L.ffn_gate, &acts.for_weight(L.ffn_gate.type, pool), gate.data()});
  moe_jobs.push_back({L.ffn_up, &acts.for_weight(L.ffn_up.type, pool), up.data()});
  if (L.has_moe) router_input(l, n);
  matmul_jobs(moe_jobs, pool);

  timer.emplace(StepPhase::kFfnDown);
  gelu_tanh_mul(gate.data(), up.data(), gate.data(), n * F);
  acts.set(gate.data(), n, F);
  moe_jobs.clear();
  moe_jobs.push_back({L.ffn_down, &acts.for_weight(L.ffn_down.type, pool), o.data()});
  if (L.has_moe) route_experts(l, n);
  matmul_jobs(moe_jobs, pool);

  timer.emplace(StepPhase::kExpertDown);
  if (L.has_moe) {
    // o = post_feedforward_layernorm_1(o) + post_feedforward_layernorm_2(experts(x))
    ops::rmsnorm_rows(o.data(), L.post_ffw_norm_1.data(), o.data(), n, E, eps);
    expert_downs(l, n);
    for (int64_t i = 0; i < n * E; ++i) o[static_cast<size_t>(i)] += moe[static_cast<size_t>(i)];
  }

  // x = (x + post_feedforward_layernorm(o)) * layer_scalar
  ops::rmsnorm_rows(o.data(), L.post_ffw_norm.data(), o.data(), n, E, eps);
  const float scale = L.layer_output_scale;
  for (int64_t i = 0; i < n * E; ++i) {
    x[static_cast<size_t>(i)] = (x[static_cast<size_t>(i)] + o[static_cast<size_t>(i)]) * scale;
  }
}

void Gemma4Session::router_input(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd;
  const float eps = static_cast<float>(h.rms_eps);

  // Router (fp32): r = rmsnorm_noscale(x) * router.scale * E^-0.5; p = softmax(r Wr^T)     router: [n][NE]
  const float root = 1.0f / std::sqrt(static_cast<float>(E));
  for (int64_t t = 0; t < n; ++t) {
    float* zt = z.data() + t * E;
    ops::rmsnorm(x.data() + t * E, nullptr, zt, E, eps);
    for (int64_t i = 0; i < E; ++i) zt[i] = zt[i] * L.ffn_gate_inp_scale[static_cast<size_t>(i)] * root;
  }
  acts2.set(z.data(), n, E);
  moe_jobs.push_back({L.ffn_gate_inp, &acts2.for_weight(L.ffn_gate_inp.type, pool), router.data()});
}

void Gemma4Session::route_experts(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, NE = h.n_expert, K = h.n_expert_used, FE = h.n_ff_exp;
  const float eps = static_cast<float>(h.rms_eps);

  // Top-K of the softmax over all experts, renormalised to sum 1, then times per_expert_scale.
  std::fill(exp_count.begin(), exp_count.end(), 0);
  softmax_rows(router.data(), n, NE);
  for (int64_t t = 0; t < n; ++t) {
    const float* p = router.data() + t * NE;
    int32_t* idx = sel.data() + t * K;
    float* wt = sel_w.data() + t * K;
    float sum = 0;
    for (int64_t j = 0; j < K; ++j) {
      int32_t best = -1;
      for (int32_t e = 0; e < NE; ++e) {
        bool taken = false;
        for (int64_t m = 0; m < j; ++m) taken |= idx[m] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;  // ties: lower index first
      }
      idx[j] = best;
      wt[j] = p[best];
      sum += p[best];
    }
    for (int64_t j = 0; j < K; ++j) {
      wt[j] = wt[j] / sum * L.down_exps_scale[static_cast<size_t>(idx[j])];
      ++exp_count[static_cast<size_t>(idx[j])];
    }
  }

  // Group the (token, slot) pairs by expert (counting sort) so each expert runs once over its tokens.
  std::vector<int32_t>& start = exp_count;  // becomes the running offset per expert
  int32_t offset = 0;
  for (int64_t e = 0; e < NE; ++e) {
    const int32_t cnt = start[static_cast<size_t>(e)];
    start[static_cast<size_t>(e)] = offset;
    offset += cnt;
  }
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t e = sel[static_cast<size_t>(t * K + j)];
      exp_rows[static_cast<size_t>(start[static_cast<size_t>(e)]++)] = static_cast<int32_t>(t * K + j);
    }
  }
  // start[e] is now the end of expert e's run; its beginning is the end of e - 1.
  std::copy(exp_count.begin(), exp_count.end(), exp_end.begin());

  // z = pre_feedforward_layernorm_2(x): the expert input, from the residual stream      z: [n][E]
  ops::rmsnorm_rows(x.data(), L.pre_ffw_norm_2.data(), z.data(), n, E, eps);
  std::fill(moe.begin(), moe.begin() + n * E, 0.0f);

  // Row r of the expert buffers is the (token, slot) pair exp_rows[r]; rows are grouped by expert, so each expert
  // is one product over its contiguous rows. All experts' gate_up join the caller's parallel region (with the dense
  // down), then all downs run in one (perf: one wake-up per phase instead of one per expert; inputs quantized once
  // for all experts).
  const int64_t R = n * K;
  const QuantizedActivations* xq = nullptr;
  if (n == 1) {  // one token: every expert reads the same input row
    acts2.set(z.data(), 1, E);
  } else {  // ez = z of each row's token: [R][E]
    for (int64_t r = 0; r < R; ++r) {
      std::memcpy(ez.data() + r * E, z.data() + (exp_rows[static_cast<size_t>(r)] / K) * E,
                  static_cast<size_t>(E) * sizeof(float));
    }
    acts2.set(ez.data(), R, E);
  }
  int32_t run_begin = 0;
  for (int64_t e = 0; e < NE; ++e) {
    const int32_t run_end = start[static_cast<size_t>(e)];
    const int64_t cnt = run_end - run_begin;
    if (cnt == 0) continue;
    // egu = [gate | up] = ez W_gate_up[e]^T: [cnt][2 FE]
    float* y = egu.data() + static_cast<int64_t>(run_begin) * 2 * FE;
    const int64_t tb = n == 1 ? 0 : run_begin;
    if (L.fused_gate_up) {
      const MatrixView wgu = L.gate_up_exps.expert(e);
      xq = &acts2.for_weight(wgu.type, pool);
      moe_jobs.push_back({wgu, xq, y, 2 * FE, tb, cnt});
    } else {
      const MatrixView wg = L.gate_exps.expert(e), wu = L.up_exps.expert(e);
      moe_jobs.push_back({wg, &acts2.for_weight(wg.type, pool), y, 2 * FE, tb, cnt});
      moe_jobs.push_back({wu, &acts2.for_weight(wu.type, pool), y + FE, 2 * FE, tb, cnt});
    }
    run_begin = run_end;
  }
}

void Gemma4Session::expert_downs(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, NE = h.n_expert, K = h.n_expert_used, FE = h.n_ff_exp;
  const float eps = static_cast<float>(h.rms_eps);
  const std::vector<int32_t>& start = exp_end;  // end of each expert's run of rows (route_experts)
  const int64_t R = n * K;

  // eact = gelu(gate) * up: [R][FE]
  gelu_tanh_mul_rows(egu.data(), egu.data() + FE, 2 * FE, eact.data(), FE, R, FE);
  // eout = eact W_down[e]^T: [R][E]
  acts.set(eact.data(), R, FE);
  moe_jobs.clear();
  int32_t run_begin = 0;
  for (int64_t e = 0; e < NE; ++e) {
    const int32_t run_end = start[static_cast<size_t>(e)];
    const int64_t cnt = run_end - run_begin;
    if (cnt == 0) continue;
    const MatrixView wd = L.down_exps.expert(e);
    moe_jobs.push_back({wd, &acts.for_weight(wd.type, pool), eout.data() + static_cast<int64_t>(run_begin) * E, E,
                        run_begin, cnt});
    run_begin = run_end;
  }
  matmul_jobs(moe_jobs, pool);

  // moe[t] += weight * eout
  for (int64_t r = 0; r < R; ++r) {
    const int32_t pair = exp_rows[static_cast<size_t>(r)];
    const float wt = sel_w[static_cast<size_t>(pair)];
    float* dst = moe.data() + (pair / K) * E;
    const float* src = eout.data() + r * E;
    for (int64_t i = 0; i < E; ++i) dst[i] += wt * src[i];
  }

  // moe = post_feedforward_layernorm_2(moe)
  ops::rmsnorm_rows(moe.data(), L.post_ffw_norm_2.data(), moe.data(), n, E, eps);
}

}  // namespace fabula
