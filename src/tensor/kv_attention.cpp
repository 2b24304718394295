// SIMD bodies of tensor/kv_attention.h, one per Highway target, plus the scalar references and the head driver.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kv_attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/aligned_allocator.h>
#include <hwy/contrib/math/math-inl.h>
#include "tensor/flush_subnormal-inl.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "tensor/activations.h"
#include "tensor/fp16.h"
#include "tensor/head_chunks.h"
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

// One stored f16 value (a block's scale, or a value of an f16 row's tail) by the target's conversion: one instruction
// with F16C, where fp16_to_fp32's bit steps cost more than a block's vector work in the value sum. Exact either way.
HWY_INLINE float load_half(const uint8_t* p) {
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh1, reinterpret_cast<const hwy::float16_t*>(p))));
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

// Heads that read the same cache rows per call (a decode step's query heads of one kv head: 2 on the 26B's sliding
// layers, 8 on its full ones): each block is decoded once for all of them. kMaxGroup bounds the registers: the
// value sum holds a chunk of every head's output in registers.
constexpr int64_t kMaxGroup = kLanes >= 16 ? 8 : 4;

// scores[h][j] = q[h] · row j for G heads, R rows at a time. A block is decoded and scaled once for all heads (the
// reference's order: the decoded value, then the products), and each query vector, loaded once, goes to the R rows:
// per block G x R independent chains of FMAs. Each head's steps for a row (one chain over the row's vectors, then
// the lanes' sum) are those of the head alone: the group and R change nothing but how often a block is decoded and
// a query vector loaded.
template <KvType T, int G, int R>
HWY_INLINE void dot_rows_tile(const float* const* q, const uint8_t* rows, int64_t stride, int64_t j, int64_t d,
                              float* const* scores) {
  const DF df;
  const int64_t blocks = kv_stored_dim(T, d) / kKvBlock;
  VF acc[R][G];
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) acc[r][g] = hn::Zero(df);
  for (int64_t b = 0; b < blocks; ++b) {
    VF c[R][kVecsPerBlock];
    for (int r = 0; r < R; ++r) {
      const float s = load_block<T>(rows + (j + r) * stride + b * static_cast<int64_t>(block_bytes<T>()), c[r]);
      if constexpr (kv_type_blocked(T)) {
        for (size_t i = 0; i < kVecsPerBlock; ++i) c[r][i] = hn::Mul(c[r][i], hn::Set(df, s));
      }
    }
    for (int g = 0; g < G; ++g) {
      for (size_t i = 0; i < kVecsPerBlock; ++i) {
        const VF qv = hn::LoadU(df, q[g] + b * kKvBlock + i * kLanes);
        for (int r = 0; r < R; ++r) acc[r][g] = hn::MulAdd(qv, c[r][i], acc[r][g]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const uint8_t* row = rows + (j + r) * stride;
    for (int g = 0; g < G; ++g) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][g]));
      if constexpr (!kv_type_blocked(T)) {
        for (int64_t i = blocks * kKvBlock; i < d; ++i) sum += q[g][i] * tail_value<T>(row, i);
      }
      scores[g][j + r] = sum;
    }
  }
}

// Rows per score tile for G heads: enough chains to keep the FMA units busy (8 per block on AVX-512) within the
// registers (AVX2 has 16). One core, rows in cache, d = 512, q8_0: 2 heads 48 -> 40 ns a row against two rows in
// even and odd chains; 8 heads unchanged.
constexpr int dot_tile_rows(int g) {
  if constexpr (kLanes >= 16) return g >= 8 ? 2 : 8 / g;
  if constexpr (kLanes == 8) return g >= 4 ? 1 : 2;
  return 1;
}

template <KvType T, int G>
void dot_rows(const float* const* q, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
              float* const* scores, bool ask_ahead) {
  constexpr int kRows = dot_tile_rows(G);
  const auto bytes = static_cast<int64_t>(kv_head_bytes(T, d));
  const int64_t ahead = ask_ahead ? prefetch_rows_ahead(bytes) : 0;
  prefetch_row_heads(rows, stride, 0, ahead, n_rows, bytes);
  int64_t j = 0;
  for (; j + kRows <= n_rows; j += kRows) {
    if (ahead > 0) prefetch_row_heads(rows, stride, j + ahead, kRows, n_rows, bytes);
    dot_rows_tile<T, G, kRows>(q, rows, stride, j, d, scores);
  }
  for (; j < n_rows; ++j) dot_rows_tile<T, G, 1>(q, rows, stride, j, d, scores);
}

// out[h] += Σ_j w[h][j] * row j for G heads: a chunk of CB blocks of every head's out is held in registers while
// every row passes over it, each block decoded and scaled once for all heads (the reference's order). Per output
// value the additions are a lone head's, row by row in order, whatever G and CB. The pass over the first blocks
// asks for the rows `ahead` (their whole head part, `bytes`); the passes over the later blocks find them in cache.
template <KvType T, int G, int CB>
HWY_INLINE void add_rows_chunk(const float* const* w, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t b0,
                               float* const* out, int64_t ahead = 0, int64_t bytes = 0) {
  const DF df;
  VF acc[G][CB * kVecsPerBlock];
  for (int g = 0; g < G; ++g)
    for (size_t i = 0; i < CB * kVecsPerBlock; ++i) acc[g][i] = hn::LoadU(df, out[g] + b0 * kKvBlock + i * kLanes);
  prefetch_row_heads(rows, stride, 0, ahead, n_rows, bytes);
  for (int64_t j = 0; j < n_rows; ++j) {
    if (ahead > 0) prefetch_row_heads(rows, stride, j + ahead, 1, n_rows, bytes);
    const uint8_t* r = rows + j * stride + b0 * static_cast<int64_t>(block_bytes<T>());
    for (int k = 0; k < CB; ++k) {
      VF c[kVecsPerBlock];
      const float s = load_block<T>(r + k * block_bytes<T>(), c);
      if constexpr (kv_type_blocked(T)) {
        for (size_t i = 0; i < kVecsPerBlock; ++i) c[i] = hn::Mul(c[i], hn::Set(df, s));
      }
      for (int g = 0; g < G; ++g) {
        const VF wj = hn::Set(df, w[g][j]);
        VF* a = acc[g] + k * kVecsPerBlock;
        for (size_t i = 0; i < kVecsPerBlock; ++i) a[i] = hn::MulAdd(wj, c[i], a[i]);
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (size_t i = 0; i < CB * kVecsPerBlock; ++i) hn::StoreU(acc[g][i], df, out[g] + b0 * kKvBlock + i * kLanes);
}

template <KvType T, int G>
void add_rows(const float* const* w, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d,
              float* const* out, bool ask_ahead) {
  // Blocks per chunk: 8 vectors of one head's out, fewer per head as the group grows (at least one block).
  constexpr int kChunk = std::max<int>(1, static_cast<int>(8 * kLanes / kKvBlock) / G);
  const int64_t blocks = kv_stored_dim(T, d) / kKvBlock;
  const auto bytes = static_cast<int64_t>(kv_head_bytes(T, d));
  const int64_t ahead = ask_ahead ? prefetch_rows_ahead(bytes) : 0;
  int64_t b0 = 0;
  for (; b0 + kChunk <= blocks; b0 += kChunk)
    add_rows_chunk<T, G, kChunk>(w, rows, stride, n_rows, b0, out, b0 == 0 ? ahead : 0, bytes);
  for (; b0 < blocks; ++b0) add_rows_chunk<T, G, 1>(w, rows, stride, n_rows, b0, out, b0 == 0 ? ahead : 0, bytes);
  if constexpr (!kv_type_blocked(T)) {
    for (int g = 0; g < G; ++g)
      for (int64_t j = 0; j < n_rows; ++j)
        for (int64_t i = blocks * kKvBlock; i < d; ++i) out[g][i] += w[g][j] * tail_value<T>(rows + j * stride, i);
  }
}

// fn(std::integral_constant<KvType, T>()) for the runtime type: one instantiation of a kernel per KV type.
template <typename Fn>
HWY_INLINE void with_kv_type(KvType type, const Fn& fn) {
  switch (type) {
    case KvType::kF32: return fn(std::integral_constant<KvType, KvType::kF32>());
    case KvType::kF16: return fn(std::integral_constant<KvType, KvType::kF16>());
    case KvType::kQ8_0: return fn(std::integral_constant<KvType, KvType::kQ8_0>());
    case KvType::kQ4_0: return fn(std::integral_constant<KvType, KvType::kQ4_0>());
    case KvType::kTq4: return fn(std::integral_constant<KvType, KvType::kTq4>());
    case KvType::kTq3: return fn(std::integral_constant<KvType, KvType::kTq3>());
  }
}

// fn(std::integral_constant<int, G>(), first) for groups of at most kMaxGroup of the n heads (G a power of two).
template <typename Fn>
HWY_INLINE void for_head_groups(int64_t n, const Fn& fn) {
  int64_t h = 0;
  if constexpr (kMaxGroup >= 8) {
    for (; h + 8 <= n; h += 8) fn(std::integral_constant<int, 8>(), h);
  }
  for (; h + 4 <= n; h += 4) fn(std::integral_constant<int, 4>(), h);
  for (; h + 2 <= n; h += 2) fn(std::integral_constant<int, 2>(), h);
  for (; h < n; ++h) fn(std::integral_constant<int, 1>(), h);
}

// The first group of a call asks for the rows ahead (head_chunks.h); the others, on the same rows, find them in cache.
void kv_dot_rows_simd(KvType type, const float* const* q, int64_t n_heads, const uint8_t* rows, int64_t stride,
                      int64_t n_rows, int64_t d, float* const* scores) {
  with_kv_type(type, [&](auto t) {
    for_head_groups(n_heads, [&](auto g, int64_t h) {
      dot_rows<decltype(t)::value, decltype(g)::value>(q + h, rows, stride, n_rows, d, scores + h, h == 0);
    });
  });
}

void kv_add_rows_simd(KvType type, const float* const* w, int64_t n_heads, const uint8_t* rows, int64_t stride,
                      int64_t n_rows, int64_t d, float* const* out) {
  with_kv_type(type, [&](auto t) {
    for_head_groups(n_heads, [&](auto g, int64_t h) {
      add_rows<decltype(t)::value, decltype(g)::value>(w + h, rows, stride, n_rows, d, out + h, h == 0);
    });
  });
}


// ---- Blocks of query rows against one KV head (attend_rows_kv) ----

// Query rows per pass: two vectors of lanes. Scores are laid out key-major, [key][row], so the softmax and the
// masks work on all rows of a key at once.
constexpr size_t kPassRows = 2 * kLanes;
constexpr int64_t kKeyChunk = 64;                        // keys per online-softmax step
constexpr int kQkKeys = kLanes >= 16 ? 8 : 4;             // keys per register tile of the scores
constexpr int kPvRows = kPassRows >= 4 ? 4 : static_cast<int>(kPassRows);  // rows per register tile of the sum
constexpr int kPvVecs = kLanes >= 16 ? 4 : 2;             // value vectors per register tile of the sum
constexpr size_t kPvWidth = kPvVecs * kLanes;              // values per column block of a chunk (attend_block)

// One cache row decoded to floats (the stored domain: rotated for tq types), kv_stored_dim(T, d) of them.
template <KvType T>
void decode_row(const uint8_t* r, int64_t d, float* out) {
  const DF df;
  const int64_t blocks = kv_stored_dim(T, d) / kKvBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    VF c[kVecsPerBlock];
    const VF s = hn::Set(df, load_block<T>(r + b * block_bytes<T>(), c));
    for (size_t i = 0; i < kVecsPerBlock; ++i)
      hn::StoreU(kv_type_blocked(T) ? hn::Mul(c[i], s) : c[i], df, out + b * kKvBlock + i * kLanes);
  }
  if constexpr (!kv_type_blocked(T)) {
    for (int64_t i = blocks * kKvBlock; i < d; ++i) out[i] = tail_value<T>(r, i);
  }
}

void decode_rows(KvType type, const uint8_t* rows, int64_t stride, int64_t n_rows, int64_t d, float* out,
                 int64_t out_stride) {
  with_kv_type(type, [&](auto t) {
    for (int64_t j = 0; j < n_rows; ++j) decode_row<decltype(t)::value>(rows + j * stride, d, out + j * out_stride);
  });
}

// s[k][0..kPassRows) = qt^T · key k for KEYS keys: qt is [c][row], each key value is broadcast against a vector of
// rows (no horizontal sums).
template <int KEYS>
HWY_INLINE void qk_tile(const float* qt, const float* keys, int64_t key_stride, int64_t dk, float* s) {
  const DF df;
  VF acc0[KEYS], acc1[KEYS];
  for (int k = 0; k < KEYS; ++k) acc0[k] = acc1[k] = hn::Zero(df);
  for (int64_t c = 0; c < dk; ++c) {
    const VF q0 = hn::Load(df, qt + c * kPassRows), q1 = hn::Load(df, qt + c * kPassRows + kLanes);
    for (int k = 0; k < KEYS; ++k) {
      const VF b = hn::Set(df, keys[k * key_stride + c]);
      acc0[k] = hn::MulAdd(q0, b, acc0[k]);
      acc1[k] = hn::MulAdd(q1, b, acc1[k]);
    }
  }
  for (int k = 0; k < KEYS; ++k) {
    hn::Store(acc0[k], df, s + k * kPassRows);
    hn::Store(acc1[k], df, s + k * kPassRows + kLanes);
  }
}

// o[row][c0..) = o * alpha[row] + Σ_k p[k][row] v_k for ROWS rows from i0 and VECS vectors of values from c0;
// vals points at value c0 of key 0.
template <int ROWS, int VECS>
HWY_INLINE void pv_tile(const float* p, const float* vals, int64_t val_stride, int64_t nk, const float* alpha,
                        float* o, int64_t o_stride, int64_t i0, int64_t c0) {
  const DF df;
  VF acc[ROWS][VECS];
  for (int r = 0; r < ROWS; ++r) {
    const VF a = hn::Set(df, alpha[i0 + r]);
    for (int v = 0; v < VECS; ++v) acc[r][v] = hn::Mul(hn::Load(df, o + (i0 + r) * o_stride + c0 + v * kLanes), a);
  }
  for (int64_t k = 0; k < nk; ++k) {
    VF vv[VECS];
    for (int v = 0; v < VECS; ++v) vv[v] = hn::Load(df, vals + k * val_stride + v * kLanes);
    for (int r = 0; r < ROWS; ++r) {
      const VF pk = hn::Set(df, p[k * kPassRows + i0 + r]);
      for (int v = 0; v < VECS; ++v) acc[r][v] = hn::MulAdd(pk, vv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < VECS; ++v) hn::Store(acc[r][v], df, o + (i0 + r) * o_stride + c0 + v * kLanes);
}

// Passes of kPassRows query rows that one call takes: each chunk of values is copied into its column blocks once
// for all of them (a 32-row block is two passes on 256-bit vectors). perf of pp1500 on the synth 26B, 2-core Zen 3:
// the copy was ~23% of the attention's samples when each pass made its own; copied once per block, the attention
// went from 0.277 to 0.248 of the Q4_K GEMM's samples (14.2% -> 13.4% of all).
constexpr int64_t kBlockPasses = 4;

// Up to kBlockPasses * kPassRows rows.
void attend_block(const float* const* q, const int64_t* first, const int64_t* last, int64_t m, const KvRing& ring,
                  const KvHeadFormat& f, int64_t d, float* const* out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const int64_t passes = (m + static_cast<int64_t>(kPassRows) - 1) / static_cast<int64_t>(kPassRows);
  const int64_t dk = kv_stored_dim(f.k_type, d), dv = kv_stored_dim(f.v_type, d);
  const int64_t dvp = (dv + kLanes - 1) / kLanes * kLanes;  // o and decoded values: whole vectors per row
  // f32 keys are read in place (by broadcasts, one key row after another). The values go to vbuf in column
  // blocks of kPvWidth floats, each block's keys contiguous: pv_tile walks one block down the keys, and in place
  // that walk strode by the cache row (8 KiB on the 26B's sliding layers), so every key of a chunk fell in the same
  // L1 set and missed it (perf: the value loads were 37% of the attention's samples; pp512 on a 2-core Zen 3).
  const bool keys_in_place = f.k_type == KvType::kF32 && f.k_stride % sizeof(float) == 0;
  const bool vals_row_in_place = f.v_type == KvType::kF32 && f.v_stride % sizeof(float) == 0 && dv == dvp;
  const int64_t n_wide = dvp / kPvWidth, tail_width = dvp - n_wide * kPvWidth;  // tail: whole vectors

  thread_local hwy::AlignedFreeUniquePtr<float[]> buf;
  thread_local size_t buf_size = 0;
  const size_t n_qt = static_cast<size_t>(dk) * kPassRows, n_o = kPassRows * static_cast<size_t>(dvp),
               n_s = static_cast<size_t>(kKeyChunk) * kPassRows,
               n_k = keys_in_place ? 0 : static_cast<size_t>(kKeyChunk * dk),
               n_v = static_cast<size_t>(kKeyChunk * dvp), n_row = vals_row_in_place ? 0 : static_cast<size_t>(dvp);
  const size_t np = static_cast<size_t>(passes);
  const size_t need = np * (n_qt + n_o) + n_s + n_k + n_v + n_row + kPassRows;
  if (buf_size < need) {
    buf = hwy::AllocateAligned<float>(need);
    buf_size = need;
  }
  float* qt0 = buf.get();                   // pass p's transposed queries at qt0 + p * n_qt
  float* o0 = qt0 + np * n_qt;              // pass p's sums at o0 + p * n_o
  float* s = o0 + np * n_o;
  float* kbuf = s + n_s;
  float* vbuf = kbuf + n_k;
  float* vrow = vbuf + n_v;
  float* alpha = vrow + n_row;
  std::fill(o0, o0 + np * n_o, 0.0f);

  // The queries in the key's stored domain, transposed: qt[c][i]. Unused lanes hold zeros and see no key.
  int64_t lo = first[0], hi = last[0];
  for (int64_t i = 1; i < m; ++i) lo = std::min(lo, first[i]), hi = std::max(hi, last[i]);
  alignas(64) int32_t rel_first[kBlockPasses][kPassRows], rel_last[kBlockPasses][kPassRows];
  // The keys some row of pass p sees: pass_first[p]..pass_last[p] (relative to lo). A pass skips the keys of a chunk
  // outside them, which every row of the pass would mask: a causal block's earlier rows stop before its later ones,
  // and a sliding block's later rows start after its earlier ones (with 64 tokens a block, 6% of the keys).
  int64_t pass_first[kBlockPasses], pass_last[kBlockPasses];
  alignas(64) float run_max[kBlockPasses][kPassRows], sums[kBlockPasses][kPassRows];
  float qrow[kKvMaxHeadDim];
  for (int64_t p = 0; p < passes; ++p) {
    pass_first[p] = std::numeric_limits<int64_t>::max();
    pass_last[p] = -1;
    float* qt = qt0 + static_cast<size_t>(p) * n_qt;
    for (size_t i = 0; i < kPassRows; ++i) {
      const int64_t row = p * static_cast<int64_t>(kPassRows) + static_cast<int64_t>(i);
      if (row < m) {
        std::copy(q[row], q[row] + d, qrow);
        std::fill(qrow + d, qrow + dk, 0.0f);
        if (kv_type_rotated(f.k_type)) tq_rotate_blocks(qrow, dk);
        rel_first[p][i] = static_cast<int32_t>(first[row] - lo);
        rel_last[p][i] = static_cast<int32_t>(last[row] - lo);
        pass_first[p] = std::min<int64_t>(pass_first[p], rel_first[p][i]);
        pass_last[p] = std::max<int64_t>(pass_last[p], rel_last[p][i]);
      } else {
        std::fill(qrow, qrow + dk, 0.0f);
        rel_first[p][i] = 1;
        rel_last[p][i] = 0;
      }
      for (int64_t c = 0; c < dk; ++c) qt[c * kPassRows + i] = qrow[c];
      run_max[p][i] = -std::numeric_limits<float>::infinity();
      sums[p][i] = 0.0f;
    }
  }

  const VF neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (int64_t j0 = lo; j0 <= hi;) {
    const int64_t slot = j0 % ring.capacity;
    const int64_t nk = std::min({kKeyChunk, hi - j0 + 1, ring.capacity - slot});  // never across the ring's end
    const uint8_t* krows = ring.k + slot * f.k_stride;
    const uint8_t* vrows = ring.v + slot * f.v_stride;
    const float* keys = reinterpret_cast<const float*>(krows);
    int64_t key_stride = f.k_stride / static_cast<int64_t>(sizeof(float));
    if (!keys_in_place) {
      decode_rows(f.k_type, krows, f.k_stride, nk, d, kbuf, dk);
      keys = kbuf;
      key_stride = dk;
    }
    for (int64_t k = 0; k < nk; ++k) {
      const float* row = reinterpret_cast<const float*>(vrows + k * f.v_stride);
      if (!vals_row_in_place) {
        decode_rows(f.v_type, vrows + k * f.v_stride, f.v_stride, 1, d, vrow, dvp);
        std::fill(vrow + dv, vrow + dvp, 0.0f);  // whole vectors
        row = vrow;
      }
      for (int64_t b = 0; b < n_wide; ++b) {
        for (size_t v = 0; v < kPvWidth; v += kLanes)
          hn::Store(hn::LoadU(df, row + b * kPvWidth + v), df, vbuf + (b * kKeyChunk + k) * kPvWidth + v);
      }
      float* tail = vbuf + n_wide * kKeyChunk * kPvWidth + k * tail_width;
      for (int64_t c = 0; c < tail_width; c += kLanes)
        hn::Store(hn::LoadU(df, row + n_wide * kPvWidth + c), df, tail + c);
    }

    for (int64_t p = 0; p < passes; ++p) {
      const float* qt = qt0 + static_cast<size_t>(p) * n_qt;
      float* o = o0 + static_cast<size_t>(p) * n_o;
      const int64_t rows = std::min<int64_t>(kPassRows, m - p * static_cast<int64_t>(kPassRows));
      // Keys k0..k1-1 of the chunk: the others score -inf, weigh 0 and add nothing for every row of the pass, so
      // leaving them out changes no number; a pass with none keeps its sums as they are (alpha would be 1).
      const int64_t k0 = std::max<int64_t>(0, pass_first[p] - (j0 - lo));
      const int64_t k1 = std::min(nk, pass_last[p] - (j0 - lo) + 1);
      if (k0 >= k1) continue;
      int64_t k = k0;
      for (; k + kQkKeys <= k1; k += kQkKeys) {
        qk_tile<kQkKeys>(qt, keys + k * key_stride, key_stride, dk, s + k * kPassRows);
      }
      for (; k < k1; ++k) qk_tile<1>(qt, keys + k * key_stride, key_stride, dk, s + k * kPassRows);

      // Masks (a key outside a row's range scores -inf), the chunk's max, the rescale of what came before, exp.
      const auto first0 = hn::Load(di, rel_first[p]), first1 = hn::Load(di, rel_first[p] + kLanes);
      const auto last0 = hn::Load(di, rel_last[p]), last1 = hn::Load(di, rel_last[p] + kLanes);
      VF max0 = neg_inf, max1 = neg_inf;
      const int32_t base = static_cast<int32_t>(j0 - lo);
      for (k = k0; k < k1; ++k) {
        const auto pos = hn::Set(di, base + static_cast<int32_t>(k));
        float* sk = s + k * kPassRows;
        // Highway 1.0 has no signed >=: a key is hidden when first > pos or pos > last.
        const VF s0 = hn::IfThenElse(hn::RebindMask(df, hn::Or(hn::Gt(first0, pos), hn::Gt(pos, last0))), neg_inf,
                                     hn::Load(df, sk));
        const VF s1 = hn::IfThenElse(hn::RebindMask(df, hn::Or(hn::Gt(first1, pos), hn::Gt(pos, last1))), neg_inf,
                                     hn::Load(df, sk + kLanes));
        hn::Store(s0, df, sk);
        hn::Store(s1, df, sk + kLanes);
        max0 = hn::Max(max0, s0);
        max1 = hn::Max(max1, s1);
      }
      const VF run_max0 = hn::Load(df, run_max[p]), run_max1 = hn::Load(df, run_max[p] + kLanes);
      max0 = hn::Max(max0, run_max0);
      max1 = hn::Max(max1, run_max1);
      // Exp gives 0 for -inf and for NaN (-inf - -inf: a row that has seen no key yet).
      const VF alpha0 = flush_subnormal(df, hn::Exp(df, hn::Sub(run_max0, max0)));
      const VF alpha1 = flush_subnormal(df, hn::Exp(df, hn::Sub(run_max1, max1)));
      hn::Store(max0, df, run_max[p]);
      hn::Store(max1, df, run_max[p] + kLanes);
      VF add0 = hn::Zero(df), add1 = hn::Zero(df);
      for (k = k0; k < k1; ++k) {
        float* sk = s + k * kPassRows;
        const VF p0 = flush_subnormal(df, hn::Exp(df, hn::Sub(hn::Load(df, sk), max0)));
        const VF p1 = flush_subnormal(df, hn::Exp(df, hn::Sub(hn::Load(df, sk + kLanes), max1)));
        hn::Store(p0, df, sk);
        hn::Store(p1, df, sk + kLanes);
        add0 = hn::Add(add0, p0);
        add1 = hn::Add(add1, p1);
      }
      hn::Store(hn::MulAdd(hn::Load(df, sums[p]), alpha0, add0), df, sums[p]);
      hn::Store(hn::MulAdd(hn::Load(df, sums[p] + kLanes), alpha1, add1), df, sums[p] + kLanes);
      hn::StoreU(alpha0, df, alpha);
      hn::StoreU(alpha1, df, alpha + kLanes);

      for (int64_t b = 0; b < n_wide; ++b) {  // each block's keys stay in L1 across the row groups
        for (int64_t i0 = 0; i0 < rows; i0 += kPvRows)
          pv_tile<kPvRows, kPvVecs>(s + k0 * kPassRows, vbuf + (b * kKeyChunk + k0) * kPvWidth, kPvWidth, k1 - k0,
                                    alpha, o, dvp, i0, b * kPvWidth);
      }
      for (int64_t c = 0; c < tail_width; c += kLanes) {
        for (int64_t i0 = 0; i0 < rows; i0 += kPvRows)
          pv_tile<kPvRows, 1>(s + k0 * kPassRows, vbuf + n_wide * kKeyChunk * kPvWidth + k0 * tail_width + c,
                              tail_width, k1 - k0, alpha, o, dvp, i0, n_wide * kPvWidth + c);
      }
    }
    j0 += nk;
  }

  for (int64_t i = 0; i < m; ++i) {
    const int64_t p = i / static_cast<int64_t>(kPassRows), r = i % static_cast<int64_t>(kPassRows);
    float* oi = o0 + static_cast<size_t>(p) * n_o + static_cast<size_t>(r) * static_cast<size_t>(dvp);
    const float inv = 1.0f / sums[p][r];
    for (int64_t c = 0; c < dv; ++c) oi[c] *= inv;
    if (kv_type_rotated(f.v_type)) tq_unrotate_blocks(oi, dv);
    std::copy(oi, oi + d, out[i]);
  }
}

void attend_rows_simd(const float* const* q, const int64_t* first, const int64_t* last, int64_t m,
                      const KvRing& ring, const KvHeadFormat& f, int64_t d, float* const* out) {
  constexpr int64_t kBlockRows = kBlockPasses * static_cast<int64_t>(kPassRows);
  for (int64_t i = 0; i < m; i += kBlockRows) {
    const int64_t rows = std::min<int64_t>(kBlockRows, m - i);
    attend_block(q + i, first + i, last + i, rows, ring, f, d, out + i);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace fabula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fabula {

HWY_EXPORT(kv_dot_rows_simd);
HWY_EXPORT(kv_add_rows_simd);
HWY_EXPORT(attend_rows_simd);

void kv_dot_rows(KvType type, const float* const* q, int64_t n_heads, const uint8_t* rows, int64_t stride,
                 int64_t n_rows, int64_t d, float* const* scores) {
  HWY_DYNAMIC_DISPATCH(kv_dot_rows_simd)(type, q, n_heads, rows, stride, n_rows, d, scores);
}

void kv_add_rows(KvType type, const float* const* weights, int64_t n_heads, const uint8_t* rows, int64_t stride,
                 int64_t n_rows, int64_t d, float* const* out) {
  HWY_DYNAMIC_DISPATCH(kv_add_rows_simd)(type, weights, n_heads, rows, stride, n_rows, d, out);
}

void kv_dot_rows_ref(KvType type, const float* const* q, int64_t n_heads, const uint8_t* rows, int64_t stride,
                     int64_t n_rows, int64_t d, float* const* scores) {
  float k[kKvMaxHeadDim];
  const int64_t dp = kv_stored_dim(type, d);
  for (int64_t j = 0; j < n_rows; ++j) {
    kv_decode_head(type, rows + j * stride, d, k);
    for (int64_t h = 0; h < n_heads; ++h) {
      float sum = 0;
      for (int64_t i = 0; i < dp; ++i) sum += q[h][i] * k[i];
      scores[h][j] = sum;
    }
  }
}

void kv_add_rows_ref(KvType type, const float* const* weights, int64_t n_heads, const uint8_t* rows, int64_t stride,
                     int64_t n_rows, int64_t d, float* const* out) {
  float v[kKvMaxHeadDim];
  const int64_t dp = kv_stored_dim(type, d);
  for (int64_t j = 0; j < n_rows; ++j) {
    kv_decode_head(type, rows + j * stride, d, v);
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t i = 0; i < dp; ++i) out[h][i] += weights[h][j] * v[i];
  }
}

namespace {

// Runs of consecutive heads with equal offsets: group g is heads first[g] .. first[g + 1] - 1.
struct HeadGroups {
  int64_t n = 0;
  int64_t first[kKvMaxHeadsPerCall + 1] = {};
};
template <typename Off>
HeadGroups equal_runs(const Off& off, int64_t n_heads) {
  HeadGroups groups;
  for (int64_t h = 0; h < n_heads; ++h)
    if (h == 0 || off(h) != off(h - 1)) groups.first[groups.n++] = h;
  groups.first[groups.n] = n_heads;
  return groups;
}

// The heads' steps, shared by the SIMD path and the reference: each query into the key's stored domain (padded,
// rotated), scores, softmax, the value sum in the value's stored domain, and back. The slots go in chunks, every
// head over a chunk before the next (the heads that read one kv head together: `dot` and `add` take a group): a
// score is one row's dot and `add` adds a call's rows into the sum in order, so each head's numbers are those of one
// call over all rows for that head alone (as attend_head_kv with one head always had).
template <typename Dot, typename Add, typename Softmax>
void attend_heads_with(const float* const* q, const int64_t* k_offset, const int64_t* v_offset, int64_t n_heads,
                       const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d, float* scores,
                       float* const* out, Dot dot, Add add, Softmax softmax) {
  FABULA_CHECK(d <= kKvMaxHeadDim && n_heads >= 1 && n_heads <= kKvMaxHeadsPerCall);
  const int64_t dk = kv_stored_dim(f.k_type, d), dv = kv_stored_dim(f.v_type, d);
  int64_t total = 0;
  for (int i = 0; i < n_runs; ++i) total += runs[i].n_rows;
  auto k_off = [&](int64_t h) { return k_offset != nullptr ? k_offset[h] : int64_t{0}; };
  auto v_off = [&](int64_t h) { return v_offset != nullptr ? v_offset[h] : int64_t{0}; };
  // A chunk holds kHeadsChunkBytes of the wider of the keys' and the values' part of the slots.
  const auto k_head = static_cast<int64_t>(kv_head_bytes(f.k_type, d));
  const auto v_head = static_cast<int64_t>(kv_head_bytes(f.v_type, d));
  const int64_t chunk =
      heads_chunk_rows(std::max(heads_span(k_off, n_heads, k_head).size, heads_span(v_off, n_heads, v_head).size));
  float stored[kKvMaxHeadsPerCall][kKvMaxHeadDim];  // the queries in the key's domain, then the value sums
  for (int64_t h = 0; h < n_heads; ++h) {
    std::copy(q[h], q[h] + d, stored[h]);
    std::fill(stored[h] + d, stored[h] + dk, 0.0f);
    if (kv_type_rotated(f.k_type)) tq_rotate_blocks(stored[h], dk);
  }
  // Consecutive heads that read the same rows (one kv head's) go to the kernels together: step(run, j0, rows, h0,
  // n, sc, st) for heads h0 .. h0 + n - 1 over a chunk, with their scores for the chunk's rows (sc) and their
  // stored vectors (st). A chunk's first row over all runs is the walk's score index less the group's
  // (for_head_chunks lays scores out per unit).
  auto for_group_chunks = [&](const HeadGroups& groups, const auto& step) {
    for_head_chunks(runs, n_runs, chunk, groups.n, total, [&](const KvRun& run, int64_t j0, int64_t rows, int64_t g,
                                                              int64_t score) {
      const int64_t h0 = groups.first[g], n = groups.first[g + 1] - h0, row = score - g * total;
      float* sc[kKvMaxHeadsPerCall];
      float* st[kKvMaxHeadsPerCall];
      for (int64_t i = 0; i < n; ++i) {
        sc[i] = scores + (h0 + i) * total + row;
        st[i] = stored[h0 + i];
      }
      step(run, j0, rows, h0, n, sc, st);
    });
  };
  for_group_chunks(equal_runs(k_off, n_heads), [&](const KvRun& run, int64_t j0, int64_t rows, int64_t h0, int64_t n,
                                                   float* const* sc, float* const* st) {
    dot(f.k_type, st, n, run.k + j0 * f.k_stride + k_off(h0), f.k_stride, rows, d, sc);
  });
  softmax(scores, n_heads, total);
  for (int64_t h = 0; h < n_heads; ++h) std::fill(stored[h], stored[h] + dv, 0.0f);
  for_group_chunks(equal_runs(v_off, n_heads), [&](const KvRun& run, int64_t j0, int64_t rows, int64_t h0, int64_t n,
                                                   float* const* sc, float* const* st) {
    add(f.v_type, sc, n, run.v + j0 * f.v_stride + v_off(h0), f.v_stride, rows, d, st);
  });
  for (int64_t h = 0; h < n_heads; ++h) {
    if (kv_type_rotated(f.v_type)) tq_unrotate_blocks(stored[h], dv);
    std::copy(stored[h], stored[h] + d, out[h]);
  }
}

// The f32 cache's runs as attend_head's.
bool f32_runs(const KvRun* runs, int n_runs, const KvHeadFormat& f, CacheRun (&cr)[2]) {
  if (f.k_type != KvType::kF32 || f.v_type != KvType::kF32 || f.k_stride != f.v_stride || n_runs > 2) return false;
  for (int i = 0; i < n_runs; ++i)
    cr[i] = {reinterpret_cast<const float*>(runs[i].k), reinterpret_cast<const float*>(runs[i].v), runs[i].n_rows};
  return true;
}

}  // namespace

void attend_head_kv(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d, float* scores,
                    float* out) {
  CacheRun cr[2];
  if (f32_runs(runs, n_runs, f, cr)) {
    // The f32 cache keeps its own kernel (and its exact results).
    attend_head(q, cr, n_runs, f.k_stride / static_cast<int64_t>(sizeof(float)), d, scores, out);
    return;
  }
  attend_heads_with(&q, nullptr, nullptr, 1, runs, n_runs, f, d, scores, &out, kv_dot_rows, kv_add_rows,
                    softmax_rows);
}

void attend_heads_kv(const float* const* q, const int64_t* k_offset, const int64_t* v_offset, int64_t n_heads,
                     const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d, float* scores,
                     float* const* out) {
  CacheRun cr[2];
  int64_t offset[kKvMaxHeadsPerCall];  // in floats, where keys and values sit alike (f32: one layout for both)
  bool alike = n_heads <= kKvMaxHeadsPerCall;
  for (int64_t h = 0; alike && h < n_heads; ++h) {
    const int64_t ko = k_offset != nullptr ? k_offset[h] : 0, vo = v_offset != nullptr ? v_offset[h] : 0;
    alike = ko == vo && ko % static_cast<int64_t>(sizeof(float)) == 0;
    offset[h] = ko / static_cast<int64_t>(sizeof(float));
  }
  if (alike && f32_runs(runs, n_runs, f, cr)) {
    attend_heads(q, offset, n_heads, cr, n_runs, f.k_stride / static_cast<int64_t>(sizeof(float)), d, scores, out);
    return;
  }
  attend_heads_with(q, k_offset, v_offset, n_heads, runs, n_runs, f, d, scores, out, kv_dot_rows, kv_add_rows,
                    softmax_rows);
}

void attend_head_kv_ref(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& f, int64_t d,
                        float* scores, float* out) {
  attend_heads_with(&q, nullptr, nullptr, 1, runs, n_runs, f, d, scores, &out, kv_dot_rows_ref, kv_add_rows_ref,
                    softmax_rows_ref);
}

void attend_rows_kv(const float* const* q, const int64_t* first, const int64_t* last, int64_t m, const KvRing& ring,
                    const KvHeadFormat& f, int64_t d, float* const* out) {
  FABULA_CHECK(d <= kKvMaxHeadDim && m <= kKvMaxBlockRows);
  HWY_DYNAMIC_DISPATCH(attend_rows_simd)(q, first, last, m, ring, f, d, out);
}

void attend_rows_kv_ref(const float* const* q, const int64_t* first, const int64_t* last, int64_t m,
                        const KvRing& ring, const KvHeadFormat& f, int64_t d, float* const* out) {
  std::vector<float> scores;
  for (int64_t i = 0; i < m; ++i) {
    // Positions first..last sit at ring slots j % capacity: at most two contiguous runs.
    KvRun runs[2];
    int n_runs = 0;
    for (int64_t j = first[i]; j <= last[i];) {
      const int64_t slot = j % ring.capacity, len = std::min(last[i] - j + 1, ring.capacity - slot);
      runs[n_runs++] = {ring.k + slot * f.k_stride, ring.v + slot * f.v_stride, len};
      j += len;
    }
    scores.resize(static_cast<size_t>(last[i] - first[i] + 1));
    attend_head_kv_ref(q[i], runs, n_runs, f, d, scores.data(), out[i]);
  }
}

}  // namespace fabula
#endif  // HWY_ONCE
