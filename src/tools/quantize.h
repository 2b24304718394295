// `fabula quantize`: plans (dry run) and streams a GGUF requantization tensor by tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/gguf.h"
#include "model/gemma4/hparams.h"
#include "tools/quant_recipe.h"

namespace fabula {

// Recipe inputs from a GGUF file (tensors and <arch>.block_count / <arch>.expert_count).
std::vector<QuantTensorIn> quant_inputs(const GgufFile& in);
QuantModelInfo quant_model_info(const GgufFile& in);

// Recipe inputs for hyper-parameters with no file: what the converter writes (BF16 weights; F32 for the tensors the
// table marks as not quantizable: vectors and the router).
std::vector<QuantTensorIn> quant_inputs(const Gemma4HParams& hp);
QuantModelInfo quant_model_info(const Gemma4HParams& hp);

// Exact size of the output file: header + metadata + tensor infos + padding + data. `metadata` are the
// output keys (with general.file_type and general.quantization_version already set).
uint64_t gguf_file_size(const std::vector<std::pair<std::string, GgufValue>>& metadata, const QuantPlan& plan,
                        uint32_t alignment = 32);

// The dry-run report: tensor count and bytes per type, the fallback count and the output size.
// `size_note` says whether the size includes the file's metadata.
std::string format_quant_plan(const QuantPlan& plan, const std::string& source, uint64_t output_bytes,
                              const std::string& size_note);

struct QuantizeOptions {
  int n_threads = 0;                                // 0: all cores
  std::function<void(const std::string&)> log;      // one line per fallen-back tensor + the summary
  bool progress = true;
  uint64_t split_max_bytes = 0;                     // > 0: write gguf-split files (--split-max-size)
};

// Quantizes `in` by `plan` (from plan_quantization(quant_inputs(in), ...)) into out_path, streaming
// one tensor at a time; rows are quantized in parallel.
Status quantize_gguf(const GgufFile& in, const QuantPlan& plan, const std::string& out_path,
                     const QuantizeOptions& options);

// The output metadata: the input's keys with general.file_type and general.quantization_version = 2.
std::vector<std::pair<std::string, GgufValue>> quantized_metadata(const GgufFile& in, QuantFtype ftype);

}  // namespace fabula
