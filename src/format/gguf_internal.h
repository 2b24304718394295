// Helpers shared by the GGUF reader and writer (not part of the public format interface).
#pragma once

#include <cstdint>
#include <cstring>

#include "format/gguf.h"

namespace fabula::gguf_detail {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr size_t kMaxNameLength = 63;  // GGML_MAX_NAME (64) includes the NUL
inline constexpr uint32_t kMaxDims = 4;
inline constexpr char kAlignmentKey[] = "general.alignment";

inline bool is_valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kF64); }

// Bytes of one scalar element; 0 for string and array (variable size).
inline uint64_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8: case GgufValueType::kI8: case GgufValueType::kBool: return 1;
    case GgufValueType::kU16: case GgufValueType::kI16: return 2;
    case GgufValueType::kU32: case GgufValueType::kI32: case GgufValueType::kF32: return 4;
    case GgufValueType::kU64: case GgufValueType::kI64: case GgufValueType::kF64: return 8;
    default: return 0;
  }
}

inline bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::kU8 || t == GgufValueType::kU16 || t == GgufValueType::kU32 || t == GgufValueType::kU64;
}
inline bool is_signed(GgufValueType t) {
  return t == GgufValueType::kI8 || t == GgufValueType::kI16 || t == GgufValueType::kI32 || t == GgufValueType::kI64;
}
inline bool is_float(GgufValueType t) { return t == GgufValueType::kF32 || t == GgufValueType::kF64; }

// f32 <-> double that keeps every bit, NaN payloads included (a plain cast may quiet a signalling NaN,
// which would break byte-identical copies).
inline double f32_bits_to_double(uint32_t bits) {
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    uint64_t d = (static_cast<uint64_t>(bits >> 31) << 63) | (0x7ffull << 52) |
                 (static_cast<uint64_t>(bits & 0x007fffffu) << 29);
    double out;
    std::memcpy(&out, &d, 8);
    return out;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return static_cast<double>(f);
}

inline uint32_t double_to_f32_bits(double v) {
  uint64_t d;
  std::memcpy(&d, &v, 8);
  if ((d & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (d & 0x000fffffffffffffull) != 0) {
    uint32_t mant = static_cast<uint32_t>((d & 0x000fffffffffffffull) >> 29);
    if (mant == 0) mant = 0x00400000u;  // a NaN whose payload lived only in the low bits stays a NaN
    return (static_cast<uint32_t>(d >> 63) << 31) | 0x7f800000u | mant;
  }
  float f = static_cast<float>(v);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline uint64_t pad_to(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Bytes of a tensor of `type` and `shape`, or false on overflow past `limit` / a bad row length.
inline bool tensor_bytes(const TypeTraits& t, const std::vector<uint64_t>& shape, uint64_t limit, uint64_t* out) {
  if (shape.empty() || shape[0] % t.block_size != 0) return false;
  unsigned __int128 bytes = static_cast<unsigned __int128>(shape[0] / t.block_size) * t.block_bytes;
  for (size_t i = 1; i < shape.size(); ++i) {
    bytes *= shape[i];
    if (bytes > limit) return false;
  }
  if (bytes > limit) return false;
  *out = static_cast<uint64_t>(bytes);
  return true;
}

}  // namespace fabula::gguf_detail
