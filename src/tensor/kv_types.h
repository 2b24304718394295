// KV cache storage types (docs/KV_CACHE.md): f32, f16, llama.cpp's q8_0 and q4_0 blocks, and two rotated types of
// our own, tq4 and tq3 (per block of 32: sign flips and a Walsh-Hadamard rotation, each coordinate quantised with
// a Lloyd-Max codebook for the Gaussian, one f16 scale that keeps the block's norm). One head of one position is
// stored as whole blocks of 32 (a head dimension that is not a multiple of 32 is padded with zeros), so every
// position owns its bytes: truncation and ring overwrites never touch a neighbour.
// This file holds the scalar reference quantisers and decoders; tensor/kv_attention.h reads the blocks in
// attention.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tensor/blocks.h"

namespace fabula {

enum class KvType : uint8_t { kF32, kF16, kQ8_0, kQ4_0, kTq4, kTq3 };

constexpr int kKvBlock = 32;  // values per block (and per rotation) for every blocked type

// tq4: s * codebook4[code], 16 codes; code j in the low nibble of qs[j % 16] for j < 16, the high nibble for j >= 16
// (q4_0's nibble order).
struct BlockTq4 {
  Half s;
  uint8_t qs[kKvBlock / 2];
};
static_assert(sizeof(BlockTq4) == 18);

// tq3: s * codebook3[code], 8 codes; code j = lo bits 2j..2j+1 (lo read as a little-endian 64-bit word) plus
// 4 * (bit j of hi, a little-endian 32-bit word).
struct BlockTq3 {
  Half s;
  uint8_t lo[kKvBlock / 4];
  uint8_t hi[kKvBlock / 8];
};
static_assert(sizeof(BlockTq3) == 14);

// Lloyd-Max reconstruction levels for N(0, 1), ascending (code i is level i); padded to 16 floats for table
// lookups.
extern const float kTq4Levels[16];
extern const float kTq3Levels[16];

std::string_view kv_type_name(KvType type);                  // "f32", "f16", "q8_0", "q4_0", "tq4", "tq3"
std::optional<KvType> kv_type_from_name(std::string_view name);  // case-insensitive
std::string kv_type_list();                                  // "f32, f16, q8_0, q4_0, tq4, tq3"
// The K and V types of one cache (llama.cpp's --cache-type-k / --cache-type-v).
struct KvCacheTypes {
  KvType k = KvType::kF32;
  KvType v = KvType::kF32;
  bool operator==(const KvCacheTypes&) const = default;
};

constexpr KvType kAllKvTypes[] = {KvType::kF32, KvType::kF16, KvType::kQ8_0,
                                  KvType::kQ4_0, KvType::kTq4, KvType::kTq3};

constexpr bool kv_type_rotated(KvType type) { return type == KvType::kTq4 || type == KvType::kTq3; }
// Stored as 32-value blocks (q8_0, q4_0, tq4, tq3); f32 and f16 store the d values as they are.
constexpr bool kv_type_blocked(KvType type) { return type != KvType::kF32 && type != KvType::kF16; }
size_t kv_block_bytes(KvType type);     // bytes per 32 values
double kv_bits_per_value(KvType type);  // 32, 16, 8.5, 4.5, 4.5, 3.5
// Values one head occupies: d for f32/f16, d rounded up to 32 for the blocked types.
int64_t kv_stored_dim(KvType type, int64_t d);
size_t kv_head_bytes(KvType type, int64_t d);

// The rotation of one block of 32, in place: x <- H D x / sqrt(32), D the fixed signs of kTqSigns, H the
// Sylvester Hadamard matrix. Orthogonal, so dot products survive it: (R a)·(R b) = a·b.
void tq_rotate(float* x);
void tq_unrotate(float* x);  // the inverse: x <- D H x / sqrt(32)
constexpr uint32_t kTqSigns = 0x6A09E667u;  // bit i set: coordinate i is negated (the fractional bits of sqrt 2)

// Rotates each of the blocks of a vector of dp values (dp a multiple of 32).
void tq_rotate_blocks(float* x, int64_t dp);
void tq_unrotate_blocks(float* x, int64_t dp);

// One head of d values into kv_head_bytes(type, d) bytes (the scalar reference; rotated types rotate first).
void kv_quantize_head(KvType type, const float* x, int64_t d, uint8_t* dst);
// The stored values as they are: kv_stored_dim(type, d) floats, in the rotated domain for tq types (what
// attention multiplies).
void kv_decode_head(KvType type, const uint8_t* src, int64_t d, float* y);
// Back to d values of the original domain (decode, then unrotate).
void kv_dequantize_head(KvType type, const uint8_t* src, int64_t d, float* y);

}  // namespace fabula
