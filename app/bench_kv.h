// `fabula bench --kv-memory` and `fabula bench --kv-quality`: the KV cache types (docs/KV_CACHE.md) measured.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/kv_types.h"

namespace fabula::app {

// Bytes per token per layer kind and the whole cache at each context, for every type, for a named shape
// (model/gemma4/presets.cpp) or a model file's hyper-parameters.
int print_kv_memory(const std::string& shape_or_model, const std::vector<int64_t>& contexts, bool json);

struct KvQualityArgs {
  std::string model;
  std::string prompt_file;  // the prompt the held-out beats follow (raw text, special tokens recognised)
  std::string beats_file;   // held-out beats, {"beat": ...} per line (NLL, teacher-forced agreement)
  int positions = 512;      // decoded positions for max |Δlogit| and KL against f32
  int greedy = 256;         // greedy tokens from the prompt, compared with f32's
  int threads = 0;
  uint32_t seed = 1234;     // random tokens where no text is given
  bool json = false;
  std::vector<KvCacheTypes> types;  // empty: every type for K and V alike
};

// Per type against the f32 cache: max |Δlogit| and mean KL(f32 || type) over `positions` decoded positions;
// greedy agreement over `greedy` tokens; with beats, the mean NLL per beat token and its change against f16.
int print_kv_quality(const KvQualityArgs& args);

}  // namespace fabula::app
