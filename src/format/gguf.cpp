// The GGUF reader: validates every field against the file size before use; tensors are zero-copy views.
#include "format/gguf.h"

#include <cstring>
#include <limits>

#include "format/gguf_internal.h"
#include "format/gguf_split.h"

namespace fabula {

using namespace gguf_detail;

// Walks the bytes with a bounds-checked cursor; every error carries the file name and the offset.
class GgufParser {
 public:
  GgufParser(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  Status parse(GgufFile& out);

 private:
  template <typename... Args>
  Error corrupt(uint64_t offset, fmt::format_string<Args...> format, Args&&... args) const {
    return Error{ErrorCode::kCorrupt,
                 fmt::format("{}: offset {:#x}: {}", name_, offset, fmt::format(format, std::forward<Args>(args)...))};
  }
  template <typename... Args>
  Error unsupported(uint64_t offset, fmt::format_string<Args...> format, Args&&... args) const {
    return Error{ErrorCode::kUnsupported,
                 fmt::format("{}: offset {:#x}: {}", name_, offset, fmt::format(format, std::forward<Args>(args)...))};
  }

  uint64_t remaining() const { return bytes_.size() - pos_; }

  // Reads a little-endian T at pos_; `what` names the field for the truncation error.
  template <typename T>
  Result<T> read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return corrupt(pos_, "{}: needs {} bytes, file ends after {}", what, sizeof(T), remaining());
    }
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string> read_string(std::string_view what);
  Status read_value(GgufValue& value, const std::string& what);
  Status read_array(GgufValue& value, const std::string& what);
  template <typename Elem, typename Stored>
  Status read_scalars(std::vector<Stored>& out, uint64_t n, GgufValueType type, const std::string& what);

  std::span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

Result<std::string> GgufParser::read_string(std::string_view what) {
  uint64_t at = pos_;
  FABULA_ASSIGN(uint64_t len, read<uint64_t>(fmt::format("{} length", what)));
  if (len > remaining()) {
    return corrupt(at, "{} length = {} exceeds the {} bytes left in the file", what, len, remaining());
  }
  std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
  pos_ += len;
  return s;
}

template <typename Elem, typename Stored>
Status GgufParser::read_scalars(std::vector<Stored>& out, uint64_t n, GgufValueType type, const std::string& what) {
  out.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    Elem e;
    std::memcpy(&e, bytes_.data() + pos_, sizeof(Elem));
    if constexpr (std::is_same_v<Stored, double>) {
      if constexpr (sizeof(Elem) == 4) {
        uint32_t bits;
        std::memcpy(&bits, &e, 4);
        out[i] = f32_bits_to_double(bits);
      } else {
        out[i] = static_cast<double>(e);
      }
    } else if constexpr (std::is_same_v<Stored, bool>) {
      if (e > 1) return corrupt(pos_, "{}[{}]: bool byte = {} (must be 0 or 1)", what, i, static_cast<unsigned>(e));
      out[i] = e != 0;
    } else {
      out[i] = static_cast<Stored>(e);
    }
    pos_ += sizeof(Elem);
  }
  (void)type;
  return ok_status();
}

Status GgufParser::read_array(GgufValue& value, const std::string& what) {
  uint64_t type_at = pos_;
  FABULA_ASSIGN(uint32_t elem, read<uint32_t>(what + " array element type"));
  if (elem == static_cast<uint32_t>(GgufValueType::kArray)) {
    return corrupt(type_at, "{}: nested arrays are not allowed", what);
  }
  if (!is_valid_value_type(elem)) {
    return corrupt(type_at, "{}: array element type = {} (expected 0..12)", what, elem);
  }
  auto et = static_cast<GgufValueType>(elem);
  value.array_type = et;
  uint64_t n_at = pos_;
  FABULA_ASSIGN(uint64_t n, read<uint64_t>(what + " array length"));
  uint64_t min_elem = et == GgufValueType::kString ? 8 : scalar_size(et);
  if (n > remaining() / min_elem) {
    return corrupt(n_at, "{}: array of {} {} elements cannot fit in the {} bytes left", what, n,
                   gguf_value_type_name(et), remaining());
  }
  switch (et) {
    case GgufValueType::kU8: return read_scalars<uint8_t>(value.data.emplace<std::vector<uint64_t>>(), n, et, what);
    case GgufValueType::kU16: return read_scalars<uint16_t>(value.data.emplace<std::vector<uint64_t>>(), n, et, what);
    case GgufValueType::kU32: return read_scalars<uint32_t>(value.data.emplace<std::vector<uint64_t>>(), n, et, what);
    case GgufValueType::kU64: return read_scalars<uint64_t>(value.data.emplace<std::vector<uint64_t>>(), n, et, what);
    case GgufValueType::kI8: return read_scalars<int8_t>(value.data.emplace<std::vector<int64_t>>(), n, et, what);
    case GgufValueType::kI16: return read_scalars<int16_t>(value.data.emplace<std::vector<int64_t>>(), n, et, what);
    case GgufValueType::kI32: return read_scalars<int32_t>(value.data.emplace<std::vector<int64_t>>(), n, et, what);
    case GgufValueType::kI64: return read_scalars<int64_t>(value.data.emplace<std::vector<int64_t>>(), n, et, what);
    case GgufValueType::kF32: return read_scalars<float>(value.data.emplace<std::vector<double>>(), n, et, what);
    case GgufValueType::kF64: return read_scalars<double>(value.data.emplace<std::vector<double>>(), n, et, what);
    case GgufValueType::kBool: return read_scalars<uint8_t>(value.data.emplace<std::vector<bool>>(), n, et, what);
    case GgufValueType::kString: {
      auto& strings = value.data.emplace<std::vector<std::string>>();
      strings.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        FABULA_ASSIGN(std::string s, read_string(fmt::format("{}[{}]", what, i)));
        strings.push_back(std::move(s));
      }
      return ok_status();
    }
    case GgufValueType::kArray: break;
  }
  return corrupt(type_at, "{}: array element type = {}", what, elem);
}

Status GgufParser::read_value(GgufValue& value, const std::string& what) {
  switch (value.type) {
    case GgufValueType::kU8: { FABULA_ASSIGN(auto v, read<uint8_t>(what)); value.data = uint64_t{v}; break; }
    case GgufValueType::kU16: { FABULA_ASSIGN(auto v, read<uint16_t>(what)); value.data = uint64_t{v}; break; }
    case GgufValueType::kU32: { FABULA_ASSIGN(auto v, read<uint32_t>(what)); value.data = uint64_t{v}; break; }
    case GgufValueType::kU64: { FABULA_ASSIGN(auto v, read<uint64_t>(what)); value.data = v; break; }
    case GgufValueType::kI8: { FABULA_ASSIGN(auto v, read<int8_t>(what)); value.data = int64_t{v}; break; }
    case GgufValueType::kI16: { FABULA_ASSIGN(auto v, read<int16_t>(what)); value.data = int64_t{v}; break; }
    case GgufValueType::kI32: { FABULA_ASSIGN(auto v, read<int32_t>(what)); value.data = int64_t{v}; break; }
    case GgufValueType::kI64: { FABULA_ASSIGN(auto v, read<int64_t>(what)); value.data = v; break; }
    case GgufValueType::kF32: {
      FABULA_ASSIGN(auto v, read<uint32_t>(what));
      value.data = f32_bits_to_double(v);
      break;
    }
    case GgufValueType::kF64: { FABULA_ASSIGN(auto v, read<double>(what)); value.data = v; break; }
    case GgufValueType::kBool: {
      uint64_t at = pos_;
      FABULA_ASSIGN(auto v, read<uint8_t>(what));
      if (v > 1) return corrupt(at, "{}: bool byte = {} (must be 0 or 1)", what, static_cast<unsigned>(v));
      value.data = v != 0;
      break;
    }
    case GgufValueType::kString: { FABULA_ASSIGN(auto s, read_string(what)); value.data = std::move(s); break; }
    case GgufValueType::kArray: return read_array(value, what);
  }
  return ok_status();
}

Status GgufParser::parse(GgufFile& out) {
  if (bytes_.size() < 4) return corrupt(0, "file is {} bytes, too short for the GGUF magic", bytes_.size());
  FABULA_ASSIGN(uint32_t magic, read<uint32_t>("magic"));
  if (magic != kMagic) {
    return corrupt(0, "magic = {:02x} {:02x} {:02x} {:02x} (expected 47 47 55 46, \"GGUF\")", bytes_[0], bytes_[1],
                   bytes_[2], bytes_[3]);
  }
  FABULA_ASSIGN(uint32_t version, read<uint32_t>("version"));
  if (version == 1) return unsupported(4, "version = 1: GGUF v1 is no longer supported (expected 2 or 3)");
  if ((version & 0xffff) == 0) return unsupported(4, "version = {:#x}: looks like a big-endian file", version);
  if (version != 2 && version != 3) return unsupported(4, "version = {} (expected 2 or 3)", version);
  out.version_ = version;

  FABULA_ASSIGN(uint64_t n_tensors, read<uint64_t>("n_tensors"));
  FABULA_ASSIGN(uint64_t n_kv, read<uint64_t>("n_kv"));
  // Lower bounds on the encoded sizes: a kv is at least 13 bytes, a tensor info at least 32.
  if (n_kv > remaining() / 13) {
    return corrupt(16, "n_kv = {} cannot fit in a file of {} bytes", n_kv, bytes_.size());
  }
  if (n_tensors > remaining() / 32 || n_kv * 13 + n_tensors * 32 > remaining()) {
    return corrupt(8, "n_tensors = {} (with n_kv = {}) cannot fit in a file of {} bytes", n_tensors, n_kv,
                   bytes_.size());
  }

  out.metadata_.reserve(n_kv);
  uint64_t alignment_at = 0;
  for (uint64_t i = 0; i < n_kv; ++i) {
    uint64_t key_at = pos_;
    FABULA_ASSIGN(std::string key, read_string(fmt::format("kv {} key", i)));
    if (key.empty()) return corrupt(key_at, "kv {} key is empty", i);
    std::string what = fmt::format("kv {} '{}'", i, key);
    if (out.metadata_index_.count(key) != 0) return corrupt(key_at, "{}: duplicate key", what);
    uint64_t type_at = pos_;
    FABULA_ASSIGN(uint32_t type, read<uint32_t>(what + " type"));
    if (!is_valid_value_type(type)) return corrupt(type_at, "{}: value type = {} (expected 0..12)", what, type);
    GgufValue value;
    value.type = static_cast<GgufValueType>(type);
    if (key == kAlignmentKey) alignment_at = pos_;
    FABULA_TRY(read_value(value, what));
    out.metadata_index_.emplace(key, out.metadata_.size());
    out.metadata_.emplace_back(std::move(key), std::move(value));
  }

  out.alignment_ = kDefaultAlignment;
  if (const GgufValue* a = out.find(kAlignmentKey)) {
    if (a->type != GgufValueType::kU32) {
      return corrupt(alignment_at, "{} has type {} (must be u32)", kAlignmentKey, gguf_value_type_name(a->type));
    }
    uint64_t v = std::get<uint64_t>(a->data);
    if (v == 0 || (v & (v - 1)) != 0) {
      return corrupt(alignment_at, "{} = {} (must be a power of two)", kAlignmentKey, v);
    }
    out.alignment_ = static_cast<uint32_t>(v);
  }

  // Tensor infos: everything about shape and type is checked here; offsets once the data section is known.
  std::vector<uint64_t> offset_fields(n_tensors);
  out.tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    uint64_t name_at = pos_;
    FABULA_ASSIGN(std::string name, read_string(fmt::format("tensor {} name", i)));
    std::string what = fmt::format("tensor {} '{}'", i, name);
    if (name.empty()) return corrupt(name_at, "tensor {} name is empty", i);
    if (name.size() > kMaxNameLength) {
      return corrupt(name_at, "{}: name is {} bytes (at most {})", what, name.size(), kMaxNameLength);
    }
    if (out.tensor_index_.count(name) != 0) return corrupt(name_at, "{}: duplicate tensor name", what);
    uint64_t dims_at = pos_;
    FABULA_ASSIGN(uint32_t n_dims, read<uint32_t>(what + " n_dims"));
    if (n_dims < 1 || n_dims > kMaxDims) return corrupt(dims_at, "{}: n_dims = {} (expected 1..4)", what, n_dims);
    GgufTensor t;
    t.name = std::move(name);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t at = pos_;
      FABULA_ASSIGN(int64_t ne, read<int64_t>(fmt::format("{} dims[{}]", what, d)));
      if (ne <= 0) return corrupt(at, "{}: dims[{}] = {} (must be positive)", what, d, ne);
      t.shape.push_back(static_cast<uint64_t>(ne));
    }
    uint64_t type_at = pos_;
    FABULA_ASSIGN(uint32_t type_id, read<uint32_t>(what + " type"));
    auto traits = type_traits(type_id);
    if (!traits) return unsupported(type_at, "{}: ggml type = {} is unknown or not supported", what, type_id);
    t.type = traits->type;
    if (t.shape[0] % traits->block_size != 0) {
      return corrupt(dims_at + 4, "{}: dims[0] = {} is not a multiple of the {} block size {}", what, t.shape[0],
                     traits->name, traits->block_size);
    }
    uint64_t n_bytes = 0;
    if (!tensor_bytes(*traits, t.shape, bytes_.size(), &n_bytes)) {
      return corrupt(dims_at + 4, "{}: {} shape [{}] would need more bytes than the file has ({})", what,
                     traits->name, fmt::join(t.shape, ", "), bytes_.size());
    }
    offset_fields[i] = pos_;
    FABULA_ASSIGN(t.offset, read<uint64_t>(what + " offset"));
    t.data = std::span<const uint8_t>(bytes_.data(), n_bytes);  // rebased below
    out.tensor_index_.emplace(t.name, out.tensors_.size());
    out.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment; the padding must be zeros.
  const uint64_t align = out.alignment_;
  const uint64_t data_offset = pad_to(pos_, align);
  if (data_offset > bytes_.size()) {
    return corrupt(pos_, "data section would start at {:#x} (alignment {}), past the end of the file ({} bytes)",
                   data_offset, align, bytes_.size());
  }
  for (uint64_t p = pos_; p < data_offset; ++p) {
    if (bytes_[p] != 0) return corrupt(p, "padding before the data section is {:#04x} (must be 0)", bytes_[p]);
  }
  out.data_offset_ = data_offset;

  uint64_t expected = 0;  // tensors are dense, in info order, each padded to the alignment
  const uint64_t data_size = bytes_.size() - data_offset;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor& t = out.tensors_[i];
    const uint64_t n_bytes = t.data.size();
    std::string what = fmt::format("tensor {} '{}'", i, t.name);
    if (t.offset % align != 0) {
      return corrupt(offset_fields[i], "{}: offset = {} is not a multiple of the alignment {}", what, t.offset, align);
    }
    if (t.offset != expected) {
      return corrupt(offset_fields[i], "{}: offset = {} (expected {}: tensor data is dense and in info order)", what,
                     t.offset, expected);
    }
    if (n_bytes > data_size - expected) {
      return corrupt(offset_fields[i], "{}: data [{:#x}, {:#x}) runs past the end of the file ({} bytes)", what,
                     data_offset + t.offset, data_offset + t.offset + n_bytes, bytes_.size());
    }
    t.data = bytes_.subspan(data_offset + t.offset, n_bytes);
    uint64_t padded = pad_to(n_bytes, align);
    if (padded > data_size - expected) {
      return corrupt(data_offset + t.offset + n_bytes, "{}: padding after the data runs past the end of the file", what);
    }
    for (uint64_t p = data_offset + t.offset + n_bytes; p < data_offset + t.offset + padded; ++p) {
      if (bytes_[p] != 0) return corrupt(p, "{}: padding byte is {:#04x} (must be 0)", what, bytes_[p]);
    }
    expected += padded;
  }
  if (expected != data_size) {
    return corrupt(data_offset + expected, "{} trailing bytes after the last tensor (file is {} bytes, expected {})",
                   data_size - expected, bytes_.size(), data_offset + expected);
  }
  return ok_status();
}

Result<GgufFile> GgufFile::from_bytes(std::span<const uint8_t> bytes, std::string name) {
  GgufFile out;
  out.name_ = std::move(name);
  out.bytes_ = bytes;
  GgufParser parser(bytes, out.name_);
  FABULA_TRY(parser.parse(out));
  return out;
}

Result<GgufFile> GgufFile::open(const std::string& path, const GgufOpenOptions& options) {
  FABULA_ASSIGN(MappedFile file, options.read_into_memory ? MappedFile::read(path) : MappedFile::open(path));
  std::span<const uint8_t> bytes = file.bytes();
  FABULA_ASSIGN(GgufFile out, from_bytes(bytes, path));
  out.file_ = std::move(file);  // the mapping's address does not change, so the views stay valid
  if (const GgufValue* count = out.find(std::string(kSplitCountKey)); count != nullptr) {
    FABULA_TRY(out.open_other_shards(count->as_u64().value_or(0), options));
  }
  return out;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

std::string describe_type(const GgufValue& v) {
  if (v.type != GgufValueType::kArray) return std::string(gguf_value_type_name(v.type));
  return fmt::format("array of {}", gguf_value_type_name(v.array_type));
}

Error wrong_type(const std::string& file, const std::string& key, const GgufValue& v, std::string_view expected) {
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected {}", file, key, describe_type(v),
                    expected);
}

}  // namespace

#define FABULA_GGUF_LOOKUP(var, key)                                                       \
  const GgufValue* var = find(key);                                                        \
  if (var == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing metadata key '{}'", name_, key)

Result<uint64_t> GgufFile::get_u64(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type == GgufValueType::kArray || !v->as_u64()) return wrong_type(name_, key, *v, "a non-negative integer");
  return *v->as_u64();
}

Result<int64_t> GgufFile::get_i64(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type == GgufValueType::kArray || !v->as_i64()) return wrong_type(name_, key, *v, "an integer");
  return *v->as_i64();
}

Result<double> GgufFile::get_f64(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type == GgufValueType::kArray || !v->as_f64()) return wrong_type(name_, key, *v, "a number");
  return *v->as_f64();
}

Result<bool> GgufFile::get_bool(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type != GgufValueType::kBool) return wrong_type(name_, key, *v, "bool");
  return std::get<bool>(v->data);
}

Result<std::string> GgufFile::get_string(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type != GgufValueType::kString) return wrong_type(name_, key, *v, "string");
  return std::get<std::string>(v->data);
}

Result<std::vector<std::string>> GgufFile::get_strings(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kString) {
    return wrong_type(name_, key, *v, "array of string");
  }
  return std::get<std::vector<std::string>>(v->data);
}

Result<std::vector<int64_t>> GgufFile::get_i64_array(const std::string& key) const {
  FABULA_GGUF_LOOKUP(v, key);
  if (v->type == GgufValueType::kArray) {
    if (const auto* s = std::get_if<std::vector<int64_t>>(&v->data)) return *s;
    if (const auto* u = std::get_if<std::vector<uint64_t>>(&v->data)) {
      std::vector<int64_t> out;
      out.reserve(u->size());
      for (uint64_t x : *u) {
        if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) break;
        out.push_back(static_cast<int64_t>(x));
      }
      if (out.size() == u->size()) return out;
    }
  }
  return wrong_type(name_, key, *v, "an array of integers");
}

#undef FABULA_GGUF_LOOKUP

}  // namespace fabula
