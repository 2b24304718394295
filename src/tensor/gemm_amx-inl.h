// AMX int8 tiles for the prefill GEMM (kernels.h RepackFn / GemmPackActsFn / GemmFn), included by quant-inl.h inside the
// AVX3_DL target after gemm_avx512-inl.h, whose unpacking and scale steps it shares. No include guard on purpose.
//
// Why: one vpdpbusd does 64 multiply-adds; one tdpbssd does 16 rows x 16 tokens x 64 bytes = 16,384 on the tile
// unit. Three things keep the unit busy:
// - An accumulator tile takes a whole 256-weight block before it is stored (a store waits for the products, and
//   the next use of the tile waits for the store). The K-quants' integer scale per 16 or 32 weights would force a
//   store every 32 weights, so repack multiplies each weight by its scale, scale * q (|.| < 2^13), and splits it
//   into a low 7-bit byte and a signed high byte: scale * q = 128 * hi + lo, two tiles per block.
// - The weights are the A operand, rows as they are (no transpose in the repack, which prefill pays once per
//   weight and product: with 128 experts, a MoE product has about 32 tokens per weight row). The activations are
//   the B operand, 4 bytes of 16 tokens per 64-byte row; gemm_pack_acts converts each group of 16 tokens once per
//   product.
// - Two sets of accumulators alternate between blocks, so the vector units finish one block's scale step while
//   the tile unit computes the next.
// The integer sums equal the VNNI kernel's (Σ_g scale_g Σ q a = Σ (128 hi + lo) a; the Q8_0 family's weights stay
// signed, so no -128 * Σa term) and every f32 step is its step for that row and token, so the result is the VNNI
// kernel's bit for bit (tests/tensor/gemm_test.cpp).

constexpr int kGemmTokensAmx = 16;

// ldtilecfg's 64-byte operand: palette 1, then per tile register its bytes per row and rows.
struct alignas(64) AmxTileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// K-quants: accumulators tmm0/tmm1 (low, high; even blocks) and tmm2/tmm3 (odd blocks); activations tmm4 and tmm7
// (alternate 64-weight steps); the weights' low and high bytes tmm5, tmm6. All 16 rows x 64 bytes.
alignas(64) inline constexpr AmxTileConfig kAmxConfigK{
    1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};
// Q8_0 family: accumulators tmm0..tmm3 (16 x 64 bytes); weights tmm4, tmm6 (16 rows x 32 bytes); activations
// tmm5, tmm7 (8 rows of 16 tokens' 4 bytes).
alignas(64) inline constexpr AmxTileConfig kAmxConfigQ8{
    1, 0, {}, {64, 64, 64, 64, 32, 64, 32, 64}, {16, 16, 16, 16, 16, 8, 16, 8}};

// The configuration is per thread and stays until another one is loaded.
HWY_INLINE void amx_use(const AmxTileConfig& config) {
  thread_local const AmxTileConfig* loaded = nullptr;
  if (loaded == &config) return;
  asm volatile("ldtilecfg %0" : : "m"(config));
  loaded = &config;
}

template <int kTile>
HWY_INLINE void amx_zero() {
  asm volatile("tilezero %%tmm%c0" : : "i"(kTile));
}
template <int kTile>
HWY_INLINE void amx_load(const void* base, size_t stride) {
  asm volatile("tileloadd (%0,%1,1), %%tmm%c2" : : "r"(base), "r"(stride), "i"(kTile) : "memory");
}
template <int kTile>
HWY_INLINE void amx_store(void* base, size_t stride) {
  asm volatile("tilestored %%tmm%c2, (%0,%1,1)" : : "r"(base), "r"(stride), "i"(kTile) : "memory");
}
// C[row][t] += Σ A[row][k] * B[k][t], signed bytes, 4 per int32 step.
template <int kC, int kA, int kB>
HWY_INLINE void amx_dot() {
  asm volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" : : "i"(kC), "i"(kA), "i"(kB));
}

// 16 rows' results, acc[r] over the tokens, into y[t * ldy + r] for t < nt and r < rows.
HWY_INLINE void store_rows_by_token(__m512 acc[kGemmRows], int nt, int rows, float* y, int64_t ldy) {
  __m512i v[kGemmRows];
  // Unrolled (and the callers value-initialise acc): a rolled loop over acc here, or a range-for over it there, kept
  // acc in memory in gemm_q8_0_amx, a load and a store around every FMA.
  unrolled<kGemmRows>([&](auto r) __attribute__((always_inline)) { v[r] = _mm512_castps_si512(acc[r]); });
  transpose_16x16_epi32(v);  // v[t]: token t's 16 rows
  const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
  for (int t = 0; t < nt; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, _mm512_castsi512_ps(v[t]));
}

// ------------------------------------------------------------------------------------------------ K-quants
// Weight tile of 16 rows per 256-weight block: the low and high bytes of scale * q, per 64-weight step a 16 x 64
// A tile; per row its offsets (pairs for vpdpwssd against the activations' block sums: Q6_K's 16 per 16 weights,
// Q4_K's and Q5_K's 8 mins per 32 in the first 8, so half the vpdpwssd), d and dm.
struct AmxKBlock {
  int8_t lo[4][kGemmRows][64];  // (scale * q) & 127
  int8_t hi[4][kGemmRows][64];  // (scale * q) >> 7, arithmetic
  int16_t offset[kGemmRows][16];
  float d[kGemmRows];
  float dm[kGemmRows];
};
static_assert(sizeof(AmxKBlock) % 64 == 0);

// Activations of 16 tokens per 256-weight block: q[k/4][t][4] (per step a 16 x 64 B tile), the Q8_K block sums
// per 16 and per 32 weights (|.| <= 32 * 128: int16) as pairs per token, each token's d. Tokens past the group's
// count are zero.
struct AmxActsK {
  int8_t q[64][kGemmTokensAmx][4];
  int16_t bsums[8][kGemmTokensAmx][2];
  int16_t bsums32[4][kGemmTokensAmx][2];
  float d[kGemmTokensAmx];
};
static_assert(sizeof(AmxActsK) % 64 == 0);

// 64 unsigned weights (vector j of unpack_k_block) times their scales -> the low and high bytes, in 16-bit lanes
// (even and odd bytes apart) so no byte packing is needed. kGroup weights per scale.
template <int kGroup>
HWY_INLINE void split_scaled_weights(__m512i q, const int32_t scale[16], int j, __m512i* lo, __m512i* hi) {
  __m512i sc;  // each weight's scale, in the 16-bit lane that holds it
  if constexpr (kGroup == 32) {
    sc = join256(_mm256_set1_epi16(static_cast<int16_t>(scale[2 * j])),
                 _mm256_set1_epi16(static_cast<int16_t>(scale[2 * j + 1])));
  } else {
    sc = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(scale[4 * j + 1])),
                                                _mm_set1_epi16(static_cast<int16_t>(scale[4 * j])))),
        _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(scale[4 * j + 3])),
                         _mm_set1_epi16(static_cast<int16_t>(scale[4 * j + 2]))),
        1);
  }
  const __m512i low_byte = _mm512_set1_epi16(0x00FF);
  const __m512i even = _mm512_mullo_epi16(_mm512_and_si512(q, low_byte), sc);
  const __m512i odd = _mm512_mullo_epi16(_mm512_srli_epi16(q, 8), sc);
  const __m512i seven_bits = _mm512_set1_epi16(0x007F);
  *lo = _mm512_or_si512(_mm512_and_si512(even, seven_bits), _mm512_slli_epi16(_mm512_and_si512(odd, seven_bits), 8));
  *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srai_epi16(even, 7), low_byte),
                        _mm512_slli_epi16(_mm512_srai_epi16(odd, 7), 8));
}

template <GgmlType kType>
inline void repack_k_amx(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  constexpr int kGroup = kType == GgmlType::kQ6_K ? 16 : 32;
  const size_t block_bytes = type_traits(kType).block_bytes;
  AmxKBlock* out = reinterpret_cast<AmxKBlock*>(tile);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    AmxKBlock& o = out[b];
    for (int r = 0; r < kGemmRows; ++r) {
      if (r >= rows) {
        for (int j = 0; j < 4; ++j) {
          _mm512_storeu_si512(o.lo[j][r], _mm512_setzero_si512());
          _mm512_storeu_si512(o.hi[j][r], _mm512_setzero_si512());
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.offset[r]), _mm256_setzero_si256());
        o.d[r] = o.dm[r] = 0.0f;
        continue;
      }
      alignas(64) int32_t scale[16] = {};
      __m512i q[4];
      unpack_k_block<kType>(w + r * row_stride + b * block_bytes, q, scale, o.offset[r], &o.d[r], &o.dm[r]);
      if constexpr (kGroup == 32) {  // the per-16 offsets come in equal pairs: keep one min per 32
        for (int g = 0; g < 8; ++g) o.offset[r][g] = o.offset[r][2 * g];
      }
      for (int j = 0; j < 4; ++j) {
        __m512i lo, hi;
        split_scaled_weights<kGroup>(q[j], scale, j, &lo, &hi);
        _mm512_storeu_si512(o.lo[j][r], lo);
        _mm512_storeu_si512(o.hi[j][r], hi);
      }
    }
  }
}

// nt (<= 16) Q8_K activation rows -> AmxActsK per block.
inline void pack_acts_k_amx(int64_t n, const GemmActs& a, int nt, uint8_t* out_bytes) {
  AmxActsK* out = reinterpret_cast<AmxActsK*>(out_bytes);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    AmxActsK& o = out[b];
    const auto block = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(a.rows + t * a.stride) + b; };
    for (int j = 0; j < 4; ++j) {
      __m512i v[kGemmTokensAmx];
      for (int t = 0; t < kGemmTokensAmx; ++t) v[t] = t < nt ? load512(block(t)->qs + 64 * j) : _mm512_setzero_si512();
      transpose_16x16_epi32(v);  // v[g]: dword g (weights 64j + 4g ..) of the 16 tokens
      for (int g = 0; g < 16; ++g) _mm512_storeu_si512(o.q[16 * j + g], v[g]);
    }
    __m512i s[kGemmTokensAmx], s32[kGemmTokensAmx];
    for (int t = 0; t < kGemmTokensAmx; ++t) {
      const __m256i sums16 = t < nt ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block(t)->bsums))
                                    : _mm256_setzero_si256();
      const __m256i sums32 = _mm256_madd_epi16(sums16, _mm256_set1_epi16(1));  // 8 x int32, |.| <= 4096
      s[t] = _mm512_zextsi256_si512(sums16);
      s32[t] = _mm512_zextsi128_si512(_mm256_cvtepi32_epi16(sums32));
      o.d[t] = t < nt ? block(t)->d : 0.0f;
    }
    transpose_16x16_epi32(s);  // s[p]: the pair p of every token
    for (int p = 0; p < 8; ++p) _mm512_storeu_si512(o.bsums[p], s[p]);
    transpose_16x16_epi32(s32);
    for (int p = 0; p < 4; ++p) _mm512_storeu_si512(o.bsums32[p], s32[p]);
  }
}

// Block b's products into accumulators kLo, kLo + 1, stored to c[0] (low) and c[1] (high).
template <int kLo>
HWY_INLINE void amx_k_block(const AmxKBlock& w, const AmxActsK& a, int32_t c[2][kGemmRows][kGemmTokensAmx]) {
  amx_zero<kLo>();
  amx_zero<kLo + 1>();
  for (int j = 0; j < 4; ++j) {  // 64 weights per step; two activation tiles so a load need not wait for a product
    amx_load<5>(w.lo[j], 64);
    amx_load<6>(w.hi[j], 64);
    if (j % 2 == 0) {
      amx_load<4>(a.q[16 * j], 64);
      amx_dot<kLo, 5, 4>();
      amx_dot<kLo + 1, 6, 4>();
    } else {
      amx_load<7>(a.q[16 * j], 64);
      amx_dot<kLo, 5, 7>();
      amx_dot<kLo + 1, 6, 7>();
    }
  }
  amx_store<kLo>(c[0], sizeof(c[0][0]));
  amx_store<kLo + 1>(c[1], sizeof(c[1][0]));
}

// kGroup: weights per integer scale and min (32: Q4_K / Q5_K, 16: Q6_K).
template <int kGroup>
inline void gemm_k_amx(int64_t n, const void* tile, const GemmActs& a, int nt, float* y, int64_t ldy, int rows) {
  constexpr int kPairs = kGroup == 32 ? 4 : 8;  // offset pairs per block
  const AmxKBlock* w = static_cast<const AmxKBlock*>(tile);
  const AmxActsK* x = reinterpret_cast<const AmxActsK*>(a.packed);
  const int64_t nb = n / kQK_K;
  alignas(64) int32_t c[2][2][kGemmRows][kGemmTokensAmx];  // [block parity][low, high][row][token]
  __m512 acc[kGemmRows] = {};  // in registers (store_rows_by_token)
  amx_k_block<0>(w[0], x[0], c[0]);
  for (int64_t b = 0; b < nb; ++b) {
    // The next block's products go first, so the tile unit works while the vector units finish this one.
    if (b + 1 < nb) {
      if (b % 2 == 0) {
        amx_k_block<2>(w[b + 1], x[b + 1], c[1]);
      } else {
        amx_k_block<0>(w[b + 1], x[b + 1], c[0]);
      }
    }
    const AmxKBlock& o = w[b];
    const int32_t(*cb)[kGemmRows][kGemmTokensAmx] = c[b % 2];
    const __m512 da = _mm512_loadu_ps(x[b].d);
    __m512i bsums[kPairs];
    for (int p = 0; p < kPairs; ++p) bsums[p] = load512(kGroup == 32 ? x[b].bsums32[p] : x[b].bsums[p]);
    for (int r = 0; r < kGemmRows; ++r) {
      const __m512i sumi = _mm512_add_epi32(_mm512_slli_epi32(load512(cb[1][r]), 7), load512(cb[0][r]));
      __m512i mins = _mm512_setzero_si512();
      for (int p = 0; p < kPairs; ++p) mins = dpwssd_bcast(mins, bsums[p], o.offset[r] + 2 * p);
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(o.d[r]), da), _mm512_cvtepi32_ps(sumi), acc[r]);
      acc[r] = _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_set1_ps(o.dm[r]), da), _mm512_cvtepi32_ps(mins), acc[r]);
    }
  }
  store_rows_by_token(acc, nt, rows, y, ldy);
}

// ------------------------------------------------------------------------------------------ the Q8_0 family
// Weight tile of 16 rows per 32-weight block: the signed weights, row by row (a 16 x 32 A tile), and the scales.
struct AmxQ8Block {
  int8_t q[kGemmRows][32];
  float d[kGemmRows];
};
static_assert(sizeof(AmxQ8Block) % 64 == 0);

// Activations of 16 tokens per 32-weight block: q[k/4][t][4] (an 8 x 64 B tile) and each token's block scale.
struct AmxActsQ8 {
  int8_t q[8][kGemmTokensAmx][4];
  float scale[kGemmTokensAmx];
};
static_assert(sizeof(AmxActsQ8) % 64 == 0);

template <GgmlType kType>
inline void repack_q8_0_like_amx(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  using Block = Q8_0LikeBlock<kType>;
  AmxQ8Block* out = reinterpret_cast<AmxQ8Block*>(tile);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    for (int r = 0; r < kGemmRows; ++r) {
      const uint8_t* bp = w + r * row_stride + b * sizeof(Block);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q[r]),
                          r < rows ? q8_0_like_weights<kType>(bp) : _mm256_setzero_si256());
      out[b].d[r] = r < rows ? q8_0_like_scale(bp) : 0.0f;
    }
  }
}

// nt (<= 16) Q8_0 activation rows -> AmxActsQ8 per block, two blocks per transpose.
inline void pack_acts_q8_0_amx(int64_t n, const GemmActs& a, int nt, uint8_t* out_bytes) {
  AmxActsQ8* out = reinterpret_cast<AmxActsQ8*>(out_bytes);
  const int64_t nb = n / kQK8_0;
  for (int64_t b0 = 0; b0 < nb; b0 += 2) {
    const int pair = b0 + 1 < nb ? 2 : 1;
    __m512i v[kGemmTokensAmx];
    for (int t = 0; t < kGemmTokensAmx; ++t) {
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(a.rows + t * a.stride) + b0;
      __m256i half[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int k = 0; k < pair && t < nt; ++k) half[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[k].qs));
      v[t] = join256(half[0], half[1]);
    }
    transpose_16x16_epi32(v);  // v[8k + g]: dword g of block b0 + k, every token
    for (int k = 0; k < pair; ++k) {
      for (int g = 0; g < 8; ++g) _mm512_storeu_si512(out[b0 + k].q[g], v[8 * k + g]);
      for (int t = 0; t < kGemmTokensAmx; ++t) out[b0 + k].scale[t] = t < nt ? a.scales[t * nb + b0 + k] : 0.0f;
    }
  }
}

// Blocks b0 and b1 (b1 == b0 for an odd count's last block) into accumulators kC, kC + 1, stored to c[0], c[1].
template <int kC>
HWY_INLINE void amx_q8_pair(const AmxQ8Block* w, const AmxActsQ8* x, int64_t b0, int64_t b1,
                            int32_t c[2][kGemmRows][kGemmTokensAmx]) {
  amx_zero<kC>();
  amx_zero<kC + 1>();
  amx_load<4>(w[b0].q, 32);
  amx_load<5>(x[b0].q, 64);
  amx_load<6>(w[b1].q, 32);
  amx_load<7>(x[b1].q, 64);
  amx_dot<kC, 4, 5>();
  amx_dot<kC + 1, 6, 7>();
  amx_store<kC>(c[0], sizeof(c[0][0]));
  amx_store<kC + 1>(c[1], sizeof(c[1][0]));
}

inline void gemm_q8_0_amx(int64_t n, const void* tile, const GemmActs& a, int nt, float* y, int64_t ldy, int rows) {
  const AmxQ8Block* w = static_cast<const AmxQ8Block*>(tile);
  const AmxActsQ8* x = reinterpret_cast<const AmxActsQ8*>(a.packed);
  const int64_t nb = n / kQK8_0;
  alignas(64) int32_t c[2][2][kGemmRows][kGemmTokensAmx];  // [pair parity][first, second block][row][token]
  __m512 acc[kGemmRows] = {};  // in registers (store_rows_by_token)
  const auto second = [nb](int64_t b0) { return std::min(b0 + 1, nb - 1); };
  amx_q8_pair<0>(w, x, 0, second(0), c[0]);
  for (int64_t b0 = 0; b0 < nb; b0 += 2) {
    const int64_t next = b0 + 2;
    if (next < nb) {
      if (b0 % 4 == 0) {
        amx_q8_pair<2>(w, x, next, second(next), c[1]);
      } else {
        amx_q8_pair<0>(w, x, next, second(next), c[0]);
      }
    }
    const int32_t(*cp)[kGemmRows][kGemmTokensAmx] = c[(b0 / 2) % 2];
    for (int k = 0; k < 2 && b0 + k < nb; ++k) {
      const int64_t b = b0 + k;
      const __m512 scale = _mm512_loadu_ps(x[b].scale);
      for (int r = 0; r < kGemmRows; ++r) {
        acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(w[b].d[r]), scale), _mm512_cvtepi32_ps(load512(cp[k][r])),
                                 acc[r]);
      }
    }
  }
  store_rows_by_token(acc, nt, rows, y, ldy);
}

// ------------------------------------------------------------------------------------------------ the table
constexpr bool amx_k_quant(GgmlType t) {
  return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K;
}
constexpr bool amx_q8_0_like(GgmlType t) {
  return t == GgmlType::kQ8_0 || t == GgmlType::kQ5_0 || t == GgmlType::kQ4_0;
}

template <GgmlType kType>
inline void repack_amx(int64_t n, const uint8_t* w, size_t row_stride, int rows, uint8_t* tile) {
  std::memcpy(tile, &rows, sizeof(rows));
  if constexpr (amx_k_quant(kType)) {
    repack_k_amx<kType>(n, w, row_stride, rows, tile + kGemmTileHeader);
  } else {
    repack_q8_0_like_amx<kType>(n, w, row_stride, rows, tile + kGemmTileHeader);
  }
}

template <GgmlType kType>
inline void gemm_amx(int64_t n, const uint8_t* tile, const GemmActs& a, int nt, float* y, int64_t ldy) {
  int rows;
  std::memcpy(&rows, tile, sizeof(rows));
  const uint8_t* body = tile + kGemmTileHeader;
  if constexpr (amx_k_quant(kType)) {
    amx_use(kAmxConfigK);
    gemm_k_amx<kType == GgmlType::kQ6_K ? 16 : 32>(n, body, a, nt, y, ldy, rows);
  } else {
    amx_use(kAmxConfigQ8);
    gemm_q8_0_amx(n, body, a, nt, y, ldy, rows);
  }
}

// F16/BF16 keep the VNNI table's f32 GEMM, 8 tokens at a time (the AMX table's groups are 16).
template <GgmlType kType>
inline void gemm_half_in_eights(int64_t n, const uint8_t* tile, const GemmActs& a, int nt, float* y, int64_t ldy) {
  for (int t0 = 0; t0 < nt; t0 += kGemmTokensAvx512) {
    const GemmActs part{a.rows + t0 * a.stride, a.stride, nullptr, nullptr, nullptr};
    gemm_avx512<kType>(n, tile, part, std::min(kGemmTokensAvx512, nt - t0), y + t0 * ldy, ldy);
  }
}

inline size_t gemm_tile_bytes_amx(GgmlType type, int64_t n) {
  if (amx_k_quant(type)) return kGemmTileHeader + static_cast<size_t>(n / kQK_K) * sizeof(AmxKBlock);
  if (amx_q8_0_like(type)) return kGemmTileHeader + static_cast<size_t>(n / kQK8_0) * sizeof(AmxQ8Block);
  return gemm_tile_bytes_avx512(type, n);
}

inline void gemm_pack_acts_amx(GgmlType type, int64_t n, const GemmActs& a, int nt, uint8_t* out) {
  if (amx_k_quant(type)) {
    pack_acts_k_amx(n, a, nt, out);
  } else if (amx_q8_0_like(type)) {
    pack_acts_q8_0_amx(n, a, nt, out);
  }
}

inline size_t gemm_packed_act_bytes_amx(GgmlType type, int64_t n) {
  if (amx_k_quant(type)) return static_cast<size_t>(n / kQK_K) * sizeof(AmxActsK);
  if (amx_q8_0_like(type)) return static_cast<size_t>(n / kQK8_0) * sizeof(AmxActsQ8);
  return 0;
}

// Replaces fill_avx512_gemm's entries when this process may use AMX (amx.h).
inline void fill_amx_gemm(KernelTable* t) {
  if (!amx_enabled()) return;
  auto set = [t](GgmlType type, RepackFn r, GemmFn g) {
    t->repack[kernel_slot(type)] = r;
    t->gemm[kernel_slot(type)] = g;
  };
  set(GgmlType::kQ4_K, repack_amx<GgmlType::kQ4_K>, gemm_amx<GgmlType::kQ4_K>);
  set(GgmlType::kQ5_K, repack_amx<GgmlType::kQ5_K>, gemm_amx<GgmlType::kQ5_K>);
  set(GgmlType::kQ6_K, repack_amx<GgmlType::kQ6_K>, gemm_amx<GgmlType::kQ6_K>);
  set(GgmlType::kQ8_0, repack_amx<GgmlType::kQ8_0>, gemm_amx<GgmlType::kQ8_0>);
  set(GgmlType::kQ5_0, repack_amx<GgmlType::kQ5_0>, gemm_amx<GgmlType::kQ5_0>);
  set(GgmlType::kQ4_0, repack_amx<GgmlType::kQ4_0>, gemm_amx<GgmlType::kQ4_0>);
  set(GgmlType::kF16, repack_avx512<GgmlType::kF16>, gemm_half_in_eights<GgmlType::kF16>);
  set(GgmlType::kBF16, repack_avx512<GgmlType::kBF16>, gemm_half_in_eights<GgmlType::kBF16>);
  // F32 keeps the VNNI table's entry (gemm_f32_exact takes any token count).
  t->gemm_tile_bytes = gemm_tile_bytes_amx;
  t->gemm_pack_acts = gemm_pack_acts_amx;
  t->gemm_packed_act_bytes = gemm_packed_act_bytes_amx;
  t->gemm_tokens = kGemmTokensAmx;
  t->amx = true;
}
