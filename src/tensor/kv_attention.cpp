// SIMD bodies of tensor/kv_attention.h, one per Highway target, plus the scalar references and the head driver.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kv_attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "tensor/activations.h"
#include "tensor/fp16.h"
#include "tensor/kv_attention.h"

HWY_BEFORE_NAMESPACE();
namespace fabula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// levels[idx] per lane (levels: 16 floats, idx in [0, 16)).
template <class VI>
HWY_INLINE VF lookup16(DF df, const float* levels, VI idx) {
  constexpr size_t N = hn::MaxLanes(DF());
  if constexpr (N == 16) {
    return hn::TableLookupLanes(hn::LoadU(df, levels), hn::IndicesFromVec(df, idx));
  } else if constexpr (N == 8) {
    const hn::RebindToSigned<DF> di;
    const auto low = hn::IndicesFromVec(df, hn::And(idx, hn::Set(di, 7)));
    const VF a = hn::TableLookupLanes(hn::LoadU(df, levels), low);
    const VF b = hn::TableLookupLanes(hn::LoadU(df, levels + 8), low);
    return hn::IfThenElse(hn::RebindMask(df, idx > hn::Set(di, 7)), b, a);
  } else {
    return hn::GatherIndex(df, levels, idx);
  }
}

HWY_INLINE uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

HWY_INLINE float load_half(const uint8_t* p) {
  Half h;
  std::memcpy(&h, p, sizeof(h));
  return fp16_to_fp32(h);
}

// Nibbles of elements e0.. of a 32-value block in q4_0 order (element j < 16: low nibble of byte j, else the high
// nibble of byte j - 16), as unsigned lanes.
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> nibbles(const uint8_t* qs, size_t e0) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint8_t, DF> d8;
  const auto bytes = hn::PromoteTo(du, hn::LoadU(d8, qs + e0 % 16));
  return e0 < 16 ? hn::And(bytes, hn::Set(du, 15u)) : hn::ShiftRight<4>(bytes);
}

constexpr size_t kLanes = hn::MaxLanes(DF());
constexpr size_t kVecsPerBlock = kKvBlock / kLanes;

// One block of 32 stored values as kVecsPerBlock vectors, unscaled; returns the block's scale.
template <KvType T>
HWY_INLINE float load_block(const uint8_t* p, VF* v) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  if constexpr (T == KvType::kF32) {
    for (size_t i = 0; i < kVecsPerBlock; ++i) v[i] = hn::LoadU(df, reinterpret_cast<const float*>(p) + i * kLanes);
    return 1.0f;
  } else if constexpr (T == KvType::kF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    for (size_t i = 0; i < kVecsPerBlock; ++i)
      v[i] = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p) + i * kLanes));
    return 1.0f;
  } else if constexpr (T == KvType::kQ8_0) {
    const hn::Rebind<int8_t, DF> d8;
    const int8_t* qs = reinterpret_cast<const int8_t*>(p + sizeof(Half));
    for (size_t i = 0; i < kVecsPerBlock; ++i) v[i] = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, qs + i * kLanes)));
    return load_half(p);
  } else if constexpr (T == KvType::kQ4_0) {
    const VF eight = hn::Set(df, 8.0f);
    for (size_t i = 0; i < kVecsPerBlock; ++i)
      v[i] = hn::Sub(hn::ConvertTo(df, hn::BitCast(di, nibbles(p + sizeof(Half), i * kLanes))), eight);
    return load_half(p);
  } else if constexpr (T == KvType::kTq4) {
    for (size_t i = 0; i < kVecsPerBlock; ++i)
      v[i] = lookup16(df, kTq4Levels, hn::BitCast(di, nibbles(p + sizeof(Half), i * kLanes)));
    return load_half(p);
  } else {  // kTq3
    const uint32_t lo[2] = {load_u32(p + 2), load_u32(p + 6)}, hi = load_u32(p + 10);
    const auto iota = hn::Iota(du, 0);
    const auto iota2 = hn::Add(iota, iota);
    for (size_t i = 0; i < kVecsPerBlock; ++i) {
      const uint32_t e0 = static_cast<uint32_t>(i * kLanes);
      const auto low = hn::And(hn::Set(du, lo[e0 / 16]) >> hn::Add(iota2, hn::Set(du, 2 * (e0 % 16))), hn::Set(du, 3u));
      const auto high = hn::And(hn::Set(du, hi) >> hn::Add(iota, hn::Set(du, e0)), hn::Set(du, 1u));
      v[i] = lookup16(df, kTq3Levels, hn::BitCast(di, hn::Or(low, hn::ShiftLeft<2>(high))));
    }
    return load_half(p);
  }
}

template <KvType T>
constexpr size_t block_bytes() {
  return T == KvType::kF32 ? 32 * sizeof(float)
         : T == KvType::kF16 ? 32 * sizeof(Half)
         : T == KvType::kQ8_0 ? sizeof(BlockQ8_0)
         : T == KvType::kQ4_0 ? sizeof(BlockQ4_0)
         : T == KvType::kTq4 ? sizeof(BlockTq4)
                              : sizeof(BlockTq3);
}

// f32 and f16 store exactly d values: the last d % 32 go through the scalar tail.
template <KvType T>
HWY_INLINE float tail_value(const uint8_t* row, int64_t i) {
  if constexpr (T == KvType::kF32) {
    float f;
    std::memcpy(&f, row + i * sizeof(float), sizeof(f));
    return f;
  } else {
    return load_half(row + i * sizeof(Half));
  }
}

template <KvType T>
void dot_rows(const float* q, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d, float* scores) {
  const DF df;
  const int64_t dp = kv_stored_dim(T, d), blocks = dp / kKvBlock;
  for (int64_t j = 0; j < n_rows; ++j) {
    const uint8_t* r = rows + j * stride;
    VF total = hn::Zero(df);
    for (int64_t b = 0; b < blocks; ++b) {
      VF c[kVecsPerBlock];
      const float s = load_block<T>(r + b * block_bytes<T>(), c);
      const float* qb = q + b * kKvBlock;
      VF part = hn::Mul(hn::LoadU(df, qb), c[0]);
      for (size_t i = 1; i < kVecsPerBlock; ++i) part = hn::MulAdd(hn::LoadU(df, qb + i * kLanes), c[i], part);
      total = kv_type_blocked(T) ? hn::MulAdd(part, hn::Set(df, s), total) : hn::Add(total, part);
    }
    float sum = hn::GetLane(hn::SumOfLanes(df, total));
    if constexpr (!kv_type_blocked(T)) {
      for (int64_t i = blocks * kKvBlock; i < d; ++i) sum += q[i] * tail_value<T>(r, i);
    }
    scores[j] = sum;
  }
}

// out is held in registers a chunk of blocks at a time while every row passes over it.
template <KvType T>
void add_rows(const float* w, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d, float* out) {
  const DF df;
  constexpr int64_t kChunk = std::max<int64_t>(1, static_cast<int64_t>(8 * kLanes) / kKvBlock);  // blocks
  const int64_t dp = kv_stored_dim(T, d), blocks = dp / kKvBlock;
  int64_t b0 = 0;
  for (; b0 + kChunk <= blocks; b0 += kChunk) {
    VF acc[kChunk * kVecsPerBlock];
    float* o = out + b0 * kKvBlock;
    for (size_t i = 0; i < kChunk * kVecsPerBlock; ++i) acc[i] = hn::LoadU(df, o + i * kLanes);
    for (int64_t j = 0; j < n_rows; ++j) {
      const uint8_t* r = rows + j * stride + b0 * static_cast<int64_t>(block_bytes<T>());
      for (int64_t k = 0; k < kChunk; ++k) {
        VF c[kVecsPerBlock];
        const VF ws = hn::Set(df, w[j] * load_block<T>(r + k * block_bytes<T>(), c));
        for (size_t i = 0; i < kVecsPerBlock; ++i) acc[k * kVecsPerBlock + i] = hn::MulAdd(ws, c[i], acc[k * kVecsPerBlock + i]);
      }
    }
    for (size_t i = 0; i < kChunk * kVecsPerBlock; ++i) hn::StoreU(acc[i], df, o + i * kLanes);
  }
  for (; b0 < blocks; ++b0) {
    VF acc[kVecsPerBlock];
    float* o = out + b0 * kKvBlock;
    for (size_t i = 0; i < kVecsPerBlock; ++i) acc[i] = hn::LoadU(df, o + i * kLanes);
    for (int64_t j = 0; j < n_rows; ++j) {
      VF c[kVecsPerBlock];
      const VF ws = hn::Set(df, w[j] * load_block<T>(rows + j * stride + b0 * block_bytes<T>(), c));
      for (size_t i = 0; i < kVecsPerBlock; ++i) acc[i] = hn::MulAdd(ws, c[i], acc[i]);
    }
    for (size_t i = 0; i < kVecsPerBlock; ++i) hn::StoreU(acc[i], df, o + i * kLanes);
  }
  if constexpr (!kv_type_blocked(T)) {
    for (int64_t j = 0; j < n_rows; ++j)
      for (int64_t i = blocks * kKvBlock; i < d; ++i) out[i] += w[j] * tail_value<T>(rows + j * stride, i);
  }
}

void kv_dot_rows_simd(KvType type, const float* q, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
                      float* scores) {
  switch (type) {
    case KvType::kF32: return dot_rows<KvType::kF32>(q, rows, stride, n_rows, d, scores);
    case KvType::kF16: return dot_rows<KvType::kF16>(q, rows, stride, n_rows, d, scores);
    case KvType::kQ8_0: return dot_rows<KvType::kQ8_0>(q, rows, stride, n_rows, d, scores);
    case KvType::kQ4_0: return dot_rows<KvType::kQ4_0>(q, rows, stride, n_rows, d, scores);
    case KvType::kTq4: return dot_rows<KvType::kTq4>(q, rows, stride, n_rows, d, scores);
    case KvType::kTq3: return dot_rows<KvType::kTq3>(q, rows, stride, n_rows, d, scores);
  }
}

void kv_add_rows_simd(KvType type, const float* w, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
                      float* out) {
  switch (type) {
    case KvType::kF32: return add_rows<KvType::kF32>(w, rows, stride, n_rows, d, out);
    case KvType::kF16: return add_rows<KvType::kF16>(w, rows, stride, n_rows, d, out);
    case KvType::kQ8_0: return add_rows<KvType::kQ8_0>(w, rows, stride, n_rows, d, out);
    case KvType::kQ4_0: return add_rows<KvType::kQ4_0>(w, rows, stride, n_rows, d, out);
    case KvType::kTq4: return add_rows<KvType::kTq4>(w, rows, stride, n_rows, d, out);
    case KvType::kTq3: return add_rows<KvType::kTq3>(w, rows, stride, n_rows, d, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fabula {

HWY_EXPORT(kv_dot_rows_simd);
HWY_EXPORT(kv_add_rows_simd);

void kv_dot_rows(KvType type, const float* q, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
                 float* scores) {
  HWY_DYNAMIC_DISPATCH(kv_dot_rows_simd)(type, q, rows, stride, n_rows, d, scores);
}

void kv_add_rows(KvType type, const float* weights, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
                 float* out) {
  HWY_DYNAMIC_DISPATCH(kv_add_rows_simd)(type, weights, rows, stride, n_rows, d, out);
}

void kv_dot_rows_ref(KvType type, const float* q, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
                     float* scores) {
  float k[kKvMaxHeadDim];
  const int64_t dp = kv_stored_dim(type, d);
  for (int64_t j = 0; j < n_rows; ++j) {
    kv_decode_head(type, rows + j * stride, d, k);
    float sum = 0;
    for (int64_t i = 0; i < dp; ++i) sum += q[i] * k[i];
    scores[j] = sum;
  }
}

void kv_add_rows_ref(KvType type, const float* weights, const uint8_t* rows, int64_t stride, int64_t n_rows,
                     int64_t d, float* out) {
  float v[kKvMaxHeadDim];
  const int64_t dp = kv_stored_dim(type, d);
  for (int64_t j = 0; j < n_rows; ++j) {
    kv_decode_head(type, rows + j * stride, d, v);
    for (int64_t i = 0; i < dp; ++i) out[i] += weights[j] * v[i];
  }
}

namespace {

// The head's steps, shared by the SIMD path and the reference: the query into the key's stored domain (padded,
// rotated), scores, softmax, the value sum in the value's stored domain, and back.
template <typename Dot, typename Add, typename Softmax>
void attend_head_with(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d, float* scores,
                      float* out, Dot dot, Add add, Softmax softmax) {
  FABULA_CHECK(d <= kKvMaxHeadDim);
  float qs[kKvMaxHeadDim], acc[kKvMaxHeadDim];
  const int64_t dk = kv_stored_dim(f.k_type, d), dv = kv_stored_dim(f.v_type, d);
  std::copy(q, q + d, qs);
  std::fill(qs + d, qs + dk, 0.0f);
  if (kv_type_rotated(f.k_type)) tq_rotate_blocks(qs, dk);
  int64_t total = 0;
  for (int i = 0; i < n_runs; ++i) {
    dot(f.k_type, qs, runs[i].k, f.k_stride, runs[i].n_rows, d, scores + total);
    total += runs[i].n_rows;
  }
  softmax(scores, 1, total);
  std::fill(acc, acc + dv, 0.0f);
  total = 0;
  for (int i = 0; i < n_runs; ++i) {
    add(f.v_type, scores + total, runs[i].v, f.v_stride, runs[i].n_rows, d, acc);
    total += runs[i].n_rows;
  }
  if (kv_type_rotated(f.v_type)) tq_unrotate_blocks(acc, dv);
  std::copy(acc, acc + d, out);
}

}  // namespace

void attend_head_kv(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d, float* scores,
                    float* out) {
  if (f.k_type == KvType::kF32 && f.v_type == KvType::kF32 && f.k_stride == f.v_stride && n_runs <= 2) {
    // The f32 cache keeps its own kernel (and its exact results).
    CacheRun cr[2];
    for (int i = 0; i < n_runs; ++i)
      cr[i] = {reinterpret_cast<const float*>(runs[i].k), reinterpret_cast<const float*>(runs[i].v), runs[i].n_rows};
    attend_head(q, cr, n_runs, f.k_stride / static_cast<int64_t>(sizeof(float)), d, scores, out);
    return;
  }
  attend_head_with(q, runs, n_runs, f, d, scores, out, kv_dot_rows, kv_add_rows, softmax_rows);
}

void attend_head_kv_ref(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d,
                        float* scores, float* out) {
  attend_head_with(q, runs, n_runs, f, d, scores, out, kv_dot_rows_ref, kv_add_rows_ref, softmax_rows_ref);
}

}  // namespace fabula
#endif  // HWY_ONCE
