// Weights + KV vs MemAvailable, and the smaller quant to suggest.
#include "backend/memory_check.h"

#include <algorithm>
#include <string>

#include "model/gemma4/hparams.h"
#include "model/gemma4/kv_layout.h"
#include "model/model.h"

namespace fabula::backend {

namespace {

// llama.cpp's file types (general.file_type) and their bits per weight for the ladder of smaller quants.
struct QuantStep {
  uint32_t file_type;
  const char* name;
  double bits_per_weight;
};
constexpr QuantStep kLadder[] = {
    {0, "F32", 32.0}, {1, "F16", 16.0}, {32, "BF16", 16.0}, {7, "Q8_0", 8.5}, {18, "Q6_K", 6.56},
    {17, "Q5_K_M", 5.69}, {15, "Q4_K_M", 4.89}, {2, "Q4_0", 4.5},
};

}  // namespace

Result<MemoryPlan> plan_memory(const GgufFile& file, int64_t n_ctx, uint64_t available, KvCacheTypes cache_type) {
  FABULA_ASSIGN(Gemma4HParams hp, gemma4_hparams_from_gguf(file));
  MemoryPlan plan;
  plan.available = available;
  plan.n_ctx = n_ctx;
  for (const auto& t : file.tensors()) plan.weights += t.n_bytes();
  // Full layers hold n_ctx positions, sliding ones their window plus a ubatch, in the cache's types.
  const int64_t ubatch = std::min(n_ctx, SessionOptions{}.n_ubatch);
  plan.kv_cache = gemma4_kv_cache_bytes(hp, n_ctx, ubatch, cache_type.k, cache_type.v);
  // Thread scratch and logits: 2% of the weights plus 64 MiB; and a step's activations, per token in floats: the
  // residual, norm and output rows (5 E), q and the attention output, k and v, the dense gate and up, and for
  // each chosen expert its gate|up, GELU and down rows, plus its quantized input (about E bytes).
  const int64_t K = std::max<int64_t>(hp.n_expert_used, 1);
  int64_t kv_dims = 0;
  for (int64_t l = 0; l < hp.n_layer; ++l) kv_dims = std::max(kv_dims, hp.n_kv(l) * hp.head_dim(l));
  const int64_t floats = 5 * hp.n_embd + 2 * hp.n_head * hp.max_head_dim() + 2 * kv_dims + 2 * hp.max_ff() +
                         K * (3 * hp.n_ff_exp + hp.n_embd);
  plan.scratch = plan.weights / 50 + (64ull << 20) +
                 static_cast<uint64_t>(ubatch) * static_cast<uint64_t>(4 * floats + K * hp.n_embd);
  if (const GgufValue* ft = file.find("general.file_type"); ft != nullptr && ft->as_u64()) {
    for (const auto& q : kLadder)
      if (q.file_type == *ft->as_u64()) plan.file_type = q.name;
  }
  return plan;
}

std::string memory_warning(const MemoryPlan& plan, const std::string& model_name,
                           const std::vector<std::string>& offered) {
  if (!plan.would_page()) return "";
  auto gb = [](uint64_t n) { return fmt::format("{:.1f} GB", static_cast<double>(n) / 1e9); };
  std::string text = fmt::format(
      "{} needs {} ({} weights + {} KV cache at ctx {} + {} buffers) but only {} of memory is available: it would "
      "page from disk and run many times slower.",
      model_name, gb(plan.needed()), gb(plan.weights), gb(plan.kv_cache), plan.n_ctx, gb(plan.scratch),
      gb(plan.available));
  // The largest smaller quant whose weights would fit.
  double current_bits = 0;
  for (const auto& q : kLadder)
    if (plan.file_type == q.name) current_bits = q.bits_per_weight;
  std::string suggestion;
  if (current_bits > 0) {
    for (const auto& q : kLadder) {
      if (q.bits_per_weight >= current_bits) continue;
      if (!offered.empty() && std::find(offered.begin(), offered.end(), q.name) == offered.end()) continue;
      const auto weights = static_cast<uint64_t>(static_cast<double>(plan.weights) * q.bits_per_weight / current_bits);
      if (weights + plan.kv_cache + weights / 50 + (64ull << 20) <= plan.available) {
        suggestion = fmt::format(" Use the smaller {} (about {} of weights) instead", q.name, gb(weights));
        break;
      }
    }
  }
  if (suggestion.empty()) {
    text += " No smaller quant of it would fit either: close other programs or use a machine with more memory.";
  } else {
    text += suggestion + ", or lower --ctx / close other programs.";
  }
  return text;
}

}  // namespace fabula::backend
