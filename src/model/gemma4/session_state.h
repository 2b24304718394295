// Internal: the Gemma 4 session (KV cache, scratch buffers) and the per-layer forward functions.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/huge_page_allocator.h"
#include "model/gemma4/model.h"
#include "tensor/kv_types.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"

namespace fabula {

// f32 activations quantized lazily for each activation type the weights that read them need; one set of rows is
// quantized at most once per type (q/k/v, dense gate/up and expert gate_up share it).
class SharedActivations {
 public:
  void set(const float* x, int64_t rows, int64_t cols) {
    x_ = x;
    rows_ = rows;
    cols_ = cols;
    for (auto& slot : slots_) slot.valid = false;
  }
  const QuantizedActivations& for_weight(GgmlType weight_type, ThreadPool* pool);

 private:
  struct Slot {
    QuantizedActivations q;
    GgmlType type = GgmlType::kF32;
    bool valid = false;
    bool used = false;
  };
  const float* x_ = nullptr;
  int64_t rows_ = 0, cols_ = 0;
  std::array<Slot, 4> slots_;
};

// One layer's KV cache: `capacity` slots, each holding the n_kv heads of one position for K and for V in the
// session's cache types (tensor/kv_types.h: whole blocks per head, so each position owns its bytes); position p
// lives in slot p % capacity (full layers: capacity = n_ctx, so slot = p).
struct LayerKvCache {
  int64_t capacity = 0;
  KvType k_type = KvType::kF32, v_type = KvType::kF32;
  size_t k_head = 0, v_head = 0;  // bytes of one head
  int64_t k_row = 0, v_row = 0;   // bytes of one slot = n_kv heads
  std::vector<uint8_t, HugePageAllocator<uint8_t>> k, v;  // read a head at a time, a slot apart: huge pages
  uint8_t* k_slot(int64_t pos) { return k.data() + (pos % capacity) * k_row; }
  uint8_t* v_slot(int64_t pos) { return v.data() + (pos % capacity) * v_row; }
};

struct Gemma4Session final : SessionState {
  // with_cache = false: scratch buffers only, for a batch runner whose rows use other sessions' caches.
  Gemma4Session(const Gemma4Model& model, SessionOptions options, ThreadPool* pool, bool with_cache = true);
  Status decode(std::span<const int32_t> tokens, LogitsMode mode) override;
  Status truncate(int64_t n) override;
  Status copy_cache_from(const SessionState& other) override;

  const Gemma4HParams* hp = nullptr;
  const Gemma4Weights* w = nullptr;
  SessionOptions opt;
  std::unique_ptr<ThreadPool> own_pool;
  ThreadPool* pool = nullptr;
  std::vector<LayerKvCache> cache;

  // RoPE inverse frequencies (already divided by rope_freqs factors), [n_rot / 2] each.
  std::vector<float> inv_freq_full, inv_freq_swa;

  // Scratch; U = n_ubatch, E = n_embd, QD = n_head * max head_dim, KD = max(n_kv * head_dim), F = max n_ff.
  std::vector<float> x;        // [U][E] residual stream
  std::vector<float> a;        // [U][E] normed layer input
  std::vector<float> q;        // [U][QD]
  std::vector<float> k, v;     // [U][KD]
  std::vector<float> attn;     // [U][QD] attention output per head
  std::vector<float> o;        // [U][E] projected attention / dense MLP output
  std::vector<float> gate, up; // [U][F]
  std::vector<float> moe;      // [U][E] routed expert sum
  std::vector<float> z;        // [U][E] expert input (pre_ffw_norm_2) / router input
  std::vector<float> router;   // [U][n_expert]
  std::vector<int32_t> sel;    // [U][n_expert_used] chosen experts
  std::vector<float> sel_w;    // [U][n_expert_used] their weights
  std::vector<int32_t> exp_rows;  // [U * n_expert_used] (token, slot) pairs grouped by expert
  std::vector<int32_t> exp_count; // [n_expert]
  std::vector<int32_t> exp_end;   // [n_expert] end of each expert's run of rows in exp_rows
  std::vector<int32_t> exp_token; // [U * n_expert_used] the token of each row of exp_rows
  std::vector<int32_t> exp_pos;   // [U * n_expert_used] the row of each (token, slot) pair: exp_rows inverted
  static constexpr int64_t kMaxExpertsUsed = 64;
  // The expert input quantized per token, copied to the rows grouped by expert (one per activation type).
  struct GatheredInput {
    QuantizedActivations q;
    bool valid = false;
  };
  std::array<GatheredInput, 2> expert_in;
  std::vector<float> egu;      // [U * n_expert_used][2 * FE] expert gate|up
  std::vector<float> eact;     // [U * n_expert_used][FE]
  std::vector<float> eout;     // [U * n_expert_used][E]
  std::vector<MatmulJob> moe_jobs;  // reused (no allocation per step once grown)
  std::vector<float> scores;   // [threads][scores_per_thread(max cache capacity)] attention scores
  std::vector<float> rope_cs;  // [threads][max n_rot] one row's RoPE cos | sin (ops::rope_angles)
  // Attention work of one layer: query rows of tokens t0..t1-1 (one sequence) with kv head g, or of one token a run
  // of its heads; cost is its rows times keys, for the order in which the threads take the blocks.
  struct AttnBlock {
    int64_t t0, t1, g, cost;
    int64_t head, heads;  // a one-token block (g = -1): its query heads head .. head + heads - 1
  };
  // A block's rows read each cached key and value once, so bigger blocks read the cache less often: 128 rows (64
  // tokens of a sliding layer's 2-head group) fill attend_rows_kv's four 32-row passes on AVX-512. One sliding layer
  // of the synth 26B at 1,500 tokens, stand-alone, 2 threads: 88-93 ms with 32 rows, 72-81 with 64, 67-79 with 128,
  // 75-76 with 256; in the model, pp1500's attention 3.60 and 3.61 s -> 2.96 and 3.17 s (alternating).
  static constexpr int64_t kAttnBlockRows = 128;
  // Floats of `scores` a thread needs for caches of up to max_cap slots: a one-token block's heads (attend).
  int64_t scores_per_thread(int64_t max_cap) const;
  std::vector<AttnBlock> attn_blocks;
  SharedActivations acts, acts2;

  // Where the rows of a step belong: each row's position and its sequence's per-layer caches (this session's own,
  // or, in a batched step, the caches of the sequence the row comes from); and the rows whose logits are wanted.
  std::vector<int64_t> row_pos;             // [U]
  std::vector<LayerKvCache*> row_cache;     // [U]
  std::vector<int64_t> logit_rows;          // output row i = logits of step row logit_rows[i]
  // The rows in segments, one per sequence's chunk (a session's own step is one): seg_end[s] is the end of segment
  // s. Every product gives a segment's rows the path they take alone, where the int8 GEMM or the tiles is chosen by
  // the segment's length (a routed expert: by how many of the segment's rows chose it; MatmulJob::gemm_tokens).
  // Segments of at least matmul_gemm_min_tokens() rows come first: rows [0, gemm_rows) of the step.
  std::vector<int64_t> seg_end;
  std::vector<int32_t> row_seg;             // [U] segment of each row (forward_step)
  int64_t gemm_rows = 0;                    // forward_step
  std::vector<int32_t> exp_gemm;           // [n_expert] leading rows of each expert's run that take the GEMM
  std::vector<int32_t> exp_tmp;             // [U * n_expert_used] route_experts' reordering

  // One step of n rows as described by row_pos / row_cache / logit_rows; logits go to logits_out [rows][n_vocab].
  void forward_step(const int32_t* tokens, int64_t n, float* logits_out);
  void attention_block(int layer, int64_t n);
  void attend(int layer, int64_t n);  // attn from q and the caches (after this step's k and v are stored)
  void ffn_block(int layer, int64_t n);
  // The routed experts in three steps, so their products share parallel regions with the dense MLP's:
  // router_input adds the router product to moe_jobs; route_experts picks each token's experts, groups the rows by
  // expert and adds every expert's gate_up product; expert_downs runs the downs and leaves the weighted, normed
  // sum in moe.
  void router_input(int layer, int64_t n);
  void route_experts(int layer, int64_t n);
  void expert_downs(int layer, int64_t n);
  // A product over all n rows of the step, each segment on its own path.
  MatmulJob dense_job(const MatrixView& w, const QuantizedActivations& xq, float* y) const;
  // Within each expert's run of exp_rows, the rows of segments that take the GEMM alone go first (exp_gemm).
  void order_expert_rows(int64_t n);
};

}  // namespace fabula
