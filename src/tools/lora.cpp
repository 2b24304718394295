// LoRA: module tables per shape, and merging PEFT adapters into HF safetensors checkpoints (fused experts sliced).
#include "tools/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/gemma4/tensors.h"
#include "tensor/fp16.h"
#include "tensor/thread_pool.h"
#include "tools/experts.h"

namespace fabula {
namespace {

namespace fs = std::filesystem;

// Checkpoints of Gemma4ForConditionalGeneration say "model.language_model.", Gemma4ForCausalLM says "model.":
// adapters trained on either apply to both.
std::string normalize(std::string_view name) {
  if (name.starts_with("model.language_model.")) return "model." + std::string(name.substr(21));
  return std::string(name);
}

struct AdapterModule {
  std::string module;  // as spelled in the adapter (after base_model.model.)
  const SafetensorsTensor* a = nullptr;
  const SafetensorsTensor* b = nullptr;
  float scale = 0;
  uint32_t rank = 0;
  bool used = false;
};

struct Adapter {
  SafetensorsFile file;
  std::map<std::string, AdapterModule> modules;  // normalized module name -> tensors
};

// PEFT's rank_pattern / alpha_pattern keys are regexes matched as "(.*\.)?(key)$"; we accept the literal module
// names and suffixes PEFT writes, and refuse real regexes rather than guess.
Result<std::optional<double>> pattern_value(const JsonView& config, const char* field, const std::string& module) {
  auto patterns = config.find(field);
  if (!patterns || !patterns->is_object()) return std::optional<double>();
  FABULA_ASSIGN(auto entries, patterns->members());
  for (const auto& [key, value] : entries) {
    if (key.find_first_of("*+?[]()|^$\\") != std::string::npos)
      return value.error(ErrorCode::kUnsupported, "is a regular expression (only literal names)");
    FABULA_ASSIGN(const double v, value.number());
    if (module == key || module.ends_with("." + key)) return std::optional<double>(v);
  }
  return std::optional<double>();
}

Result<std::unique_ptr<Adapter>> load_adapter(const fs::path& dir) {
  const std::string config_path = (dir / "adapter_config.json").string();
  FABULA_ASSIGN(std::string text, read_file_text(config_path));
  FABULA_ASSIGN(const nlohmann::json doc, parse_json(text, config_path));
  const JsonView config(doc, config_path);
  FABULA_TRY(config.expect_object());
  FABULA_ASSIGN(const int64_t r, config.integer("r", 1));  // a positive integer
  FABULA_ASSIGN(const JsonView alpha_field, config.field("lora_alpha"));
  FABULA_ASSIGN(const double alpha, alpha_field.number());
  FABULA_ASSIGN(const bool dora, config.boolean_or("use_dora", false));
  if (dora) return make_error(ErrorCode::kUnsupported, "{}: DoRA adapters (use_dora) are not supported", config_path);
  FABULA_ASSIGN(const bool fan_in_fan_out, config.boolean_or("fan_in_fan_out", false));
  if (fan_in_fan_out)
    return make_error(ErrorCode::kUnsupported, "{}: fan_in_fan_out adapters are not supported", config_path);
  FABULA_ASSIGN(const bool rslora, config.boolean_or("use_rslora", false));

  auto adapter = std::make_unique<Adapter>();
  FABULA_ASSIGN(adapter->file, SafetensorsFile::open((dir / "adapter_model.safetensors").string()));
  const std::string path = adapter->file.name();
  for (const auto& t : adapter->file.tensors()) {
    std::string name = t.name;
    if (!name.starts_with("base_model.model."))
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' does not start with 'base_model.model.'", path, name);
    name = name.substr(17);
    bool is_a = false;
    std::string module;
    for (const char* tail : {".lora_A.weight", ".lora_A.default.weight", ".lora_B.weight", ".lora_B.default.weight"}) {
      if (name.ends_with(tail)) {
        module = name.substr(0, name.size() - std::strlen(tail));
        is_a = std::string_view(tail).find("lora_A") != std::string_view::npos;
      }
    }
    if (module.empty())
      return make_error(ErrorCode::kUnsupported, "{}: tensor '{}' is not a lora_A/lora_B weight", path, t.name);
    if (t.shape.size() != 2)
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' must be 2-D", path, t.name);
    AdapterModule& m = adapter->modules[normalize(module)];
    m.module = module;
    (is_a ? m.a : m.b) = &t;
  }
  for (auto& [key, m] : adapter->modules) {
    if (!m.a || !m.b) return make_error(ErrorCode::kCorrupt, "{}: module '{}' lacks lora_{}", path, m.module, m.a ? "B" : "A");
    FABULA_ASSIGN(auto rank_override, pattern_value(config, "rank_pattern", m.module));
    FABULA_ASSIGN(auto alpha_override, pattern_value(config, "alpha_pattern", m.module));
    const double rank = rank_override.value_or(static_cast<double>(r));
    const double a = alpha_override.value_or(alpha);
    m.rank = static_cast<uint32_t>(m.a->shape[0]);
    if (m.rank != static_cast<uint32_t>(rank) || m.b->shape[1] != m.rank)
      return make_error(ErrorCode::kCorrupt, "{}: module '{}': lora_A {}x{} / lora_B {}x{} do not have rank {}", path,
                        m.module, m.a->shape[0], m.a->shape[1], m.b->shape[0], m.b->shape[1], rank);
    m.scale = static_cast<float>(rslora ? a / std::sqrt(rank) : a / rank);
  }
  return adapter;
}

// One merge: expert `slice` of a fused tensor (or the whole 2-D tensor when slice < 0).
struct Target {
  size_t tensor = 0;
  int slice = -1;
  AdapterModule* module = nullptr;
};

float load_value(SafetensorsDtype dtype, const uint8_t* p) {
  uint16_t h;
  float f;
  switch (dtype) {
    case SafetensorsDtype::kBF16: std::memcpy(&h, p, 2); return bf16_to_fp32(h);
    case SafetensorsDtype::kF16: std::memcpy(&h, p, 2); return fp16_to_fp32(h);
    default: std::memcpy(&f, p, 4); return f;
  }
}

void store_value(SafetensorsDtype dtype, float v, uint8_t* p) {
  uint16_t h;
  switch (dtype) {
    case SafetensorsDtype::kBF16: h = fp32_to_bf16(v); std::memcpy(p, &h, 2); return;
    case SafetensorsDtype::kF16: h = fp32_to_fp16(v); std::memcpy(p, &h, 2); return;
    default: std::memcpy(p, &v, 4); return;
  }
}

// W[out, in] (bytes of `dtype`, in place) += scale * B[out, r] · A[r, in]; B·A accumulated in f32 over r in order.
void merge_into(SafetensorsDtype dtype, uint8_t* w, uint64_t out, uint64_t in, const std::vector<float>& a,
                const std::vector<float>& b, uint32_t r, float scale, ThreadPool& pool) {
  const size_t es = safetensors_dtype_size(dtype);
  std::vector<std::vector<float>> scratch(pool.size(), std::vector<float>(in));
  pool.parallel_for(static_cast<int64_t>(out), [&](int64_t begin, int64_t end, int thread) {
    float* delta = scratch[thread].data();
    for (int64_t o = begin; o < end; ++o) {
      std::fill(delta, delta + in, 0.0f);
      for (uint32_t k = 0; k < r; ++k) {
        const float bk = b[o * r + k];
        const float* ak = a.data() + k * in;
        for (uint64_t i = 0; i < in; ++i) delta[i] += bk * ak[i];
      }
      uint8_t* row = w + o * in * es;
      for (uint64_t i = 0; i < in; ++i) {
        const float scaled = scale * delta[i];
        store_value(dtype, load_value(dtype, row + i * es) + scaled, row + i * es);
      }
    }
  });
}

}  // namespace

Result<std::vector<LoraModuleSpec>> lora_modules(const Gemma4HParams& hp, const std::vector<std::string>& targets) {
  std::set<std::string> groups;
  for (const auto& t : targets) {
    if (t != "experts" && t != "attention" && t != "mlp")
      return make_error(ErrorCode::kInvalidArgument, "unknown LoRA target '{}' (experts, attention, mlp)", t);
    groups.insert(t);
  }
  // The LoRA-able modules are the matrices of the tensor table, in its order.
  auto group_of = [](TensorKind kind) -> const char* {
    switch (kind) {
      case TensorKind::kAttnQ: case TensorKind::kAttnK: case TensorKind::kAttnV: case TensorKind::kAttnOutput:
        return "attention";
      case TensorKind::kFfnGate: case TensorKind::kFfnUp: case TensorKind::kFfnDown: return "mlp";
      case TensorKind::kFfnGateUpExps: case TensorKind::kFfnDownExps: return "experts";
      default: return nullptr;
    }
  };
  constexpr std::string_view kWeight = ".weight";
  std::vector<LoraModuleSpec> out;
  for (const TensorSpec& t : gemma4_tensors(hp)) {
    const char* group = group_of(t.kind);
    if (group == nullptr || !groups.count(group)) continue;
    const std::string hf = "model." + hf_tensor_name(t.kind, t.layer);
    if (t.shape.size() == 3) {  // an expert stack: one module per expert, named as `fabula experts unfuse` does
      for (uint64_t e = 0; e < t.shape[2]; ++e) {
        std::string name = expert_unfused_name(hf, static_cast<int>(e)).value_or(hf);
        if (name.ends_with(kWeight)) name.resize(name.size() - kWeight.size());
        out.push_back({name, group, t.shape[0], t.shape[1]});
      }
    } else {
      out.push_back({hf.substr(0, hf.size() - kWeight.size()), group, t.shape[0], t.shape[1]});
    }
  }
  return out;
}

LoraPlan lora_plan(const std::vector<LoraModuleSpec>& modules, uint32_t rank) {
  LoraPlan plan;
  for (const auto& m : modules) {
    auto it = std::find_if(plan.groups.begin(), plan.groups.end(), [&](const auto& g) { return g.group == m.group; });
    if (it == plan.groups.end()) it = plan.groups.insert(plan.groups.end(), LoraPlanGroup{m.group, 0, 0});
    const uint64_t params = static_cast<uint64_t>(rank) * (m.in + m.out);
    ++it->modules;
    it->params += params;
    ++plan.modules;
    plan.params += params;
  }
  return plan;
}

Result<LoraMergeStats> lora_merge(const std::string& base_dir, const std::string& adapter_dir,
                                  const std::string& out_dir, int n_threads,
                                  const std::function<void(const std::string&)>& log) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(base_dir, out_dir, ec))
    return make_error(ErrorCode::kInvalidArgument, "output {} is the base checkpoint", out_dir);
  FABULA_ASSIGN(std::unique_ptr<Adapter> adapter, load_adapter(adapter_dir));
  FABULA_ASSIGN(std::vector<std::string> shards, safetensors_shards(base_dir));

  // Pass 1: open every shard and match every adapter module to a base weight (or an expert slice of one).
  std::vector<SafetensorsFile> files;
  std::vector<std::vector<Target>> targets(shards.size());
  bool unfused_base = false;
  for (size_t s = 0; s < shards.size(); ++s) {
    FABULA_ASSIGN(SafetensorsFile f, SafetensorsFile::open((fs::path(base_dir) / shards[s]).string()));
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const auto& t = f.tensors()[i];
      unfused_base = unfused_base || expert_parse_unfused(t.name).has_value();
      std::vector<std::pair<int, std::string>> candidates;
      if (t.name.ends_with(".weight") && t.shape.size() == 2)
        candidates.emplace_back(-1, t.name.substr(0, t.name.size() - 7));
      if (t.shape.size() == 3 && expert_unfused_name(t.name, 0)) {
        for (uint64_t e = 0; e < t.shape[0]; ++e) {
          const std::string n = *expert_unfused_name(t.name, static_cast<int>(e));
          candidates.emplace_back(static_cast<int>(e), n.substr(0, n.size() - 7));
        }
      }
      for (const auto& [slice, module] : candidates) {
        auto it = adapter->modules.find(normalize(module));
        if (it == adapter->modules.end()) continue;
        AdapterModule& m = it->second;
        const uint64_t out = t.shape[t.shape.size() - 2], in = t.shape.back();
        if (m.a->shape[1] != in || m.b->shape[0] != out)
          return make_error(ErrorCode::kCorrupt, "adapter module '{}': lora_A {}x{}, lora_B {}x{} do not fit {} [{}, {}]",
                            m.module, m.a->shape[0], m.a->shape[1], m.b->shape[0], m.b->shape[1], t.name, out, in);
        if (t.dtype != SafetensorsDtype::kBF16 && t.dtype != SafetensorsDtype::kF16 &&
            t.dtype != SafetensorsDtype::kF32)
          return make_error(ErrorCode::kUnsupported, "{}: tensor '{}' has dtype {} (merge needs BF16, F16 or F32)",
                            f.name(), t.name, safetensors_dtype_name(t.dtype));
        if (m.used) return make_error(ErrorCode::kCorrupt, "adapter module '{}' matches two base weights", m.module);
        m.used = true;
        targets[s].push_back({i, slice, &m});
      }
    }
    files.push_back(std::move(f));
  }
  for (const auto& [key, m] : adapter->modules)
    if (!m.used) return make_error(ErrorCode::kNotFound, "adapter module '{}' matches no weight in {}", m.module, base_dir);

  // Pass 2: write every shard; targeted tensors are copied, merged slice by slice, rounded once.
  const std::string write_dir = unfused_base ? out_dir + ".unfused.tmp" : out_dir;
  fs::create_directories(write_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot create directory: {}", write_dir, ec.message());
  auto pool = std::make_shared<ThreadPool>(n_threads);
  LoraMergeStats stats;
  for (size_t s = 0; s < shards.size(); ++s) {
    const SafetensorsFile& f = files[s];
    std::map<size_t, std::vector<Target>> by_tensor;
    for (const auto& t : targets[s]) by_tensor[t.tensor].push_back(t);
    SafetensorsWriter writer;
    writer.set_metadata(safetensors_metadata_of(f));
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const SafetensorsTensor& t = f.tensors()[i];
      auto it = by_tensor.find(i);
      if (it == by_tensor.end()) {
        writer.add_tensor(t.name, t.dtype, t.shape, t.data);
        continue;
      }
      ++stats.tensors;
      stats.modules += static_cast<uint32_t>(it->second.size());
      writer.add_tensor(t.name, t.dtype, t.shape, [&t, merges = it->second, pool](std::span<uint8_t> out) -> Status {
        std::memcpy(out.data(), t.data.data(), out.size());
        const uint64_t rows = t.shape[t.shape.size() - 2], cols = t.shape.back();
        const size_t slice_bytes = rows * cols * safetensors_dtype_size(t.dtype);
        for (const Target& m : merges) {
          FABULA_ASSIGN(std::vector<float> a, safetensors_read_f32(*m.module->a));
          FABULA_ASSIGN(std::vector<float> b, safetensors_read_f32(*m.module->b));
          uint8_t* w = out.data() + (m.slice < 0 ? 0 : static_cast<size_t>(m.slice) * slice_bytes);
          merge_into(t.dtype, w, rows, cols, a, b, m.module->rank, m.module->scale, *pool);
        }
        return ok_status();
      });
    }
    FABULA_TRY(writer.write((fs::path(write_dir) / shards[s]).string()));
  }
  const std::set<std::string> model_files(shards.begin(), shards.end());
  for (const auto& entry : fs::directory_iterator(base_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || model_files.count(name)) continue;
    fs::copy_file(entry.path(), fs::path(write_dir) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return make_error(ErrorCode::kIo, "copy {}: {}", entry.path().string(), ec.message());
    ++stats.files_copied;
  }
  if (unfused_base) {  // leave a fused checkpoint, ready for convert
    FABULA_TRY(experts_convert(write_dir, out_dir, ExpertsOp::kRefuse));
    fs::remove_all(write_dir, ec);
  }
  if (log)
    log(fmt::format("merged {} LoRA modules into {} tensors; copied {} other files -> {}", stats.modules,
                    stats.tensors, stats.files_copied, out_dir));
  return stats;
}

}  // namespace fabula
