// The Gemma 4 forward pass for one step of n tokens; reads top to bottom next to transformers'
// Gemma4TextDecoderLayer.forward (docs/GEMMA4.md §3). Shapes: n tokens, E = n_embd, H heads of hd dims,
// KV kv-heads, F = n_ff, NE experts (top K), FE = n_ff_exp.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>

#include "base/check.h"
#include "model/gemma4/ops.h"
#include "model/gemma4/session_state.h"
#include "model/step_profile.h"
#include "tensor/activations.h"
#include "tensor/kv_attention.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

// Below this many elements a row operation stays on the calling thread: waking the workers costs more.
constexpr int64_t kMinParallelElems = 32768;

// fn(t0, t1) over rows [0, n), split across the pool when the rows are big enough (perf: the norms, GELU and
// residual steps were serial passes between the parallel products). Each row is computed the same way wherever
// it runs.
template <typename Fn>
void for_row_ranges(ThreadPool* pool, int64_t n, int64_t row_elems, const Fn& fn) {
  if (n < 2 || n * row_elems < kMinParallelElems) {
    fn(int64_t{0}, n);
    return;
  }
  pool->parallel_for(n, [&](int64_t t0, int64_t t1, int) { fn(t0, t1); });
}

// fn(t) for every row t < n, as for_row_ranges.
template <typename Fn>
void for_each_row(ThreadPool* pool, int64_t n, int64_t row_elems, const Fn& fn) {
  for_row_ranges(pool, n, row_elems, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) fn(t);
  });
}

}  // namespace

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

  // Each segment's rows take the products' paths they take alone: the long segments (GEMM) lead.
  const int64_t gemm_min = matmul_gemm_min_tokens();
  gemm_rows = 0;
  for (size_t sg = 0, row = 0; sg < seg_end.size(); ++sg) {
    const int64_t begin = sg == 0 ? 0 : seg_end[sg - 1], len = seg_end[sg] - begin;
    const bool long_seg = gemm_min > 0 && len >= gemm_min;
    FABULA_CHECK(!long_seg || gemm_rows == begin);
    if (long_seg) gemm_rows = seg_end[sg];
    for (; static_cast<int64_t>(row) < seg_end[sg]; ++row) row_seg[row] = static_cast<int32_t>(sg);
  }
  FABULA_CHECK(!seg_end.empty() && seg_end.back() == n);

  for (int l = 0; l < h.n_layer; ++l) {
    attention_block(l, n);
    ffn_block(l, n);
    if (hook) hook(l + 1, n_past, x.data(), n, E);
  }

  // Final norm and tied output projection, only for the rows whose logits are wanted (gathered into rows 0..m-1).
  const int64_t m = static_cast<int64_t>(logit_rows.size());
  const PhaseTimer head_timer(StepPhase::kHead);
  if (hook) {
    for_each_row(pool, n, E, [&](int64_t t) { ops::rmsnorm(x.data() + t * E, w->output_norm.data(), a.data() + t * E, E, eps); });
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
    // Each thread caps the rows it computed while they are in cache (no serial pass over 262k logits after the
    // head); as a matmul job, decode's threads share the head's rows by stealing (perf: the static split by rows
    // left one thread waiting 0.1-0.4 ms of a 69-71 ms step of the 26B). The head always takes the tiles (the
    // GEMM's numbers differ), as it did when the threads split its rows themselves.
    const MatrixView& head = w->token_embd;
    const float cap = static_cast<float>(h.final_softcap);
    const int64_t V = h.n_vocab;
    auto cap_rows = [&](int64_t r0, int64_t r1) {
      for (int64_t t = 0; t < rows; ++t) ops::softcap(out + t * V + r0, r1 - r0, cap);
    };
    const FunctionRef<void(int64_t, int64_t)> after_rows = cap_rows;
    MatmulJob job{head, &acts.for_weight(head.type, pool), out, V};
    job.gemm_tokens = 0;
    if (cap > 0) job.after_rows = &after_rows;
    matmul_jobs(std::span<const MatmulJob>(&job, 1), pool);
  }
}

void Gemma4Session::attention_block(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, H = h.n_head, KV = h.n_kv(l), hd = h.head_dim(l);
  const int64_t QD = H * hd, KD = KV * hd;
  const float eps = static_cast<float>(h.rms_eps);
  const bool sliding = h.is_sliding(l);
  const int64_t n_rot = h.n_rot(l);
  const float* inv_freq = sliding ? inv_freq_swa.data() : inv_freq_full.data();

  // a = input_layernorm(x)                                                  a: [n][E]
  std::optional<PhaseTimer> timer(std::in_place, StepPhase::kAttnQkv);
  for_each_row(pool, n, E, [&](int64_t t) { ops::rmsnorm(x.data() + t * E, L.attn_norm.data(), a.data() + t * E, E, eps); });

  // q = a Wq^T: [n][H][hd];  k = a Wk^T: [n][KV][hd];  v = a Wv^T, or the raw k on K=V layers
  // (one parallel region for the three products; perf)
  acts.set(a.data(), n, E);
  {
    const MatmulJob jobs[3] = {
        dense_job(L.attn_q, acts.for_weight(L.attn_q.type, pool), q.data()),
        dense_job(L.attn_k, acts.for_weight(L.attn_k.type, pool), k.data()),
        dense_job(L.attn_v, L.attn_v.data ? acts.for_weight(L.attn_v.type, pool) : acts.for_weight(L.attn_k.type, pool),
                  v.data())};
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
  attend(l, n);

  // o = post_attention_layernorm(attn Wo^T); x = x + o                       o: [n][E]
  timer.emplace(StepPhase::kAttnOut);
  acts.set(attn.data(), n, QD);
  {
    const MatmulJob job = dense_job(L.attn_output, acts.for_weight(L.attn_output.type, pool), o.data());
    matmul_jobs(std::span<const MatmulJob>(&job, 1), pool);
  }
  for_each_row(pool, n, E, [&](int64_t t) {
    float* ot = o.data() + t * E;
    float* xt = x.data() + t * E;
    ops::rmsnorm(ot, L.post_attention_norm.data(), ot, E, eps);
    for (int64_t i = 0; i < E; ++i) xt[i] += ot[i];
  });
}

// Consecutive tokens of one sequence go in blocks: a block is up to kAttnBlockRows query rows (its tokens' heads of
// one kv group) that read each key once (attend_rows_kv: prefill reads the cache once per block instead of once
// per query head). A token alone (decode, or one row of a sequence in a batched step) takes the per-head kernel
// for its heads in one block per thread (attend_heads_kv: each head's numbers as alone, the thread's part of every
// cache slot read once, in order; perf: a block per head read the 26B's cache twice on sliding layers and 8 times
// on full ones, in rows a slot apart: 50 of 141 ms per step at 1500 positions, BENCHMARKS.md). The heads, not the
// kv heads, are split, so the demo's full layers (one kv head) still keep both threads busy (a block per kv head
// left one waiting: 55 us of a 0.27 ms step at 2048 positions).
// The threads take the blocks one at a time, the costliest first (rows times keys: later tokens of a causal prompt
// see more), so they finish together on the cheap ones (perf: a static split by that cost left one thread waiting
// 14% of the attention time of synth 26B pp512 on a 2-core Zen 3: the blocks' fixed costs are not in it).
void Gemma4Session::attend(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const int64_t H = h.n_head, KV = h.n_kv(l), hd = h.head_dim(l), QD = H * hd, group = H / KV;
  const int64_t window = h.sliding_window;
  const bool sliding = h.is_sliding(l);
  auto first_key = [&](int64_t pos) { return sliding ? std::max<int64_t>(0, pos - window + 1) : int64_t{0}; };
  const int64_t block_tokens = std::max<int64_t>(1, kAttnBlockRows / group);
  const bool blocked = group <= kKvMaxBlockRows;
  // A token alone: its query heads in one block per thread (consecutive heads, so each thread reads its own part
  // of every cache slot, once), at most kKvMaxHeadsPerCall heads a block.
  const int64_t parts = std::max(std::min<int64_t>(pool->size(), H), (H + kKvMaxHeadsPerCall - 1) / kKvMaxHeadsPerCall);

  attn_blocks.clear();
  for (int64_t t0 = 0; t0 < n;) {
    const LayerKvCache& c = row_cache[static_cast<size_t>(t0)][l];
    const int64_t lo = first_key(row_pos[static_cast<size_t>(t0)]);
    int64_t t1 = t0 + 1;
    while (blocked && t1 < n && t1 - t0 < block_tokens && row_cache[static_cast<size_t>(t1)] == row_cache[static_cast<size_t>(t0)] &&
           row_pos[static_cast<size_t>(t1)] == row_pos[static_cast<size_t>(t1 - 1)] + 1 &&
           row_pos[static_cast<size_t>(t1)] - lo < c.capacity) {  // every key of the block in the ring at once
      ++t1;
    }
    const int64_t keys = row_pos[static_cast<size_t>(t1 - 1)] - lo + 1;
    if (t1 - t0 == 1) {
      for (int64_t p = 0; p < parts; ++p) {
        const int64_t h0 = H * p / parts, h1 = H * (p + 1) / parts;
        if (h0 < h1) attn_blocks.push_back({t0, t1, -1, keys * (h1 - h0), h0, h1 - h0});
      }
    } else {
      for (int64_t g = 0; g < KV; ++g) attn_blocks.push_back({t0, t1, g, (t1 - t0) * group * keys, -1, 0});
    }
    t0 = t1;
  }

  const size_t score_stride = scores.size() / static_cast<size_t>(pool->size());
  auto run_block = [&](const AttnBlock& b, int thread) {
    LayerKvCache& c = row_cache[static_cast<size_t>(b.t0)][l];
    const KvHeadFormat format{c.k_type, c.v_type, c.k_row, c.v_row};
    if (b.t1 - b.t0 > 1) {
      const float* qs[kKvMaxBlockRows];
      float* outs[kKvMaxBlockRows];
      int64_t first[kKvMaxBlockRows], last[kKvMaxBlockRows];
      int64_t m = 0;
      for (int64_t t = b.t0; t < b.t1; ++t) {
        const int64_t pos = row_pos[static_cast<size_t>(t)];
        for (int64_t hh = b.g * group; hh < (b.g + 1) * group; ++hh, ++m) {
          qs[m] = q.data() + t * QD + hh * hd;
          outs[m] = attn.data() + t * QD + hh * hd;
          first[m] = first_key(pos);
          last[m] = pos;
        }
      }
      const KvRing ring{c.k.data() + b.g * c.k_head, c.v.data() + b.g * c.v_head, c.capacity};
      attend_rows_kv(qs, first, last, m, ring, format, hd, outs);
      return;
    }
    const int64_t t = b.t0, pos = row_pos[static_cast<size_t>(t)], lo = first_key(pos);
    // Keys lo..pos sit at ring slots j % capacity: at most two contiguous runs of cache slots.
    KvRun runs[2];
    int n_runs = 0;
    for (int64_t j = lo; j <= pos;) {
      const int64_t len = std::min(pos - j + 1, c.capacity - j % c.capacity);
      runs[n_runs++] = {c.k_slot(j), c.v_slot(j), len};
      j += len;
    }
    float* sc = scores.data() + static_cast<size_t>(thread) * score_stride;
    const float* qs[kKvMaxHeadsPerCall];
    float* outs[kKvMaxHeadsPerCall];
    int64_t k_offset[kKvMaxHeadsPerCall], v_offset[kKvMaxHeadsPerCall];  // query head hh reads kv head hh / group
    for (int64_t i = 0; i < b.heads; ++i) {
      const int64_t hh = b.head + i;
      qs[i] = q.data() + t * QD + hh * hd;
      outs[i] = attn.data() + t * QD + hh * hd;
      k_offset[i] = hh / group * static_cast<int64_t>(c.k_head);
      v_offset[i] = hh / group * static_cast<int64_t>(c.v_head);
    }
    attend_heads_kv(qs, k_offset, v_offset, b.heads, runs, n_runs, format, hd, sc, outs);
  };
  // Each block writes only its own rows of attn, so the results do not depend on which thread takes it.
  std::sort(attn_blocks.begin(), attn_blocks.end(), [](const AttnBlock& a, const AttnBlock& b) { return a.cost > b.cost; });
  std::atomic<size_t> next{0};
  pool->run_on_all([&](int thread) {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < attn_blocks.size();
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      run_block(attn_blocks[i], thread);
    }
  });
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
  for_each_row(pool, n, E, [&](int64_t t) { ops::rmsnorm(x.data() + t * E, L.ffn_norm.data(), a.data() + t * E, E, eps); });
  acts.set(a.data(), n, E);
  moe_jobs.clear();
  // The router first: its f32 rows make 180 KB chunks (16 rows of 2816 on the 26B), which at the end of the region
  // the thread that finished first would steal and the other wait for; the gate and up's chunks are 50 KB.
  if (L.has_moe) router_input(l, n);
  moe_jobs.push_back(dense_job(L.ffn_gate, acts.for_weight(L.ffn_gate.type, pool), gate.data()));
  moe_jobs.push_back(dense_job(L.ffn_up, acts.for_weight(L.ffn_up.type, pool), up.data()));
  matmul_jobs(moe_jobs, pool);

  timer.emplace(StepPhase::kFfnDown);
  for_each_row(pool, n, F, [&](int64_t t) { gelu_tanh_mul(gate.data() + t * F, up.data() + t * F, gate.data() + t * F, F); });
  acts.set(gate.data(), n, F);
  moe_jobs.clear();
  moe_jobs.push_back(dense_job(L.ffn_down, acts.for_weight(L.ffn_down.type, pool), o.data()));
  if (L.has_moe) route_experts(l, n);
  matmul_jobs(moe_jobs, pool);

  timer.emplace(StepPhase::kExpertDown);
  if (L.has_moe) {
    // o = post_feedforward_layernorm_1(o) + post_feedforward_layernorm_2(experts(x))
    for_each_row(pool, n, E, [&](int64_t t) { ops::rmsnorm(o.data() + t * E, L.post_ffw_norm_1.data(), o.data() + t * E, E, eps); });
    expert_downs(l, n);
  }

  // x = (x + post_feedforward_layernorm(o + moe)) * layer_scalar
  const float scale = L.layer_output_scale;
  for_each_row(pool, n, E, [&](int64_t t) {
    float* ot = o.data() + t * E;
    float* xt = x.data() + t * E;
    if (L.has_moe) {
      const float* mt = moe.data() + t * E;
      for (int64_t i = 0; i < E; ++i) ot[i] += mt[i];
    }
    ops::rmsnorm(ot, L.post_ffw_norm.data(), ot, E, eps);
    for (int64_t i = 0; i < E; ++i) xt[i] = (xt[i] + ot[i]) * scale;
  });
}

void Gemma4Session::router_input(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd;
  const float eps = static_cast<float>(h.rms_eps);

  // Router (fp32): r = rmsnorm_noscale(x) * router.scale * E^-0.5; p = softmax(r Wr^T)     router: [n][NE]
  const float root = 1.0f / std::sqrt(static_cast<float>(E));
  for_each_row(pool, n, E, [&](int64_t t) {
    float* zt = z.data() + t * E;
    ops::rmsnorm(x.data() + t * E, nullptr, zt, E, eps);
    for (int64_t i = 0; i < E; ++i) zt[i] = zt[i] * L.ffn_gate_inp_scale[static_cast<size_t>(i)] * root;
  });
  acts2.set(z.data(), n, E);
  moe_jobs.push_back(dense_job(L.ffn_gate_inp, acts2.for_weight(L.ffn_gate_inp.type, pool), router.data()));
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
    ops::top_k(p, NE, K, idx, wt);
    float sum = 0;
    for (int64_t j = 0; j < K; ++j) sum += wt[j];
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
      exp_pos[static_cast<size_t>(t * K + j)] = start[static_cast<size_t>(e)];
      exp_rows[static_cast<size_t>(start[static_cast<size_t>(e)]++)] = static_cast<int32_t>(t * K + j);
    }
  }
  // start[e] is now the end of expert e's run; its beginning is the end of e - 1.
  std::copy(exp_count.begin(), exp_count.end(), exp_end.begin());
  order_expert_rows(n);

  // z = pre_feedforward_layernorm_2(x): the expert input, from the residual stream      z: [n][E]
  for_each_row(pool, n, E, [&](int64_t t) { ops::rmsnorm(x.data() + t * E, L.pre_ffw_norm_2.data(), z.data() + t * E, E, eps); });

  // Row r of the expert buffers is the (token, slot) pair exp_rows[r]; rows are grouped by expert, so each expert
  // is one product over its contiguous rows. All experts' gate_up join the caller's parallel region (with the dense
  // down), then all downs run in one (perf: one wake-up per phase instead of one per expert). Each token's input is
  // quantized once (acts2), then copied to the rows of every expert it chose.
  const int64_t R = n * K;
  acts2.set(z.data(), n, E);
  for (int64_t r = 0; r < R; ++r) exp_token[static_cast<size_t>(r)] = exp_rows[static_cast<size_t>(r)] / static_cast<int32_t>(K);
  for (GatheredInput& g : expert_in) g.valid = false;
  auto input = [&](GgmlType weight_type) -> const QuantizedActivations& {
    const QuantizedActivations& per_token = acts2.for_weight(weight_type, pool);
    if (n == 1) return per_token;  // one token: every expert reads the same input row
    for (GatheredInput& g : expert_in) {
      if (g.valid && g.q.type() == per_token.type()) return g.q;
    }
    for (GatheredInput& g : expert_in) {
      if (!g.valid) {
        g.q.gather(per_token, std::span<const int32_t>(exp_token.data(), static_cast<size_t>(R)), pool);
        g.valid = true;
        return g.q;
      }
    }
    FABULA_CHECK(false && "route_experts: more than two activation types for the experts' gate and up");
    return per_token;
  };
  int32_t run_begin = 0;
  int64_t distinct = 0;
  for (int64_t e = 0; e < NE; ++e) {
    const int32_t run_end = start[static_cast<size_t>(e)];
    const int64_t cnt = run_end - run_begin;
    if (cnt == 0) continue;
    ++distinct;
    // egu = [gate | up] = z W_gate_up[e]^T over the expert's rows: [cnt][2 FE]
    float* y = egu.data() + static_cast<int64_t>(run_begin) * 2 * FE;
    const int64_t tb = n == 1 ? 0 : run_begin, gemm = exp_gemm[static_cast<size_t>(e)];
    if (L.fused_gate_up) {
      const MatrixView wgu = L.gate_up_exps.expert(e);
      moe_jobs.push_back({wgu, &input(wgu.type), y, 2 * FE, tb, cnt, gemm});
    } else {
      const MatrixView wg = L.gate_exps.expert(e), wu = L.up_exps.expert(e);
      moe_jobs.push_back({wg, &input(wg.type), y, 2 * FE, tb, cnt, gemm});
      moe_jobs.push_back({wu, &input(wu.type), y + FE, 2 * FE, tb, cnt, gemm});
    }
    run_begin = run_end;
  }
  StepProfile::add_experts(distinct);
}

void Gemma4Session::expert_downs(int l, int64_t n) {
  const Gemma4HParams& h = *hp;
  const Gemma4LayerWeights& L = w->layers[static_cast<size_t>(l)];
  const int64_t E = h.n_embd, NE = h.n_expert, K = h.n_expert_used, FE = h.n_ff_exp;
  const float eps = static_cast<float>(h.rms_eps);
  const std::vector<int32_t>& start = exp_end;  // end of each expert's run of rows (route_experts)
  const int64_t R = n * K;

  // eact = gelu(gate) * up: [R][FE]
  for_row_ranges(pool, R, FE, [&](int64_t r0, int64_t r1) {
    gelu_tanh_mul_rows(egu.data() + r0 * 2 * FE, egu.data() + r0 * 2 * FE + FE, 2 * FE, eact.data() + r0 * FE, FE,
                       r1 - r0, FE);
  });
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
                        run_begin, cnt, exp_gemm[static_cast<size_t>(e)]});
    run_begin = run_end;
  }
  matmul_jobs(moe_jobs, pool);

  // moe[t] = post_feedforward_layernorm_2(Σ weight * eout) over the token's rows, in row order
  for_each_row(pool, n, K * E, [&](int64_t t) {
    int32_t rows[kMaxExpertsUsed];
    FABULA_CHECK(K <= kMaxExpertsUsed);
    std::copy_n(exp_pos.data() + t * K, K, rows);
    std::sort(rows, rows + K);
    float* dst = moe.data() + t * E;
    std::fill(dst, dst + E, 0.0f);
    for (int64_t j = 0; j < K; ++j) {
      const int32_t r = rows[j];
      const float wt = sel_w[static_cast<size_t>(exp_rows[static_cast<size_t>(r)])];
      add_scaled(dst, eout.data() + static_cast<int64_t>(r) * E, wt, E);
    }
    ops::rmsnorm(dst, L.post_ffw_norm_2.data(), dst, E, eps);
  });
}

MatmulJob Gemma4Session::dense_job(const MatrixView& w, const QuantizedActivations& xq, float* y) const {
  MatmulJob job{w, &xq, y};
  job.gemm_tokens = gemm_rows;
  return job;
}

void Gemma4Session::order_expert_rows(int64_t n) {
  const int64_t NE = hp->n_expert, K = hp->n_expert_used, gemm_min = matmul_gemm_min_tokens();
  std::fill(exp_gemm.begin(), exp_gemm.end(), 0);
  if (gemm_min <= 0 || n < gemm_min) return;  // no segment is long enough for an expert's GEMM
  // An expert's run holds its rows in token order, so each segment's rows are one stretch of it. The stretches of
  // at least gemm_min rows (the GEMM alone) move to the front of the run, the others keep their order after them.
  int32_t run_begin = 0;
  for (int64_t e = 0; e < NE; ++e) {
    const int32_t run_end = exp_end[static_cast<size_t>(e)];
    int32_t n_gemm = 0, n_rest = 0;
    for (int32_t r = run_begin; r < run_end;) {
      const int32_t seg = row_seg[static_cast<size_t>(exp_rows[static_cast<size_t>(r)] / K)];
      int32_t r_end = r + 1;
      while (r_end < run_end && row_seg[static_cast<size_t>(exp_rows[static_cast<size_t>(r_end)] / K)] == seg) ++r_end;
      if (r_end - r >= gemm_min) {
        std::copy(exp_rows.begin() + r, exp_rows.begin() + r_end, exp_rows.begin() + run_begin + n_gemm);
        n_gemm += r_end - r;
      } else {
        std::copy(exp_rows.begin() + r, exp_rows.begin() + r_end, exp_tmp.begin() + n_rest);
        n_rest += r_end - r;
      }
      r = r_end;
    }
    std::copy(exp_tmp.begin(), exp_tmp.begin() + n_rest, exp_rows.begin() + run_begin + n_gemm);
    exp_gemm[static_cast<size_t>(e)] = n_gemm;
    for (int32_t r = run_begin; r < run_end; ++r) exp_pos[static_cast<size_t>(exp_rows[static_cast<size_t>(r)])] = r;
    run_begin = run_end;
  }
}

}  // namespace fabula
