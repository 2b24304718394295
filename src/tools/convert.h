// Hugging Face Gemma 4 checkpoint (config.json + safetensors, single or sharded) -> GGUF, as llama.cpp's
// convert_hf_to_gguf.py writes it (same tensor names, gemma4.* keys, tokenizer metadata), streamed tensor by tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "tensor/types.h"

namespace fabula {

struct ConvertOptions {
  std::string hf_dir;            // config.json, model*.safetensors, tokenizer.json (optional), chat template
  std::string output;            // .gguf path (written atomically)
  std::string outtype = "auto";  // f32 | f16 | bf16 | q8_0 | auto (= the checkpoint's dtype)
  std::string name;              // general.name; "" = the directory's name
  // RoPE inverse-frequency precision (fabula.rope_inv_freq_type): "auto" = bf16 when config.json's dtype is
  // bfloat16, as transformers computes with such a checkpoint; "f32" as llama.cpp does.
  std::string rope_inv_freq = "auto";
  uint64_t split_max_bytes = 0;  // > 0: llama.cpp gguf-split files of at most this much tensor data (--split-max-size)
};

struct ConvertReport {
  int64_t n_tensors = 0;         // written
  int64_t n_skipped = 0;         // vision / audio / lm_head tensors left out
  uint64_t n_bytes = 0;          // tensor data written
  bool has_tokenizer = false;
  std::vector<std::string> written;  // the output file, or every part of a split output
  bool rope_inv_freq_bf16 = false;
  std::string architecture;      // the HF architecture converted
};

Result<ConvertReport> convert_hf_to_gguf(const ConvertOptions& options);

}  // namespace fabula
