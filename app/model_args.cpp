// Shared CLI helpers for commands that load a model (see model_args.h).
#include "model_args.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>

#include "backend/memory_check.h"
#include "format/gguf.h"
#include "hub/cache.h"
#include "hub/model_ref.h"

namespace fabula::app {

std::string default_model_path() {
  namespace fs = std::filesystem;
  const char* kRelative = "models/fabula-demo-v1.gguf";
  std::vector<fs::path> candidates = {fs::path(kRelative)};
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    const fs::path dir = fs::path(exe).parent_path();
    candidates.push_back(dir / kRelative);
    candidates.push_back(dir.parent_path() / kRelative);
    candidates.push_back(dir.parent_path().parent_path() / kRelative);
  }
  std::error_code ec;
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c.lexically_normal().string();
  }
  return kRelative;  // the error on open names it
}

Result<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '[' || text[i] == ']' || text[i] == '\n')) ++i;
  };
  skip();
  while (i < text.size()) {
    int32_t id = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), id);
    if (ec != std::errc() || id < 0) {
      return make_error(ErrorCode::kParse, "--tokens: expected a non-negative integer at character {} of '{}'", i,
                        text);
    }
    ids.push_back(id);
    i = static_cast<size_t>(end - text.data());
    skip();
    if (i < text.size()) {
      if (text[i] != ',') {
        return make_error(ErrorCode::kParse, "--tokens: expected ',' at character {} of '{}'", i, text);
      }
      ++i;
      skip();
    }
  }
  if (ids.empty()) return make_error(ErrorCode::kParse, "--tokens: no token ids in '{}'", text);
  return ids;
}

Result<ModelChoice> resolve_model_arg(const std::string& value) {
  if (value.empty()) return ModelChoice{default_model_path(), "", ""};
  if (hub::looks_like_path(value)) {
    ModelChoice choice{value, "", ""};
    if (auto cached = hub::cached_model_for_path(value)) choice.profile = cached->profile;
    return choice;
  }
  FABULA_ASSIGN(hub::Registry registry, hub::load_registry());
  auto ref = hub::parse_model_ref(value, registry);
  if (!ref.ok()) {
    return make_error(ErrorCode::kNotFound, "--model {}: no such file, and not a model reference: {}", value,
                      ref.error().message);
  }
  auto cached = hub::find_cached(*ref);
  if (!cached) {
    return make_error(ErrorCode::kNotFound,
                      "model {} is not in the cache ({}); download it first with: fabula pull {}", ref->display(),
                      hub::cache_root().string(), value);
  }
  ModelChoice choice{cached->path().string(), cached->ref, cached->profile.empty() ? ref->profile : cached->profile};
  return choice;
}

std::string narrator_profile_for(const ModelChoice& model) {
  const std::string stem = std::filesystem::path(model.path).stem().string();
  if (stem.find("fabula-demo") != std::string::npos) return "demo";
  auto file = GgufFile::open(model.path);
  if (file.ok()) {
    if (auto name = file->get_string("general.name"); name.ok()) {
      std::string lower = *name;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lower.find("fabula-demo") != std::string::npos || lower.find("fabula demo") != std::string::npos)
        return "demo";
    }
  }
  if (!model.profile.empty()) return model.profile;
  if (file.ok()) {
    if (auto p = file->get_string("fabula.narrator_profile"); p.ok() && !p->empty()) return *p;
  }
  // A registry file downloaded by hand: its name says which entry it is.
  if (auto registry = hub::load_registry(); registry.ok()) {
    const std::string base = std::filesystem::path(model.path).filename().string();
    for (const auto& e : *registry)
      for (const auto& [quant, f] : e.files)
        if (std::filesystem::path(f).filename().string() == base && !e.profile.empty()) return e.profile;
  }
  return "vn26b";
}

namespace {

// The registry entry a model belongs to: by the reference it was pulled as, else by its file name.
const hub::RegistryEntry* registry_entry_for(const hub::Registry& registry, const ModelChoice& model) {
  if (!model.ref.empty()) {
    auto ref = hub::parse_model_ref(model.ref, registry);
    if (ref.ok() && !ref->short_name.empty()) return hub::find_registry_entry(registry, ref->short_name);
  }
  const std::string base = std::filesystem::path(model.path).filename().string();
  for (const auto& e : registry)
    for (const auto& [quant, f] : e.files)
      if (std::filesystem::path(f).filename().string() == base) return &e;
  return nullptr;
}

}  // namespace

std::string model_memory_warning(const ModelChoice& model, int64_t n_ctx, KvCacheTypes cache_type) {
  auto available = backend::available_memory();
  if (!available) return "";
  auto file = GgufFile::open(model.path);  // a mapping: nothing is read but the header
  if (!file.ok()) return "";                 // the loader reports it
  auto plan = backend::plan_memory(*file, n_ctx, *available, cache_type);
  if (!plan.ok()) return "";
  const hub::RegistryEntry* entry = nullptr;
  auto registry = hub::load_registry();
  if (registry.ok()) entry = registry_entry_for(*registry, model);
  std::vector<std::string> offered;
  if (entry != nullptr)
    for (const auto& [quant, f] : entry->files) offered.push_back(quant);
  std::string text = backend::memory_warning(*plan, std::filesystem::path(model.path).filename().string(), offered);
  if (text.empty() || entry == nullptr) return text;
  for (const auto& quant : offered)  // the pull command of the quant that fits
    if (text.find("smaller " + quant + " ") != std::string::npos) text += fmt::format(" (fabula pull {}:{})", entry->name, quant);
  return text;
}

std::string warn_if_model_would_page(const ModelChoice& model, int64_t n_ctx, KvCacheTypes cache_type) {
  std::string text = model_memory_warning(model, n_ctx, cache_type);
  if (!text.empty()) std::fprintf(stderr, "warning: %s\n", text.c_str());
  return text;
}

void add_cache_type_flags(CLI::App& cli, KvCacheTypes& types) {
  std::vector<std::string> names;
  for (KvType t : kAllKvTypes) names.emplace_back(kv_type_name(t));
  auto add = [&](const char* flags, KvType& type, const char* what) {
    cli.add_option_function<std::string>(
           flags, [&type](const std::string& name) { type = *kv_type_from_name(name); },
           fmt::format("KV cache type for {} (docs/KV_CACHE.md): {} (default f32)", what, kv_type_list()))
        ->check(CLI::IsMember(names, CLI::ignore_case));
  };
  add("--cache-type-k", types.k, "K");
  add("--cache-type-v", types.v, "V");
}

void add_load_flags(CLI::App& cli, ModelLoadOptions& options) {
  cli.add_flag_callback("--mmap", [&options] { options.weights = WeightMemory::kMapped; },
                        "Map the model file instead of reading it into memory (loads faster from a warm page cache; "
                        "decode reads the weights slower; default: read when it fits in the available memory)");
  cli.add_flag_callback("--no-mmap", [&options] { options.weights = WeightMemory::kRead; },
                        "Read the model into memory even when it leaves little room (default: read when it fits in "
                        "the available memory, else map)");
  cli.add_flag("--mlock", options.mlock, "Keep the model in RAM (never paged out); needs a high enough ulimit -l");
}

}  // namespace fabula::app
