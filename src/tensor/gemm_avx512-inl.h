// AVX-512 VNNI int8 GEMM for prefill (kernels.h RepackFn / GemmFn), included by quant-inl.h inside the AVX3_DL
// target namespace after tiles_avx512-inl.h. No include guard on purpose.
//
// Why: the tile kernels unpack a weight row once per group of 8 tokens but still spend two instructions per 64
// multiply-adds and token (maddubs, then the scale step). Here 16 weight rows are first converted into a
// row-interleaved 8-bit tile, 4 consecutive weights of each of the 16 rows per 64-byte vector, so one vpdpbusd
// with the token's 4 activation bytes broadcast does 64 multiply-adds for 16 rows at once, and each vector is
// reused by 8 tokens held in registers. The sub-block scales are applied once per 16 or 32 weights, in integers.
// Weights are unsigned (vpdpbusd's u8 operand): K-quants are unsigned already (their minimum/offset terms use the
// Q8_K block sums, as in the tiles); the Q8_0 family is stored as q + 128 and corrected with -128 * Σa per block,
// which QuantizedActivations computes once per input. Integer sums are exact; only the f32 order differs from the
// references (tests/tensor/gemm_test.cpp compares every type with them). F16 and BF16 weights are widened to f32
// in the tile and meet f32 activations, one FMA per 16 rows and token.

constexpr int kGemmRows = 16;

// acc += Σ quads(u8 w * s8 a), the 4 activation bytes at a broadcast to every row (embedded broadcast).
HWY_INLINE __m512i dpbusd_bcast(__m512i acc, __m512i w, const void* a) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*static_cast<const int32_t*>(a)));
  return acc;
}

// acc += Σ pairs(s16 w * s16 a), the 2 int16 at a broadcast to every row.
HWY_INLINE __m512i dpwssd_bcast(__m512i acc, __m512i w, const void* a) {
  asm("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*static_cast<const int32_t*>(a)));
  return acc;
}

// r[g] = row g (16 dwords) -> r[g] = dword g of the 16 rows.
HWY_INLINE void transpose_16x16_epi32(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // s[4i + c], 128-bit lane L: rows 4i..4i+3 of dword 4L + c.
  __m512i s[16];
  for (int i = 0; i < 4; ++i) {
    s[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    s[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i a02 = _mm512_shuffle_i32x4(s[c], s[4 + c], 0x88), a13 = _mm512_shuffle_i32x4(s[c], s[4 + c], 0xdd);
    const __m512i b02 = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], 0x88);
    const __m512i b13 = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], 0xdd);
    r[0 + c] = _mm512_shuffle_i32x4(a02, b02, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(a13, b13, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(a02, b02, 0xdd);
    r[12 + c] = _mm512_shuffle_i32x4(a13, b13, 0xdd);
  }
}

// ------------------------------------------------------------------------------------------------ K-quants
// Tile of 16 rows per 256-weight block: q[k/4][row][4] unsigned, the integer scale of each group of kGroup weights
// per row, the offsets per 16 weights as int16 pairs (for vpdpwssd with the Q8_K bsums), and d, dm per row:
// w = d * scale_g * q - dm * offset_16.
struct GemmKBlock {
  uint8_t q[64][kGemmRows][4];
  int32_t scale[16][kGemmRows];
  int16_t offset[8][kGemmRows][2];
  float d[kGemmRows];
  float dm[kGemmRows];
};

// Q4_K / Q5_K / Q6_K row block -> 4 vectors of 64 unsigned weights (vector j = weights 64j..64j+63) and the
// scales (per 32: 8; Q6_K per 16), offsets per 16, d, dm.
template <GgmlType kType>
HWY_INLINE void unpack_k_block(const uint8_t* blk, __m512i q[4], int32_t scale[16], int16_t offset[16], float* d,
                               float* dm) {
  if constexpr (kType == GgmlType::kQ6_K) {
    unpack_q6_K_weights_512(*reinterpret_cast<const BlockQ6_K*>(blk), q);
  } else {
    using Block = std::conditional_t<kType == GgmlType::kQ4_K, BlockQ4_K, BlockQ5_K>;
    const Block* x = reinterpret_cast<const Block*>(blk);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kType == GgmlType::kQ5_K) hbits = load256(x->qh);
    for (int j = 0; j < 4; ++j) {
      const __m256i bits = load256(x->qs + 32 * j);
      q[j] = _mm512_and_si512(join256(bits, _mm256_srli_epi16(bits, 4)), m4);
      if constexpr (kType == GgmlType::kQ5_K) {  // bit 2j of qh: weights 64j..64j+31, bit 2j+1: the next 32
        const __m256i one = _mm256_set1_epi8(1);
        const __m512i h = join256(_mm256_and_si256(hbits, one), _mm256_and_si256(_mm256_srli_epi16(hbits, 1), one));
        q[j] = _mm512_or_si512(q[j], _mm512_slli_epi16(h, 4));
        hbits = _mm256_srli_epi16(hbits, 2);
      }
    }
  }
  unpack_k_block_scales<kType>(blk, scale, offset, d, dm);
}

template <GgmlType kType>
inline void repack_k(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  const size_t block_bytes = type_traits(kType).block_bytes;
  GemmKBlock* out = reinterpret_cast<GemmKBlock*>(tile);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    GemmKBlock& o = out[b];
    // Per row: the 16 integer scales (Q4_K/Q5_K fill 8) and the 8 offset pairs as dwords; transposed to per-row
    // lanes below like the weights (perf: the scalar transposes took about as long as the weights').
    __m512i q[kGemmRows][4], scales[kGemmRows], offsets[kGemmRows];
    for (int r = 0; r < kGemmRows; ++r) {
      if (r < rows) {
        alignas(64) int32_t scale[16] = {};
        alignas(32) int16_t offset[16] = {};
        unpack_k_block<kType>(w + r * row_stride + b * block_bytes, q[r], scale, offset, &o.d[r], &o.dm[r]);
        scales[r] = _mm512_load_si512(scale);
        offsets[r] = _mm512_zextsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(offset)));
      } else {
        for (auto& v : q[r]) v = _mm512_setzero_si512();
        scales[r] = offsets[r] = _mm512_setzero_si512();
        o.d[r] = o.dm[r] = 0.0f;
      }
    }
    for (int j = 0; j < 4; ++j) {
      __m512i v[kGemmRows];
      for (int r = 0; r < kGemmRows; ++r) v[r] = q[r][j];
      transpose_16x16_epi32(v);
      for (int g = 0; g < 16; ++g) _mm512_storeu_si512(o.q[16 * j + g], v[g]);
    }
    transpose_16x16_epi32(scales);
    for (int g = 0; g < 16; ++g) _mm512_storeu_si512(o.scale[g], scales[g]);
    transpose_16x16_epi32(offsets);  // dword p of a row: its offsets 2p and 2p + 1
    for (int p = 0; p < 8; ++p) _mm512_storeu_si512(o.offset[p], offsets[p]);
  }
}

// 16 rows x NT tokens of Q8_K activations. kGroup: weights per integer scale (32: Q4_K/Q5_K, 16: Q6_K).
template <int kGroup, int NT>
HWY_INLINE void gemm_k(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy, int rows) {
  const GemmKBlock* blk = static_cast<const GemmKBlock*>(tile);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const GemmKBlock& o = blk[b];
    const BlockQ8_K* ab[NT];
    for (int t = 0; t < NT; ++t) ab[t] = reinterpret_cast<const BlockQ8_K*>(a.rows + t * a.stride) + b;
    __m512i sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = _mm512_setzero_si512();
    for (int g = 0; g < kQK_K / kGroup; ++g) {
      __m512i part[NT];
      for (int t = 0; t < NT; ++t) part[t] = _mm512_setzero_si512();
      for (int k4 = g * kGroup / 4; k4 < (g + 1) * kGroup / 4; ++k4) {
        const __m512i wv = load512(o.q[k4]);
        for (int t = 0; t < NT; ++t) part[t] = dpbusd_bcast(part[t], wv, ab[t]->qs + 4 * k4);
      }
      const __m512i sc = load512(o.scale[g]);
      for (int t = 0; t < NT; ++t) sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(part[t], sc));
    }
    const __m512 d = _mm512_loadu_ps(o.d), dm = _mm512_loadu_ps(o.dm);
    for (int t = 0; t < NT; ++t) {
      __m512i mins = _mm512_setzero_si512();
      for (int p = 0; p < 8; ++p) mins = dpwssd_bcast(mins, load512(o.offset[p]), ab[t]->bsums + 2 * p);
      const __m512 da = _mm512_set1_ps(ab[t]->d);
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, da), _mm512_cvtepi32_ps(sumi[t]), acc[t]);
      acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(dm, da), _mm512_cvtepi32_ps(mins), acc[t]);
    }
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, acc[t]);
}

// ------------------------------------------------------------------------------------------ the Q8_0 family
// Tile of 16 rows per 32-weight block: q + 128 as u8, q[k/4][row][4], and each row's block scale.
struct GemmQ8Block {
  uint8_t q[8][kGemmRows][4];
  float d[kGemmRows];
};

template <GgmlType kType>
inline void repack_q8_0_like(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  using Block = Q8_0LikeBlock<kType>;
  GemmQ8Block* out = reinterpret_cast<GemmQ8Block*>(tile);
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const int64_t nb = n / kQK8_0;
  for (int64_t b0 = 0; b0 < nb; b0 += 2) {  // two blocks (64 weights) per row and transpose
    const int pair = b0 + 1 < nb ? 2 : 1;
    __m512i v[kGemmRows];
    for (int r = 0; r < kGemmRows; ++r) {
      if (r >= rows) {
        v[r] = _mm512_setzero_si512();
        for (int k = 0; k < pair; ++k) out[b0 + k].d[r] = 0.0f;
        continue;
      }
      __m256i half[2] = {bias, bias};
      for (int k = 0; k < pair; ++k) {
        const uint8_t* bp = w + r * row_stride + (b0 + k) * sizeof(Block);
        half[k] = _mm256_xor_si256(q8_0_like_weights<kType>(bp), bias);  // q + 128
        out[b0 + k].d[r] = q8_0_like_scale(bp);
      }
      v[r] = join256(half[0], half[1]);
    }
    transpose_16x16_epi32(v);
    for (int k = 0; k < pair; ++k) {
      for (int g = 0; g < 8; ++g) _mm512_storeu_si512(out[b0 + k].q[g], v[8 * k + g]);
    }
  }
}

// 16 rows x NT tokens of Q8_0 activations: per block, the int32 sum starts at -128 * Σa and takes 8 vpdpbusd.
template <int NT>
HWY_INLINE void gemm_q8_0(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy, int rows) {
  const GemmQ8Block* blk = static_cast<const GemmQ8Block*>(tile);
  const int64_t nb = n / kQK8_0;
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const GemmQ8Block& o = blk[b];
    __m512i sumi[NT];
    const int8_t* qa[NT];
    for (int t = 0; t < NT; ++t) {
      sumi[t] = _mm512_set1_epi32(a.sums[t * nb + b]);
      qa[t] = reinterpret_cast<const BlockQ8_0*>(a.rows + t * a.stride)[b].qs;
    }
    for (int k4 = 0; k4 < 8; ++k4) {
      const __m512i wv = load512(o.q[k4]);
      for (int t = 0; t < NT; ++t) sumi[t] = dpbusd_bcast(sumi[t], wv, qa[t] + 4 * k4);
    }
    const __m512 d = _mm512_loadu_ps(o.d);
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(a.scales[t * nb + b])), _mm512_cvtepi32_ps(sumi[t]),
                               acc[t]);
    }
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, acc[t]);
}

// ---------------------------------------------------------------------------------------------- F16 / BF16
// Tile of 16 rows: the weights widened to f32, w[k][row], so one FMA with the token's activation broadcast does
// 16 rows. The activations are the f16/bf16-rounded inputs widened to f32 (QuantizedActivations::widened), the
// same products as the tiles'.
template <bool kBf16>
inline void repack_half(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  float* out = reinterpret_cast<float*>(tile);
  for (int64_t k0 = 0; k0 < n; k0 += 16) {
    __m512i v[kGemmRows];
    const int64_t len = std::min<int64_t>(16, n - k0);
    const __mmask16 m = static_cast<__mmask16>((1u << len) - 1);
    for (int r = 0; r < kGemmRows; ++r) {
      if (r >= rows) {
        v[r] = _mm512_setzero_si512();
        continue;
      }
      const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(w + r * row_stride) + k0);
      const __m512 f = kBf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
      v[r] = _mm512_castps_si512(f);
    }
    transpose_16x16_epi32(v);
    for (int64_t k = 0; k < len; ++k) _mm512_storeu_si512(out + (k0 + k) * kGemmRows, v[k]);
  }
}

template <int NT>
HWY_INLINE void gemm_f32(int64_t n, const void* tile, const GemmActs& a, float* y, int64_t ldy, int rows) {
  const float* w = static_cast<const float*>(tile);
  const float* x[NT];
  for (int t = 0; t < NT; ++t) x[t] = reinterpret_cast<const float*>(a.rows + t * a.stride);
  __m512 acc[NT], acc2[NT];
  for (int t = 0; t < NT; ++t) acc[t] = acc2[t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= n; k += 2) {  // two chains per token: FMA latency x 2 covers a small NT
    const __m512 w0 = _mm512_loadu_ps(w + k * kGemmRows), w1 = _mm512_loadu_ps(w + (k + 1) * kGemmRows);
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[t][k]), acc[t]);
      acc2[t] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[t][k + 1]), acc2[t]);
    }
  }
  for (; k < n; ++k) {
    const __m512 w0 = _mm512_loadu_ps(w + k * kGemmRows);
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[t][k]), acc[t]);
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, _mm512_add_ps(acc[t], acc2[t]));
}

constexpr int kGemmTokensAvx512 = 8;

// The rows of a tile are stored in its first 16 bytes; the blocks follow, 64-byte aligned.
constexpr size_t kGemmTileHeader = 64;

template <GgmlType kType>
inline void repack_avx512(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  std::memcpy(tile, &rows, sizeof(rows));
  uint8_t* body = tile + kGemmTileHeader;
  if constexpr (kType == GgmlType::kQ4_K || kType == GgmlType::kQ5_K || kType == GgmlType::kQ6_K) {
    repack_k<kType>(n, w, row_stride, rows, body);
  } else if constexpr (kType == GgmlType::kF16 || kType == GgmlType::kBF16) {
    repack_half<kType == GgmlType::kBF16>(n, w, row_stride, rows, body);
  } else {
    repack_q8_0_like<kType>(n, w, row_stride, rows, body);
  }
}

template <GgmlType kType>
inline void gemm_avx512(int64_t n, const uint8_t* tile, const GemmActs& a, int nt, float* y, int64_t ldy) {
  int rows;
  std::memcpy(&rows, tile, sizeof(rows));
  const uint8_t* body = tile + kGemmTileHeader;
  with_token_count<kGemmTokensAvx512>(nt, [&](auto k) {
    constexpr int NT = decltype(k)::value;
    if constexpr (kType == GgmlType::kQ6_K) {
      gemm_k<16, NT>(n, body, a, y, ldy, rows);
    } else if constexpr (kType == GgmlType::kQ4_K || kType == GgmlType::kQ5_K) {
      gemm_k<32, NT>(n, body, a, y, ldy, rows);
    } else if constexpr (kType == GgmlType::kF16 || kType == GgmlType::kBF16) {
      gemm_f32<NT>(n, body, a, y, ldy, rows);
    } else {
      gemm_q8_0<NT>(n, body, a, y, ldy, rows);
    }
  });
}

inline size_t gemm_tile_bytes_avx512(GgmlType type, int64_t n) {
  switch (type) {
    case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K:
      return kGemmTileHeader + static_cast<size_t>(n / kQK_K) * sizeof(GemmKBlock);
    case GgmlType::kQ8_0: case GgmlType::kQ5_0: case GgmlType::kQ4_0:
      return kGemmTileHeader + static_cast<size_t>(n / kQK8_0) * sizeof(GemmQ8Block);
    case GgmlType::kF16: case GgmlType::kBF16:  // + 15: the last 16-wide step of the transpose
      return kGemmTileHeader + static_cast<size_t>(n + 15) * kGemmRows * sizeof(float);
    case GgmlType::kF32:
      return f32_tile_bytes(kGemmTileHeader, kGemmRows, n);
    default:
      return 0;
  }
}

inline void fill_avx512_gemm(KernelTable* t) {
  auto set = [t](GgmlType type, RepackFn r, GemmFn g) {
    t->repack[kernel_slot(type)] = r;
    t->gemm[kernel_slot(type)] = g;
  };
  set(GgmlType::kQ4_K, repack_avx512<GgmlType::kQ4_K>, gemm_avx512<GgmlType::kQ4_K>);
  set(GgmlType::kQ5_K, repack_avx512<GgmlType::kQ5_K>, gemm_avx512<GgmlType::kQ5_K>);
  set(GgmlType::kQ6_K, repack_avx512<GgmlType::kQ6_K>, gemm_avx512<GgmlType::kQ6_K>);
  set(GgmlType::kQ8_0, repack_avx512<GgmlType::kQ8_0>, gemm_avx512<GgmlType::kQ8_0>);
  set(GgmlType::kQ5_0, repack_avx512<GgmlType::kQ5_0>, gemm_avx512<GgmlType::kQ5_0>);
  set(GgmlType::kQ4_0, repack_avx512<GgmlType::kQ4_0>, gemm_avx512<GgmlType::kQ4_0>);
  set(GgmlType::kF16, repack_avx512<GgmlType::kF16>, gemm_avx512<GgmlType::kF16>);
  set(GgmlType::kBF16, repack_avx512<GgmlType::kBF16>, gemm_avx512<GgmlType::kBF16>);
  set(GgmlType::kF32, repack_f32_rows<kGemmTileHeader, kGemmRows>, gemm_f32_exact<kGemmTileHeader>);
  t->gemm_tile_bytes = gemm_tile_bytes_avx512;
  t->gemm_tokens = kGemmTokensAvx512;
  t->gemm_rows = kGemmRows;
}
