// Gemma 4 KV cache sizes (model/gemma4/kv_layout.h).
#include "model/gemma4/kv_layout.h"

#include <algorithm>

namespace fabula {

int64_t gemma4_kv_capacity(const Gemma4HParams& hp, int64_t layer, int64_t n_ctx, int64_t n_ubatch) {
  return hp.is_sliding(layer) ? std::min(n_ctx, hp.sliding_window - 1 + n_ubatch) : n_ctx;
}

size_t gemma4_kv_bytes_per_position(const Gemma4HParams& hp, int64_t layer, KvType k_type, KvType v_type) {
  const int64_t hd = hp.head_dim(layer);
  return static_cast<size_t>(hp.n_kv(layer)) * (kv_head_bytes(k_type, hd) + kv_head_bytes(v_type, hd));
}

uint64_t gemma4_kv_cache_bytes(const Gemma4HParams& hp, int64_t n_ctx, int64_t n_ubatch, KvType k_type,
                               KvType v_type) {
  uint64_t total = 0;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    total += static_cast<uint64_t>(gemma4_kv_capacity(hp, l, n_ctx, n_ubatch)) *
             gemma4_kv_bytes_per_position(hp, l, k_type, v_type);
  }
  return total;
}

}  // namespace fabula
