// The gemma4 subset of llama.cpp's llama_tensor_get_type (src/llama-quant.cpp); docs/GEMMA4.md §2 says which tensors
// it may touch.
#include "tools/quant_recipe.h"

#include <cstdio>

#include <fmt/format.h>

#include "base/ascii.h"
namespace fabula {
namespace {

struct FtypeInfo {
  QuantFtype ftype;
  std::string_view name;
  GgmlType default_type;
};

constexpr FtypeInfo kFtypes[] = {
    {QuantFtype::kQ8_0, "Q8_0", GgmlType::kQ8_0},     {QuantFtype::kQ4_0, "Q4_0", GgmlType::kQ4_0},
    {QuantFtype::kQ4_K_M, "Q4_K_M", GgmlType::kQ4_K}, {QuantFtype::kQ5_K_M, "Q5_K_M", GgmlType::kQ5_K},
    {QuantFtype::kQ6_K, "Q6_K", GgmlType::kQ6_K},     {QuantFtype::kF16, "F16", GgmlType::kF16},
    {QuantFtype::kBF16, "BF16", GgmlType::kBF16},     {QuantFtype::kF32, "F32", GgmlType::kF32},
};

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

int n_dims(const std::vector<uint64_t>& shape) {
  int n = static_cast<int>(shape.size());
  while (n > 1 && shape[n - 1] == 1) --n;  // ggml_n_dims ignores trailing 1s
  return n;
}

// llama.cpp's tensor_allows_quantization, for the tensors a gemma4 file has.
bool allows_quantization(const QuantTensorIn& t) {
  if (!t.name.ends_with("weight")) return false;  // ffn_gate_inp.scale, ffn_down_exps.scale
  if (n_dims(t.shape) < 2) return false;           // norms, rope_freqs, layer_output_scale
  if (contains(t.name, "_norm.weight")) return false;
  if (contains(t.name, "ffn_gate_inp.weight")) return false;  // the MoE router stays F32
  if (contains(t.name, "position_embd") || contains(t.name, "token_types")) return false;
  if (t.type != GgmlType::kF32 && t.type != GgmlType::kF16 && t.type != GgmlType::kBF16 &&
      !type_traits(t.type).quantized)
    return false;  // integer tensors
  return true;
}

// The layer index in "blk.%d." (llama.cpp's layer_info for MoE models).
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// The mixture rules (llama_tensor_get_type_impl), for the ftypes we offer. `i_wv`/`n_wv` count attn_v tensors.
GgmlType mixture_type(const QuantTensorIn& t, QuantFtype ftype, GgmlType type, const QuantModelInfo& info,
                      bool has_output, int& i_wv, int n_wv) {
  const bool k_m = ftype == QuantFtype::kQ4_K_M || ftype == QuantFtype::kQ5_K_M;
  const std::string& name = t.name;
  if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
    // Uses the default type's block size (current llama.cpp), so Q4_0 files also get a Q6_K head.
    if (t.shape[0] % type_traits(type).block_size != 0) return GgmlType::kQ8_0;
    return type != GgmlType::kQ8_0 ? GgmlType::kQ6_K : type;
  }
  if (name == "token_embd.weight") return type;  // only IQ file types change an untied embedding
  if (contains(name, "attn_v.weight")) {
    if (k_m && quant_use_more_bits(i_wv, n_wv)) type = GgmlType::kQ6_K;
    if (info.n_expert == 8) type = GgmlType::kQ8_0;  // Mixtral rule: "trades just ~128MB"
    ++i_wv;
    return type;
  }
  if (contains(name, "attn_k.weight")) return info.n_expert == 8 ? GgmlType::kQ8_0 : type;
  if (contains(name, "ffn_down")) {
    const int i_layer = layer_of(name);
    if (k_m && i_layer >= 0 && quant_use_more_bits(i_layer, static_cast<int>(info.n_layer))) return GgmlType::kQ6_K;
    return type;
  }
  if (contains(name, "attn_output.weight")) {
    if (info.n_expert == 8 && ftype == QuantFtype::kQ4_K_M) return GgmlType::kQ5_K;
    return type;
  }
  return type;  // attn_q, attn_k, ffn_gate*, ffn_up*: the default
}

}  // namespace

Result<QuantFtype> quant_ftype_from_name(std::string_view name) {
  for (const auto& f : kFtypes)
    if (ascii_iequals(f.name, name)) return f.ftype;
  std::string known;
  for (const auto& f : kFtypes) known += (known.empty() ? "" : ", ") + std::string(f.name);
  return make_error(ErrorCode::kInvalidArgument, "unknown quantization type '{}' (known: {})", name, known);
}

std::string_view quant_ftype_name(QuantFtype ftype) {
  for (const auto& f : kFtypes)
    if (f.ftype == ftype) return f.name;
  return "?";
}

namespace {

GgmlType quant_ftype_default_type(QuantFtype ftype) {
  for (const auto& f : kFtypes)
    if (f.ftype == ftype) return f.default_type;
  return GgmlType::kF32;
}

// The type substituted when a k-quant's block (256) does not divide the row length. llama.cpp uses
// q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0; q5_1 is used when the tensor library can quantize it, else q8_0
// (the nearest supported type that is no smaller).
GgmlType quant_fallback_type(GgmlType wanted) {
  switch (wanted) {
    case GgmlType::kQ4_K: return GgmlType::kQ5_0;
    // llama.cpp: q5_1. Our tensor library implements q5_1 (quantize_row/dequantize_row), so keep parity.
    case GgmlType::kQ5_K: return GgmlType::kQ5_1;
    case GgmlType::kQ6_K: return GgmlType::kQ8_0;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K: return GgmlType::kQ4_0;
    // llama.cpp throws for block-32 types; we keep the tensor exact-ish instead.
    default: return GgmlType::kF16;
  }
}

}  // namespace

bool quant_use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

uint64_t QuantPlan::data_bytes(uint32_t alignment) const {
  uint64_t total = 0;
  for (const auto& t : tensors) total += (t.bytes + alignment - 1) / alignment * alignment;
  return total;
}

Result<QuantPlan> plan_quantization(const std::vector<QuantTensorIn>& tensors, QuantFtype ftype,
                                    const QuantModelInfo& info) {
  QuantPlan plan;
  plan.ftype = ftype;
  const GgmlType default_type = quant_ftype_default_type(ftype);
  bool has_output = false;
  int n_wv = 0;
  for (const auto& t : tensors) {
    has_output = has_output || t.name == "output.weight";
    if (contains(t.name, "attn_v.weight")) ++n_wv;  // counts the attn_v tensors that exist (none in K=V layers)
  }
  int i_wv = 0;
  for (const auto& t : tensors) {
    if (t.shape.empty()) return make_error(ErrorCode::kCorrupt, "tensor '{}' has no dimensions", t.name);
    QuantDecision d;
    d.name = t.name;
    d.shape = t.shape;
    d.source = d.wanted = d.target = t.type;
    d.quantize = allows_quantization(t);
    if (d.quantize) {
      const bool plain = default_type == GgmlType::kF32 || default_type == GgmlType::kF16 ||
                         default_type == GgmlType::kBF16;
      d.wanted = plain ? default_type : mixture_type(t, ftype, default_type, info, has_output, i_wv, n_wv);
      d.target = d.wanted;
      const uint64_t ne0 = t.shape[0];
      if (ne0 % type_traits(d.wanted).block_size != 0) {
        d.fallback = true;
        d.target = quant_fallback_type(d.wanted);
        if (ne0 % type_traits(d.target).block_size != 0) d.target = GgmlType::kF16;
        ++plan.n_fallback;
      }
    }
    const uint64_t rows = d.n_elements() / t.shape[0];
    if (t.shape[0] % type_traits(d.target).block_size != 0)
      return make_error(ErrorCode::kCorrupt, "tensor '{}': row of {} elements does not fit type {}", t.name,
                        t.shape[0], type_name(d.target));
    d.bytes = rows * row_bytes(d.target, t.shape[0]);
    plan.tensors.push_back(std::move(d));
  }
  return plan;
}

std::string quant_fallback_line(const QuantDecision& d) {
  const uint32_t block = type_traits(d.wanted).block_size;
  std::string line = fmt::format("warning: {:<36} - ncols {:>6} not divisible by {:>3} (required for type {:>7}) ",
                                 d.name, d.shape[0], block, type_name(d.wanted));
  if (d.target == GgmlType::kF16) line += "(WARNING: must use F16 due to unusual shape) ";
  line += fmt::format("-> falling back to {:>7}", type_name(d.target));
  return line;
}

}  // namespace fabula
