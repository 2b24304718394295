// `fabula inspect FILE [--json] [--full]`: metadata and tensor table of a GGUF or safetensors file.
//
// Shapes are printed in each format's own order: GGUF in ggml order (dims[0] innermost), safetensors
// row-major (last dim innermost). "offset" is the absolute byte offset of the tensor's data in the file.
// In --json, arrays of more than 16 elements print as {"array": ELEMENT_TYPE, "count": N, "head": [first 16]}
// unless --full is given; shorter arrays print as plain lists.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "backend/memory_check.h"
#include "command.h"
#include "model_args.h"
#include "format/gguf.h"
#include "format/safetensors.h"

namespace fabula::app {
namespace {

using Json = nlohmann::ordered_json;
constexpr size_t kJsonHead = 16;
constexpr size_t kTextHead = 4;

std::string quote(const std::string& s, size_t max_len = 80) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += s.size() > max_len ? "\"..." : "\"";
  return out;
}

std::string plural(GgufValueType t) {
  return t == GgufValueType::kString ? "strings" : std::string(gguf_value_type_name(t)) + "s";
}

// One array element as text or JSON; `i` indexes the variant's vector.
std::string element_text(const GgufValue& v, size_t i) {
  return std::visit(
      [&](const auto& a) -> std::string {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return quote(a[i], 40);
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          return a[i] ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          // f32 values print at f32 precision (0.1f, not 0.10000000149011612).
          return v.array_type == GgufValueType::kF32 ? fmt::format("{}", static_cast<float>(a[i]))
                                                     : fmt::format("{}", a[i]);
        } else if constexpr (std::is_same_v<T, std::vector<uint64_t>> || std::is_same_v<T, std::vector<int64_t>>) {
          return fmt::format("{}", a[i]);
        } else {
          return "?";
        }
      },
      v.data);
}

Json element_json(const GgufValue& v, size_t i) {
  return std::visit(
      [&](const auto& a) -> Json {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, std::vector<bool>>) {
          return static_cast<bool>(a[i]);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<double>> ||
                             std::is_same_v<T, std::vector<uint64_t>> || std::is_same_v<T, std::vector<int64_t>>) {
          return a[i];
        } else {
          return nullptr;
        }
      },
      v.data);
}

std::string value_text(const GgufValue& v) {
  if (v.type == GgufValueType::kArray) {
    size_t n = v.array_size();
    std::string out = fmt::format("[{} {}", n, plural(v.array_type));
    for (size_t i = 0; i < n && i < kTextHead; ++i) out += (i == 0 ? ": " : ", ") + element_text(v, i);
    return out + (n > kTextHead ? ", ...]" : "]");
  }
  std::string type(gguf_value_type_name(v.type));
  if (const auto* s = v.as_string()) return type + " " + quote(*s);
  if (const auto* b = std::get_if<bool>(&v.data)) return type + (*b ? " true" : " false");
  if (const auto* d = std::get_if<double>(&v.data)) {
    return v.type == GgufValueType::kF32 ? fmt::format("{} {}", type, static_cast<float>(*d))
                                         : fmt::format("{} {}", type, *d);
  }
  if (const auto* u = std::get_if<uint64_t>(&v.data)) return fmt::format("{} {}", type, *u);
  if (const auto* i = std::get_if<int64_t>(&v.data)) return fmt::format("{} {}", type, *i);
  return type;
}

Json value_json(const GgufValue& v, bool full) {
  if (v.type == GgufValueType::kArray) {
    size_t n = v.array_size();
    Json list = Json::array();
    for (size_t i = 0; i < n && (full || i < kJsonHead); ++i) list.push_back(element_json(v, i));
    if (full || n <= kJsonHead) return list;
    return Json{{"array", gguf_value_type_name(v.array_type)}, {"count", n}, {"head", std::move(list)}};
  }
  return std::visit(
      [](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                      std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
          return x;
        } else {
          return nullptr;
        }
      },
      v.data);
}

std::string shape_text(const std::vector<uint64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

struct Row {
  std::string name, type;
  std::vector<uint64_t> shape;
  uint64_t offset, bytes;
};

void print_table(const std::vector<Row>& rows) {
  size_t w = 4;
  uint64_t total = 0;
  for (const auto& r : rows) {
    w = std::max(w, r.name.size());
    total += r.bytes;
  }
  std::printf("tensors (%zu, %llu bytes):\n", rows.size(), static_cast<unsigned long long>(total));
  std::printf("  %-*s  %-5s  %-22s  %12s  %12s\n", static_cast<int>(w), "name", "type", "shape", "bytes", "offset");
  for (const auto& r : rows) {
    std::printf("  %-*s  %-5s  %-22s  %12llu  %#12llx\n", static_cast<int>(w), r.name.c_str(), r.type.c_str(),
                shape_text(r.shape).c_str(), static_cast<unsigned long long>(r.bytes),
                static_cast<unsigned long long>(r.offset));
  }
}

Json rows_json(const std::vector<Row>& rows) {
  Json out = Json::array();
  for (const auto& r : rows) {
    out.push_back(Json{{"name", r.name}, {"type", r.type}, {"shape", r.shape}, {"offset", r.offset},
                       {"bytes", r.bytes}});
  }
  return out;
}

std::string dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace); }

int inspect_gguf(const std::string& path, bool json, bool full) {
  auto file = GgufFile::open(path);
  if (!file) return report_error(file.error());
  std::vector<Row> rows;
  for (const auto& t : file->tensors()) {
    rows.push_back(Row{t.name, std::string(type_name(t.type)), t.shape, file->data_offset() + t.offset, t.n_bytes()});
  }
  if (json) {
    Json meta = Json::object();
    for (const auto& [k, v] : file->metadata()) meta[k] = value_json(v, full);
    Json out{{"format", "gguf"}, {"version", file->version()}, {"alignment", file->alignment()},
             {"data_offset", file->data_offset()}, {"metadata", std::move(meta)}, {"tensors", rows_json(rows)}};
    if (file->n_shards() > 1) out["split"] = Json{{"count", file->n_shards()}, {"files", file->shard_paths()}};
    std::printf("%s\n", dump(out).c_str());
    return 0;
  }
  std::printf("%s: GGUF v%u, %zu bytes, alignment %u, data section at %#llx\n", path.c_str(), file->version(),
              file->bytes().size(), file->alignment(), static_cast<unsigned long long>(file->data_offset()));
  if (file->n_shards() > 1) {
    std::printf("split model: %zu files, %llu bytes in all (offsets below are within each tensor's file)\n",
                file->n_shards(), static_cast<unsigned long long>(file->total_file_bytes()));
    for (const auto& part : file->shard_paths()) std::printf("  %s\n", part.c_str());
  }
  std::printf("metadata (%zu keys):\n", file->metadata().size());
  for (const auto& [k, v] : file->metadata()) std::printf("  %s: %s\n", k.c_str(), value_text(v).c_str());
  print_table(rows);
  // What loading it would take (gemma4 models): weights + KV at the default context vs available memory.
  if (auto available = backend::available_memory()) {
    if (auto plan = backend::plan_memory(*file, 4096, *available); plan.ok()) {
      std::printf("memory: %.2f GB weights + %.2f GB KV cache (ctx 4096) + %.2f GB buffers; %.2f GB available\n",
                  plan->weights / 1e9, plan->kv_cache / 1e9, plan->scratch / 1e9, plan->available / 1e9);
      const std::string warning = model_memory_warning(ModelChoice{path, "", ""}, 4096);
      if (!warning.empty()) std::printf("warning: %s\n", warning.c_str());
    }
  }
  return 0;
}

int inspect_safetensors(const std::string& path, bool json) {
  auto file = SafetensorsFile::open(path);
  if (!file) return report_error(file.error());
  std::vector<Row> rows;
  for (const auto& t : file->tensors()) {
    rows.push_back(Row{t.name, std::string(safetensors_dtype_name(t.dtype)), t.shape, file->data_offset() + t.begin,
                       t.n_bytes()});
  }
  if (json) {
    Json meta = Json::object();
    for (const auto& [k, v] : file->metadata()) meta[k] = v;
    Json out{{"format", "safetensors"}, {"data_offset", file->data_offset()}, {"metadata", std::move(meta)},
             {"tensors", rows_json(rows)}};
    std::printf("%s\n", dump(out).c_str());
    return 0;
  }
  std::printf("%s: safetensors, %zu bytes, header %llu bytes, data at %#llx\n", path.c_str(), file->bytes().size(),
              static_cast<unsigned long long>(file->header_size()),
              static_cast<unsigned long long>(file->data_offset()));
  std::printf("metadata (%zu keys):\n", file->metadata().size());
  for (const auto& [k, v] : file->metadata()) std::printf("  %s: %s\n", k.c_str(), quote(v).c_str());
  print_table(rows);
  return 0;
}

// GGUF by its magic; safetensors by extension or by a plausible header ("<u64 length>{").
Result<bool> is_gguf(const std::string& path) {
  FABULA_ASSIGN(MappedFile file, MappedFile::open(path));
  auto b = file.bytes();
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return true;
  if (path.ends_with(".safetensors") || (b.size() > 8 && b[8] == '{')) return false;
  return make_error(ErrorCode::kUnsupported, "{}: neither GGUF (magic \"GGUF\") nor safetensors", path);
}

}  // namespace
}  // namespace fabula::app

FABULA_COMMAND(inspect, "Show the metadata and tensor table of a GGUF or safetensors file") {
  struct Options {
    std::string path;
    bool json = false;
    bool full = false;
  };
  auto opts = std::make_shared<Options>();
  cli.add_option("file", opts->path, "A .gguf or .safetensors file")->required();
  cli.add_flag("--json", opts->json,
               "Print one JSON object {format, metadata, tensors: [{name, type, shape, offset, bytes}]}; "
               "arrays over 16 elements become {array, count, head}");
  cli.add_flag("--full", opts->full, "Print whole metadata arrays in --json");
  return [opts] {
    auto gguf = fabula::app::is_gguf(opts->path);
    if (!gguf) return fabula::app::report_error(gguf.error());
    return *gguf ? fabula::app::inspect_gguf(opts->path, opts->json, opts->full)
                 : fabula::app::inspect_safetensors(opts->path, opts->json);
  };
}
