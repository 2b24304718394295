// KV cache storage types: names, sizes, the rotation and the scalar reference quantisers (tensor/kv_types.h).
#include "tensor/kv_types.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/ascii.h"
#include "tensor/fp16.h"
#include "tensor/quant_ref.h"

namespace fabula {

// Lloyd-Max quantisers of the standard normal (Max 1960): each level is the mean of N(0,1) over its cell, each
// cell boundary the midpoint of its two levels. tests/tensor/kv_types_test.cpp re-derives them.
const float kTq4Levels[16] = {-2.7326f, -2.0690f, -1.6180f, -1.2562f, -0.9424f, -0.6568f, -0.3881f, -0.1284f,
                              0.1284f,  0.3881f,  0.6568f,  0.9424f,  1.2562f,  1.6180f,  2.0690f,  2.7326f};
const float kTq3Levels[16] = {-2.1520f, -1.3440f, -0.7560f, -0.2451f, 0.2451f, 0.7560f, 1.3440f, 2.1520f,
                              0, 0, 0, 0, 0, 0, 0, 0};

namespace {

struct KvTypeInfo {
  KvType type;
  std::string_view name;
  size_t block_bytes;  // per 32 values
};
constexpr KvTypeInfo kInfo[] = {
    {KvType::kF32, "f32", 32 * sizeof(float)},   {KvType::kF16, "f16", 32 * sizeof(Half)},
    {KvType::kQ8_0, "q8_0", sizeof(BlockQ8_0)},  {KvType::kQ4_0, "q4_0", sizeof(BlockQ4_0)},
    {KvType::kTq4, "tq4", sizeof(BlockTq4)},     {KvType::kTq3, "tq3", sizeof(BlockTq3)},
};

const KvTypeInfo& info(KvType type) { return kInfo[static_cast<size_t>(type)]; }

// In-place unnormalised fast Walsh-Hadamard transform of 32 values (Sylvester order).
void fwht32(float* x) {
  for (int h = 1; h < kKvBlock; h *= 2) {
    for (int i = 0; i < kKvBlock; i += 2 * h) {
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

void flip_signs(float* x) {
  for (int i = 0; i < kKvBlock; ++i)
    if ((kTqSigns >> i) & 1u) x[i] = -x[i];
}

const float kInvSqrt32 = 1.0f / std::sqrt(32.0f);

// Codebook widths tried per block, relative to the Gaussian one: 32 samples rarely reach the outer levels, so a
// narrower codebook often fits a block better (about 15% less error than the Gaussian width alone).
constexpr int kWidths = 8;
constexpr float kWidthLo = 0.6f, kWidthHi = 1.2f;

// One block of 32 (original domain) -> codes and the norm-keeping scale.
float tq_codes(const float* x, const float* levels, int n_levels, uint8_t* codes) {
  float y[kKvBlock];
  std::memcpy(y, x, sizeof(y));
  tq_rotate(y);
  float norm2 = 0;
  for (float v : y) norm2 += v * v;
  if (!(norm2 > 0)) {
    std::memset(codes, 0, kKvBlock);
    return 0.0f;
  }
  const float norm = std::sqrt(norm2);
  // Each rotated coordinate of a unit vector is about N(0, 1/32): the codebook's unit is norm / sqrt(32) (times the
  // width tried). A code is the number of cell boundaries (midpoints of neighbouring levels) below the value: the
  // nearest level. Keep the codes of the width whose least-squares fit s * levels[code] leaves the least error.
  float best_err = -1, best_c2 = 0;
  for (int w = 0; w < kWidths; ++w) {
    const float width = kWidthLo + (kWidthHi - kWidthLo) * static_cast<float>(w) / (kWidths - 1);
    const float unit = norm * width / std::sqrt(32.0f);
    uint8_t trial[kKvBlock] = {};
    for (int t = 0; t + 1 < n_levels; ++t) {
      const float boundary = 0.5f * (levels[t] + levels[t + 1]) * unit;
      for (int i = 0; i < kKvBlock; ++i) trial[i] = static_cast<uint8_t>(trial[i] + (y[i] > boundary));
    }
    float c2 = 0, yc = 0;
    for (int i = 0; i < kKvBlock; ++i) {
      const float c = levels[trial[i]];
      c2 += c * c;
      yc += c * y[i];
    }
    const float err = norm2 - yc * yc / c2;  // |y - s c|^2 at the best s = (y·c) / |c|^2
    if (best_err < 0 || err < best_err) {
      best_err = err;
      best_c2 = c2;
      std::memcpy(codes, trial, kKvBlock);
    }
  }
  // The correction: the decoded block s * levels[codes] has exactly the input's norm.
  return norm / std::sqrt(best_c2);
}

void quantize_tq4(const float* x, BlockTq4* b) {
  uint8_t codes[kKvBlock];
  b->s = fp32_to_fp16(tq_codes(x, kTq4Levels, 16, codes));
  for (int j = 0; j < kKvBlock / 2; ++j) b->qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
}

void quantize_tq3(const float* x, BlockTq3* b) {
  uint8_t codes[kKvBlock];
  b->s = fp32_to_fp16(tq_codes(x, kTq3Levels, 8, codes));
  uint64_t lo = 0;
  uint32_t hi = 0;
  for (int j = 0; j < kKvBlock; ++j) {
    lo |= static_cast<uint64_t>(codes[j] & 3u) << (2 * j);
    hi |= static_cast<uint32_t>(codes[j] >> 2) << j;
  }
  for (int i = 0; i < 8; ++i) b->lo[i] = static_cast<uint8_t>(lo >> (8 * i));  // little-endian on any host
  for (int i = 0; i < 4; ++i) b->hi[i] = static_cast<uint8_t>(hi >> (8 * i));
}

void decode_tq4(const BlockTq4* b, float* y) {
  const float s = fp16_to_fp32(b->s);
  for (int j = 0; j < kKvBlock / 2; ++j) {
    y[j] = s * kTq4Levels[b->qs[j] & 0xF];
    y[j + 16] = s * kTq4Levels[b->qs[j] >> 4];
  }
}

void decode_tq3(const BlockTq3* b, float* y) {
  const float s = fp16_to_fp32(b->s);
  uint64_t lo = 0;
  uint32_t hi = 0;
  for (int i = 0; i < 8; ++i) lo |= static_cast<uint64_t>(b->lo[i]) << (8 * i);
  for (int i = 0; i < 4; ++i) hi |= static_cast<uint32_t>(b->hi[i]) << (8 * i);
  for (int j = 0; j < kKvBlock; ++j) y[j] = s * kTq3Levels[((lo >> (2 * j)) & 3u) | (((hi >> j) & 1u) << 2)];
}

// Cache bytes are not aligned for the block structs, so a block goes through a local copy.
template <typename Block, typename Quantize>
void quantize_into(uint8_t* out, Quantize quantize) {
  Block q;
  quantize(&q);
  std::memcpy(out, &q, sizeof(q));
}

template <typename Block, typename Decode>
void decode_from(const uint8_t* in, Decode decode) {
  Block q;
  std::memcpy(&q, in, sizeof(q));
  decode(&q);
}

}  // namespace

std::string_view kv_type_name(KvType type) { return info(type).name; }

std::optional<KvType> kv_type_from_name(std::string_view name) {
  for (const KvTypeInfo& i : kInfo) {
    if (ascii_iequals(i.name, name)) return i.type;
  }
  return std::nullopt;
}

std::string kv_type_list() {
  std::string out;
  for (const KvTypeInfo& i : kInfo) out += (out.empty() ? "" : ", ") + std::string(i.name);
  return out;
}

size_t kv_block_bytes(KvType type) { return info(type).block_bytes; }
double kv_bits_per_value(KvType type) { return static_cast<double>(info(type).block_bytes) * 8.0 / kKvBlock; }

int64_t kv_stored_dim(KvType type, int64_t d) {
  return kv_type_blocked(type) ? (d + kKvBlock - 1) / kKvBlock * kKvBlock : d;
}

size_t kv_head_bytes(KvType type, int64_t d) {
  switch (type) {
    case KvType::kF32: return static_cast<size_t>(d) * sizeof(float);
    case KvType::kF16: return static_cast<size_t>(d) * sizeof(Half);
    default: return static_cast<size_t>(kv_stored_dim(type, d) / kKvBlock) * kv_block_bytes(type);
  }
}

void tq_rotate(float* x) {
  flip_signs(x);
  fwht32(x);
  for (int i = 0; i < kKvBlock; ++i) x[i] *= kInvSqrt32;
}

void tq_unrotate(float* x) {
  fwht32(x);  // H is symmetric and H H = 32 I
  for (int i = 0; i < kKvBlock; ++i) x[i] *= kInvSqrt32;
  flip_signs(x);
}

void tq_rotate_blocks(float* x, int64_t dp) {
  for (int64_t b = 0; b < dp; b += kKvBlock) tq_rotate(x + b);
}
void tq_unrotate_blocks(float* x, int64_t dp) {
  for (int64_t b = 0; b < dp; b += kKvBlock) tq_unrotate(x + b);
}

void kv_quantize_head(KvType type, const float* x, int64_t d, uint8_t* dst) {
  if (type == KvType::kF32) {
    std::memcpy(dst, x, static_cast<size_t>(d) * sizeof(float));
    return;
  }
  if (type == KvType::kF16) {
    for (int64_t i = 0; i < d; ++i) {
      const Half h = fp32_to_fp16(x[i]);
      std::memcpy(dst + i * sizeof(Half), &h, sizeof(Half));
    }
    return;
  }
  const size_t bb = kv_block_bytes(type);
  for (int64_t b = 0; b < d; b += kKvBlock) {
    float block[kKvBlock] = {};  // the padding of a short last block is zeros
    std::memcpy(block, x + b, static_cast<size_t>(std::min<int64_t>(kKvBlock, d - b)) * sizeof(float));
    uint8_t* out = dst + static_cast<size_t>(b / kKvBlock) * bb;
    switch (type) {
      case KvType::kQ8_0:
        quantize_into<BlockQ8_0>(out, [&](BlockQ8_0* q) { quantize_row_q8_0_ref(block, q, kKvBlock); });
        break;
      case KvType::kQ4_0:
        quantize_into<BlockQ4_0>(out, [&](BlockQ4_0* q) { quantize_row_q4_0_ref(block, q, kKvBlock); });
        break;
      case KvType::kTq4: quantize_into<BlockTq4>(out, [&](BlockTq4* q) { quantize_tq4(block, q); }); break;
      case KvType::kTq3: quantize_into<BlockTq3>(out, [&](BlockTq3* q) { quantize_tq3(block, q); }); break;
      default: break;
    }
  }
}

void kv_decode_head(KvType type, const uint8_t* src, int64_t d, float* y) {
  if (type == KvType::kF32) {
    std::memcpy(y, src, static_cast<size_t>(d) * sizeof(float));
    return;
  }
  if (type == KvType::kF16) {
    for (int64_t i = 0; i < d; ++i) {
      Half h;
      std::memcpy(&h, src + i * sizeof(Half), sizeof(Half));
      y[i] = fp16_to_fp32(h);
    }
    return;
  }
  const size_t bb = kv_block_bytes(type);
  const int64_t dp = kv_stored_dim(type, d);
  for (int64_t b = 0; b < dp; b += kKvBlock) {
    const uint8_t* in = src + static_cast<size_t>(b / kKvBlock) * bb;
    switch (type) {
      case KvType::kQ8_0:
        decode_from<BlockQ8_0>(in, [&](const BlockQ8_0* q) { dequantize_row_q8_0_ref(q, y + b, kKvBlock); });
        break;
      case KvType::kQ4_0:
        decode_from<BlockQ4_0>(in, [&](const BlockQ4_0* q) { dequantize_row_q4_0_ref(q, y + b, kKvBlock); });
        break;
      case KvType::kTq4: decode_from<BlockTq4>(in, [&](const BlockTq4* q) { decode_tq4(q, y + b); }); break;
      case KvType::kTq3: decode_from<BlockTq3>(in, [&](const BlockTq3* q) { decode_tq3(q, y + b); }); break;
      default: break;
    }
  }
}

void kv_dequantize_head(KvType type, const uint8_t* src, int64_t d, float* y) {
  if (!kv_type_blocked(type)) {
    kv_decode_head(type, src, d, y);
    return;
  }
  const size_t bb = kv_block_bytes(type);
  for (int64_t b = 0; b < d; b += kKvBlock) {
    float block[kKvBlock];
    kv_decode_head(type, src + static_cast<size_t>(b / kKvBlock) * bb, kKvBlock, block);
    if (kv_type_rotated(type)) tq_unrotate(block);
    std::memcpy(y + b, block, static_cast<size_t>(std::min<int64_t>(kKvBlock, d - b)) * sizeof(float));
  }
}

}  // namespace fabula
