// The memory check before loading a model: weights plus KV cache against the memory the system can give,
// so a model that would page from disk (and run at a fraction of its speed) is named before it loads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "model/available_memory.h"
#include "tensor/kv_types.h"

namespace fabula::backend {

struct MemoryPlan {
  uint64_t weights = 0;    // tensor bytes, every part of a split model
  uint64_t kv_cache = 0;   // at n_ctx, as the session allocates it
  uint64_t scratch = 0;    // activations and buffers (a rough allowance)
  uint64_t available = 0;  // MemAvailable (or the injected figure)
  int64_t n_ctx = 0;
  std::string file_type;   // the model's quant (Q8_0, Q4_K_M, ...), "" when unknown
  bool would_page() const { return weights + kv_cache + scratch > available; }
  uint64_t needed() const { return weights + kv_cache + scratch; }
};

using fabula::available_memory;  // model/available_memory.h: the loader asks it too

// Weights and KV for `file` at `n_ctx` positions; an error when its hyper-parameters cannot be read.
Result<MemoryPlan> plan_memory(const GgufFile& file, int64_t n_ctx, uint64_t available, KvCacheTypes cache_type = {});

// "would page" warning with the figures and the largest smaller quant that would fit ("" when the plan fits).
// `offered`: the quants the model is published in (its registry entry); empty = any of llama.cpp's ladder.
std::string memory_warning(const MemoryPlan& plan, const std::string& model_name,
                           const std::vector<std::string>& offered = {});

}  // namespace fabula::backend
