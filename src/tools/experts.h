// `fabula experts unfuse|refuse`: fused MoE expert tensors <-> one 2-D tensor per expert, for HF safetensors
// checkpoints (a file or a directory, sharded or not) and for GGUF files. Pure byte slicing: any dtype works.
//
// Names (fused -> expert e):
//   HF    <p>.experts.gate_up_proj [E, 2I, H] -> <p>.experts.gate_up.<e>.weight [2I, H]
//         <p>.experts.down_proj    [E, H, I]  -> <p>.experts.down.<e>.weight    [H, I]
//   GGUF  blk.N.ffn_gate_up_exps.weight {H, 2I, E} -> blk.N.ffn_gate_up.<e>.weight {H, 2I}
//         blk.N.ffn_down_exps.weight    {I, H, E}  -> blk.N.ffn_down.<e>.weight    {I, H}
//         (and ffn_gate_exps / ffn_up_exps -> ffn_gate.<e> / ffn_up.<e>): llama.cpp's legacy per-expert
//         spelling "blk.%d.ffn_down.%d.weight" (pre-merge Mixtral files), so quantization rules still match.
// Un-fused tensors take the fused tensor's place (experts in order), so re-fusing restores the original order and,
// for files written canonically (HF, gguf-py, fabula), the original bytes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace fabula {

enum class ExpertsOp { kUnfuse, kRefuse };

struct ExpertsStats {
  uint32_t fused_tensors = 0;   // fused tensors read (unfuse) or written (refuse)
  uint32_t expert_tensors = 0;  // per-expert tensors written (unfuse) or read (refuse)
  uint32_t files = 0;           // model files written
};

// `in` is a .gguf file, a .safetensors file, or an HF directory (model.safetensors or an index + shards; the other
// files are copied). `out` is the same kind (a directory is created).
Result<ExpertsStats> experts_convert(const std::string& in, const std::string& out, ExpertsOp op,
                                     const std::function<void(const std::string&)>& log = {});

// Naming helpers (exposed for LoRA merge and tests).
// The per-expert name of expert `e` of a fused tensor, or nullopt if `fused` is not a fused expert tensor.
std::optional<std::string> expert_unfused_name(std::string_view fused, int e);
// The fused name and expert index of a per-expert name, or nullopt.
struct ExpertRef {
  std::string fused;
  int expert = -1;
};
std::optional<ExpertRef> expert_parse_unfused(std::string_view name);

}  // namespace fabula
