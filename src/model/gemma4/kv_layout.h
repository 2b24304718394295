// The shape of a Gemma 4 session's KV cache, shared by the session that allocates it, the memory check and
// `fabula bench --kv-memory`: slots per layer (full layers n_ctx, sliding layers a ring of window - 1 + n_ubatch)
// and bytes per slot for the cache types (tensor/kv_types.h, docs/KV_CACHE.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/gemma4/hparams.h"
#include "tensor/kv_types.h"

namespace fabula {

// Slots of layer l's cache: a sliding query at p reads p - window + 1 .. p, and a step writes n_ubatch positions
// before reading, so the ring holds window - 1 + n_ubatch slots (never more than n_ctx).
int64_t gemma4_kv_capacity(const Gemma4HParams& hp, int64_t layer, int64_t n_ctx, int64_t n_ubatch);

// K plus V bytes of one position in layer l.
size_t gemma4_kv_bytes_per_position(const Gemma4HParams& hp, int64_t layer, KvType k_type, KvType v_type);

// The whole cache of one session.
uint64_t gemma4_kv_cache_bytes(const Gemma4HParams& hp, int64_t n_ctx, int64_t n_ubatch, KvType k_type,
                               KvType v_type);

}  // namespace fabula
