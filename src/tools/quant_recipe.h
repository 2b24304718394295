// llama.cpp's per-tensor quantization recipe (llama-quant.cpp) for gemma4: which ggml type each tensor gets.
#pragma once

#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tensor/types.h"

namespace fabula {

// File types by their llama_ftype id (the value of general.file_type).
enum class QuantFtype : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 7,
  kQ4_K_M = 15,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kBF16 = 32,
};

Result<QuantFtype> quant_ftype_from_name(std::string_view name);  // "Q4_K_M", "q8_0", ... (case-insensitive)
std::string_view quant_ftype_name(QuantFtype ftype);                // "Q4_K_M"

struct QuantTensorIn {
  std::string name;
  std::vector<uint64_t> shape;  // ggml order
  GgmlType type = GgmlType::kF32;
};

struct QuantModelInfo {
  uint32_t n_layer = 0;   // block_count
  uint32_t n_expert = 0;  // expert_count (llama.cpp has extra rules for exactly 8 experts)
};

struct QuantDecision {
  std::string name;
  std::vector<uint64_t> shape;
  GgmlType source = GgmlType::kF32;
  GgmlType wanted = GgmlType::kF32;  // what the mixture rules chose
  GgmlType target = GgmlType::kF32;  // after the shape fallback
  bool quantize = false;             // false: copied unchanged (norms, router, 1-D scales, ...)
  bool fallback = false;
  uint64_t bytes = 0;                // size of the output tensor data (unpadded)

  uint64_t n_elements() const { return std::accumulate(shape.begin(), shape.end(), uint64_t{1}, std::multiplies<>()); }
};

struct QuantPlan {
  QuantFtype ftype = QuantFtype::kQ8_0;
  std::vector<QuantDecision> tensors;
  uint32_t n_fallback = 0;
  uint64_t data_bytes(uint32_t alignment = 32) const;  // tensor data section incl. per-tensor padding
};

// Decides every tensor's type. Errors for a row length that no type can hold (not possible for F16).
Result<QuantPlan> plan_quantization(const std::vector<QuantTensorIn>& tensors, QuantFtype ftype,
                                    const QuantModelInfo& info);

// llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every third one in between.
bool quant_use_more_bits(int i, int n);

// "warning: blk.0.ffn_down_exps.weight - ncols    704 not divisible by 256 (required for type    q4_K) -> falling
// back to    q5_0" — the line printed per fallen-back tensor.
std::string quant_fallback_line(const QuantDecision& d);

}  // namespace fabula
