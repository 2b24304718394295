// `fabula synth`: a random-weight Gemma 4 GGUF of a given shape and file type (the exact tensor table, types from
// llama.cpp's quantization recipe, gemma4.* metadata, a synthetic BPE tokenizer), streamed to disk. For benchmarks:
// speed does not depend on the weight values, so quantized blocks are generated directly (see synth.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "format/gguf.h"
#include "model/gemma4/hparams.h"
#include "model/gemma4/tensors.h"
#include "tools/quant_recipe.h"

namespace fabula {

// A synthetic tokenizer.ggml.* block in llama.cpp's gemma4 layout: n_vocab tokens = specials at Gemma 4's ids
// (<pad> <eos> <bos> <unk> <mask>, <|turn> <turn|>, <|channel> <channel|>, ...; a compact layout below 4096),
// the 256 byte tokens <0x00>..<0xFF>, single characters, then generated pieces each made by one merge of two
// earlier tokens (merges[i] builds the i-th generated piece), so BPE can reach every normal token.
std::vector<std::pair<std::string, GgufValue>> synth_vocab_metadata(uint32_t n_vocab, uint64_t seed);

// Fills `out` (n_rows rows of `cols` elements of `type`) with random data whose dequantized values have roughly
// the given standard deviation: random quants/nibbles/scales with a sane fp16 d per block (no quantizer runs).
// Deterministic in (seed, first_row + row). Supports F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
Status synth_fill_rows(GgmlType type, int64_t cols, int64_t first_row, int64_t n_rows, float stddev, uint64_t seed,
                       std::span<uint8_t> out);

struct SynthOptions {
  std::string shape = "gemma4-26b-a4b";
  std::string type = "Q4_K_M";   // a quant_ftype_from_name spelling
  std::string output;
  uint64_t seed = 1;
  int n_threads = 0;             // 0: all cores
  bool quantize_floats = false;  // generate f32 rows and run the reference quantizers (slow; small shapes)
  bool progress = true;
  bool check_disk = true;        // refuse when the file system lacks room for the file
  bool sparse = false;           // zero weights written as holes: full size on paper, no disk (memory planning)
  uint64_t split_max_bytes = 0;  // > 0: llama.cpp gguf-split files of at most this much tensor data each
};

struct SynthReport {
  uint64_t file_bytes = 0;
  uint64_t n_tensors = 0;
  uint64_t n_params = 0;          // elements of all tensors
  uint32_t n_fallback = 0;        // tensors that took the recipe's shape fallback
  std::vector<std::pair<GgmlType, uint64_t>> tensors_by_type;  // count per type
};

// Plans (recipe), builds the metadata, checks disk space and streams the file (written atomically).
Result<SynthReport> synth_gguf(const SynthOptions& options);

// The plan alone (for --dry-run and tests): every tensor's name, shape and type, and the exact file size.
struct SynthPlan {
  std::string shape;
  Gemma4HParams hparams;
  QuantPlan quant;
  std::vector<TensorSpec> specs;                                 // same order as quant.tensors
  std::vector<std::pair<std::string, GgufValue>> metadata;       // all keys, in write order
  uint64_t file_bytes = 0;
};
Result<SynthPlan> synth_plan(const SynthOptions& options);

}  // namespace fabula
