// The streaming GGUF writer: header into memory, then tensor data one tensor at a time into path.tmp, then rename.
#include <limits>
#include <set>

#include "base/file.h"
#include "format/gguf.h"
#include "format/gguf_internal.h"

namespace fabula {

using namespace gguf_detail;

GgufWriter::GgufWriter(uint32_t alignment, uint32_t version) : alignment_(alignment), version_(version) {}

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, Producer producer) {
  tensors_.push_back(PendingTensor{std::move(name), type, std::move(shape), std::move(producer), {}});
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape,
                            std::span<const uint8_t> bytes) {
  tensors_.push_back(PendingTensor{std::move(name), type, std::move(shape), nullptr, bytes});
}

namespace {

class Buffer {
 public:
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  template <typename T>
  void put(T v) { raw(&v, sizeof(T)); }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    raw(s.data(), s.size());
  }
  std::vector<uint8_t> bytes;
};

// Checks that one integer fits the tag's width (values built by hand may not).
bool fits(GgufValueType t, uint64_t u) {
  switch (t) {
    case GgufValueType::kU8: return u <= 0xff;
    case GgufValueType::kU16: return u <= 0xffff;
    case GgufValueType::kU32: return u <= 0xffffffffu;
    case GgufValueType::kU64: return true;
    default: return false;
  }
}
bool fits(GgufValueType t, int64_t i) {
  switch (t) {
    case GgufValueType::kI8: return i >= -128 && i <= 127;
    case GgufValueType::kI16: return i >= -32768 && i <= 32767;
    case GgufValueType::kI32: return i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max();
    case GgufValueType::kI64: return true;
    default: return false;
  }
}

void put_unsigned(Buffer& b, GgufValueType t, uint64_t u) {
  switch (t) {
    case GgufValueType::kU8: b.put<uint8_t>(static_cast<uint8_t>(u)); break;
    case GgufValueType::kU16: b.put<uint16_t>(static_cast<uint16_t>(u)); break;
    case GgufValueType::kU32: b.put<uint32_t>(static_cast<uint32_t>(u)); break;
    default: b.put<uint64_t>(u); break;
  }
}
void put_signed(Buffer& b, GgufValueType t, int64_t i) {
  switch (t) {
    case GgufValueType::kI8: b.put<int8_t>(static_cast<int8_t>(i)); break;
    case GgufValueType::kI16: b.put<int16_t>(static_cast<int16_t>(i)); break;
    case GgufValueType::kI32: b.put<int32_t>(static_cast<int32_t>(i)); break;
    default: b.put<int64_t>(i); break;
  }
}
void put_float(Buffer& b, GgufValueType t, double d) {
  if (t == GgufValueType::kF32) {
    b.put<uint32_t>(double_to_f32_bits(d));
  } else {
    b.put<double>(d);
  }
}

// One scalar, or one array element, of tag t; false when it does not fit t.
bool put_element(Buffer& b, GgufValueType t, uint64_t u) {
  if (!fits(t, u)) return false;
  put_unsigned(b, t, u);
  return true;
}
bool put_element(Buffer& b, GgufValueType t, int64_t i) {
  if (!fits(t, i)) return false;
  put_signed(b, t, i);
  return true;
}
bool put_element(Buffer& b, GgufValueType t, double d) {
  put_float(b, t, d);
  return true;
}
bool put_element(Buffer& b, GgufValueType, bool x) {
  b.put<uint8_t>(x ? 1 : 0);
  return true;
}
bool put_element(Buffer& b, GgufValueType, const std::string& s) {
  b.str(s);
  return true;
}

// v.data as one T, or as std::vector<T> (count, then elements) for an array; false when the variant alternative
// or a value does not match tag t.
template <typename T>
bool put_as(Buffer& b, GgufValueType t, const GgufValue& v, bool array) {
  if (!array) {
    const auto* x = std::get_if<T>(&v.data);
    return x && put_element(b, t, *x);
  }
  const auto* a = std::get_if<std::vector<T>>(&v.data);
  if (!a) return false;
  b.put<uint64_t>(a->size());
  for (const auto& x : *a)
    if (!put_element(b, t, static_cast<T>(x))) return false;
  return true;
}

bool put_typed(Buffer& b, GgufValueType t, const GgufValue& v, bool array) {
  if (is_unsigned(t)) return put_as<uint64_t>(b, t, v, array);
  if (is_signed(t)) return put_as<int64_t>(b, t, v, array);
  if (is_float(t)) return put_as<double>(b, t, v, array);
  if (t == GgufValueType::kBool) return put_as<bool>(b, t, v, array);
  return put_as<std::string>(b, t, v, array);
}

// Serialises one value after checking that its variant alternative and range match its type tag.
Status put_value(Buffer& b, const std::string& key, const GgufValue& v) {
  auto mismatch = [&] {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: key '{}': value does not match its type {}", key,
                      v.type == GgufValueType::kArray
                          ? fmt::format("array of {}", gguf_value_type_name(v.array_type))
                          : std::string(gguf_value_type_name(v.type)));
  };
  if (!is_valid_value_type(static_cast<uint32_t>(v.type))) return mismatch();
  if (v.type != GgufValueType::kArray) return put_typed(b, v.type, v, /*array=*/false) ? ok_status() : mismatch();
  const GgufValueType et = v.array_type;
  if (et == GgufValueType::kArray || !is_valid_value_type(static_cast<uint32_t>(et))) return mismatch();
  b.put<uint32_t>(static_cast<uint32_t>(et));
  return put_typed(b, et, v, /*array=*/true) ? ok_status() : mismatch();
}

}  // namespace

Status GgufWriter::write(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress) {
  written_paths_.clear();
  if (split_max_bytes_ > 0) return write_split(path, progress);
  FABULA_TRY(write_one(path, progress));
  written_paths_.push_back(path);
  return ok_status();
}

Status GgufWriter::write_one(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress) {
  if (version_ != 2 && version_ != 3) {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: version {} (expected 2 or 3)", version_);
  }
  // Resolve the alignment: an explicit general.alignment wins; a non-default constructor value is recorded.
  auto metadata = metadata_;
  uint64_t alignment = alignment_;
  bool have_key = false;
  for (const auto& [k, v] : metadata) {
    if (k != kAlignmentKey) continue;
    have_key = true;
    if (v.type != GgufValueType::kU32 || !std::holds_alternative<uint64_t>(v.data)) {
      return make_error(ErrorCode::kInvalidArgument, "gguf writer: {} must be u32", kAlignmentKey);
    }
    alignment = std::get<uint64_t>(v.data);
  }
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 0xffffffffu) {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: alignment {} is not a power of two", alignment);
  }
  if (!have_key && alignment != kDefaultAlignment) {
    metadata.emplace_back(kAlignmentKey, GgufValue::u32(static_cast<uint32_t>(alignment)));
  }

  Buffer header;
  header.put<uint32_t>(kMagic);
  header.put<uint32_t>(version_);
  header.put<uint64_t>(tensors_.size());
  header.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    if (key.empty()) return make_error(ErrorCode::kInvalidArgument, "gguf writer: empty metadata key");
    header.str(key);
    header.put<uint32_t>(static_cast<uint32_t>(value.type));
    FABULA_TRY(put_value(header, key, value));
  }

  std::vector<uint64_t> sizes;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    if (t.name.empty() || t.name.size() > kMaxNameLength) {
      return make_error(ErrorCode::kInvalidArgument, "gguf writer: tensor name '{}' must be 1..{} bytes", t.name,
                        kMaxNameLength);
    }
    if (!names.insert(t.name).second) {
      return make_error(ErrorCode::kInvalidArgument, "gguf writer: duplicate tensor '{}'", t.name);
    }
    if (t.shape.empty() || t.shape.size() > kMaxDims) {
      return make_error(ErrorCode::kInvalidArgument, "gguf writer: tensor '{}' has {} dims (expected 1..4)", t.name,
                        t.shape.size());
    }
    for (uint64_t d : t.shape) {
      if (d == 0 || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return make_error(ErrorCode::kInvalidArgument, "gguf writer: tensor '{}' has a dimension of {}", t.name, d);
      }
    }
    auto traits = type_traits(static_cast<uint32_t>(t.type));
    uint64_t n_bytes = 0;
    if (!traits || !tensor_bytes(*traits, t.shape, std::numeric_limits<int64_t>::max(), &n_bytes)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "gguf writer: tensor '{}': dims[0] = {} is not a multiple of the block size, or too large",
                        t.name, t.shape[0]);
    }
    if (!t.producer && t.source.size() != n_bytes) {
      return make_error(ErrorCode::kInvalidArgument, "gguf writer: tensor '{}' has {} bytes, its shape needs {}",
                        t.name, t.source.size(), n_bytes);
    }
    header.str(t.name);
    header.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) header.put<int64_t>(static_cast<int64_t>(d));
    header.put<uint32_t>(static_cast<uint32_t>(t.type));
    header.put<uint64_t>(offset);
    sizes.push_back(n_bytes);
    offset += pad_to(n_bytes, alignment);
  }
  header.bytes.resize(pad_to(header.bytes.size(), alignment), 0);
  const uint64_t total = offset;

  AtomicFile out(path);
  FABULA_TRY(out.open());
  FABULA_TRY(out.write(header.bytes.data(), header.bytes.size()));
  std::vector<uint8_t> buffer;
  const std::vector<uint8_t> zeros(alignment, 0);
  uint64_t done = 0;
  if (sparse_data_) {  // every tensor all zeros, written as one hole
    FABULA_TRY(out.skip(total, header.bytes.size() + total));
    if (progress) progress(total, total);
    return out.commit();
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    std::span<const uint8_t> data = t.source;
    if (t.producer) {
      buffer.resize(sizes[i]);
      Status produced = t.producer(std::span<uint8_t>(buffer));
      if (!produced.ok()) {
        Error e = produced.take_error();
        e.message = fmt::format("tensor '{}': {}", t.name, e.message);
        return e;
      }
      data = buffer;
    }
    FABULA_TRY(out.write(data.data(), data.size()));
    FABULA_TRY(out.write(zeros.data(), pad_to(sizes[i], alignment) - sizes[i]));
    done += pad_to(sizes[i], alignment);
    if (progress) progress(done, total);
  }
  return out.commit();
}

void gguf_copy_into(const GgufFile& in, GgufWriter& writer) {
  writer.set_version(in.version());  // a split model's view has no split.* keys: the copy is one file
  writer.set_alignment(in.alignment());
  for (const auto& [key, value] : in.metadata()) writer.set(key, value);
  for (const auto& t : in.tensors()) writer.add_tensor(t.name, t.type, t.shape, t.data);
}

}  // namespace fabula
