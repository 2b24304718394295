// GgufValue: typed constructors and lenient accessors, plus the value-type names.
#include <limits>

#include "format/gguf.h"
#include "format/gguf_internal.h"

namespace fabula {

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8: return "u8";
    case GgufValueType::kI8: return "i8";
    case GgufValueType::kU16: return "u16";
    case GgufValueType::kI16: return "i16";
    case GgufValueType::kU32: return "u32";
    case GgufValueType::kI32: return "i32";
    case GgufValueType::kF32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kU64: return "u64";
    case GgufValueType::kI64: return "i64";
    case GgufValueType::kF64: return "f64";
  }
  return "unknown";
}

namespace {

GgufValue scalar(GgufValueType type, auto v) {
  GgufValue out;
  out.type = type;
  out.data = v;
  return out;
}

}  // namespace

GgufValue GgufValue::u8(uint8_t v) { return scalar(GgufValueType::kU8, uint64_t{v}); }
GgufValue GgufValue::i8(int8_t v) { return scalar(GgufValueType::kI8, int64_t{v}); }
GgufValue GgufValue::u16(uint16_t v) { return scalar(GgufValueType::kU16, uint64_t{v}); }
GgufValue GgufValue::i16(int16_t v) { return scalar(GgufValueType::kI16, int64_t{v}); }
GgufValue GgufValue::u32(uint32_t v) { return scalar(GgufValueType::kU32, uint64_t{v}); }
GgufValue GgufValue::i32(int32_t v) { return scalar(GgufValueType::kI32, int64_t{v}); }
GgufValue GgufValue::u64(uint64_t v) { return scalar(GgufValueType::kU64, v); }
GgufValue GgufValue::i64(int64_t v) { return scalar(GgufValueType::kI64, v); }
GgufValue GgufValue::f32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return scalar(GgufValueType::kF32, gguf_detail::f32_bits_to_double(bits));
}
GgufValue GgufValue::f64(double v) { return scalar(GgufValueType::kF64, v); }
GgufValue GgufValue::boolean(bool v) { return scalar(GgufValueType::kBool, v); }
GgufValue GgufValue::string(std::string v) { return scalar(GgufValueType::kString, std::move(v)); }

namespace {

GgufValue array_of(GgufValueType element_type, auto v) {
  GgufValue out;
  out.type = GgufValueType::kArray;
  out.array_type = element_type;
  out.data = std::move(v);
  return out;
}

}  // namespace

GgufValue GgufValue::array(GgufValueType element_type, std::vector<uint64_t> v) {
  return array_of(element_type, std::move(v));
}
GgufValue GgufValue::array(GgufValueType element_type, std::vector<int64_t> v) {
  return array_of(element_type, std::move(v));
}
GgufValue GgufValue::array(GgufValueType element_type, std::vector<double> v) {
  return array_of(element_type, std::move(v));
}
GgufValue GgufValue::array(std::vector<bool> v) { return array_of(GgufValueType::kBool, std::move(v)); }
GgufValue GgufValue::array(std::vector<std::string> v) { return array_of(GgufValueType::kString, std::move(v)); }

std::optional<uint64_t> GgufValue::as_u64() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data); i && *i >= 0) return static_cast<uint64_t>(*i);
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_i64() const {
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&data);
      u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_f64() const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* i = std::get_if<int64_t>(&data)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<uint64_t>(&data)) return static_cast<double>(*u);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&data); }

size_t GgufValue::array_size() const {
  if (type != GgufValueType::kArray) return 0;
  return std::visit(
      [](const auto& v) -> size_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { v.size(); } && !std::is_same_v<T, std::string>) {
          return v.size();
        } else {
          return 0;
        }
      },
      data);
}

uint64_t GgufValue::serialized_size() const {
  if (type == GgufValueType::kString) return 8 + (as_string() ? as_string()->size() : 0);
  if (type != GgufValueType::kArray) return gguf_detail::scalar_size(type);
  uint64_t n = 4 + 8;  // element type, count
  if (const auto* s = std::get_if<std::vector<std::string>>(&data)) {
    for (const auto& item : *s) n += 8 + item.size();
    return n;
  }
  return n + array_size() * gguf_detail::scalar_size(array_type);
}

}  // namespace fabula
