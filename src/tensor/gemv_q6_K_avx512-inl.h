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
// this 84-85, 132-133, 164-167, 186-188.
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

inline void gemv_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
  gemv_q6_K_tokens_512<1>(n, w, row_stride, rows, act, 0, y, 0);
}

inline void gemv_tokens_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
  with_token_count<kTokensPerGemvCall>(nt, [&](auto k) {
    gemv_q6_K_tokens_512<decltype(k)::value>(n, w, row_stride, rows, act, act_stride, y, ldy);
  });
}
