// `fabula lora merge|plan`: merging a PEFT LoRA adapter into an HF checkpoint (per-expert modules included),
// and counting the modules / trainable parameters of a target set for a shape.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/gemma4/hparams.h"

namespace fabula {

// One LoRA-able linear module of a model: name without ".weight", in/out features.
struct LoraModuleSpec {
  std::string name;   // "model.layers.0.self_attn.q_proj", "model.layers.3.experts.gate_up.17"
  std::string group;  // "experts", "attention" or "mlp"
  uint64_t in = 0;
  uint64_t out = 0;
};

// targets: any of "experts" (per-expert gate_up/down), "attention" (q/k/v/o_proj; no v_proj where K=V),
// "mlp" (the dense gate/up/down_proj). Unknown targets are an error.
Result<std::vector<LoraModuleSpec>> lora_modules(const Gemma4HParams& hp, const std::vector<std::string>& targets);

struct LoraPlanGroup {
  std::string group;
  uint64_t modules = 0;
  uint64_t params = 0;
};
struct LoraPlan {
  std::vector<LoraPlanGroup> groups;
  uint64_t modules = 0;
  uint64_t params = 0;  // rank * (in + out) summed over modules
};
LoraPlan lora_plan(const std::vector<LoraModuleSpec>& modules, uint32_t rank);

struct LoraMergeStats {
  uint32_t modules = 0;         // adapter modules merged
  uint32_t tensors = 0;         // base tensors changed
  uint32_t files_copied = 0;    // non-weight files copied (config, tokenizer, ...)
};

// base_dir: an HF checkpoint (model.safetensors or index + shards; fused experts.gate_up_proj/down_proj, or the
// un-fused layout of `fabula experts unfuse`). adapter_dir: adapter_config.json + adapter_model.safetensors (PEFT).
// Each targeted weight becomes round(W + s * B·A) with s = lora_alpha / r (or / sqrt(r) with use_rslora), where
// B·A is accumulated in f32 over r in order, the sum is taken in f32 and rounded once to the base dtype
// (bf16/f16: round to nearest even). Every adapter module must match a base weight. Output: out_dir with the
// same files and tensor order, experts fused; other files copied.
Result<LoraMergeStats> lora_merge(const std::string& base_dir, const std::string& adapter_dir,
                                  const std::string& out_dir, int n_threads = 0,
                                  const std::function<void(const std::string&)>& log = {});

}  // namespace fabula
