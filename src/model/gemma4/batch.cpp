// Continuous batching for Gemma 4 (model/model.h Batch): the rows of one forward step come from several sessions.
// A runner session without a cache holds the scratch buffers for n_batch rows; each row carries its sequence's
// position and KV caches, so attention reads only its own sequence while every product (and every routed expert)
// runs once over all rows.
#include <algorithm>
#include <cstring>

#include "model/gemma4/session_state.h"
#include "tensor/matmul.h"

namespace fabula {
namespace {

SessionOptions runner_options(const BatchOptions& o) {
  SessionOptions so;
  so.n_ctx = o.n_batch;
  so.n_ubatch = o.n_batch;
  so.n_threads = o.n_threads;
  return so;
}

class Gemma4Batch final : public BatchState {
 public:
  Gemma4Batch(const Gemma4Model& model, const BatchOptions& options, ThreadPool* pool)
      : runner_(model, runner_options(options), pool, /*with_cache=*/false), n_batch_(options.n_batch) {
    tokens_.resize(static_cast<size_t>(n_batch_));
  }
  Status decode(std::span<const BatchItem> items) override;

 private:
  // One forward step over every item's share of this round (Item::taken).
  void run_step(std::span<const BatchItem> items);

  Gemma4Session runner_;
  int64_t n_batch_;
  std::vector<int32_t> tokens_;  // [n_batch] the step's tokens
  struct Item {
    Gemma4Session* seq;
    int64_t done = 0;   // tokens decoded so far
    int64_t taken = 0;  // tokens in the current step
  };
  std::vector<Item> work_;
  std::vector<size_t> order_;                             // items in row order: long chunks first
  std::vector<std::pair<Gemma4Session*, int64_t>> outs_;  // logits row i of a step -> (sequence, its logits row)
};

void Gemma4Batch::run_step(std::span<const BatchItem> items) {
  Gemma4Session& r = runner_;
  const int64_t V = r.hp->n_vocab;
  // Each item's rows are one segment. Products of at least matmul_gemm_min_tokens() rows take the int8 GEMM,
  // fewer take the row-by-row tiles, and the two differ in the last bits; so does a routed expert, by how many rows
  // chose it. The forward pass gives every segment the paths it takes alone (batch invariance) while each weight
  // is read once for all rows; it wants the long segments first.
  const int64_t gemm_min = matmul_gemm_min_tokens();
  auto is_long = [gemm_min](int64_t taken) { return gemm_min > 0 && taken >= gemm_min; };
  order_.clear();
  for (size_t i = 0; i < work_.size(); ++i)
    if (work_[i].taken > 0 && is_long(work_[i].taken)) order_.push_back(i);
  for (size_t i = 0; i < work_.size(); ++i)
    if (work_[i].taken > 0 && !is_long(work_[i].taken)) order_.push_back(i);
  int64_t n = 0;
  r.logit_rows.clear();
  r.seg_end.clear();
  outs_.clear();
  for (size_t i : order_) {
    const Item& it = work_[i];
    const BatchItem& item = items[i];
    const int64_t size = static_cast<int64_t>(item.tokens.size());
    for (int64_t t = 0; t < it.taken; ++t) {
      const int64_t index = it.done + t;
      tokens_[static_cast<size_t>(n)] = item.tokens[static_cast<size_t>(index)];
      r.row_pos[static_cast<size_t>(n)] = it.seq->n_past + t;
      r.row_cache[static_cast<size_t>(n)] = it.seq->cache.data();
      if (item.mode == LogitsMode::kAll || (item.mode == LogitsMode::kLast && index == size - 1)) {
        r.logit_rows.push_back(n);
        outs_.emplace_back(it.seq, item.mode == LogitsMode::kAll ? index : 0);
      }
      ++n;
    }
    r.seg_end.push_back(n);
  }
  if (r.logits.size() < outs_.size() * static_cast<size_t>(V)) r.logits.resize(outs_.size() * static_cast<size_t>(V));
  r.forward_step(tokens_.data(), n, r.logits.data());
  for (size_t o = 0; o < outs_.size(); ++o) {
    std::memcpy(outs_[o].first->logits.data() + outs_[o].second * V, r.logits.data() + static_cast<int64_t>(o) * V,
                static_cast<size_t>(V) * sizeof(float));
  }
  for (Item& it : work_) {
    it.seq->n_past += it.taken;
    it.done += it.taken;
  }
}

Status Gemma4Batch::decode(std::span<const BatchItem> items) {
  Gemma4Session& r = runner_;
  const int64_t V = r.hp->n_vocab;
  work_.clear();
  int64_t max_cap = 1;
  for (const BatchItem& item : items) {
    auto* seq = static_cast<Gemma4Session*>(&item.session->state());  // same model, so the same family
    if (seq->w != r.w) return make_error(ErrorCode::kInvalidArgument, "batch: a session of another model");
    const int64_t n = static_cast<int64_t>(item.tokens.size());
    seq->logits_rows = item.mode == LogitsMode::kAll ? n : item.mode == LogitsMode::kLast ? 1 : 0;
    if (seq->logits.size() < static_cast<size_t>(seq->logits_rows * V))
      seq->logits.resize(static_cast<size_t>(seq->logits_rows * V));
    for (const LayerKvCache& c : seq->cache) max_cap = std::max(max_cap, c.capacity);
    work_.push_back(Item{seq});
  }
  const size_t threads = static_cast<size_t>(r.pool->size());
  const size_t scores = threads * static_cast<size_t>(r.scores_per_thread(max_cap));
  if (r.scores.size() < scores) r.scores.resize(scores);

  // Each round takes the next chunk of every item, n_ubatch tokens as a sequence alone decodes its prompt, while
  // the step has room. A chunk is never cut to fit: its length picks its products' paths (the int8 GEMM from
  // matmul_gemm_min_tokens() rows, else the tiles), and a cut chunk would round differently than alone. It waits
  // for the next step instead, unless the step is empty (a chunk longer than the whole step).
  for (;;) {
    int64_t n = 0;
    for (size_t i = 0; i < work_.size(); ++i) {
      Item& it = work_[i];
      const int64_t size = static_cast<int64_t>(items[i].tokens.size());
      const int64_t chunk = std::min(size - it.done, it.seq->opt.n_ubatch);
      it.taken = chunk <= n_batch_ - n ? chunk : n == 0 ? std::min(chunk, n_batch_) : 0;
      n += it.taken;
    }
    if (n == 0) break;
    run_step(items);
  }
  return ok_status();
}

}  // namespace

std::unique_ptr<BatchState> Gemma4Model::new_batch(const BatchOptions& options, ThreadPool* pool) const {
  return std::make_unique<Gemma4Batch>(*this, options, pool);
}

}  // namespace fabula
