// Shared CLI helpers for commands that load a model: the default model path and --tokens parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "model/model.h"

namespace fabula::app {

// models/fabula-demo-v1.gguf, looked up next to the current directory, then relative to the fabula binary
// (build-*/fabula -> ../models/), so `fabula run` works from the repository or its build directory.
std::string default_model_path();

// "2,17,300" (spaces allowed, also a JSON-style "[2, 17, 300]") -> ids. Errors name the bad item.
Result<std::vector<int32_t>> parse_token_list(const std::string& text);

// What --model named, once resolved: a file to open and what is known about it.
struct ModelChoice {
  std::string path;     // the GGUF to open (the first part of a split model)
  std::string ref;      // the cache reference it came from ("" for a plain path)
  std::string profile;  // the narrator profile known from the cache / registry ("" = decide from the file)
};

// --model VALUE: a file path, or a reference resolved from the model cache (vn26b, vn26b:Q8_0, owner/repo:QUANT,
// owner/repo/file.gguf). Empty: the demo narrator. A reference that is not cached gives the pull command.
Result<ModelChoice> resolve_model_arg(const std::string& value);

// The story narrator profile for a model: "demo" for the demo narrator, else the cache's or registry's entry,
// else the GGUF's fabula.narrator_profile key, else "vn26b" (the protocol every other narrator is prompted with).
std::string narrator_profile_for(const ModelChoice& model);

// Prints a warning on stderr when the model's weights plus KV cache at n_ctx exceed the available memory, with
// the figures and the smaller quant (and its pull command when the model came from the registry).
// Returns the warning text ("" when it fits or cannot be judged).
std::string warn_if_model_would_page(const ModelChoice& model, int64_t n_ctx, KvCacheTypes cache_type = {});
// The same text without printing ("" when it fits or cannot be judged).
std::string model_memory_warning(const ModelChoice& model, int64_t n_ctx, KvCacheTypes cache_type = {});

// --no-mmap and --mlock, as llama.cpp spells them.
void add_load_flags(CLI::App& cli, ModelLoadOptions& options);

// --cache-type-k and --cache-type-v (llama.cpp's names; its -ctk / -ctv short forms are not CLI11 names): f32, f16,
// q8_0, q4_0, tq4, tq3.
void add_cache_type_flags(CLI::App& cli, KvCacheTypes& types);

}  // namespace fabula::app
