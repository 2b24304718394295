// x86 256-bit tile kernels (kernels.h TileFn): one weight row against up to kTileTokensAvx2 activation rows,
// included by quant-inl.h inside each x86 target namespace (AVX2, AVX3, AVX3_DL). No include guard on purpose.
//
// Why tiles: in a prefill matmul every weight block would otherwise be unpacked (nibbles, 6-bit scales, high bits)
// once per token. Here it is unpacked once into registers and reused for every token of the tile, and the
// per-token work is only the multiply-adds; one token (decode) is the same kernel with NT = 1. AVX512-VNNI
// (AVX3_DL) folds the int16 scale step into vpdpwssd and the int8 dot into vpdpbusd. The integer sums per block
// are exact; only the f32 accumulation order differs from the references (tests/tensor/tile_test.cpp).

HWY_INLINE __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

HWY_INLINE float h2f_fast(uint16_t h) { return _cvtsh_ss(h); }

HWY_INLINE float hsum_f32x4(__m128 r) {
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

HWY_INLINE float hsum_f32x8(__m256 v) {
  return hsum_f32x4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

// A Q4_K / Q5_K block's first 16 bytes (d, dmin, the 12 packed scale bytes) -> bytes 0..7 the 6-bit scales, 8..15
// the mins (blocks.h unpack_k_scales in one SSE register). Dwords of the header: d|dmin, u0, u1, u2. For every x86
// target (the AVX-512 tiles and gemvs use it too).
HWY_INLINE __m128i unpack_k_scales_header(__m128i header) {
  // utmp[0] = u0 & 0x3f.., utmp[2] = u1 & 0x3f..: lanes 0 and 2; the low parts of utmp[1] = u2 & 0x0f.. and
  // utmp[3] = (u2 >> 4) & 0x0f..: lanes 1 and 3.
  const __m128i a = _mm_shuffle_epi32(header, _MM_SHUFFLE(3, 2, 3, 1));  // u0 u2 u1 u2
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // Their high parts ((u0 >> 6) & 3) << 4 and ((u1 >> 6) & 3) << 4 per byte, in lanes 1 and 3.
  const __m128i b = _mm_shuffle_epi32(header, _MM_SHUFFLE(2, 2, 1, 1));  // u0 u0 u1 u1
  const __m128i high = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, high);
}

// 16 packed bytes -> 32 nibbles: low nibbles in bytes 0..15, high nibbles in bytes 16..31 (Q4_0/Q5_0 order).
HWY_INLINE __m256i nibbles_32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set (ggml's bytes_from_bits_32).
HWY_INLINE __m256i bytes_from_bits_32(const uint8_t* p) {
  uint32_t x32;
  std::memcpy(&x32, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Highway 1.0.3 compiles AVX3_DL with the VEX-encoded AVX-VNNI attribute, which CPUs with AVX512-VNNI need not
// have (Zen 4 lacks it), so the VNNI instructions are written as inline assembly, which the assembler encodes
// as EVEX (AVX512-VNNI + VL).

// acc += Σ pairs(p16 * s16) (int16 x int16 -> int32).
HWY_INLINE __m256i dp_i16(__m256i acc, __m256i p16, __m256i s16) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(p16), "v"(s16));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, s16));
#endif
}

// acc += Σ quads(u8 * s8) (u8 x s8 -> int32); on AVX2 through int16 pairs (no saturation for the ranges used).
HWY_INLINE __m256i dp_u8s8(__m256i acc, __m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));  // u: unsigned bytes, s: signed bytes
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Runtime nt (1..kMax, kMax 4 or 8) -> fn(std::integral_constant<int, NT>), the unrolled instantiation.
template <int kMax, typename Fn>
HWY_INLINE void with_token_count(int nt, const Fn& fn) {
  switch (nt) {
    case 1: return fn(std::integral_constant<int, 1>());
    case 2: return fn(std::integral_constant<int, 2>());
    case 3: return fn(std::integral_constant<int, 3>());
    default: break;
  }
  if constexpr (kMax == 4) {
    fn(std::integral_constant<int, 4>());
  } else {
    static_assert(kMax == 8);
    switch (nt) {
      case 4: return fn(std::integral_constant<int, 4>());
      case 5: return fn(std::integral_constant<int, 5>());
      case 6: return fn(std::integral_constant<int, 6>());
      case 7: return fn(std::integral_constant<int, 7>());
      default: return fn(std::integral_constant<int, 8>());
    }
  }
}

// Defines the TileFn NAME from the kernel template KERNEL<ARGS..., NT>(n, w, act, act_stride, act_scales, y, ldy);
// the optional leading template arguments end with a comma.
#define FABULA_TILE_ENTRY(NAME, KMAX, KERNEL, ...)                                                             \
  inline void NAME(int64_t n, const void* w, const uint8_t* act, size_t act_stride, const float* act_scales,  \
                   int nt, float* y, int64_t ldy) {                                                            \
    with_token_count<KMAX>(nt, [&](auto k) {                                                                   \
      KERNEL<__VA_ARGS__ decltype(k)::value>(n, w, act, act_stride, act_scales, y, ldy);                       \
    });                                                                                                        \
  }

// Q4_K / Q5_K row block -> 8 vectors of 32 unsigned weights, vector k = weights 32k..32k+31 (kHighBits: Q5_K's
// fifth bit plane qh). Shared by the tiles and the AVX2 GEMM's repack.
template <bool kHighBits, typename Block>
HWY_INLINE void unpack_qk_weights_avx2(const Block& x, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256i hbits = _mm256_setzero_si256();
  if constexpr (kHighBits) hbits = load256(x.qh);
  for (int j = 0; j < 4; ++j) {
    const __m256i bits = load256(x.qs + 32 * j);
    q[2 * j] = _mm256_and_si256(bits, m4);
    q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    if constexpr (kHighBits) {  // bit 2j of qh is the fifth bit of chunk j's low nibbles, bit 2j+1 of its high
      const __m256i one = _mm256_set1_epi8(1);
      q[2 * j] = _mm256_or_si256(q[2 * j], _mm256_slli_epi16(_mm256_and_si256(hbits, one), 4));
      q[2 * j + 1] =
          _mm256_or_si256(q[2 * j + 1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), one), 4));
      hbits = _mm256_srli_epi16(hbits, 2);
    }
  }
}

// Q6_K row block -> 8 vectors of 32 unsigned 6-bit weights (0..63, the -32 offset left to the caller), vector k =
// weights 32k..32k+31. Shared by the tiles and the AVX2 GEMM's repack.
HWY_INLINE void unpack_q6_K_weights_avx2(const BlockQ6_K& x, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = x.ql + 64 * h;
    const __m256i qh = load256(x.qh + 32 * h);
    const __m256i lo1 = load256(ql), lo2 = load256(ql + 32);
    q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(lo1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
    q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(lo2, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
    q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo1, 4), m4), _mm256_and_si256(qh, m2));
    q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo2, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
  }
}

// Q4_K / Q5_K x Q8_K (kHighBits: Q5_K's fifth bit plane qh). Per block and row: 8 vectors of 32 weights
// (sub-block k = elements 32k..32k+31) and the 8 scales; per token: maddubs(q, a) then the 6-bit scale via
// vpdpwssd, one f32 FMA per block, and the min term from bsums.
template <bool kHighBits, typename Block, int NT>
HWY_INLINE void tile_qk_avx2(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                             float* y, int64_t ldy) {
  const Block* x = static_cast<const Block*>(wv);
  __m256 acc[NT];
  __m128 accm[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    accm[t] = _mm_setzero_ps();
  }
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint32_t utmp[4];
    unpack_k_scales(x[i].scales, utmp);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(utmp);
    const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8)));
    __m256i q[8], s[8];
    unpack_qk_weights_avx2<kHighBits>(x[i], q);
    for (int k = 0; k < 8; ++k) s[k] = _mm256_set1_epi16(sc[k]);
    const float d = h2f_fast(x[i].d), dmin = h2f_fast(x[i].dmin);
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_K* yb = reinterpret_cast<const BlockQ8_K*>(act + t * act_stride) + i;
      __m256i sumi = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) sumi = dp_i16(sumi, _mm256_maddubs_epi16(q[k], load256(yb->qs + 32 * k)), s[k]);
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yb->d), _mm256_cvtepi32_ps(sumi), acc[t]);
      const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(yb->bsums));
      const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(yb->bsums + 8));
      const __m128i mm = _mm_madd_epi16(mins, _mm_hadd_epi16(b0, b1));
      accm[t] = _mm_fmadd_ps(_mm_set1_ps(dmin * yb->d), _mm_cvtepi32_ps(mm), accm[t]);
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum_f32x8(acc[t]) - hsum_f32x4(accm[t]);
}

// Q6_K x Q8_K. Unsigned 6-bit q (0..63) per row, int16 scales per 16; the -32 offset is 32 * Σ_g sc_g * bsum_g.
template <int NT>
HWY_INLINE void tile_q6_K_avx2_n(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                               float* y, int64_t ldy) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(wv);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    __m256i q[8], s[8];
    const int8_t* sc = x[i].scales;
    unpack_q6_K_weights_avx2(x[i], q);
    // q[k] covers elements 32k..32k+31: scales 2k (first 16) and 2k+1 (last 16).
    for (int k = 0; k < 8; ++k) s[k] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const float d = h2f_fast(x[i].d);
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_K* yb = reinterpret_cast<const BlockQ8_K*>(act + t * act_stride) + i;
      __m256i sumi = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) sumi = dp_i16(sumi, _mm256_maddubs_epi16(q[k], load256(yb->qs + 32 * k)), s[k]);
      const __m256i off = _mm256_madd_epi16(sc16, load256(yb->bsums));  // Σ sc_g * bsum_g, 8 lanes
      sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yb->d), _mm256_cvtepi32_ps(sumi), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum_f32x8(acc[t]);
}

template <GgmlType kType>
using Q8_0LikeBlock = std::conditional_t<kType == GgmlType::kQ8_0, BlockQ8_0,
                                         std::conditional_t<kType == GgmlType::kQ5_0, BlockQ5_0, BlockQ4_0>>;

// Q8_0 / Q5_0 / Q4_0: one block's scale d, which leads all three block types.
HWY_INLINE float q8_0_like_scale(const uint8_t* blk) {
  uint16_t dh;
  std::memcpy(&dh, blk, 2);
  return h2f_fast(dh);
}

// Q8_0 / Q5_0 / Q4_0: one block's 32 weights as signed int8.
template <GgmlType kType>
HWY_INLINE __m256i q8_0_like_weights(const uint8_t* blk) {
  if constexpr (kType == GgmlType::kQ8_0) {
    return load256(reinterpret_cast<const BlockQ8_0*>(blk)->qs);
  } else if constexpr (kType == GgmlType::kQ5_0) {
    // A clear fifth bit ORs in 0xF0, which reads as nibble - 16 in int8; a set bit leaves nibble = (16+q) - 16.
    const BlockQ5_0* b = reinterpret_cast<const BlockQ5_0*>(blk);
    const __m256i hi = _mm256_andnot_si256(bytes_from_bits_32(b->qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    return _mm256_or_si256(nibbles_32(b->qs), hi);
  } else {
    return _mm256_sub_epi8(nibbles_32(reinterpret_cast<const BlockQ4_0*>(blk)->qs), _mm256_set1_epi8(8));
  }
}

// Q8_0 / Q5_0 / Q4_0 x Q8_0: the weight block becomes 32 signed int8 once per row; per token the sign trick
// (|w| as u8 times a*sign(w)) feeds vpdpbusd, then one f32 FMA per block, even blocks into one accumulator and odd
// blocks into another (added before the final hsum): with one chain of 4-cycle FMAs a token's decode gemv waited on
// the chain (gemv_q8_0_like_avx2 repeats these steps). Activations must lie in [-127, 127].
template <GgmlType kType, typename Block, int NT>
HWY_INLINE void tile_q8_0_like_avx2(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                                    float* y, int64_t ldy) {
  const uint8_t* x = static_cast<const uint8_t*>(wv);
  __m256 even[NT], odd[NT];
  for (int t = 0; t < NT; ++t) even[t] = odd[t] = _mm256_setzero_ps();
  const auto block = [&](int64_t i, __m256(&acc)[NT]) {
    const uint8_t* blk = x + i * sizeof(Block);
    const __m256i w = q8_0_like_weights<kType>(blk);
    const __m256i aw = _mm256_sign_epi8(w, w);
    const __m256 dw = _mm256_set1_ps(q8_0_like_scale(blk));
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_0* yb = reinterpret_cast<const BlockQ8_0*>(act + t * act_stride) + i;
      const __m256i sumi = dp_u8s8(_mm256_setzero_si256(), aw, _mm256_sign_epi8(load256(yb->qs), w));
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(h2f_fast(yb->d))), _mm256_cvtepi32_ps(sumi), acc[t]);
    }
  };
  const int64_t nb = n / kQK8_0;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    block(i, even);
    block(i + 1, odd);
  }
  if (i < nb) block(i, even);
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum_f32x8(_mm256_add_ps(even[t], odd[t]));
}

constexpr int kTileTokensAvx2 = 4;

FABULA_TILE_ENTRY(tile_q4_K_avx2, kTileTokensAvx2, tile_qk_avx2, false, BlockQ4_K, )
FABULA_TILE_ENTRY(tile_q5_K_avx2, kTileTokensAvx2, tile_qk_avx2, true, BlockQ5_K, )
FABULA_TILE_ENTRY(tile_q6_K_avx2, kTileTokensAvx2, tile_q6_K_avx2_n)
FABULA_TILE_ENTRY(tile_q8_0_avx2, kTileTokensAvx2, tile_q8_0_like_avx2, GgmlType::kQ8_0, BlockQ8_0, )
FABULA_TILE_ENTRY(tile_q5_0_avx2, kTileTokensAvx2, tile_q8_0_like_avx2, GgmlType::kQ5_0, BlockQ5_0, )
FABULA_TILE_ENTRY(tile_q4_0_avx2, kTileTokensAvx2, tile_q8_0_like_avx2, GgmlType::kQ4_0, BlockQ4_0, )

inline void fill_avx2_tiles(KernelTable* t) {
  t->tile[kernel_slot(GgmlType::kQ4_K)] = tile_q4_K_avx2;
  t->tile[kernel_slot(GgmlType::kQ5_K)] = tile_q5_K_avx2;
  t->tile[kernel_slot(GgmlType::kQ6_K)] = tile_q6_K_avx2;
  t->tile[kernel_slot(GgmlType::kQ8_0)] = tile_q8_0_avx2;
  t->tile[kernel_slot(GgmlType::kQ5_0)] = tile_q5_0_avx2;
  t->tile[kernel_slot(GgmlType::kQ4_0)] = tile_q4_0_avx2;
  t->tile_tokens = kTileTokensAvx2;
}
