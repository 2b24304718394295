// 256-bit int8 GEMM for prefill (kernels.h RepackFn / GemmFn) for x86 targets without AVX-512 VNNI, included by
// quant-inl.h inside each x86 target namespace after tiles_avx2-inl.h (AVX3_DL overrides it with
// gemm_avx512-inl.h). No include guard on purpose.
//
// The structure of gemm_avx512-inl.h in 256 bits: weight rows are converted into a row-interleaved tile, 4
// consecutive weights of each of 8 rows per 32-byte vector, so one multiply-add with the token's 4 activation
// bytes broadcast serves 8 rows, and each weight vector is reused by kGemmTokensAvx2 tokens. A tile holds 16 rows,
// two such vectors per step, so each broadcast serves both: on Zen 3 the broadcast costs the kernel about as much
// as the multiply-add (Gemm/q4_K with no broadcasts at all: 4.0-4.7 -> 3.2-3.4 us). 8 int16 partial sums, the two
// weight vectors and the broadcast take 11 of the 16 ymm registers; the int32 block sums and f32 accumulators
// spill between chunks. Against 8-row tiles (bench_quant, one core, alternating, best of 4-6): Gemm/q4_K
// 4.0-4.1 -> 3.4-3.6 us, q6_K 5.6-5.7 -> 4.2-4.4, q5_0 4.7-5.0 -> 3.6-3.7, q8_0 6.6-6.9 -> 5.9-6.3 (the sign
// trick's per-token work does not shrink). F16/BF16 run 8-row kernels on the tile's two halves: their f32 FMAs
// have no broadcast worth sharing.
//
// Without VNNI the u8 x s8 products go through pmaddubsw, which adds two products into a saturating int16, then
// pmaddwd. Every formulation here stays exactly inside int16 (activations are Q8_0/Q8_K, |a| <= 127):
// - K-quants: weights are unsigned (Q4_K <= 15, Q5_K <= 31, Q6_K <= 63), one pmaddubsw lane is at most
//   2 * 63 * 127 = 16002; kChunk lanes of consecutive steps are added in int16 before pmaddwd applies the sub-block
//   scale (8 x 3810, 4 x 7874, 2 x 16002 all < 32767).
// - Q4_0 / Q5_0: stored as q + 8 / q + 16 (unsigned <= 15 / <= 31, the same bounds as Q4_K / Q5_K); the offset is
//   removed with the activation block sums, -128 * Σa scaled by 8/128 or 16/128 (exact: a multiple of 128).
// - Q8_0: q + 128 (<= 255) would reach 2 * 255 * 127 = 64770 and saturate, so Q8_0 keeps signed weights and uses
//   the sign trick of the tiles: |w| (<= 128) as u8 times a * sign(w), at most 2 * 128 * 127 = 32512.
// Integer sums are exact; only the f32 order differs from the references (tests/tensor/gemm_test.cpp).

// Token loops over arrays of registers (and the steps of a chunk, which index them) are unrolled before GCC
// decides where the arrays live: left to -O3's late unrolling, GCC 12 kept acc[] on the stack and stored every
// accumulator on every step (the F16 kernel ran at a fraction of its FMA rate; the demo narrator's pp512 on AVX2
// spent most of its time there).
#define FABULA_UNROLL_TOKENS _Pragma("GCC unroll 8")

constexpr int kGemmRowsAvx2 = 16;    // rows per tile
constexpr int kGemmVecRowsAvx2 = 8;  // rows per weight vector (a tile's half)
constexpr int kGemmTokensAvx2 = 4;
constexpr size_t kGemmTileHeaderAvx2 = 32;  // the tile's row count, then the blocks

// sum += p in int16, as an asm GCC cannot see into: it keeps a running sum a serial chain. Left to the compiler,
// GCC reassociates the sum of a chunk's products into a tree, holds every product at once and spills; an empty
// asm after each add kept the chain but cost a register copy per add (8 per step of the Q4_K kernel).
// The first product of a chain starts it (no add to a zeroed register).
HWY_INLINE void accumulate_products(__m256i& sum, __m256i p, bool first) {
  if (first) {
    sum = p;
  } else {
    asm("vpaddw %1, %0, %0" : "+x"(sum) : "x"(p));
  }
}

HWY_INLINE __m256i bcast_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// y[t * ldy + r] = acc[t][r] for the tile's rows r < rows.
template <int NT>
HWY_INLINE void store_rows_avx2(float* y, int64_t ldy, const __m256 (&acc)[NT], int rows) {
  const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int t = 0; t < NT; ++t) _mm256_maskstore_ps(y + t * ldy, keep, acc[t]);
}

// r[g] = row g (8 dwords) -> r[g] = dword g of the 8 rows.
HWY_INLINE void transpose_8x8_epi32(__m256i r[8]) {
  __m256i t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // s[4i + c], 128-bit lane L: rows 4i..4i+3 of dword 4L + c.
  for (int i = 0; i < 2; ++i) {
    s[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    s[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2x128_si256(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2x128_si256(s[c], s[4 + c], 0x31);
  }
}

// The repack is where a product's weights come from DRAM, 8 short row streams at a time, which the hardware
// prefetchers pick up late: while one half of a tile is converted, the same block of the next 8 rows (the tile's
// other half, or the next tile's first) is asked for, `bytes` from p in each row. Past a matrix's last row the
// addresses may be unmapped: a prefetch never faults.
HWY_INLINE void prefetch_next_rows_avx2(const uint8_t* p, size_t row_stride, size_t bytes) {
  for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
    for (size_t off = 0; off < bytes; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(p + r * row_stride + off), _MM_HINT_T0);
    }
  }
}

// ------------------------------------------------------------------------------------------------ K-quants
// One 8-row half of a tile per 256-weight block: q[k/4][row][4] unsigned; each group's integer scale per row as an
// int16 pair (pmaddwd with the int16 partial sums); the offsets as int16 pairs for pmaddwd with activation sums: Q6_K
// (an offset per 16 weights) offset[p] = (offset_2p, offset_2p+1) against the Q8_K bsums 2p, 2p+1; Q4_K / Q5_K (one per
// 32) offset[p < 4] = (offset_32 2p, offset_32 2p+1) against the sums of 32 (bsums added in pairs): half the pmaddwd.
// d, dm per row: w = d * scale_g * q - dm * offset.
struct GemmKBlockAvx2 {
  uint8_t q[64][kGemmVecRowsAvx2][4];
  int16_t scale[16][kGemmVecRowsAvx2][2];
  int16_t offset[8][kGemmVecRowsAvx2][2];
  float d[kGemmVecRowsAvx2];
  float dm[kGemmVecRowsAvx2];
};
// A 16-row tile's block: rows 0..7, then rows 8..15.
struct GemmKTileBlockAvx2 {
  GemmKBlockAvx2 half[2];
};

// The integer scales (per 32 weights; Q6_K per 16), the offsets per 16 weights, d and dm of one K-quant row block:
// w = d * scale_g * q - dm * offset_16. Scale is int16_t here (pmaddwd) and int32_t on AVX-512 (vpmulld).
template <GgmlType kType, typename Scale>
HWY_INLINE void unpack_k_block_scales(const uint8_t* blk, Scale scale[16], int16_t offset[16], float* d, float* dm) {
  if constexpr (kType == GgmlType::kQ6_K) {
    const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(blk);
    for (int g = 0; g < 16; ++g) {
      scale[g] = x->scales[g];
      offset[g] = static_cast<int16_t>(32 * x->scales[g]);
    }
    *d = h2f_fast(x->d);
    *dm = *d;
  } else {
    using Block = std::conditional_t<kType == GgmlType::kQ4_K, BlockQ4_K, BlockQ5_K>;
    const Block* x = reinterpret_cast<const Block*>(blk);
    uint32_t utmp[4];
    unpack_k_scales(x->scales, utmp);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(utmp);
    for (int j = 0; j < 8; ++j) {
      scale[j] = sc[j];
      offset[2 * j] = offset[2 * j + 1] = sc[8 + j];
    }
    *d = h2f_fast(x->d);
    *dm = h2f_fast(x->dmin);
  }
}

// One row block -> 8 vectors of 32 unsigned weights (vector k = weights 32k..32k+31, as the tiles), the scales
// (per 32; Q6_K per 16), the offsets per 16, d and dm.
template <GgmlType kType>
HWY_INLINE void unpack_k_block_avx2(const uint8_t* blk, __m256i q[8], int16_t scale[16], int16_t offset[16],
                                    float* d, float* dm) {
  if constexpr (kType == GgmlType::kQ6_K) {
    unpack_q6_K_weights_avx2(*reinterpret_cast<const BlockQ6_K*>(blk), q);
  } else {
    using Block = std::conditional_t<kType == GgmlType::kQ4_K, BlockQ4_K, BlockQ5_K>;
    unpack_qk_weights_avx2<kType == GgmlType::kQ5_K>(*reinterpret_cast<const Block*>(blk), q);
  }
  unpack_k_block_scales<kType>(blk, scale, offset, d, dm);
}

// Q4_K / Q5_K: the 8 rows' scales and offsets per 32 into the tile in vector code (per row a dword per group,
// then one 8x8 transpose each), rows >= `rows` zero.
template <GgmlType kType>
HWY_INLINE void repack_k_scales_avx2(const uint8_t* w, size_t row_stride, int rows, GemmKBlockAvx2& o) {
  using Block = std::conditional_t<kType == GgmlType::kQ4_K, BlockQ4_K, BlockQ5_K>;
  __m256i sc[kGemmVecRowsAvx2], mn[kGemmVecRowsAvx2];
  for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
    if (r >= rows) {
      sc[r] = mn[r] = _mm256_setzero_si256();
      o.d[r] = o.dm[r] = 0.0f;
      continue;
    }
    const Block* x = reinterpret_cast<const Block*>(w + r * row_stride);
    // bytes 0..7: the scales per 32, 8..15: the offsets
    const __m128i b = unpack_k_scales_header(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
    const __m256i s32 = _mm256_cvtepu8_epi32(b);                      // dword g = scale g
    sc[r] = _mm256_or_si256(s32, _mm256_slli_epi32(s32, 16));        // (scale g, scale g) as int16
    mn[r] = _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(b, 8)));  // dword p = (offset 2p, 2p+1)
    mn[r] = _mm256_inserti128_si256(mn[r], _mm_setzero_si128(), 1);
    o.d[r] = h2f_fast(x->d);
    o.dm[r] = h2f_fast(x->dmin);
  }
  transpose_8x8_epi32(sc);
  transpose_8x8_epi32(mn);
  for (int g = 0; g < 8; ++g) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.scale[g]), sc[g]);
  for (int p = 0; p < 4; ++p) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.offset[p]), mn[p]);
}

// One block of 8 rows (rows >= `rows` zero) from the rows' block at w.
template <GgmlType kType>
HWY_INLINE void repack_k_block_avx2(const uint8_t* w, size_t row_stride, int rows, GemmKBlockAvx2& o) {
  if constexpr (kType != GgmlType::kQ6_K) {
    // The packed bytes are transposed before the nibbles are split (the steps of unpack_qk_weights_avx2 on the
    // transposed dwords): one transpose gives two vectors of weights, half the shuffles of unpacking first.
    using Block = std::conditional_t<kType == GgmlType::kQ4_K, BlockQ4_K, BlockQ5_K>;
    constexpr bool kHighBits = kType == GgmlType::kQ5_K;
    auto rows_of = [&](auto bytes_of) {  // 32 bytes of each row, transposed: v[g] = dword g of the 8 rows
      std::array<__m256i, kGemmVecRowsAvx2> v;
      for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
        v[r] = r < rows ? load256(bytes_of(*reinterpret_cast<const Block*>(w + r * row_stride)))
                        : _mm256_setzero_si256();
      }
      transpose_8x8_epi32(v.data());
      return v;
    };
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    std::array<__m256i, kGemmVecRowsAvx2> hbits{};
    if constexpr (kHighBits) hbits = rows_of([](const Block& x) { return x.qh; });
    for (int j = 0; j < 4; ++j) {  // chunk j: weights 64j.. in the low nibbles, 64j + 32.. in the high
      const std::array<__m256i, kGemmVecRowsAvx2> bits = rows_of([j](const Block& x) { return x.qs + 32 * j; });
      for (int g = 0; g < 8; ++g) {
        __m256i lo = _mm256_and_si256(bits[g], m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits[g], 4), m4);
        if constexpr (kHighBits) {  // bit 2j of qh is the fifth bit of chunk j's low nibbles, bit 2j+1 of its high
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits[g], 2 * j), one), 4));
          hi = _mm256_or_si256(hi,
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits[g], 2 * j + 1), one), 4));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q[16 * j + g]), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q[16 * j + 8 + g]), hi);
      }
    }
    repack_k_scales_avx2<kType>(w, row_stride, rows, o);
  } else {
    __m256i q[kGemmVecRowsAvx2][8];
    int16_t scale[kGemmVecRowsAvx2][16] = {};
    int16_t offset[kGemmVecRowsAvx2][16] = {};
    for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
      if (r < rows) {
        unpack_k_block_avx2<kType>(w + r * row_stride, q[r], scale[r], offset[r], &o.d[r], &o.dm[r]);
      } else {
        for (auto& v : q[r]) v = _mm256_setzero_si256();
        o.d[r] = o.dm[r] = 0.0f;
      }
    }
    for (int g = 0; g < 16; ++g) {
      for (int r = 0; r < kGemmVecRowsAvx2; ++r) o.scale[g][r][0] = o.scale[g][r][1] = scale[r][g];
    }
    // offset[r] holds one value per 16 weights, paired for the Q8_K bsums 2p, 2p + 1.
    for (int p = 0; p < 8; ++p) {
      for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
        o.offset[p][r][0] = offset[r][2 * p];
        o.offset[p][r][1] = offset[r][2 * p + 1];
      }
    }
    for (int k = 0; k < 8; ++k) {
      __m256i v[kGemmVecRowsAvx2];
      for (int r = 0; r < kGemmVecRowsAvx2; ++r) v[r] = q[r][k];
      transpose_8x8_epi32(v);
      for (int g = 0; g < 8; ++g) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q[8 * k + g]), v[g]);
    }
  }
}

template <GgmlType kType>
inline void repack_k_avx2(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  const size_t block_bytes = type_traits(kType).block_bytes;
  GemmKTileBlockAvx2* out = reinterpret_cast<GemmKTileBlockAvx2*>(tile);
  // Half by half: 8 rows' streams from memory at a time, not 16 (the repack is where a product's weights come
  // from DRAM; perf of pp512 on the synth 26B: repack_k<Q4_K> 8.2% of the samples with the halves of each block
  // together, 5.0% half by half, against the attention's (then attend_pass) 5.0% and 4.8%).
  for (int h = 0; h < 2; ++h) {
    const int half_rows = std::clamp(rows - h * kGemmVecRowsAvx2, 0, kGemmVecRowsAvx2);
    const uint8_t* half = w + h * kGemmVecRowsAvx2 * row_stride;
    for (int64_t b = 0; b < n / kQK_K; ++b) {
      prefetch_next_rows_avx2(half + kGemmVecRowsAvx2 * row_stride + b * block_bytes, row_stride, block_bytes);
      repack_k_block_avx2<kType>(half + b * block_bytes, row_stride, half_rows, out[b].half[h]);
    }
  }
}

// 16 rows x NT tokens of Q8_K activations. kGroup: weights per integer scale (32: Q4_K/Q5_K, 16: Q6_K); kChunk:
// 4-weight steps whose pmaddubsw results add up in int16 exactly (see the top of the file).
template <int kGroup, int kChunk, int NT>
HWY_INLINE void gemm_k_avx2(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy, int rows) {
  static_assert(kGroup / 4 % kChunk == 0);
  const GemmKTileBlockAvx2* blk = static_cast<const GemmKTileBlockAvx2*>(tile);
  alignas(32) float accm[2][NT][8] = {};
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const GemmKBlockAvx2& o0 = blk[b].half[0];
    const GemmKBlockAvx2& o1 = blk[b].half[1];
    const BlockQ8_K* ab[NT];
    __m256i sumi[2][NT];
    for (int t = 0; t < NT; ++t) {
      ab[t] = reinterpret_cast<const BlockQ8_K*>(a.rows + t * a.stride) + b;
      sumi[0][t] = sumi[1][t] = _mm256_setzero_si256();
    }
    for (int k0 = 0; k0 < kQK_K / 4; k0 += kChunk) {
      __m256i part0[NT], part1[NT];
      FABULA_UNROLL_TOKENS for (int k4 = k0; k4 < k0 + kChunk; ++k4) {
        const __m256i w0 = load256(o0.q[k4]);
        const __m256i w1 = load256(o1.q[k4]);
        for (int t = 0; t < NT; ++t) {
          const __m256i at = bcast_i32(ab[t]->qs + 4 * k4);
          accumulate_products(part0[t], _mm256_maddubs_epi16(w0, at), k4 == k0);
          accumulate_products(part1[t], _mm256_maddubs_epi16(w1, at), k4 == k0);
        }
      }
      const __m256i sc0 = load256(o0.scale[k0 * 4 / kGroup]);
      const __m256i sc1 = load256(o1.scale[k0 * 4 / kGroup]);
      for (int t = 0; t < NT; ++t) {
        sumi[0][t] = _mm256_add_epi32(sumi[0][t], _mm256_madd_epi16(part0[t], sc0));
        sumi[1][t] = _mm256_add_epi32(sumi[1][t], _mm256_madd_epi16(part1[t], sc1));
      }
    }
    const __m256 d[2] = {_mm256_loadu_ps(o0.d), _mm256_loadu_ps(o1.d)};
    const __m256 dm[2] = {_mm256_loadu_ps(o0.dm), _mm256_loadu_ps(o1.dm)};
    for (int t = 0; t < NT; ++t) {
      const __m256 da = _mm256_set1_ps(ab[t]->d);
      __m256i s2;  // Q4_K / Q5_K: the sums of 32 (|s| <= 32 * 127: int16) in both lanes, pairs per pmaddwd
      if constexpr (kGroup == 32) {
        s2 = _mm256_broadcastsi128_si256(
            _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab[t]->bsums)),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab[t]->bsums + 8))));
      }
      for (int h = 0; h < 2; ++h) {
        const GemmKBlockAvx2& o = h == 0 ? o0 : o1;
        __m256i mins = _mm256_setzero_si256();
        if constexpr (kGroup == 32) {
          mins = _mm256_madd_epi16(load256(o.offset[0]), _mm256_shuffle_epi32(s2, 0x00));
          mins = _mm256_add_epi32(mins, _mm256_madd_epi16(load256(o.offset[1]), _mm256_shuffle_epi32(s2, 0x55)));
          mins = _mm256_add_epi32(mins, _mm256_madd_epi16(load256(o.offset[2]), _mm256_shuffle_epi32(s2, 0xAA)));
          mins = _mm256_add_epi32(mins, _mm256_madd_epi16(load256(o.offset[3]), _mm256_shuffle_epi32(s2, 0xFF)));
        } else {
          for (int p = 0; p < 8; ++p) {
            mins = _mm256_add_epi32(mins, _mm256_madd_epi16(load256(o.offset[p]), bcast_i32(ab[t]->bsums + 2 * p)));
          }
        }
        __m256 acc = _mm256_load_ps(accm[h][t]);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(d[h], da), _mm256_cvtepi32_ps(sumi[h][t]), acc);
        acc = _mm256_fnmadd_ps(_mm256_mul_ps(dm[h], da), _mm256_cvtepi32_ps(mins), acc);
        _mm256_store_ps(accm[h][t], acc);
      }
    }
  }
  for (int h = 0; h < 2; ++h) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_load_ps(accm[h][t]);
    store_rows_avx2(y + h * kGemmVecRowsAvx2, ldy, acc, rows - h * kGemmVecRowsAvx2);
  }
}

// ------------------------------------------------------------------------------------------ the Q8_0 family
// Per 32-weight block, each 8-row half: q[k/4][row][4] (Q8_0 signed, Q5_0 / Q4_0 + 16 / + 8 unsigned) and each
// row's block scale.
struct GemmQ8BlockAvx2 {
  uint8_t q[8][kGemmVecRowsAvx2][4];
  float d[kGemmVecRowsAvx2];
};
struct GemmQ8TileBlockAvx2 {
  GemmQ8BlockAvx2 half[2];
};

template <GgmlType kType>
constexpr int kQ8LikeBias = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 16 : 8;

// One 8-row half of every block (rows >= `rows` zero).
template <GgmlType kType>
HWY_INLINE void repack_q8_0_like_half_avx2(int64_t n, const uint8_t* w, size_t row_stride, int rows, int half,
                                           GemmQ8TileBlockAvx2* out) {
  using Block = Q8_0LikeBlock<kType>;
  const __m256i bias = _mm256_set1_epi8(kQ8LikeBias<kType>);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    prefetch_next_rows_avx2(w + kGemmVecRowsAvx2 * row_stride + b * sizeof(Block), row_stride, 1);
    GemmQ8BlockAvx2& o = out[b].half[half];
    __m256i v[kGemmVecRowsAvx2];
    for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
      if (r >= rows) {
        v[r] = _mm256_setzero_si256();
        o.d[r] = 0.0f;
        continue;
      }
      const uint8_t* bp = w + r * row_stride + b * sizeof(Block);
      v[r] = _mm256_add_epi8(q8_0_like_weights<kType>(bp), bias);
      o.d[r] = q8_0_like_scale(bp);
    }
    transpose_8x8_epi32(v);
    for (int g = 0; g < 8; ++g) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q[g]), v[g]);
  }
}

template <GgmlType kType>
inline void repack_q8_0_like_avx2(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  GemmQ8TileBlockAvx2* out = reinterpret_cast<GemmQ8TileBlockAvx2*>(tile);
  for (int h = 0; h < 2; ++h) {
    repack_q8_0_like_half_avx2<kType>(n, w + h * kGemmVecRowsAvx2 * row_stride, row_stride,
                                      std::clamp(rows - h * kGemmVecRowsAvx2, 0, kGemmVecRowsAvx2), h, out);
  }
}

// 16 rows x NT tokens of Q8_0 activations, per block and half one int32 sum per token and one f32 FMA; each
// activation broadcast serves both halves.
template <GgmlType kType, int NT>
HWY_INLINE void gemm_q8_0_like_avx2(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy,
                                    int rows) {
  constexpr int kBias = kQ8LikeBias<kType>;
  const GemmQ8TileBlockAvx2* blk = static_cast<const GemmQ8TileBlockAvx2*>(tile);
  const int64_t nb = n / kQK8_0;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[2][NT];
  for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const GemmQ8BlockAvx2& o0 = blk[b].half[0];
    const GemmQ8BlockAvx2& o1 = blk[b].half[1];
    __m256i sumi[2][NT];
    const int8_t* qa[NT];
    for (int t = 0; t < NT; ++t) {
      if constexpr (kBias == 0) {
        sumi[0][t] = sumi[1][t] = _mm256_setzero_si256();
      } else {  // -bias * Σa = sums * bias / 128, exact as sums = -128 * Σa
        sumi[0][t] = sumi[1][t] = _mm256_set1_epi32(a.sums[t * nb + b] / (128 / kBias));
      }
      qa[t] = reinterpret_cast<const BlockQ8_0*>(a.rows + t * a.stride)[b].qs;
    }
    if constexpr (kBias == 0) {  // the sign trick, one pmaddwd per step
      for (int k4 = 0; k4 < 8; ++k4) {
        const __m256i w0 = load256(o0.q[k4]);
        const __m256i w1 = load256(o1.q[k4]);
        const __m256i aw0 = _mm256_sign_epi8(w0, w0);
        const __m256i aw1 = _mm256_sign_epi8(w1, w1);
        for (int t = 0; t < NT; ++t) {
          const __m256i at = bcast_i32(qa[t] + 4 * k4);
          const __m256i p0 = _mm256_maddubs_epi16(aw0, _mm256_sign_epi8(at, w0));
          const __m256i p1 = _mm256_maddubs_epi16(aw1, _mm256_sign_epi8(at, w1));
          sumi[0][t] = _mm256_add_epi32(sumi[0][t], _mm256_madd_epi16(p0, ones));
          sumi[1][t] = _mm256_add_epi32(sumi[1][t], _mm256_madd_epi16(p1, ones));
        }
      }
    } else {  // unsigned weights: 8 (Q4_0) or 4 (Q5_0) steps add up in int16
      constexpr int kChunk = kBias == 8 ? 8 : 4;
      for (int k0 = 0; k0 < 8; k0 += kChunk) {
        __m256i part0[NT], part1[NT];
        FABULA_UNROLL_TOKENS for (int k4 = k0; k4 < k0 + kChunk; ++k4) {
          const __m256i w0 = load256(o0.q[k4]);
          const __m256i w1 = load256(o1.q[k4]);
          for (int t = 0; t < NT; ++t) {
            const __m256i at = bcast_i32(qa[t] + 4 * k4);
            accumulate_products(part0[t], _mm256_maddubs_epi16(w0, at), k4 == k0);
            accumulate_products(part1[t], _mm256_maddubs_epi16(w1, at), k4 == k0);
          }
        }
        for (int t = 0; t < NT; ++t) {
          sumi[0][t] = _mm256_add_epi32(sumi[0][t], _mm256_madd_epi16(part0[t], ones));
          sumi[1][t] = _mm256_add_epi32(sumi[1][t], _mm256_madd_epi16(part1[t], ones));
        }
      }
    }
    const __m256 d0 = _mm256_loadu_ps(o0.d), d1 = _mm256_loadu_ps(o1.d);
    for (int t = 0; t < NT; ++t) {
      const __m256 da = _mm256_set1_ps(a.scales[t * nb + b]);
      acc[0][t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, da), _mm256_cvtepi32_ps(sumi[0][t]), acc[0][t]);
      acc[1][t] = _mm256_fmadd_ps(_mm256_mul_ps(d1, da), _mm256_cvtepi32_ps(sumi[1][t]), acc[1][t]);
    }
  }
  store_rows_avx2(y, ldy, acc[0], rows);
  store_rows_avx2(y + kGemmVecRowsAvx2, ldy, acc[1], rows - kGemmVecRowsAvx2);
}

// ---------------------------------------------------------------------------------------------- F16 / BF16
// Each 8-row half of a tile: the weights widened to f32, w[k][row]; the activations are the widened f32 rows, as
// on AVX-512.
template <bool kBf16>
inline void repack_half_avx2(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  float* out = reinterpret_cast<float*>(tile);
  for (int64_t k0 = 0; k0 < n; k0 += 8) {
    const int64_t len = std::min<int64_t>(8, n - k0);
    __m256i v[kGemmVecRowsAvx2];
    for (int r = 0; r < kGemmVecRowsAvx2; ++r) {
      uint16_t h[8] = {};
      if (r < rows) std::memcpy(h, w + r * row_stride + 2 * k0, static_cast<size_t>(len) * 2);
      const __m128i hv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
      v[r] = kBf16 ? _mm256_slli_epi32(_mm256_cvtepu16_epi32(hv), 16) : _mm256_castps_si256(_mm256_cvtph_ps(hv));
    }
    transpose_8x8_epi32(v);
    for (int64_t k = 0; k < len; ++k) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (k0 + k) * kGemmVecRowsAvx2), v[k]);
    }
  }
}

template <int NT>
HWY_INLINE void gemm_f32_avx2(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy, int rows) {
  const float* w = static_cast<const float*>(tile);
  const float* x[NT];
  FABULA_UNROLL_TOKENS for (int t = 0; t < NT; ++t) x[t] = reinterpret_cast<const float*>(a.rows + t * a.stride);
  __m256 acc[NT], acc2[NT];
  FABULA_UNROLL_TOKENS for (int t = 0; t < NT; ++t) acc[t] = acc2[t] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= n; k += 2) {  // two chains per token: FMA latency x 2 covers a small NT
    const __m256 w0 = _mm256_loadu_ps(w + k * kGemmVecRowsAvx2), w1 = _mm256_loadu_ps(w + (k + 1) * kGemmVecRowsAvx2);
    FABULA_UNROLL_TOKENS for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_fmadd_ps(w0, _mm256_broadcast_ss(x[t] + k), acc[t]);
      acc2[t] = _mm256_fmadd_ps(w1, _mm256_broadcast_ss(x[t] + k + 1), acc2[t]);
    }
  }
  for (; k < n; ++k) {
    const __m256 w0 = _mm256_loadu_ps(w + k * kGemmVecRowsAvx2);
    FABULA_UNROLL_TOKENS for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_fmadd_ps(w0, _mm256_broadcast_ss(x[t] + k), acc[t]);
    }
  }
  FABULA_UNROLL_TOKENS for (int t = 0; t < NT; ++t) acc[t] = _mm256_add_ps(acc[t], acc2[t]);
  store_rows_avx2(y, ldy, acc, rows);
}

// Bytes of one 8-row half of an F16/BF16 tile: its kernels run on the halves one after the other (the f32 FMAs
// have no broadcast to share).
inline size_t gemm_f32_half_bytes_avx2(int64_t n) { return static_cast<size_t>(n) * kGemmVecRowsAvx2 * sizeof(float); }

template <GgmlType kType>
inline void repack_avx2(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  std::memcpy(tile, &rows, sizeof(rows));
  uint8_t* body = tile + kGemmTileHeaderAvx2;
  if constexpr (kType == GgmlType::kQ4_K || kType == GgmlType::kQ5_K || kType == GgmlType::kQ6_K) {
    repack_k_avx2<kType>(n, w, row_stride, rows, body);
  } else if constexpr (kType == GgmlType::kF16 || kType == GgmlType::kBF16) {
    for (int h = 0; h * kGemmVecRowsAvx2 < rows; ++h) {
      repack_half_avx2<kType == GgmlType::kBF16>(n, w + h * kGemmVecRowsAvx2 * row_stride, row_stride,
                                                 std::min(rows - h * kGemmVecRowsAvx2, kGemmVecRowsAvx2),
                                                 body + h * gemm_f32_half_bytes_avx2(n));
    }
  } else {
    repack_q8_0_like_avx2<kType>(n, w, row_stride, rows, body);
  }
}

template <GgmlType kType>
inline void gemm_avx2(int64_t n, const uint8_t* tile, const GemmActs& a, int nt, float* y, int64_t ldy) {
  int rows;
  std::memcpy(&rows, tile, sizeof(rows));
  const uint8_t* body = tile + kGemmTileHeaderAvx2;
  with_token_count<kGemmTokensAvx2>(nt, [&](auto k) {
    constexpr int NT = decltype(k)::value;
    if constexpr (kType == GgmlType::kQ6_K) {
      gemm_k_avx2<16, 2, NT>(n, body, a, y, ldy, rows);
    } else if constexpr (kType == GgmlType::kQ5_K) {
      gemm_k_avx2<32, 4, NT>(n, body, a, y, ldy, rows);
    } else if constexpr (kType == GgmlType::kQ4_K) {
      gemm_k_avx2<32, 8, NT>(n, body, a, y, ldy, rows);
    } else if constexpr (kType == GgmlType::kF16 || kType == GgmlType::kBF16) {
      for (int h = 0; h * kGemmVecRowsAvx2 < rows; ++h) {
        gemm_f32_avx2<NT>(n, body + h * gemm_f32_half_bytes_avx2(n), a, y + h * kGemmVecRowsAvx2, ldy,
                          std::min(rows - h * kGemmVecRowsAvx2, kGemmVecRowsAvx2));
      }
    } else {
      gemm_q8_0_like_avx2<kType, NT>(n, body, a, y, ldy, rows);
    }
  });
}

inline size_t gemm_tile_bytes_avx2(GgmlType type, int64_t n) {
  switch (type) {
    case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K:
      return kGemmTileHeaderAvx2 + static_cast<size_t>(n / kQK_K) * sizeof(GemmKTileBlockAvx2);
    case GgmlType::kQ8_0: case GgmlType::kQ5_0: case GgmlType::kQ4_0:
      return kGemmTileHeaderAvx2 + static_cast<size_t>(n / kQK8_0) * sizeof(GemmQ8TileBlockAvx2);
    case GgmlType::kF16: case GgmlType::kBF16:
      return kGemmTileHeaderAvx2 + 2 * gemm_f32_half_bytes_avx2(n);
    case GgmlType::kF32:
      return f32_tile_bytes(kGemmTileHeaderAvx2, kGemmRowsAvx2, n);
    default:
      return 0;
  }
}

inline void fill_avx2_gemm(KernelTable* t) {
  auto set = [t](GgmlType type, RepackFn r, GemmFn g) {
    t->repack[kernel_slot(type)] = r;
    t->gemm[kernel_slot(type)] = g;
  };
  set(GgmlType::kQ4_K, repack_avx2<GgmlType::kQ4_K>, gemm_avx2<GgmlType::kQ4_K>);
  set(GgmlType::kQ5_K, repack_avx2<GgmlType::kQ5_K>, gemm_avx2<GgmlType::kQ5_K>);
  set(GgmlType::kQ6_K, repack_avx2<GgmlType::kQ6_K>, gemm_avx2<GgmlType::kQ6_K>);
  set(GgmlType::kQ8_0, repack_avx2<GgmlType::kQ8_0>, gemm_avx2<GgmlType::kQ8_0>);
  set(GgmlType::kQ5_0, repack_avx2<GgmlType::kQ5_0>, gemm_avx2<GgmlType::kQ5_0>);
  set(GgmlType::kQ4_0, repack_avx2<GgmlType::kQ4_0>, gemm_avx2<GgmlType::kQ4_0>);
  set(GgmlType::kF16, repack_avx2<GgmlType::kF16>, gemm_avx2<GgmlType::kF16>);
  set(GgmlType::kBF16, repack_avx2<GgmlType::kBF16>, gemm_avx2<GgmlType::kBF16>);
  set(GgmlType::kF32, repack_f32_rows<kGemmTileHeaderAvx2, kGemmRowsAvx2>, gemm_f32_exact<kGemmTileHeaderAvx2>);
  t->gemm_tile_bytes = gemm_tile_bytes_avx2;
  t->gemm_tokens = kGemmTokensAvx2;
  t->gemm_rows = kGemmRowsAvx2;
}
