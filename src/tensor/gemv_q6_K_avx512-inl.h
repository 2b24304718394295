// AVX-512 decode gemvs of Q6_K: one token or the few tokens of a batched step.
// Included by gemv_avx512-inl.h inside the AVX3 and AVX3_DL target namespaces. No include guard on purpose.

// Four vectors v[0..3], each four 128-bit chunks of four dwords: within every chunk position the 4 x 4 dwords are
// transposed, so that afterwards chunk c, dword p of v[k] is what chunk c, dword k of v[p] was.
HWY_INLINE void transpose_chunk_dwords(__m512i (&v)[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
  v[0] = _mm512_unpacklo_epi64(t0, t2);
  v[1] = _mm512_unpackhi_epi64(t0, t2);
  v[2] = _mm512_unpacklo_epi64(t1, t3);
  v[3] = _mm512_unpackhi_epi64(t1, t3);
}

// A Q6_K block's 256 unsigned 6-bit weights (0..63) as unpack_q6_K_weights_512 gives them, then
// transpose_chunk_dwords, gathered directly: dword p of chunk c of q[k] is weights 16 (4p + c) + 4k .. + 3, whose
// low bits are the nibbles (p odd: high) of ql dword 16 (p / 2) + 4c + k, and whose high bits are bit pair
// g = c / 2 + 2 (p % 2) of qh dword 8 (p / 2) + 4 (c % 2) + k. Per vector: a two-source vpermd for ql, a vpermd for
// qh, a shift and a rotate that put each byte's bits in place, an AND and a ternary merge.
HWY_INLINE void unpack_q6_K_weights_transposed(const BlockQ6_K& x, __m512i q[4]) {
  const __m512i ql0 = load512(x.ql), ql1 = load512(x.ql + 64), qh = load512(x.qh);
  const __m512i nibble_shift = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
  // Bits 2g, 2g + 1 of each byte to bits 4, 5: rotate each dword left by 4 - 2g (mod 32; a rotate keeps a byte's
  // bits within it for these amounts, except the ones the 0x30 mask drops).
  const __m512i high_rotate = _mm512_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0, 2, 30, 2, 30, 2, 30, 2, 30);
  for (int k = 0; k < 4; ++k) {
    const __m512i low_index = _mm512_add_epi32(
        _mm512_setr_epi32(0, 0, 16, 16, 4, 4, 20, 20, 8, 8, 24, 24, 12, 12, 28, 28), _mm512_set1_epi32(k));
    const __m512i high_index = _mm512_add_epi32(
        _mm512_setr_epi32(0, 0, 8, 8, 4, 4, 12, 12, 0, 0, 8, 8, 4, 4, 12, 12), _mm512_set1_epi32(k));
    const __m512i low = _mm512_srlv_epi32(_mm512_permutex2var_epi32(ql0, low_index, ql1), nibble_shift);
    const __m512i high = _mm512_and_si512(_mm512_rolv_epi32(_mm512_permutexvar_epi32(high_index, qh), high_rotate),
                                          _mm512_set1_epi8(0x30));
    q[k] = _mm512_ternarylogic_epi32(low, _mm512_set1_epi8(0x0F), high, 0xEA);  // (low & 0x0F) | high
  }
}

// The Q6_K gemv: NT tokens (activation rows act + t * act_stride: one in decode, up to kTokensPerGemvCall in a
// batched step) against `rows` rows, y[t * ldy + r]. The tile spends a maddubs and a vpmaddwd (or vpdpwssd) per 64
// weights and token, and folds its lanes per token; here each int32 lane holds one 16-weight sub-block, so four
// vpdpbusd per block and token sum the unsigned 6-bit weights against the activation, and the scales apply once per
// block in f32 (d * scale is exact in f32). For that lane 4c + p of every weight vector holds sub-block 4p + c
// (unpack_q6_K_weights_transposed), and each token's activation is transposed the same way once per call. The -32
// offset starts each lane at -32 * the sub-block's activation sum (the bsums, in the same lane order, also once per
// call). The integer sums per block are exact; every token's f32 steps are the same whatever NT, so a token's
// numbers do not depend on the others' (bit for bit), and they differ from the tile's order (gemv_every_token).
// One core in L2 (bench_quant DecodeTokens/q6_K, 1/2/3/4 tokens), G MAC/s: the tile 78-84, 114-118, 133, 146-148;
// this 84-85, 132-133, 164-167, 186-188. Where the CPU has GFNI, one and two tokens take gemv_q6_K_tokens_gfni
// below (the same bits, a cheaper unpack).
template <int NT>
HWY_INLINE void gemv_q6_K_tokens_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                     size_t act_stride, float* y, int64_t ldy) {
  const int64_t nb = n / kQK_K;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  // Per token and block, 64-byte aligned: the transposed activation (256 bytes), then -32 * bsums as int32 lanes.
  constexpr size_t kBlockBytes = kQK_K + 16 * sizeof(int32_t);
  const size_t token_bytes = static_cast<size_t>(nb) * kBlockBytes;
  uint8_t* const scratch = gemv_scratch(NT * token_bytes);
  auto prepared = [&](int t, int64_t i) { return scratch + t * token_bytes + i * kBlockBytes; };
  // Lane 4c + p holds sub-block 4p + c.
  const __m512i sub_block_of_lane = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int t = 0; t < NT; ++t) {
    for (int64_t i = 0; i < nb; ++i) {
      const int8_t* q = yb(t)[i].qs;
      __m512i v[4] = {load512(q), load512(q + 64), load512(q + 128), load512(q + 192)};
      transpose_chunk_dwords(v);
      uint8_t* out = prepared(t, i);
      for (int k = 0; k < 4; ++k) _mm512_store_si512(out + 64 * k, v[k]);
      const __m512i bsums = _mm512_cvtepi16_epi32(load256(yb(t)[i].bsums));
      _mm512_store_si512(out + kQK_K,
                         _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(),
                                                            _mm512_permutexvar_epi32(sub_block_of_lane, bsums)),
                                           5));
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(w + static_cast<size_t>(r) * row_stride);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      // A fixed count of lines (at most one asked for twice): prefetch_weights' address-dependent loop cost one
      // token 4-7% (GemvKernel/q6_K/2816, DecodeTokens/q6_K/1, one core in L2, alternating).
      prefetch_weights_lines<(sizeof(BlockQ6_K) + 63) / 64>(x + i);
      __m512i q[4];
      unpack_q6_K_weights_transposed(x[i], q);
      const __m512i sc = _mm512_permutexvar_epi32(
          sub_block_of_lane, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales))));
      const __m512 d_scales = _mm512_mul_ps(_mm512_set1_ps(h2f_fast(x[i].d)), _mm512_cvtepi32_ps(sc));
      for (int t = 0; t < NT; ++t) {
        const uint8_t* a = prepared(t, i);
        __m512i sum = _mm512_load_si512(a + kQK_K);
        for (int k = 0; k < 4; ++k) sum = dp_u8s8_512(sum, q[k], _mm512_load_si512(a + 64 * k));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d_scales, _mm512_set1_ps(yb(t)[i].d)), _mm512_cvtepi32_ps(sum),
                                 acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[t]);
  }
}

#if HWY_TARGET == HWY_AVX3_DL
// A matrix for gf2p8affine_bytes that moves bits 2g, 2g + 1 of every byte to bits 4, 5 and clears the others (result
// bit 4 reads matrix byte 3, bit 5 byte 2).
constexpr long long q6_K_high_bits_matrix(int g) { return (1LL << (2 * g)) << 24 | (1LL << (2 * g + 1)) << 16; }

// A Q6_K block's 256 unsigned 6-bit weights in their own order, 64 per vector (GFNI): v[2h] is weights 128h .. + 63
// (the low nibbles of ql 64h .. + 63; the high bits are bit pair 0 of qh 32h .. + 31 for the first 32 and pair 1 for
// the next 32), v[2h + 1] weights 128h + 64 .. + 127 (the high nibbles; pairs 2 and 3). Per half: the 32 qh bytes
// broadcast to both 256-bit halves, two GF2P8AFFINEQB take each half's bit pair to bits 4, 5, a third brings the high
// nibbles down, a ternary merge and an or. No cross-lane permutes (unpack_q6_K_weights_transposed has eight, on the
// two ports that also run its eight variable shifts and rotates). The high nibbles by GF2P8AFFINEQB rather than a
// 16-bit shift: GCC folds the shift's load (a second unaligned 64-byte load of ql), and without it
// GemvKernel/q6_K/2816 ran 1-3% faster (one core in L2, two windows).
HWY_INLINE void unpack_q6_K_weights_gfni(const BlockQ6_K& x, __m512i (&v)[4]) {
  const __m512i pairs_0_1 = _mm512_setr_epi64(q6_K_high_bits_matrix(0), q6_K_high_bits_matrix(0), q6_K_high_bits_matrix(0),
                                              q6_K_high_bits_matrix(0), q6_K_high_bits_matrix(1), q6_K_high_bits_matrix(1),
                                              q6_K_high_bits_matrix(1), q6_K_high_bits_matrix(1));
  const __m512i pairs_2_3 = _mm512_setr_epi64(q6_K_high_bits_matrix(2), q6_K_high_bits_matrix(2), q6_K_high_bits_matrix(2),
                                              q6_K_high_bits_matrix(2), q6_K_high_bits_matrix(3), q6_K_high_bits_matrix(3),
                                              q6_K_high_bits_matrix(3), q6_K_high_bits_matrix(3));
  const __m512i low4 = _mm512_set1_epi8(0x0F), high_nibble = _mm512_set1_epi64(kGfHighNibble);
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = load512(x.ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(load256(x.qh + 32 * h));
    v[2 * h] = _mm512_ternarylogic_epi32(ql, low4, gf2p8affine_bytes(qh, pairs_0_1), 0xEA);  // (ql & 0x0F) | high
    v[2 * h + 1] = _mm512_or_si512(gf2p8affine_bytes(ql, high_nibble), gf2p8affine_bytes(qh, pairs_2_3));
  }
}

// Per activation block, 64-byte aligned: its qs in the order of the weight vectors q6_K_pair_lanes gives (256
// bytes), then the starts of the two accumulators (-32 * bsums, 2 x 64 bytes).
constexpr size_t kQ6_KGfniActBytes = kQK_K + 2 * 64;

// In unpack_q6_K_weights_gfni's vectors, chunk c (128 bits) of v[k] is sub-block 4k + c, a quarter of it per dword.
// unpacklo / unpackhi_epi32 of (v[0], v[1]) both hold sub-blocks c, 4 + c, c, 4 + c in chunk c, those of (v[2], v[3])
// 8 + c, 12 + c, 8 + c, 12 + c: two vpdpbusd each sum into two accumulators whose lanes keep one sub-block apiece,
// and one unpacklo / unpackhi_epi64 + add leaves sub-block 4p + c in lane 4c + p, the order of
// unpack_q6_K_weights_transposed's sums (so the same f32 steps follow).
HWY_INLINE void q6_K_pair_lanes(__m512i (&v)[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
  v[0] = t0;
  v[1] = t1;
  v[2] = t2;
  v[3] = t3;
}

// One token's activation as gemv_q6_K_tokens_gfni reads it (kQ6_KGfniActBytes per block).
HWY_INLINE void q6_K_gfni_activation(const BlockQ8_K* x, int64_t blocks, uint8_t* out) {
  // Accumulator a's lanes in chunk c: sub-blocks c, 4 + c (then two lanes that start at zero); b's: 8 + c, 12 + c.
  const __m512i start_a = _mm512_setr_epi32(0, 4, 0, 0, 1, 5, 0, 0, 2, 6, 0, 0, 3, 7, 0, 0);
  for (int64_t i = 0; i < blocks; ++i, out += kQ6_KGfniActBytes) {
    __m512i v[4] = {load512(x[i].qs), load512(x[i].qs + 64), load512(x[i].qs + 128), load512(x[i].qs + 192)};
    q6_K_pair_lanes(v);
    for (int k = 0; k < 4; ++k) _mm512_store_si512(out + 64 * k, v[k]);
    const __m512i bsums = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), _mm512_cvtepi16_epi32(load256(x[i].bsums))), 5);
    _mm512_store_si512(out + kQK_K, _mm512_maskz_permutexvar_epi32(0x3333, start_a, bsums));
    _mm512_store_si512(out + kQK_K + 64,
                       _mm512_maskz_permutexvar_epi32(0x3333, _mm512_add_epi32(start_a, _mm512_set1_epi32(8)), bsums));
  }
}

// gemv_q6_K_tokens_512 with unpack_q6_K_weights_gfni (where the CPU has GFNI): per block and token the same exact
// integer sums in the same lanes and the same f32 steps, so every output is bit for bit gemv_q6_K_tokens_512's
// (Gemv.Q6_KIsTheSameOnEveryTarget). Per block 6 GF2P8AFFINEQB + 6 in-lane unpacks (4 per cycle on Zen 5) instead
// of 8 cross-lane permutes + 8 variable shifts and rotates (2 per cycle each, on overlapping ports); the activation's
// bytes go into vpdpbusd as memory operands; d is converted by one vcvtph2ps from a broadcast. One core in L2
// (GemvKernel/q6_K/2816, alternating with the base, medians of 6): 58.9 -> 65.6 GiB/s (+11%). What is left is mostly
// L1 load traffic (two line-crossing ql loads, the activation) and the f32 scale steps, not the unpack.
template <int NT>
HWY_INLINE void gemv_q6_K_tokens_gfni(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                      size_t act_stride, float* y, int64_t ldy) {
  const int64_t nb = n / kQK_K;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  const size_t token_bytes = static_cast<size_t>(nb) * kQ6_KGfniActBytes;
  uint8_t* const scratch = gemv_scratch(NT * token_bytes);
  for (int t = 0; t < NT; ++t) q6_K_gfni_activation(yb(t), nb, scratch + t * token_bytes);
  // Lane 4c + p holds sub-block 4p + c.
  const __m512i sub_block_of_lane = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  // Block i of row x into acc.
  auto block = [&](const BlockQ6_K* x, __m512 (&acc)[NT], int64_t i) __attribute__((always_inline)) {
    prefetch_weights_lines<(sizeof(BlockQ6_K) + 63) / 64>(x + i);
    __m512i q[4];
    unpack_q6_K_weights_gfni(x[i], q);
    q6_K_pair_lanes(q);
    const __m512i sc = _mm512_permutexvar_epi32(
        sub_block_of_lane, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales))));
    const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(x[i].d)));
    const __m512 d_scales = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
    for (int t = 0; t < NT; ++t) {
      const int8_t* a = reinterpret_cast<const int8_t*>(scratch + t * token_bytes + i * kQ6_KGfniActBytes);
      const __m512i sa = dp_u8s8_512_at(dp_u8s8_512_at(_mm512_load_si512(a + kQK_K), q[0], a), q[1], a + 64);
      const __m512i sb = dp_u8s8_512_at(dp_u8s8_512_at(_mm512_load_si512(a + kQK_K + 64), q[2], a + 128), q[3], a + 192);
      const __m512i sum = _mm512_add_epi32(_mm512_unpacklo_epi64(sa, sb), _mm512_unpackhi_epi64(sa, sb));
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d_scales, _mm512_set1_ps(yb(t)[i].d)), _mm512_cvtepi32_ps(sum), acc[t]);
    }
  };
  auto row_of = [&](int64_t r) { return reinterpret_cast<const BlockQ6_K*>(w + static_cast<size_t>(r) * row_stride); };
  auto rows_at = [&]<int kS>(int64_t first, int64_t part) __attribute__((always_inline)) {
    const BlockQ6_K* x[kS];
    __m512 acc[kS][NT];
    for (int k = 0; k < kS; ++k) {
      x[k] = row_of(first + k * part);
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
      unrolled<kS>([&](auto k) __attribute__((always_inline)) { block(x[k], acc[k], i); });
    }
    for (int k = 0; k < kS; ++k) {
      for (int t = 0; t < NT; ++t) y[t * ldy + first + k * part] = _mm512_reduce_add_ps(acc[k][t]);
    }
  };
  for_row_streams(rows, decode_row_streams(GemvFamily::kQ6_K), rows_at);
}
#endif

inline void gemv_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
#if HWY_TARGET == HWY_AVX3_DL
  static const bool gfni = __builtin_cpu_supports("gfni");
  if (gfni) return gemv_q6_K_tokens_gfni<1>(n, w, row_stride, rows, act, 0, y, 0);
#endif
  gemv_q6_K_tokens_512<1>(n, w, row_stride, rows, act, 0, y, 0);
}

// Three or four tokens keep gemv_q6_K_tokens_512 (the same bits either way): the GFNI kernel's shared unpack is
// cheaper but each token's sums cost two unpacks, an add and a load more there (one core in L2, DecodeTokens/q6_K,
// G MAC/s, base / GFNI for 1 / 2 / 3 / 4 tokens: 77 / 84, 120 / 125, 155 / 149, 175 / 166).
inline void gemv_tokens_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
#if HWY_TARGET == HWY_AVX3_DL
  static const bool gfni = __builtin_cpu_supports("gfni");
#endif
  with_token_count<kTokensPerGemvCall>(nt, [&](auto k) {
    constexpr int kTokens = decltype(k)::value;
#if HWY_TARGET == HWY_AVX3_DL
    if constexpr (kTokens <= 2) {
      if (gfni) return gemv_q6_K_tokens_gfni<kTokens>(n, w, row_stride, rows, act, act_stride, y, ldy);
    }
#endif
    gemv_q6_K_tokens_512<kTokens>(n, w, row_stride, rows, act, act_stride, y, ldy);
  });
}
