// `fabula convert`: Hugging Face Gemma 4 (ForCausalLM or the text model of ForConditionalGeneration) -> GGUF.
#include "tools/convert.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "base/file.h"
#include "base/log.h"
#include "base/progress.h"
#include "format/gguf.h"
#include "format/hf_config.h"
#include "format/safetensors.h"
#include "model/gemma4/hparams.h"
#include "model/gemma4/tensors.h"
#include "tensor/quant.h"
#include "text/tokenizer.h"

namespace fabula {
namespace fs = std::filesystem;
namespace {

// The checkpoint's safetensors files: model.safetensors.index.json's shards, else model.safetensors, else every
// *.safetensors in the directory.
Result<std::vector<std::string>> find_shards(const std::string& dir) {
  std::vector<std::string> shards;
  auto named = safetensors_shards(dir);
  if (named) {
    for (const auto& f : *named) shards.push_back((fs::path(dir) / f).string());
    std::sort(shards.begin(), shards.end());
    return shards;
  }
  if (named.error().code != ErrorCode::kNotFound) return named.take_error();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path().string());
  }
  std::sort(shards.begin(), shards.end());
  if (shards.empty()) return make_error(ErrorCode::kNotFound, "{}: no *.safetensors files", dir);
  return shards;
}

struct PlannedTensor {
  std::string gguf_name;
  GgmlType type;
  std::vector<uint64_t> shape;    // ggml order
  const SafetensorsTensor* src;   // nullptr for generated tensors
  std::vector<float> generated;   // generated F32 data (rope_freqs)
  int order_layer;                // -1 before the layers, n_layer after
  int order_kind;
};

std::optional<GgmlType> same_ggml_type(SafetensorsDtype d) {
  switch (d) {
    case SafetensorsDtype::kF32: return GgmlType::kF32;
    case SafetensorsDtype::kF16: return GgmlType::kF16;
    case SafetensorsDtype::kBF16: return GgmlType::kBF16;
    default: return std::nullopt;
  }
}

// llama.cpp's LlamaFileType for general.file_type.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kBF16: return 32;
    default: return 0;
  }
}

// Parses an --outtype spelling; "auto" gives nullopt-like kF32 with *is_auto = true.
Result<GgmlType> parse_outtype(const std::string& text, bool* is_auto) {
  *is_auto = false;
  if (text == "auto") {
    *is_auto = true;
    return GgmlType::kF32;
  }
  if (text == "f32") return GgmlType::kF32;
  if (text == "f16") return GgmlType::kF16;
  if (text == "bf16") return GgmlType::kBF16;
  if (text == "q8_0") return GgmlType::kQ8_0;
  return make_error(ErrorCode::kInvalidArgument, "--outtype {}: expected f32, f16, bf16, q8_0 or auto", text);
}

}  // namespace

Result<ConvertReport> convert_hf_to_gguf(const ConvertOptions& opt) {
  ConvertReport report;
  bool outtype_auto = false;
  FABULA_ASSIGN(GgmlType outtype, parse_outtype(opt.outtype, &outtype_auto));

  // --- config: which architecture, where the text model lives --------------------------------------------------
  const std::string config_path = (fs::path(opt.hf_dir) / "config.json").string();
  FABULA_ASSIGN(HfConfig config, HfConfig::load(config_path));
  std::string arch;
  if (config.has("architectures")) {
    FABULA_ASSIGN(auto archs, config.get_string_array("architectures"));
    if (!archs.empty()) arch = archs.front();
  }
  FABULA_ASSIGN(const std::string model_type, config.get_string_or("model_type", ""));
  if (arch.empty()) arch = model_type == "gemma4" ? "Gemma4ForConditionalGeneration" : model_type == "gemma4_text" ? "Gemma4ForCausalLM" : "";
  std::string prefix;
  HfConfig text_config = config;
  if (arch == "Gemma4ForCausalLM") {
    prefix = "model.";
  } else if (arch == "Gemma4ForConditionalGeneration") {
    prefix = "model.language_model.";
    FABULA_ASSIGN(text_config, config.get_object("text_config"));
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: architecture '{}' is not supported; fabula convert handles Gemma4ForCausalLM and "
                      "Gemma4ForConditionalGeneration (Gemma 4 text models)",
                      config_path, arch.empty() ? model_type : arch);
  }
  report.architecture = arch;
  FABULA_ASSIGN(Gemma4HParams hp, gemma4_hparams_from_hf(text_config));
  if (opt.rope_inv_freq == "auto") {
    std::string dtype;
    for (const HfConfig* c : {&text_config, &config}) {
      for (const char* key : {"dtype", "torch_dtype"}) {
        if (auto v = c->get_string_or(key, ""); dtype.empty() && v.ok()) dtype = *v;
      }
    }
    hp.rope_inv_freq_bf16 = dtype == "bfloat16";
  } else if (opt.rope_inv_freq == "bf16" || opt.rope_inv_freq == "f32") {
    hp.rope_inv_freq_bf16 = opt.rope_inv_freq == "bf16";
  } else {
    return make_error(ErrorCode::kInvalidArgument, "--rope-freq {}: expected auto, f32 or bf16", opt.rope_inv_freq);
  }
  report.rope_inv_freq_bf16 = hp.rope_inv_freq_bf16;

  // --- tensors: map every text-model tensor through the name table ---------------------------------------------
  FABULA_ASSIGN(auto shard_paths, find_shards(opt.hf_dir));
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  for (const auto& path : shard_paths) {
    FABULA_ASSIGN(SafetensorsFile f, SafetensorsFile::open(path));
    shards.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
  }
  std::vector<PlannedTensor> plan;
  std::set<std::string> seen;
  std::optional<GgmlType> source_type;
  for (const auto& shard : shards) {
    for (const SafetensorsTensor& t : shard->tensors()) {
      if (t.name.rfind(prefix, 0) != 0) {
        ++report.n_skipped;  // vision / audio towers, lm_head (tied)
        continue;
      }
      const std::string suffix = t.name.substr(prefix.size());
      auto match = match_hf_tensor_name(suffix);
      if (!match) {
        return make_error(ErrorCode::kUnsupported, "{}: unknown Gemma 4 tensor {}", shard->name(), t.name);
      }
      const TensorInfo& info = tensor_info(match->kind);
      if (info.per_layer && (match->layer < 0 || match->layer >= hp.n_layer)) {
        return make_error(ErrorCode::kCorrupt, "{}: tensor {} is beyond num_hidden_layers = {}", shard->name(), t.name,
                          hp.n_layer);
      }
      if (static_cast<int>(t.shape.size()) != info.rank) {
        return make_error(ErrorCode::kCorrupt, "{}: tensor {} has {} dimensions, expected {}", shard->name(), t.name,
                          t.shape.size(), info.rank);
      }
      auto src_type = same_ggml_type(t.dtype);
      if (!src_type) {
        return make_error(ErrorCode::kUnsupported, "{}: tensor {} has dtype {}, expected F32, F16 or BF16",
                          shard->name(), t.name, safetensors_dtype_name(t.dtype));
      }
      if (info.rank > 1 && !source_type) source_type = *src_type;
      PlannedTensor p;
      p.gguf_name = gguf_tensor_name(match->kind, match->layer);
      if (!seen.insert(p.gguf_name).second) {
        return make_error(ErrorCode::kCorrupt, "{}: tensor {} appears twice (as {})", shard->name(), p.gguf_name, t.name);
      }
      p.shape.assign(t.shape.rbegin(), t.shape.rend());  // row-major [.., out, in] -> ggml {in, out, ..}
      p.src = &t;
      p.order_layer = info.per_layer ? match->layer : (match->kind == TensorKind::kOutputNorm ? hp.n_layer : -1);
      p.order_kind = static_cast<int>(match->kind);
      // Vectors and the router stay F32 (llama.cpp keeps FFN_GATE_INP in F32 for every outtype).
      if (!info.quantizable) {
        p.type = GgmlType::kF32;
      } else {
        p.type = outtype_auto ? *src_type : outtype;
        if (p.type == GgmlType::kQ8_0 && p.shape[0] % 32 != 0) {
          FABULA_LOG_WARN("{}: {} elements per row is not a multiple of 32; writing f16", p.gguf_name, p.shape[0]);
          p.type = GgmlType::kF16;
        }
      }
      plan.push_back(std::move(p));
    }
  }
  if (hp.proportional_rope_full && std::find(hp.sliding.begin(), hp.sliding.end(), false) != hp.sliding.end()) {
    PlannedTensor p;
    p.gguf_name = gguf_tensor_name(TensorKind::kRopeFreqs);
    p.type = GgmlType::kF32;
    p.generated = gemma4_rope_freqs(hp);
    p.shape = {p.generated.size()};
    p.src = nullptr;
    p.order_layer = -1;
    p.order_kind = static_cast<int>(TensorKind::kRopeFreqs);
    plan.push_back(std::move(p));
  }
  // n_vocab comes from the embedding; it must agree with vocab_size.
  auto embd = std::find_if(plan.begin(), plan.end(), [](const PlannedTensor& p) { return p.gguf_name == "token_embd.weight"; });
  if (embd == plan.end()) {
    return make_error(ErrorCode::kNotFound, "{}: no {}embed_tokens.weight in the checkpoint", opt.hf_dir, prefix);
  }
  if (hp.n_vocab != 0 && static_cast<int64_t>(embd->shape[1]) != hp.n_vocab) {
    return make_error(ErrorCode::kCorrupt, "{}: embed_tokens has {} rows, vocab_size is {}", opt.hf_dir,
                      embd->shape[1], hp.n_vocab);
  }
  hp.n_vocab = static_cast<int64_t>(embd->shape[1]);
  std::stable_sort(plan.begin(), plan.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    return a.order_layer != b.order_layer ? a.order_layer < b.order_layer : a.order_kind < b.order_kind;
  });

  // --- metadata ------------------------------------------------------------------------------------------------
  GgufWriter writer;
  const GgmlType file_type = outtype_auto ? source_type.value_or(GgmlType::kF32) : outtype;
  writer.set("general.architecture", GgufValue::string(kGemma4Architecture));
  writer.set("general.type", GgufValue::string("model"));
  std::string name = opt.name;
  if (name.empty()) name = fs::path(opt.hf_dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(opt.hf_dir).parent_path().filename().string();
  writer.set("general.name", GgufValue::string(name));
  writer.set("general.file_type", GgufValue::u32(file_type_of(file_type)));
  writer.set("general.quantization_version", GgufValue::u32(2));
  gemma4_hparams_to_gguf(hp, writer);

  const fs::path tokenizer_json = fs::path(opt.hf_dir) / "tokenizer.json";
  const fs::path tokenizer_config = fs::path(opt.hf_dir) / "tokenizer_config.json";
  if (fs::exists(tokenizer_json)) {
    FABULA_ASSIGN(GgufMetadata meta, tokenizer_gguf_metadata(tokenizer_json.string(),
                                                           fs::exists(tokenizer_config) ? tokenizer_config.string() : ""));
    for (auto& [key, value] : meta) writer.set(key, std::move(value));
    report.has_tokenizer = true;
  } else {
    FABULA_LOG_WARN("{}: no tokenizer.json; the GGUF will have no tokenizer", opt.hf_dir);
  }
  // chat_template.jinja (newer checkpoints) takes precedence over tokenizer_config.json's chat_template.
  const fs::path jinja = fs::path(opt.hf_dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    FABULA_ASSIGN(std::string tmpl, read_file_text(jinja.string()));
    writer.set("tokenizer.chat_template", GgufValue::string(std::move(tmpl)));
  }

  // --- tensor data, streamed one tensor at a time ----------------------------------------------------------------
  for (auto& p : plan) {
    const PlannedTensor* pt = &p;
    if (pt->src == nullptr) {
      writer.add_tensor(pt->gguf_name, pt->type, pt->shape,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pt->generated.data()),
                                                 pt->generated.size() * sizeof(float)));
      continue;
    }
    writer.add_tensor(pt->gguf_name, pt->type, pt->shape, [pt](std::span<uint8_t> out) -> Status {
      const SafetensorsTensor& t = *pt->src;
      const uint64_t cols = pt->shape[0];
      const uint64_t rows = t.n_elements() / cols;
      if (same_ggml_type(t.dtype) == pt->type) {  // lossless copy
        if (out.size() != t.data.size()) {
          return make_error(ErrorCode::kInternal, "{}: {} bytes for {} bytes", pt->gguf_name, out.size(), t.data.size());
        }
        std::memcpy(out.data(), t.data.data(), out.size());
        return ok_status();
      }
      const size_t out_row = row_bytes(pt->type, cols);
      if (out.size() != out_row * rows) {
        return make_error(ErrorCode::kInternal, "{}: {} bytes for {} rows of {}", pt->gguf_name, out.size(), rows,
                          out_row);
      }
      std::vector<float> row(cols);
      for (uint64_t r = 0; r < rows; ++r) {
        FABULA_TRY(safetensors_to_f32(t, row, r * cols));
        quantize_row(pt->type, row.data(), out.data() + r * out_row, static_cast<int64_t>(cols));
      }
      return ok_status();
    });
  }
  report.n_tensors = static_cast<int64_t>(plan.size());

  uint64_t total_bytes = 0;
  for (const auto& p : plan) {
    uint64_t rows = 1;
    for (size_t i = 1; i < p.shape.size(); ++i) rows *= p.shape[i];
    total_bytes += row_bytes(p.type, p.shape[0]) * rows;
  }
  report.n_bytes = total_bytes;
  ProgressBar bar("convert " + fs::path(opt.output).filename().string(), total_bytes, "B");
  writer.set_split_max_bytes(opt.split_max_bytes);
  FABULA_TRY(writer.write(opt.output, [&](uint64_t done, uint64_t) { bar.set(done); }));
  report.written = writer.written_paths();
  bar.finish();
  return report;
}

}  // namespace fabula
