// Un-fusing and re-fusing MoE expert tensors by byte slicing, for safetensors (files, sharded dirs) and GGUF.
#include "tools/experts.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/gemma4/tensors.h"

namespace fabula {
namespace {

namespace fs = std::filesystem;

// A fused expert stack's name suffix and the stem of its per-expert names (".ffn_gate_up_exps.weight" and
// ".ffn_gate_up."; ".experts.gate_up_proj" and ".experts.gate_up."); per-expert names end in ".weight".
struct FusedForm {
  std::string fused_suffix;
  std::string stem;
};
constexpr std::string_view kTail = ".weight";

// Every 3-D tensor of the model's table, in its GGUF and Hugging Face spellings.
const std::vector<FusedForm>& fused_forms() {
  static const std::vector<FusedForm> forms = [] {
    auto after_layer = [](std::string_view pattern) { return std::string(pattern.substr(pattern.find("{}") + 2)); };
    std::vector<FusedForm> out;
    for (const TensorInfo& row : gemma4_tensor_table()) {
      if (row.rank != 3) continue;
      const std::string gguf = after_layer(row.gguf);
      out.push_back({gguf, gguf.substr(0, gguf.size() - std::string_view("_exps.weight").size()) + "."});
      if (row.hf == nullptr) continue;
      const std::string hf = after_layer(row.hf);
      out.push_back({hf, hf.substr(0, hf.size() - std::string_view("_proj").size()) + "."});
    }
    return out;
  }();
  return forms;
}

// One tensor in a format-neutral form: bytes come from one or more borrowed parts (concatenated).
struct Item {
  std::string name;
  std::vector<uint64_t> shape;
  uint32_t dtype = 0;  // SafetensorsDtype or GgmlType, per format
  std::vector<std::span<const uint8_t>> parts;
};

// outer_first: HF/safetensors shapes list the expert dimension first; GGUF (ggml order) lists it last.
Result<std::vector<Item>> unfuse_items(const std::vector<Item>& in, bool outer_first, const std::string& file,
                                       ExpertsStats& stats) {
  std::vector<Item> out;
  for (const auto& item : in) {
    if (!expert_unfused_name(item.name, 0) || item.shape.size() != 3) {
      out.push_back(item);
      continue;
    }
    const uint64_t n_expert = outer_first ? item.shape[0] : item.shape[2];
    const std::span<const uint8_t> bytes = item.parts.at(0);
    if (n_expert == 0 || bytes.size() % n_expert != 0)
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}': {} bytes do not split into {} experts", file, item.name,
                        bytes.size(), n_expert);
    const size_t per = bytes.size() / n_expert;
    std::vector<uint64_t> shape = outer_first ? std::vector<uint64_t>{item.shape[1], item.shape[2]}
                                              : std::vector<uint64_t>{item.shape[0], item.shape[1]};
    for (uint64_t e = 0; e < n_expert; ++e)
      out.push_back(Item{*expert_unfused_name(item.name, static_cast<int>(e)), shape, item.dtype,
                         {bytes.subspan(e * per, per)}});
    ++stats.fused_tensors;
    stats.expert_tensors += static_cast<uint32_t>(n_expert);
  }
  return out;
}

Result<std::vector<Item>> refuse_items(const std::vector<Item>& in, bool outer_first, const std::string& file,
                                       ExpertsStats& stats) {
  std::map<std::string, std::map<int, size_t>> groups;  // fused name -> expert -> item index
  for (size_t i = 0; i < in.size(); ++i) {
    auto ref = expert_parse_unfused(in[i].name);
    if (!ref) continue;
    if (!groups[ref->fused].emplace(ref->expert, i).second)
      return make_error(ErrorCode::kCorrupt, "{}: expert tensor '{}' appears twice", file, in[i].name);
  }
  // Every fused tensor of a model has the same expert count, so a missing last expert shows up here.
  size_t n_max = 0;
  for (const auto& [fused, members] : groups) n_max = std::max(n_max, members.size());
  for (const auto& [fused, members] : groups)
    if (members.size() != n_max)
      return make_error(ErrorCode::kCorrupt, "{}: '{}' has {} experts, other expert tensors have {}", file, fused,
                        members.size(), n_max);
  std::set<std::string> emitted;
  std::vector<Item> out;
  for (const auto& item : in) {
    auto ref = expert_parse_unfused(item.name);
    if (!ref) {
      out.push_back(item);
      continue;
    }
    if (!emitted.insert(ref->fused).second) continue;  // the fused tensor sits where its first expert was
    const auto& members = groups[ref->fused];
    const int n_expert = static_cast<int>(members.size());
    if (members.rbegin()->first != n_expert - 1)
      return make_error(ErrorCode::kCorrupt, "{}: '{}': experts are not numbered 0..{} (highest is {})", file,
                        ref->fused, n_expert - 1, members.rbegin()->first);
    Item fused{ref->fused, {}, item.dtype, {}};
    const Item& first = in[members.begin()->second];
    for (const auto& [e, index] : members) {
      const Item& m = in[index];
      if (m.shape != first.shape || m.dtype != first.dtype || m.shape.size() != 2)
        return make_error(ErrorCode::kCorrupt, "{}: '{}' differs in shape or type from '{}' (all experts must match)",
                          file, m.name, first.name);
      fused.parts.push_back(m.parts.at(0));
    }
    fused.shape = outer_first ? std::vector<uint64_t>{static_cast<uint64_t>(n_expert), first.shape[0], first.shape[1]}
                              : std::vector<uint64_t>{first.shape[0], first.shape[1], static_cast<uint64_t>(n_expert)};
    out.push_back(std::move(fused));
    ++stats.fused_tensors;
    stats.expert_tensors += static_cast<uint32_t>(n_expert);
  }
  return out;
}

Result<std::vector<Item>> transform(const std::vector<Item>& in, ExpertsOp op, bool outer_first,
                                    const std::string& file, ExpertsStats& stats) {
  return op == ExpertsOp::kUnfuse ? unfuse_items(in, outer_first, file, stats)
                                  : refuse_items(in, outer_first, file, stats);
}

// A producer that concatenates parts (the writers' Producer signature).
auto concat(std::vector<std::span<const uint8_t>> parts) {
  return [parts = std::move(parts)](std::span<uint8_t> out) -> Status {
    size_t at = 0;
    for (const auto& p : parts) {
      if (at + p.size() > out.size()) return make_error(ErrorCode::kInternal, "expert parts exceed the tensor size");
      std::memcpy(out.data() + at, p.data(), p.size());
      at += p.size();
    }
    if (at != out.size()) return make_error(ErrorCode::kInternal, "expert parts fill {} of {} bytes", at, out.size());
    return ok_status();
  };
}

// Adds each item to `writer` (a SafetensorsWriter or GgufWriter, Dtype its type enum): one part as it is, more
// joined by concat.
template <typename Dtype, typename Writer>
void add_items(Writer& writer, const std::vector<Item>& items) {
  for (const auto& item : items) {
    const auto dtype = static_cast<Dtype>(item.dtype);
    if (item.parts.size() == 1) writer.add_tensor(item.name, dtype, item.shape, item.parts[0]);
    else writer.add_tensor(item.name, dtype, item.shape, concat(item.parts));
  }
}

Result<ExpertsStats> convert_safetensors_file(const std::string& in_path, const std::string& out_path, ExpertsOp op,
                                              std::vector<std::string>* names_out) {
  FABULA_ASSIGN(SafetensorsFile in, SafetensorsFile::open(in_path));
  std::vector<Item> items;
  for (const auto& t : in.tensors())
    items.push_back(Item{t.name, t.shape, static_cast<uint32_t>(t.dtype), {t.data}});
  ExpertsStats stats;
  FABULA_ASSIGN(std::vector<Item> out_items, transform(items, op, /*outer_first=*/true, in_path, stats));
  SafetensorsWriter writer;
  writer.set_metadata(safetensors_metadata_of(in));
  add_items<SafetensorsDtype>(writer, out_items);
  if (names_out)
    for (const auto& item : out_items) names_out->push_back(item.name);
  FABULA_TRY(writer.write(out_path));
  stats.files = 1;
  return stats;
}

Result<ExpertsStats> convert_gguf(const std::string& in_path, const std::string& out_path, ExpertsOp op) {
  FABULA_ASSIGN(GgufFile in, GgufFile::open(in_path));
  std::vector<Item> items;
  for (const auto& t : in.tensors()) items.push_back(Item{t.name, t.shape, static_cast<uint32_t>(t.type), {t.data}});
  ExpertsStats stats;
  FABULA_ASSIGN(std::vector<Item> out_items, transform(items, op, /*outer_first=*/false, in_path, stats));
  GgufWriter writer(in.alignment(), in.version());
  for (const auto& [key, value] : in.metadata()) writer.set(key, value);
  add_items<GgmlType>(writer, out_items);
  FABULA_TRY(writer.write(out_path));
  stats.files = 1;
  return stats;
}

Status copy_plain_file(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error(ErrorCode::kIo, "copy {} -> {}: {}", from.string(), to.string(), ec.message());
  return ok_status();
}

Result<ExpertsStats> convert_directory(const fs::path& in, const fs::path& out, ExpertsOp op) {
  const fs::path index_path = in / "model.safetensors.index.json";
  FABULA_ASSIGN(const std::vector<std::string> shards, safetensors_shards(in.string()));
  nlohmann::json index;  // rewritten with the new tensor names, its other fields kept
  const bool sharded = fs::exists(index_path);
  if (sharded) {
    FABULA_ASSIGN(std::string text, read_file_text(index_path.string()));
    FABULA_ASSIGN(index, parse_json(text, index_path.string()));
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot create directory: {}", out.string(), ec.message());

  ExpertsStats total;
  nlohmann::json weight_map = nlohmann::json::object();
  for (const auto& shard : shards) {
    std::vector<std::string> names;
    FABULA_ASSIGN(ExpertsStats s, convert_safetensors_file((in / shard).string(), (out / shard).string(), op, &names));
    total.fused_tensors += s.fused_tensors;
    total.expert_tensors += s.expert_tensors;
    total.files += s.files;
    for (const auto& n : names) weight_map[n] = shard;
  }
  if (sharded) {
    index["weight_map"] = weight_map;  // sizes are unchanged: slicing moves no bytes
    FABULA_TRY(write_file_atomic((out / "model.safetensors.index.json").string(), index.dump(2) + "\n"));
  }
  const std::set<std::string> model_files(shards.begin(), shards.end());
  for (const auto& entry : fs::directory_iterator(in, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || model_files.count(name) || name == "model.safetensors.index.json") continue;
    FABULA_TRY(copy_plain_file(entry.path(), out / name));  // config, tokenizer, chat template, ...
  }
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot list: {}", in.string(), ec.message());
  return total;
}

}  // namespace

std::optional<std::string> expert_unfused_name(std::string_view fused, int e) {
  for (const auto& f : fused_forms()) {
    if (fused.size() > f.fused_suffix.size() && fused.ends_with(f.fused_suffix)) {
      std::string prefix(fused.substr(0, fused.size() - f.fused_suffix.size()));
      return prefix + f.stem + std::to_string(e) + std::string(kTail);
    }
  }
  return std::nullopt;
}

std::optional<ExpertRef> expert_parse_unfused(std::string_view name) {
  for (const auto& f : fused_forms()) {
    const size_t pos = name.rfind(f.stem);
    if (pos == std::string_view::npos || pos == 0) continue;
    std::string_view rest = name.substr(pos + f.stem.size());
    if (!rest.ends_with(kTail)) continue;
    std::string_view digits = rest.substr(0, rest.size() - kTail.size());
    int e = -1;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), e);
    if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || e < 0) continue;
    if (digits.size() > 1 && digits[0] == '0') continue;  // "07" would not round-trip
    return ExpertRef{std::string(name.substr(0, pos)) + f.fused_suffix, e};
  }
  return std::nullopt;
}

Result<ExpertsStats> experts_convert(const std::string& in, const std::string& out, ExpertsOp op,
                                     const std::function<void(const std::string&)>& log) {
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec))
    return make_error(ErrorCode::kInvalidArgument, "output {} is the input", out);
  ExpertsStats stats;
  if (fs::is_directory(in, ec)) {
    FABULA_ASSIGN(stats, convert_directory(in, out, op));
  } else if (in.ends_with(".gguf")) {
    FABULA_ASSIGN(stats, convert_gguf(in, out, op));
  } else if (in.ends_with(".safetensors")) {
    FABULA_ASSIGN(stats, convert_safetensors_file(in, out, op, nullptr));
  } else {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected a .gguf or .safetensors file or an HF directory", in);
  }
  if (log) {
    log(op == ExpertsOp::kUnfuse
            ? fmt::format("unfused {} tensors into {} expert tensors ({} files)", stats.fused_tensors,
                          stats.expert_tensors, stats.files)
            : fmt::format("refused {} expert tensors into {} tensors ({} files)", stats.expert_tensors,
                          stats.fused_tensors, stats.files));
  }
  return stats;
}

}  // namespace fabula
