// The safetensors reader: bounds-checks the header length, parses the JSON header without exceptions,
// and checks every tensor's dtype, shape and data_offsets before handing out zero-copy views.
#include "format/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "tensor/fp16.h"

namespace fabula {

namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // the reference implementation's limit

struct DtypeInfo {
  std::string_view name;
  SafetensorsDtype dtype;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", SafetensorsDtype::kF64, 8},  {"F32", SafetensorsDtype::kF32, 4}, {"F16", SafetensorsDtype::kF16, 2},
    {"BF16", SafetensorsDtype::kBF16, 2}, {"I64", SafetensorsDtype::kI64, 8}, {"I32", SafetensorsDtype::kI32, 4},
    {"I16", SafetensorsDtype::kI16, 2},  {"I8", SafetensorsDtype::kI8, 1},   {"U8", SafetensorsDtype::kU8, 1},
    {"BOOL", SafetensorsDtype::kBool, 1},
};

constexpr std::string_view kUnsupportedDtypes[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                                   "F4", "F6_E2M3", "F6_E3M2", "C64"};

}  // namespace

std::string_view safetensors_dtype_name(SafetensorsDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

size_t safetensors_dtype_size(SafetensorsDtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

Status parse_safetensors(SafetensorsFile& out) {
  const auto bytes = out.bytes_;
  const std::string& name = out.name_;
  if (bytes.size() < 8) {
    return make_error(ErrorCode::kCorrupt, "{}: offset 0x0: file is {} bytes, too short for the 8-byte header length",
                      name, bytes.size());
  }
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > kMaxHeaderSize) {
    return make_error(ErrorCode::kCorrupt, "{}: offset 0x0: header length = {} (at most {})", name, header_size,
                      kMaxHeaderSize);
  }
  if (header_size > bytes.size() - 8) {
    return make_error(ErrorCode::kCorrupt, "{}: offset 0x0: header length = {} exceeds the {} bytes after it", name,
                      header_size, bytes.size() - 8);
  }
  if (header_size < 2 || bytes[8] != '{') {
    return make_error(ErrorCode::kCorrupt, "{}: offset 0x8: header must be a JSON object starting with '{{'", name);
  }
  out.header_size_ = header_size;
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_size);
  auto header = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return make_error(ErrorCode::kCorrupt, "{}: offset 0x8: header ({} bytes) is not a valid JSON object", name,
                      header_size);
  }

  const uint64_t data_offset = 8 + header_size;
  const uint64_t data_size = bytes.size() - data_offset;
  for (const auto& [key, entry] : header.items()) {
    std::string what = fmt::format("{}: header: tensor '{}'", name, key);
    if (key == "__metadata__") {
      if (!entry.is_object()) {
        return make_error(ErrorCode::kCorrupt, "{}: header: __metadata__ must be an object of strings", name);
      }
      for (const auto& [mk, mv] : entry.items()) {
        if (!mv.is_string()) {
          return make_error(ErrorCode::kCorrupt, "{}: header: __metadata__['{}'] must be a string", name, mk);
        }
        out.metadata_[mk] = mv.get_ref<const std::string&>();
      }
      continue;
    }
    if (!entry.is_object()) return make_error(ErrorCode::kCorrupt, "{}: entry must be an object", what);
    SafetensorsTensor t;
    t.name = key;

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return make_error(ErrorCode::kCorrupt, "{}: 'dtype' must be a string", what);
    }
    const std::string& dtype = dtype_it->get_ref<const std::string&>();
    const DtypeInfo* info = nullptr;
    for (const auto& d : kDtypes) {
      if (d.name == dtype) info = &d;
    }
    if (info == nullptr) {
      bool known = std::find(std::begin(kUnsupportedDtypes), std::end(kUnsupportedDtypes), dtype) !=
                   std::end(kUnsupportedDtypes);
      return make_error(known ? ErrorCode::kUnsupported : ErrorCode::kCorrupt,
                        "{}: dtype '{}' is {} (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)", what, dtype,
                        known ? "not supported" : "unknown");
    }
    t.dtype = info->dtype;

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return make_error(ErrorCode::kCorrupt, "{}: 'shape' must be an array", what);
    }
    unsigned __int128 n_bytes = info->size;
    for (size_t i = 0; i < shape_it->size(); ++i) {
      const auto& d = (*shape_it)[i];
      if (!d.is_number_unsigned()) {
        return make_error(ErrorCode::kCorrupt, "{}: shape[{}] = {} (must be a non-negative integer)", what, i,
                          d.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
      uint64_t v = d.get<uint64_t>();
      t.shape.push_back(v);
      n_bytes *= v;
      if (n_bytes > std::numeric_limits<uint64_t>::max()) n_bytes = std::numeric_limits<uint64_t>::max();
    }

    auto off_it = entry.find("data_offsets");
    if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 || !(*off_it)[0].is_number_unsigned() ||
        !(*off_it)[1].is_number_unsigned()) {
      return make_error(ErrorCode::kCorrupt, "{}: 'data_offsets' must be [begin, end] (non-negative integers)", what);
    }
    t.begin = (*off_it)[0].get<uint64_t>();
    t.end = (*off_it)[1].get<uint64_t>();
    if (t.begin > t.end || t.end > data_size) {
      return make_error(ErrorCode::kCorrupt, "{}: data_offsets [{}, {}] outside the data region [0, {}] (at file offset {:#x})",
                        what, t.begin, t.end, data_size, data_offset);
    }
    if (t.end - t.begin != n_bytes) {
      return make_error(ErrorCode::kCorrupt, "{}: data_offsets [{}, {}] hold {} bytes; {} shape [{}] needs {}", what,
                        t.begin, t.end, t.end - t.begin, dtype, fmt::join(t.shape, ", "),
                        static_cast<uint64_t>(n_bytes));
    }
    t.data = bytes.subspan(data_offset + t.begin, t.end - t.begin);
    out.index_.emplace(t.name, out.tensors_.size());
    out.tensors_.push_back(std::move(t));
  }

  // The tensors must tile the data region: sorted by offset, each starts where the previous one ended.
  std::vector<const SafetensorsTensor*> order;
  for (const auto& t : out.tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const auto* t : order) {
    if (t->begin < expected) {
      return make_error(ErrorCode::kCorrupt, "{}: header: tensor '{}': data_offsets [{}, {}] overlap the previous tensor (ends at {})",
                        name, t->name, t->begin, t->end, expected);
    }
    if (t->begin > expected) {
      return make_error(ErrorCode::kCorrupt, "{}: header: tensor '{}': data_offsets [{}, {}] leave a gap after {}", name,
                        t->name, t->begin, t->end, expected);
    }
    expected = t->end;
  }
  if (expected != data_size) {
    return make_error(ErrorCode::kCorrupt, "{}: offset {:#x}: {} bytes after the last tensor (data region is {} bytes)",
                      name, data_offset + expected, data_size - expected, data_size);
  }
  return ok_status();
}

Result<SafetensorsFile> SafetensorsFile::from_bytes(std::span<const uint8_t> bytes, std::string name) {
  SafetensorsFile out;
  out.name_ = std::move(name);
  out.bytes_ = bytes;
  FABULA_TRY(parse_safetensors(out));
  return out;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  FABULA_ASSIGN(MappedFile file, MappedFile::open(path));
  std::span<const uint8_t> bytes = file.bytes();
  FABULA_ASSIGN(SafetensorsFile out, from_bytes(bytes, path));
  out.file_ = std::move(file);
  return out;
}

const SafetensorsTensor* SafetensorsFile::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status safetensors_to_f32(const SafetensorsTensor& tensor, std::span<float> out, uint64_t first) {
  const uint64_t n = out.size();
  if (first > tensor.n_elements() || n > tensor.n_elements() - first) {
    return make_error(ErrorCode::kInvalidArgument, "tensor '{}': {} floats from element {}, tensor has {}",
                      tensor.name, n, first, tensor.n_elements());
  }
  const uint8_t* p = tensor.data.data() + first * safetensors_dtype_size(tensor.dtype);
  switch (tensor.dtype) {
    case SafetensorsDtype::kF32:
      if (n != 0) std::memcpy(out.data(), p, n * 4);
      return ok_status();
    case SafetensorsDtype::kF16:
    case SafetensorsDtype::kBF16: {
      const bool brain = tensor.dtype == SafetensorsDtype::kBF16;
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = brain ? bf16_to_fp32(h) : fp16_to_fp32(h);
      }
      return ok_status();
    }
    default:
      return make_error(ErrorCode::kUnsupported, "tensor '{}': dtype {} cannot be read as f32 (F32/F16/BF16 only)",
                        tensor.name, safetensors_dtype_name(tensor.dtype));
  }
}

Result<std::vector<float>> safetensors_read_f32(const SafetensorsTensor& tensor) {
  std::vector<float> out(tensor.n_elements());
  FABULA_TRY(safetensors_to_f32(tensor, out));
  return out;
}

Result<std::vector<std::string>> safetensors_shards(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    if (fs::exists(fs::path(dir) / "model.safetensors")) return std::vector<std::string>{"model.safetensors"};
    return make_error(ErrorCode::kNotFound, "{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  FABULA_ASSIGN(std::string text, read_file_text(index.string()));
  FABULA_ASSIGN(nlohmann::json j, parse_json(text, index.string()));
  FABULA_ASSIGN(JsonView weight_map, JsonView(j, index.string()).field("weight_map"));
  FABULA_ASSIGN(auto entries, weight_map.members());
  std::vector<std::string> shards;
  for (const auto& [name, shard] : entries) {
    FABULA_ASSIGN(std::string file, shard.string());
    if (file.find('/') != std::string::npos || file == "." || file == "..")
      return shard.error(ErrorCode::kParse, "\"{}\" is not a plain file name", file);
    if (std::find(shards.begin(), shards.end(), file) == shards.end()) shards.push_back(std::move(file));
  }
  return shards;
}

}  // namespace fabula
