// AVX-512 decode kernels (kernels.h GemvFn / GemvTokensFn): one token, or the few tokens of a batched decode step,
// against many weight rows, for Q4_K, Q6_K and the Q8_0 family. Included by quant-inl.h inside the AVX3 and AVX3_DL
// target namespaces after tiles_avx512-inl.h, whose helpers and tiles they use. No include guard on purpose.

// A per-thread 64-byte aligned buffer of at least `bytes` for the gemvs' activation copies, one for all of them: the
// only gemv that calls another (the Q8_0-family rows' last rows) no longer reads its copy afterwards.
HWY_INLINE uint8_t* gemv_scratch(size_t bytes) {
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> scratch;
  thread_local size_t scratch_bytes = 0;
  if (scratch_bytes < bytes) {
    scratch = hwy::AllocateAligned<uint8_t>(bytes);
    scratch_bytes = bytes;
  }
  return scratch.get();
}

// One token (decode) against `rows` rows of Q8_0 / Q5_0 / Q4_0: y[r] equals tile_q8_0_like_512<.., 1>'s result for
// row r bit for bit. The weights go to vpdpbusd as unsigned bytes u = w + c (Q8_0: c = 128, the sign bit flipped;
// Q5_0: c = 16, the 5-bit value before its offset, the fifth bit from a mask register; Q4_0: c = 8, the nibble),
// and c * Σa comes off each block's sum from the activation's precomputed block sums (act_sums = -128 * Σa), so no
// per-row sign work remains: the block sums are the same integers as the tile's, and the f32 steps are the tile's
// in the same order. One call covers all rows (no indirect call and setup per 704-column expert row).
// Without VNNI only Q5_0 / Q4_0 (u < 32): maddubs would saturate on u up to 255.
template <GgmlType kType>
HWY_INLINE __m512i q8_0_like_unsigned_pair(const uint8_t* b0, const uint8_t* b1) {
  if constexpr (kType == GgmlType::kQ8_0) {
    const __m512i w = join256(load256(reinterpret_cast<const BlockQ8_0*>(b0)->qs),
                              load256(reinterpret_cast<const BlockQ8_0*>(b1)->qs));
    return _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80)));
  } else {
    using Block = std::conditional_t<kType == GgmlType::kQ5_0, BlockQ5_0, BlockQ4_0>;
    const Block* x0 = reinterpret_cast<const Block*>(b0);
    const Block* x1 = reinterpret_cast<const Block*>(b1);
    // 128-bit lanes [x0.qs, x1.qs, x0.qs >> 4, x1.qs >> 4] -> [x0 low, x0 high, x1 low, x1 high] nibbles.
    auto load128 = [](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
    const __m256i qs = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(x0->qs)), load128(x1->qs), 1);
    const __m512i both = join256(qs, _mm256_srli_epi16(qs, 4));
    const __m512i nib = _mm512_and_si512(_mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0)),
                                         _mm512_set1_epi8(0x0F));
    if constexpr (kType == GgmlType::kQ5_0) {
      uint32_t h0, h1;
      std::memcpy(&h0, x0->qh, 4);
      std::memcpy(&h1, x1->qh, 4);
      const __mmask64 fifth = _cvtu64_mask64(static_cast<uint64_t>(h0) | static_cast<uint64_t>(h1) << 32);
      return _mm512_mask_add_epi8(nib, fifth, nib, _mm512_set1_epi8(0x10));
    } else {
      return nib;
    }
  }
}

// One block's 32 weights as gemv's unsigned bytes (the odd last block of a row; the pair function reads two).
template <GgmlType kType>
HWY_INLINE __m256i q8_0_like_unsigned_block(const uint8_t* blk) {
  constexpr char kOffset = kType == GgmlType::kQ8_0 ? static_cast<char>(0x80) : kType == GgmlType::kQ5_0 ? 16 : 8;
  return _mm256_add_epi8(q8_0_like_weights<kType>(blk), _mm256_set1_epi8(kOffset));  // 0x80: the sign bit flipped
}

// Blocks i .. i + kCount - 1 of one row into acc, as q8_0_like_step_512 with one token: absent blocks (kCount < 8,
// a row's remainder) read nothing and add exactly 0, so the row's sum is the tile's bit for bit.
template <GgmlType kType, typename Block, int kCount>
HWY_INLINE __m256 gemv_q8_0_like_step_512(const uint8_t* x, int64_t i, const BlockQ8_0* yb, const float* act_scales,
                                          const int32_t* act_sums, __m256 acc) {
  constexpr int kShift = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  constexpr auto here = [](int k) { return k < kCount; };
  prefetch_weights(x + i * sizeof(Block), kCount * sizeof(Block));
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m512i s[4];
  for (int p = 0; p < 4; ++p) {
    const uint8_t* b0 = x + (i + 2 * p) * sizeof(Block);
    if (!here(2 * p)) {
      s[p] = _mm512_setzero_si512();
    } else if (here(2 * p + 1)) {
      const __m512i a = join256(load256(yb[i + 2 * p].qs), load256(yb[i + 2 * p + 1].qs));
      s[p] = dp_u8s8_512(_mm512_setzero_si512(), q8_0_like_unsigned_pair<kType>(b0, b0 + sizeof(Block)), a);
    } else {
      const __m512i a = join256(load256(yb[i + 2 * p].qs), _mm256_setzero_si256());
      const __m512i u = join256(q8_0_like_unsigned_block<kType>(b0), _mm256_setzero_si256());
      s[p] = dp_u8s8_512(_mm512_setzero_si512(), u, a);
    }
  }
  // The weight scales (d leads all three block types) in the reduced lane order, 0 for absent blocks, inserted lane
  // by lane (eight 2-byte stores read back as one vector would stall on store forwarding).
  auto d_of = [&](int b) {
    uint16_t h = 0;
    if (here(b)) std::memcpy(&h, x + (i + b) * sizeof(Block), 2);
    return static_cast<short>(h);
  };
  const __m256 dw =
      _mm256_cvtph_ps(_mm_setr_epi16(d_of(0), d_of(2), d_of(4), d_of(6), d_of(1), d_of(3), d_of(5), d_of(7)));
  constexpr __mmask8 kPresent = static_cast<__mmask8>((1u << kCount) - 1);
  const __m256 raw_da = kCount == 8 ? _mm256_loadu_ps(act_scales + i) : _mm256_maskz_loadu_ps(kPresent, act_scales + i);
  const __m256i raw_c = kCount == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act_sums + i))
                                    : _mm256_maskz_loadu_epi32(kPresent, act_sums + i);
  const __m256 da = _mm256_permutexvar_ps(order, raw_da);
  const __m256i c = _mm256_permutexvar_epi32(order, raw_c);
  const __m256i sums = _mm256_add_epi32(reduce_block_pairs(s[0], s[1], s[2], s[3]), _mm256_srai_epi32(c, kShift));
  return _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(sums), acc);
}

#if HWY_TARGET == HWY_AVX3_DL
// The same step with VBMI / BITALG (AVX3_DL), the same block sums and f32 steps (so bit-identical), in about half the
// instructions: decode is compute-bound on this kernel when memory is fast, and most of the step above goes to
// gathering bytes (two 16-byte nibble loads, the fifth bits through general registers, eight 2-byte scale loads).
// Here one masked 64-byte load takes a whole pair of blocks (Q5_0: 44 bytes, Q4_0: 36; Q8_0's 68-byte pairs load
// their first 64 for the scales), one vpermb places both blocks' nibbles in the tile's order, one vpshufbitqmb
// turns the two qh words into the fifth-bit mask, and two vpermt2w pick the eight scales out of the four pairs.
// `acts` is the activation's int8 values without their scales (q8_0_gemv_activation), one load per pair.
// With NT tokens the weights are unpacked once and each token's arithmetic is the one-token step's (a batched decode
// step: every token's numbers equal its numbers alone, bit for bit).
// The weight half of a step (shared with the one-token kernel over several rows below): blocks i .. i + kCount - 1
// of a row as four vectors u[p] of gemv's unsigned bytes (blocks 2p and 2p + 1; zero where absent) and their scales
// dw in the reduced lane order.
template <GgmlType kType, typename Block, int kCount>
HWY_INLINE void unpack_q8_0_like_step_vbmi(const uint8_t* x, int64_t i, __m512i (&u)[4], __m256& dw,
                                           size_t ahead = kPrefetchBytes) {
  constexpr int kBytes = static_cast<int>(sizeof(Block));
  constexpr int kQs = kBytes - 16;  // offset of the packed nibbles in a Q5_0 / Q4_0 block
  constexpr auto here = [](int k) { return k < kCount; };
  prefetch_weights_at(x + i * kBytes, kCount * kBytes, ahead);
  // Nibble byte j of the pair: chunks 0 and 1 (weights 0..15, 16..31 of the first block) take its qs bytes 0..15,
  // chunks 2 and 3 the second block's; the high nibbles (chunks 1 and 3) are shifted down afterwards.
  alignas(64) static constexpr auto kNibbleIndex = [] {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) idx[j] = static_cast<uint8_t>((j < 32 ? 0 : kBytes) + kQs + j % 16);
    return idx;
  }();
  // Qwords 0..3 of the fifth-bit source hold the first block's qh, 4..7 the second's (Q5_0: qh at byte 2); byte j
  // of the pair's weights takes bit j % 32 of its block's qh.
  alignas(64) static constexpr auto kHighIndex = [] {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) idx[j] = static_cast<uint8_t>((j < 32 ? 0 : kBytes) + 2 + j % 4);
    return idx;
  }();
  alignas(64) static constexpr auto kBitIndex = [] {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) idx[j] = static_cast<uint8_t>(j % 32);
    return idx;
  }();
  __m512i pair[4];
  for (int p = 0; p < 4; ++p) {
    const uint8_t* b0 = x + (i + 2 * p) * kBytes;
    if (!here(2 * p)) {
      pair[p] = u[p] = _mm512_setzero_si512();
      continue;
    }
    // Only the blocks present are read (a row's remainder ends at the row's last byte): absent bytes are zero, so
    // an absent second block has weights 0 and scale 0.
    constexpr int kPairBytes = kType == GgmlType::kQ8_0 ? 64 : 2 * kBytes;
    const __mmask64 load_mask = here(2 * p + 1) ? ~uint64_t{0} >> (64 - kPairBytes) : ~uint64_t{0} >> (64 - kBytes);
    pair[p] = _mm512_maskz_loadu_epi8(load_mask, b0);
    if constexpr (kType == GgmlType::kQ8_0) {
      const __m256i w1 = here(2 * p + 1) ? load256(b0 + kBytes + 2) : _mm256_setzero_si256();
      u[p] = _mm512_xor_si512(join256(load256(b0 + 2), w1), _mm512_set1_epi8(static_cast<char>(0x80)));
    } else {
      const __m512i placed = _mm512_permutexvar_epi8(_mm512_load_si512(kNibbleIndex.data()), pair[p]);
      const __m512i nibbles = _mm512_srlv_epi64(placed, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
      if constexpr (kType == GgmlType::kQ5_0) {
        const __m512i qh = _mm512_permutexvar_epi8(_mm512_load_si512(kHighIndex.data()), pair[p]);
        const __mmask64 fifth = _mm512_bitshuffle_epi64_mask(qh, _mm512_load_si512(kBitIndex.data()));
        const __m512i bit4 = _mm512_maskz_mov_epi8(fifth, _mm512_set1_epi8(0x10));
        u[p] = _mm512_ternarylogic_epi32(nibbles, _mm512_set1_epi8(0x0F), bit4, 0xEA);  // (nibbles & 0x0F) | bit4
      } else {
        u[p] = _mm512_and_si512(nibbles, _mm512_set1_epi8(0x0F));
      }
    }
  }
  // The weight scales in the reduced lane order (blocks 0, 2, 4, 6, 1, 3, 5, 7): word 0 of each pair and word
  // kBytes / 2 (the second block's d), from pairs 0-1 and 2-3.
  constexpr short kH = kBytes / 2;
  const __m512i d_index = _mm512_zextsi128_si512(_mm_setr_epi16(0, 32, 0, 32, kH, 32 + kH, kH, 32 + kH));
  const __m512i d16 = _mm512_or_si512(_mm512_maskz_permutex2var_epi16(0x33, pair[0], d_index, pair[1]),
                                      _mm512_maskz_permutex2var_epi16(0xCC, pair[2], d_index, pair[3]));
  dw = _mm256_cvtph_ps(_mm512_castsi512_si128(d16));
}

template <GgmlType kType, typename Block, int kCount, int NT>
HWY_INLINE void gemv_q8_0_like_step_vbmi(const uint8_t* x, int64_t i, const int8_t* const (&acts)[NT],
                                         const float* const (&act_scales)[NT], const int32_t* const (&act_sums)[NT],
                                         __m256 (&acc)[NT]) {
  constexpr int kShift = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  constexpr auto here = [](int k) { return k < kCount; };
  __m512i u[4];
  __m256 dw;
  unpack_q8_0_like_step_vbmi<kType, Block, kCount>(x, i, u, dw);
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  constexpr __mmask8 kPresent = static_cast<__mmask8>((1u << kCount) - 1);
  for (int t = 0; t < NT; ++t) {
    __m512i s[4];
    for (int p = 0; p < 4; ++p) {
      s[p] = here(2 * p) ? dp_u8s8_512(_mm512_setzero_si512(), u[p], load512(acts[t] + (i + 2 * p) * kQK8_0))
                         : _mm512_setzero_si512();
    }
    const float* as = act_scales[t] + i;
    const int32_t* ac = act_sums[t] + i;
    const __m256 raw_da = kCount == 8 ? _mm256_loadu_ps(as) : _mm256_maskz_loadu_ps(kPresent, as);
    const __m256i raw_c = kCount == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ac))
                                      : _mm256_maskz_loadu_epi32(kPresent, ac);
    const __m256 da = _mm256_permutexvar_ps(order, raw_da);
    const __m256i c = _mm256_permutexvar_epi32(order, raw_c);
    const __m256i block_sums = kType == GgmlType::kQ8_0 ? reduce_block_pairs(s[0], s[1], s[2], s[3])
                                                        : reduce_block_pairs_int16(s[0], s[1], s[2], s[3]);
    const __m256i sums = _mm256_add_epi32(block_sums, _mm256_srai_epi32(c, kShift));
    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(sums), acc[t]);
  }
}

// The activation's int8 values without their block scales, contiguous (one 64-byte load per pair of blocks), and
// zero past the end (a remainder's absent block is read as zeros): (blocks + 2) * 32 bytes at out.
HWY_INLINE void q8_0_gemv_activation(const BlockQ8_0* x, int64_t blocks, int8_t* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kQK8_0), load256(x[b].qs));
  }
  _mm512_storeu_si512(out + blocks * kQK8_0, _mm512_setzero_si512());
}

// The one-token step over kRows rows at once (x[k]: row k's blocks): each row's block sums, scales and f32 steps are
// gemv_q8_0_like_step_vbmi's with one token, lane for lane, so every row's sum is bit for bit the same; what the rows
// share is done once: the activation's loads, its scales and sums, and per two rows the last reduction level, the
// conversion and the FMA at 512 bits (acc[k / 2]: row k in lanes 8 (k % 2) .. 8 (k % 2) + 7). A 704-column expert
// row has only 22 blocks, so this per-step and per-row work was a large part of its time.
template <GgmlType kType, typename Block, int kCount, int kRows>
HWY_INLINE void gemv_q8_0_like_rows_step_vbmi(const uint8_t* const (&x)[kRows], int64_t i, const int8_t* act,
                                              const float* act_scales, const int32_t* act_sums, size_t ahead,
                                              __m512 (&acc)[kRows / 2]) {
  static_assert(kRows % 2 == 0);
  constexpr int kShift = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  constexpr auto here = [](int k) { return k < kCount; };
  constexpr __mmask8 kPresent = static_cast<__mmask8>((1u << kCount) - 1);
  __m512i a[4];
  for (int p = 0; p < 4; ++p) a[p] = here(2 * p) ? load512(act + (i + 2 * p) * kQK8_0) : _mm512_setzero_si512();
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256 raw_da = kCount == 8 ? _mm256_loadu_ps(act_scales + i) : _mm256_maskz_loadu_ps(kPresent, act_scales + i);
  const __m256i raw_c = kCount == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act_sums + i))
                                    : _mm256_maskz_loadu_epi32(kPresent, act_sums + i);
  const __m256 da = _mm256_permutexvar_ps(order, raw_da);
  const __m256i c = _mm256_srai_epi32(_mm256_permutexvar_epi32(order, raw_c), kShift);
  const __m512 da2 = _mm512_insertf32x8(_mm512_castps256_ps512(da), da, 1);
  const __m512i c2 = _mm512_inserti64x4(_mm512_castsi256_si512(c), c, 1);
  for (int k = 0; k < kRows; k += 2) {
    __m512i partials[2];
    __m256 dw[2];
    for (int h = 0; h < 2; ++h) {
      __m512i u[4], s[4];
      unpack_q8_0_like_step_vbmi<kType, Block, kCount>(x[k + h], i, u, dw[h], ahead);
      for (int p = 0; p < 4; ++p) s[p] = here(2 * p) ? dp_u8s8_512(_mm512_setzero_si512(), u[p], a[p]) : _mm512_setzero_si512();
      partials[h] = kType == GgmlType::kQ8_0 ? block_pair_partials(s[0], s[1], s[2], s[3])
                                             : block_pair_partials_int16(s[0], s[1], s[2], s[3]);
    }
    // block_totals of both rows at once: row k's totals in lanes 0..7, row k + 1's in 8..15.
    const __m512i even = _mm512_shuffle_i32x4(partials[0], partials[1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i odd = _mm512_shuffle_i32x4(partials[0], partials[1], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i sums = _mm512_add_epi32(_mm512_add_epi32(even, odd), c2);
    const __m512 dw2 = _mm512_insertf32x8(_mm512_castps256_ps512(dw[0]), dw[1], 1);
    acc[k / 2] = _mm512_fmadd_ps(_mm512_mul_ps(dw2, da2), _mm512_cvtepi32_ps(sums), acc[k / 2]);
  }
}

// hsum_f32x8 of the four rows in acc01 (rows 0, 1) and acc23 (rows 2, 3) into y[0..3], the same additions in the
// same pairs: (v0 + v4) + (v2 + v6) + ((v1 + v5) + (v3 + v7)).
HWY_INLINE void store_hsum_4_rows(__m512 acc01, __m512 acc23, float* y) {
  const __m512 low = _mm512_shuffle_f32x4(acc01, acc23, _MM_SHUFFLE(2, 0, 2, 0));   // v0..v3 of rows 0..3
  const __m512 high = _mm512_shuffle_f32x4(acc01, acc23, _MM_SHUFFLE(3, 1, 3, 1));  // v4..v7
  const __m512 s = _mm512_add_ps(low, high);
  const __m512 t = _mm512_add_ps(s, _mm512_permute_ps(s, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 r = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(2, 3, 0, 1)));
  _mm_storeu_ps(y, _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                                    0, 0, 0, 0), r)));
}
#endif

template <GgmlType kType, typename Block>
HWY_INLINE void gemv_q8_0_like_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                   const float* act_scales, const int32_t* act_sums, float* y) {
  const int64_t nb = n / kQK8_0;
  const BlockQ8_0* yb = reinterpret_cast<const BlockQ8_0*>(act);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* x = w + static_cast<size_t>(r) * row_stride;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) acc = gemv_q8_0_like_step_512<kType, Block, 8>(x, i, yb, act_scales, act_sums, acc);
    for_remainder_blocks(nb - i, [&](auto count) {
      acc = gemv_q8_0_like_step_512<kType, Block, decltype(count)::value>(x, i, yb, act_scales, act_sums, acc);
    });
    y[r] = hsum_f32x8(acc);
  }
}

#if HWY_TARGET == HWY_AVX3_DL
// NT tokens (activation rows act + t * act_stride, their block scales and sums at + t * (n / 32)) against `rows`
// rows, y[t * ldy + r], each pair of weight blocks unpacked once for all of them (gemv_q8_0_like_step_vbmi): one in
// decode, up to kTokensPerGemvCall in a batched step of a few sequences. The tokens' int8 values go to a 64-byte
// aligned buffer (whole cache lines per load).
template <GgmlType kType, typename Block, int NT>
HWY_INLINE void gemv_q8_0_like_tokens_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows,
                                           const uint8_t* act, size_t act_stride, const float* act_scales,
                                           const int32_t* act_sums, float* y, int64_t ldy) {
  const int64_t nb = n / kQK8_0;
  const size_t token_bytes = static_cast<size_t>(nb + 2) * kQK8_0;
  int8_t* scratch = reinterpret_cast<int8_t*>(gemv_scratch(NT * token_bytes));
  const int8_t* acts[NT];
  const float* scales[NT];
  const int32_t* sums[NT];
  for (int t = 0; t < NT; ++t) {
    int8_t* out = scratch + t * token_bytes;
    q8_0_gemv_activation(reinterpret_cast<const BlockQ8_0*>(act + t * act_stride), nb, out);
    acts[t] = out;
    scales[t] = act_scales + t * nb;
    sums[t] = act_sums + t * nb;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* x = w + static_cast<size_t>(r) * row_stride;
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) gemv_q8_0_like_step_vbmi<kType, Block, 8, NT>(x, i, acts, scales, sums, acc);
    for_remainder_blocks(nb - i, [&](auto count) {
      gemv_q8_0_like_step_vbmi<kType, Block, decltype(count)::value, NT>(x, i, acts, scales, sums, acc);
    });
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = hsum_f32x8(acc[t]);
  }
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// One token against `rows` rows, eight rows per pass (gemv_q8_0_like_rows_step_vbmi; against four, one core in L2:
// GemvKernel/q8_0/704 and q5_0/704 +9%, the 2816-column rows +0-3%): every row's sum bit for bit
// the one-token gemv_q8_0_like_tokens_vbmi's. Decode takes it for Q5_0 / Q4_0 (gemv_q8_0_like_avx512).
template <GgmlType kType, typename Block>
HWY_INLINE void gemv_q8_0_like_one_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                        const float* act_scales, const int32_t* act_sums, float* y) {
  constexpr int kRows = 8;
  const int64_t nb = n / kQK8_0;
  int8_t* a = reinterpret_cast<int8_t*>(gemv_scratch(static_cast<size_t>(nb + 2) * kQK8_0));
  q8_0_gemv_activation(reinterpret_cast<const BlockQ8_0*>(act), nb, a);
  // Each row's step prefetches `ahead` bytes past its own blocks. With a pass longer than kPrefetchBytes the usual
  // distance would land inside this pass (row k + 2 or k + 3, mostly lines already read): with 8 KiB, the 8-row Q8_0
  // passes of 2816 columns (23.9 KB) read 26.7 GB/s against 47.6 one pass ahead (GemvStream/q8_0/2/2816, alternating
  // pass by pass, BENCHMARKS.md "Decode round 5"). One whole pass ahead asks for each row's lines in the next pass.
  const size_t ahead = std::max<size_t>(kPrefetchBytes, kRows * row_stride);
  int64_t r = 0;
  for (; r + kRows <= rows; r += kRows) {
    const uint8_t* x[kRows];
    for (int k = 0; k < kRows; ++k) x[k] = w + static_cast<size_t>(r + k) * row_stride;
    __m512 acc[kRows / 2];
    for (auto& v : acc) v = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) gemv_q8_0_like_rows_step_vbmi<kType, Block, 8, kRows>(x, i, a, act_scales, act_sums, ahead, acc);
    for_remainder_blocks(nb - i, [&](auto count) {
      gemv_q8_0_like_rows_step_vbmi<kType, Block, decltype(count)::value, kRows>(x, i, a, act_scales, act_sums, ahead, acc);
    });
    for (int k = 0; k < kRows / 4; ++k) store_hsum_4_rows(acc[2 * k], acc[2 * k + 1], y + r + 4 * k);
  }
  // The last rows (fewer than kRows) one by one; it copies the same activation into the same scratch again.
  if (r < rows) {
    gemv_q8_0_like_tokens_vbmi<kType, Block, 1>(n, w + static_cast<size_t>(r) * row_stride, row_stride, rows - r, act, 0,
                                                act_scales, act_sums, y + r, 0);
  }
}
#endif

template <GgmlType kType, typename Block>
void gemv_q8_0_like_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                           const float* act_scales, const int32_t* act_sums, float* y) {
#if HWY_TARGET == HWY_AVX3_DL
  // Q8_0 one row at a time: its unpack is cheap, so streaming from DRAM is what limits it, and one sequential
  // stream per thread streams faster than eight interleaved rows (GemvStream 256 MB, 2 threads, alternating pass by
  // pass: 2816 columns 52.9 -> 74.1 GB/s and 704 columns 56.4 -> 66.2 with a read of 78; 38.5 -> 50.1 and 38.0 ->
  // 49.2 at 50). Q5_0 / Q4_0 unpack more per byte and are compute-bound when memory is fast, where eight rows per
  // pass stay faster (Q5_0/704: 54.6 with eight, 51.6 with four, 44.0 with one at a read of 78). The same sums
  // either way, bit for bit.
  if constexpr (kType == GgmlType::kQ8_0) {
    gemv_q8_0_like_tokens_vbmi<kType, Block, 1>(n, w, row_stride, rows, act, 0, act_scales, act_sums, y, 0);
  } else {
    gemv_q8_0_like_one_vbmi<kType, Block>(n, w, row_stride, rows, act, act_scales, act_sums, y);
  }
#else
  gemv_q8_0_like_512<kType, Block>(n, w, row_stride, rows, act, act_scales, act_sums, y);
#endif
}

#if HWY_TARGET == HWY_AVX3_DL
template <GgmlType kType, typename Block>
void gemv_tokens_q8_0_like_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                  size_t act_stride, const float* act_scales, const int32_t* act_sums, int nt, float* y,
                                  int64_t ldy) {
  with_token_count<kTokensPerGemvCall>(nt, [&](auto k) {
    gemv_q8_0_like_tokens_vbmi<kType, Block, decltype(k)::value>(n, w, row_stride, rows, act, act_stride, act_scales,
                                                                 act_sums, y, ldy);
  });
}
#endif

// The activation for gemv_q4_K_tokens_512: each 256-block's 16-byte chunks transposed as a 4 x 4 matrix, so that
// vector k (bytes 64k..64k+63) holds the activation of weights 64c + 16k .. 64c + 16k + 15 in its chunk c.
HWY_INLINE void q4_K_gemv_activation(const BlockQ8_K* x, int64_t blocks, int8_t* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    const int8_t* q = x[b].qs;
    const __m512i n0 = load512(q), n1 = load512(q + 64), n2 = load512(q + 128), n3 = load512(q + 192);
    const __m512i t0 = _mm512_shuffle_i64x2(n0, n1, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i t1 = _mm512_shuffle_i64x2(n0, n1, _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i t2 = _mm512_shuffle_i64x2(n2, n3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i t3 = _mm512_shuffle_i64x2(n2, n3, _MM_SHUFFLE(3, 2, 3, 2));
    int8_t* o = out + b * kQK_K;
    _mm512_storeu_si512(o, _mm512_shuffle_i64x2(t0, t2, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(o + 64, _mm512_shuffle_i64x2(t0, t2, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm512_storeu_si512(o + 128, _mm512_shuffle_i64x2(t1, t3, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(o + 192, _mm512_shuffle_i64x2(t1, t3, _MM_SHUFFLE(3, 1, 3, 1)));
  }
}

// yd * the activation sum of each 32-weight sub-block of blocks x[0 .. blocks - 1] (8 floats per block, 32-byte
// aligned), which a Q4_K block's dmin * mins multiply. The bsums come per 16 weights: they are added in pairs.
HWY_INLINE void q4_K_gemv_min_terms(const BlockQ8_K* x, int64_t blocks, float* out) {
  for (int64_t i = 0; i < blocks; ++i) {
    const __m256i sub_sums = _mm256_madd_epi16(load256(x[i].bsums), _mm256_set1_epi16(1));
    _mm256_store_ps(out + i * 8, _mm256_mul_ps(_mm256_set1_ps(x[i].d), _mm256_cvtepi32_ps(sub_sums)));
  }
}

// The Q4_K gemv: NT tokens (activation rows act + t * act_stride: one in decode, up to kTokensPerGemvCall in a
// batched step of a few sequences) against `rows` rows, y[t * ldy + r]. Decode is compute-bound on this kernel when
// memory is fast, so it spends fewer instructions per block than the tile: one vpdpbusd per 64 weights (the tile:
// maddubs, then the scale by vpmaddwd), the scales applied once per block. For that each int32 lane must hold
// weights of one sub-block only: with E = the 16-byte chunks 0, 2, 4, 6 of qs and O = chunks 1, 3, 5, 7, chunk c of
// E's and O's low nibbles holds sub-block 2c (weights 64c + 0..31) and of their high nibbles sub-block 2c + 1, so
// two vpdpbusd sum the even sub-blocks and two the odd ones, lane for lane, against the reordered activation. A
// lane sums 8 products of at most 15 x 128, so one vpackssdw puts both into int16 lanes for one vpmaddwd with the
// 6-bit scales. The integer sums per block are exact; the f32 steps differ from the tile's (tile_test.cpp compares
// both with the reference). Each block's weights, scales and mins are unpacked once for all NT tokens, and every
// token's arithmetic is the same whatever NT, so a token's numbers do not depend on the others' (bit for bit). On one
// core in L2 (bench_quant DecodeTokens/q4_K) 2 tokens ran at 1.3x and 4 at 1.6x the multiply-adds per second of one
// call per token, and 1.2x the tiles' with 2 or 4 tokens. Several tokens now take gemv_q4_K_grouped_512 (below).
template <int NT>
HWY_INLINE void gemv_q4_K_tokens_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                     size_t act_stride, float* y, int64_t ldy) {
  const int64_t nb = n / kQK_K;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  // Per token, 64-byte aligned (read as whole cache lines: loads across two lines made the 4-token kernel 5-8%
  // slower): the reordered activation (n bytes), then yd * the activation sum of each 32-weight sub-block (nb x 8
  // floats), which the mins multiply (one FMA per block and token instead of widening the bsums against them; into the
  // token's accumulator, lanes 0..7, so that two rows' accumulators of four tokens fit in the registers).
  const size_t token_bytes = static_cast<size_t>(n) + static_cast<size_t>(nb) * 8 * sizeof(float);
  uint8_t* const scratch = gemv_scratch(NT * token_bytes);
  auto reordered = [&](int t) { return reinterpret_cast<int8_t*>(scratch + t * token_bytes); };
  auto min_terms = [&](int t) { return reinterpret_cast<float*>(scratch + t * token_bytes + n); };
  for (int t = 0; t < NT; ++t) {
    q4_K_gemv_activation(yb(t), nb, reordered(t));
    q4_K_gemv_min_terms(yb(t), nb, min_terms(t));
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // After vpackssdw(even, odd), int16 lane j holds sub-block j / 4 (chunk c: 4 lanes of 2c, then 4 of 2c + 1).
  const __m512i scale_index = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2,
                                               1, 1, 1, 1, 0, 0, 0, 0);  // lanes 31 down to 0
  // One row's block i, unpacked once for all tokens.
  struct Unpacked {
    __m512i q[4], scales;
    __m512 d;
    __m512 dmin_mins;  // lanes 8..15 zero
  };
  auto unpack = [&](const BlockQ4_K& x) {
    Unpacked u;
    // The scales into their int16 lanes: with VBMI one vpermb, zero-extended by the mask (the index vector's low
    // bytes are the byte indices).
    const __m128i scales_mins = unpack_k_scales_128(x.scales);
#if HWY_TARGET == HWY_AVX3_DL
    u.scales = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index, _mm512_castsi128_si512(scales_mins));
#else
    u.scales = _mm512_permutexvar_epi16(scale_index, _mm512_castsi256_si512(_mm256_cvtepu8_epi16(scales_mins)));
#endif
    const __m512i a = load512(x.qs), b = load512(x.qs + 64);
    const __m512i even_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i odd_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    u.q[0] = _mm512_and_si512(even_chunks, m4);
    u.q[1] = _mm512_and_si512(odd_chunks, m4);
#if HWY_TARGET == HWY_AVX3_DL
    // 16 x the high nibbles (one vpandn each instead of a shift and an and), the sums shifted back once per block:
    // every product is a multiple of 16, so the shift is exact. Not without VNNI: maddubs would saturate.
    u.q[2] = _mm512_andnot_si512(m4, even_chunks);
    u.q[3] = _mm512_andnot_si512(m4, odd_chunks);
#else
    u.q[2] = _mm512_and_si512(_mm512_srli_epi16(even_chunks, 4), m4);
    u.q[3] = _mm512_and_si512(_mm512_srli_epi16(odd_chunks, 4), m4);
#endif
    uint32_t d_dmin_bits;  // d and dmin (adjacent halves) in lanes 0 and 1, converted together
    std::memcpy(&d_dmin_bits, &x.d, 4);
    const __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin_bits)));
    u.d = _mm512_broadcastss_ps(d_dmin);
    // dmin * the min of each sub-block (bytes 8..15 of the unpacked scales), shared by every token: dmin broadcast
    // by one vpermps and (with VBMI) the mins zero-extended into dwords by one masked vpermb, one shuffle each
    // instead of two.
#if HWY_TARGET == HWY_AVX3_DL
    const __m256i min_index = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);  // each dword's low byte
    const __m256i mins = _mm256_maskz_permutexvar_epi8(0x11111111u, min_index, _mm256_castsi128_si256(scales_mins));
#else
    const __m256i mins = _mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8));
#endif
    const __m256 dmin = _mm256_permutexvar_ps(_mm256_set1_epi32(1), _mm256_castps128_ps256(d_dmin));
    u.dmin_mins = _mm512_zextps256_ps512(_mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mins)));
    return u;
  };
  // A token's block against one row's unpacked block: the integer sums, then its f32 steps.
  auto accumulate = [&](const Unpacked& u, const __m512i (&ya)[4], float yd, const float* min_term, __m512& acc) {
    __m512i even = dp_u8s8_512(_mm512_setzero_si512(), u.q[0], ya[0]);
    even = dp_u8s8_512(even, u.q[1], ya[1]);
    __m512i odd = dp_u8s8_512(_mm512_setzero_si512(), u.q[2], ya[2]);
    odd = dp_u8s8_512(odd, u.q[3], ya[3]);
#if HWY_TARGET == HWY_AVX3_DL
    odd = _mm512_srai_epi32(odd, 4);  // the high nibbles came in as 16 x their value
#endif
    const __m512i sum = _mm512_madd_epi16(_mm512_packs_epi32(even, odd), u.scales);
    acc = _mm512_fmadd_ps(_mm512_mul_ps(u.d, _mm512_set1_ps(yd)), _mm512_cvtepi32_ps(sum), acc);
    acc = _mm512_fnmadd_ps(u.dmin_mins, _mm512_zextps256_ps512(_mm256_load_ps(min_term)), acc);
  };
  // kRows rows per pass: each token's activation is loaded once for all of them. Every row's steps are the same
  // whatever kRows.
  auto pass = [&]<int kRows>(int64_t r) {
    const BlockQ4_K* x[kRows];
    for (int k = 0; k < kRows; ++k) x[k] = reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r + k) * row_stride);
    __m512 acc[kRows][NT];
    for (int k = 0; k < kRows; ++k) {
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
      Unpacked u[kRows];
      for (int k = 0; k < kRows; ++k) {
        prefetch_weights(x[k] + i, sizeof(BlockQ4_K));
        u[k] = unpack(x[k][i]);
      }
      for (int t = 0; t < NT; ++t) {
        const int8_t* p = reordered(t) + i * kQK_K;
        const __m512i ya[4] = {load512(p), load512(p + 64), load512(p + 128), load512(p + 192)};
        for (int k = 0; k < kRows; ++k) accumulate(u[k], ya, yb(t)[i].d, min_terms(t) + i * 8, acc[k][t]);
      }
    }
    for (int k = 0; k < kRows; ++k) {
      for (int t = 0; t < NT; ++t) y[t * ldy + r + k] = _mm512_reduce_add_ps(acc[k][t]);
    }
  };
  // Two rows per pass with several tokens (DecodeTokens/q4_K/2/3/4: 135-148, 164-173, 178-190 -> 151-155,
  // 177-182, 190-191 G MAC/s); with one token nothing is shared.
  constexpr int kPairRows = NT >= 2 ? 2 : 1;
  int64_t r = 0;
  for (; r + kPairRows <= rows; r += kPairRows) pass.template operator()<kPairRows>(r);
  for (; r < rows; ++r) pass.template operator()<1>(r);
}

// The headers (d, dmin and the 12 packed scale bytes: the first 16 bytes) of Q4_K blocks x[0 .. kCount - 1]
// (kCount <= 4), block b's in 128-bit chunk b, so that the scale unpack and the conversions run once per four blocks
// instead of once per block at 128 bits.
template <int kCount>
HWY_INLINE __m512i load_q4_K_headers(const BlockQ4_K* x) {
  auto head = [&](int b) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + b)); };
  __m512i h = _mm512_zextsi128_si512(head(0));
  if constexpr (kCount > 1) h = _mm512_inserti32x4(h, head(1), 1);
  if constexpr (kCount > 2) h = _mm512_inserti32x4(h, head(2), 2);
  if constexpr (kCount > 3) h = _mm512_inserti32x4(h, head(3), 3);
  return h;
}

// unpack_k_scales_128 on the headers of load_q4_K_headers: chunk b holds block b's 8 scales (bytes 0..7) and 8 mins
// (bytes 8..15). Each chunk's dwords are d|dmin, u0, u1, u2.
HWY_INLINE __m512i unpack_q4_K_header_scales(__m512i h) {
  const __m512i a = _mm512_shuffle_epi32(h, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(3, 2, 3, 1)));  // u0 u2 u1 u2
  const __m512i low = _mm512_and_si512(_mm512_srlv_epi32(a, _mm512_setr4_epi32(0, 0, 0, 4)),
                                       _mm512_setr4_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m512i b = _mm512_shuffle_epi32(h, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(2, 2, 1, 1)));  // u0 u0 u1 u1
  const __m512i high = _mm512_and_si512(_mm512_srli_epi32(b, 2), _mm512_setr4_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm512_or_si512(low, high);
}

// The multi-token Q4_K gemv (NT >= 2 tokens of a batched decode step), the same per-lane arithmetic as
// gemv_q4_K_tokens_512 (so every token's numbers equal the one-token gemv's, bit for bit), with the blocks in groups
// of four: their headers are unpacked together at 512 bits (the scales, d and dmin of four blocks in the
// instructions one block takes at 128 bits), dmin times the mins of two blocks are converted together, and d * yd
// and the mins reach each block's FMAs as memory operands. One core in L2, base 049c7cf / this, GB/s of weights
// (`bench_quant --benchmark_filter=DecodeTokens/q4_K`, alternating): 2 tokens 17.9-18.1 / 37.5-39.3, 3 tokens
// 14.4 / 30.4-31.2, 4 tokens 16.5-16.8 / 24.6-25.3. With one token the grouping ran no faster (GemvKernel/q4_K/2816
// 49.4-50.1 against 49.9-51.1 GiB/s with one row per pass; with two rows per pass 4% faster in L2 but 20% slower
// streaming from memory), so one token keeps gemv_q4_K_tokens_512.
template <int NT>
HWY_INLINE void gemv_q4_K_grouped_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                     size_t act_stride, float* y, int64_t ldy) {
  constexpr int kGroup = 4;
  const int64_t nb = n / kQK_K;
  const int64_t nb_groups = (nb + kGroup - 1) / kGroup * kGroup;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  // Per token, 64-byte aligned (read as whole cache lines: loads across two lines made the 4-token kernel 5-8%
  // slower): the reordered activation (n bytes), then yd * the activation sum of each 32-weight sub-block (nb x 8
  // floats), which the mins multiply (one FMA per block and token instead of widening the bsums against them; into the
  // token's accumulator, lanes 0..7, so that two rows' accumulators of four tokens fit in the registers), then each
  // block's yd twice (a group's d and dmin multiply them in one instruction; whole groups).
  const size_t token_bytes = (static_cast<size_t>(n) + static_cast<size_t>(nb) * 8 * sizeof(float) +
                              static_cast<size_t>(nb_groups) * 2 * sizeof(float) + 63) / 64 * 64;
  uint8_t* const scratch = gemv_scratch(NT * token_bytes);
  auto reordered = [&](int t) { return reinterpret_cast<int8_t*>(scratch + t * token_bytes); };
  auto min_terms = [&](int t) { return reinterpret_cast<float*>(scratch + t * token_bytes + n); };
  auto yd_pairs = [&](int t) { return min_terms(t) + nb * 8; };
  for (int t = 0; t < NT; ++t) {
    q4_K_gemv_activation(yb(t), nb, reordered(t));
    q4_K_gemv_min_terms(yb(t), nb, min_terms(t));
    for (int64_t i = 0; i < nb_groups; ++i) {
      const float d = i < nb ? yb(t)[i].d : 0.0f;
      yd_pairs(t)[2 * i] = yd_pairs(t)[2 * i + 1] = d;
    }
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // Block b's scales into int16 lanes for the vpmaddwd: after vpackssdw(even, odd), int16 lane j holds sub-block
  // j / 4 (chunk c: 4 lanes of 2c, then 4 of 2c + 1). With VBMI one vpermb from the unpacked headers, zero-extended
  // by the mask (the index's low bytes are byte indices); else one vpermw from the headers widened to int16 (blocks
  // 2p and 2p + 1 in one vector).
  alignas(64) static constexpr auto kScaleIndex = [] {
    std::array<std::array<int16_t, 32>, kGroup> idx{};
    for (int b = 0; b < kGroup; ++b) {
      for (int j = 0; j < 32; ++j) {
#if HWY_TARGET == HWY_AVX3_DL
        idx[b][j] = static_cast<int16_t>(16 * b + j / 4);
#else
        idx[b][j] = static_cast<int16_t>(16 * (b % 2) + j / 4);
#endif
      }
    }
    return idx;
  }();
  // The mins of blocks 2p (lanes 0..7) and 2p + 1 (lanes 8..15) as int32: byte indices in each dword's low byte
  // (VBMI), else int16 lane indices into the widened pair.
#if HWY_TARGET == HWY_AVX3_DL
  alignas(64) static constexpr auto kMinIndex = [] {
    std::array<std::array<uint8_t, 64>, kGroup / 2> idx{};
    for (int p = 0; p < kGroup / 2; ++p) {
      for (int j = 0; j < 16; ++j) idx[p][4 * j] = static_cast<uint8_t>(32 * p + 16 * (j / 8) + 8 + j % 8);
    }
    return idx;
  }();
#else
  alignas(64) static constexpr auto kMinIndex = [] {
    std::array<int16_t, 32> idx{};
    for (int j = 0; j < 16; ++j) idx[j] = static_cast<int16_t>(16 * (j / 8) + 8 + j % 8);
    return idx;
  }();
#endif
  // d and dmin of the four blocks: half-float lanes 0, 1, 8, 9, ... of the headers.
  const __m512i d_dmin_index = _mm512_zextsi128_si512(_mm_setr_epi16(0, 1, 8, 9, 16, 17, 24, 25));
  // kRows rows per pass: each token's activation is loaded once for all of them. Every row's steps are the same
  // whatever kRows.
  auto pass = [&]<int kRows>(int64_t r) {
    const BlockQ4_K* x[kRows];
    for (int k = 0; k < kRows; ++k) x[k] = reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r + k) * row_stride);
    __m512 acc[kRows][NT];
    for (int k = 0; k < kRows; ++k) {
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm512_setzero_ps();
    }
    // Blocks i .. i + kCount - 1 of the rows.
    auto group = [&]<int kCount>(int64_t i) __attribute__((always_inline)) {
      __m512i sm[kRows];  // the unpacked scales and mins, block b's in chunk b
#if HWY_TARGET != HWY_AVX3_DL
      __m512i sm16[kRows][2];  // widened to int16, blocks 2p and 2p + 1 in sm16[.][p]
#endif
      __m256 d_dmin[kRows];  // d and dmin of block b in lanes 2b and 2b + 1
      // Per row (and token): d * yd of block b at [2b], broadcast from memory into each block's FMA (a load, where a
      // broadcast from a register is a shuffle), and dmin * the mins of block b at [8b .. 8b + 7].
      alignas(64) float dyd[kRows][NT][8];
      alignas(64) float dmin_mins[kRows][kGroup * 8];
      for (int k = 0; k < kRows; ++k) {
        // A fixed count of lines, rounded up (at most one line asked for twice, at a row's last group): the
        // address-dependent loop of prefetch_weights cost the remainder groups here 9% at 2 tokens, 12% at 3
        // (DecodeTokens/q4_K, one core, four alternating rounds; BENCHMARKS.md "Decode round 6").
        prefetch_weights_lines<(kCount * sizeof(BlockQ4_K) + 63) / 64>(x[k] + i);
        const __m512i h = load_q4_K_headers<kCount>(x[k] + i);
        sm[k] = unpack_q4_K_header_scales(h);
#if HWY_TARGET != HWY_AVX3_DL
        sm16[k][0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sm[k]));
        sm16[k][1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sm[k], 1));
#endif
        d_dmin[k] = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(d_dmin_index, h)));
        for (int t = 0; t < NT; ++t) {
          _mm256_store_ps(dyd[k][t], _mm256_mul_ps(d_dmin[k], _mm256_load_ps(yd_pairs(t) + 2 * i)));
        }
      }
      auto block = [&]<int B>() __attribute__((always_inline)) {
        struct Unpacked {
          __m512i q[4], scales;
        } u[kRows];
        for (int k = 0; k < kRows; ++k) {
          const uint8_t* qs = x[k][i + B].qs;
          const __m512i a = load512(qs), b = load512(qs + 64);
          const __m512i even_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));
          const __m512i odd_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));
          u[k].q[0] = _mm512_and_si512(even_chunks, m4);
          u[k].q[1] = _mm512_and_si512(odd_chunks, m4);
          u[k].q[2] = _mm512_and_si512(_mm512_srli_epi16(even_chunks, 4), m4);
          u[k].q[3] = _mm512_and_si512(_mm512_srli_epi16(odd_chunks, 4), m4);
          const __m512i scale_index = _mm512_load_si512(kScaleIndex[B].data());
#if HWY_TARGET == HWY_AVX3_DL
          u[k].scales = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index, sm[k]);
#else
          u[k].scales = _mm512_permutexvar_epi16(scale_index, sm16[k][B / 2]);
#endif
          if constexpr (B % 2 == 0) {
            const __m512 dmin = _mm512_permutexvar_ps(
                _mm512_inserti64x4(_mm512_set1_epi32(B * 2 + 1), _mm256_set1_epi32(B * 2 + 3), 1),
                _mm512_zextps256_ps512(d_dmin[k]));
#if HWY_TARGET == HWY_AVX3_DL
            const __m512i mins = _mm512_maskz_permutexvar_epi8(
                0x1111111111111111ULL, _mm512_load_si512(kMinIndex[B / 2].data()), sm[k]);
#else
            const __m512i mins = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(
                _mm512_permutexvar_epi16(_mm512_load_si512(kMinIndex.data()), sm16[k][B / 2])));
#endif
            _mm512_store_ps(dmin_mins[k] + 8 * B, _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mins)));
          }
        }
        for (int t = 0; t < NT; ++t) {
          const int8_t* p = reordered(t) + (i + B) * kQK_K;
          const __m512i ya[4] = {load512(p), load512(p + 64), load512(p + 128), load512(p + 192)};
          const __m512 min_term = _mm512_castps256_ps512(_mm256_load_ps(min_terms(t) + (i + B) * 8));
          for (int k = 0; k < kRows; ++k) {
            __m512i even = dp_u8s8_512(_mm512_setzero_si512(), u[k].q[0], ya[0]);
            even = dp_u8s8_512(even, u[k].q[1], ya[1]);
            __m512i odd = dp_u8s8_512(_mm512_setzero_si512(), u[k].q[2], ya[2]);
            odd = dp_u8s8_512(odd, u[k].q[3], ya[3]);
            const __m512i sum = _mm512_madd_epi16(_mm512_packs_epi32(even, odd), u[k].scales);
            acc[k][t] = _mm512_fmadd_ps(_mm512_set1_ps(dyd[k][t][2 * B]), _mm512_cvtepi32_ps(sum), acc[k][t]);
            acc[k][t] = _mm512_mask3_fnmadd_ps(_mm512_castps256_ps512(_mm256_load_ps(dmin_mins[k] + 8 * B)), min_term,
                                               acc[k][t], 0x00FF);
          }
        }
      };
      [&]<int... B>(std::integer_sequence<int, B...>) {
        (block.template operator()<B>(), ...);
      }(std::make_integer_sequence<int, kCount>());
    };
    int64_t i = 0;
    for (; i + kGroup <= nb; i += kGroup) group.template operator()<kGroup>(i);
    switch (nb - i) {
      case 1: group.template operator()<1>(i); break;
      case 2: group.template operator()<2>(i); break;
      case 3: group.template operator()<3>(i); break;
      default: break;
    }
    for (int k = 0; k < kRows; ++k) {
      for (int t = 0; t < NT; ++t) y[t * ldy + r + k] = _mm512_reduce_add_ps(acc[k][t]);
    }
  };
  // Two rows per pass: the rows share each token's activation loads.
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) pass.template operator()<2>(r);
  for (; r < rows; ++r) pass.template operator()<1>(r);
}

inline void gemv_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
  gemv_q4_K_tokens_512<1>(n, w, row_stride, rows, act, 0, y, 0);
}

inline void gemv_tokens_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
  with_token_count<kTokensPerGemvCall>(nt, [&](auto k) {
    if constexpr (decltype(k)::value == 1) {
      gemv_q4_K_tokens_512<1>(n, w, row_stride, rows, act, act_stride, y, ldy);
    } else {
      gemv_q4_K_grouped_512<decltype(k)::value>(n, w, row_stride, rows, act, act_stride, y, ldy);
    }
  });
}

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
      prefetch_weights(x + i, sizeof(*x));
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

inline void fill_avx512_gemv(KernelTable* t) {
#if HWY_TARGET == HWY_AVX3_DL
  t->gemv[kernel_slot(GgmlType::kQ8_0)] = gemv_q8_0_like_avx512<GgmlType::kQ8_0, BlockQ8_0>;
#endif
  t->gemv[kernel_slot(GgmlType::kQ4_K)] = gemv_q4_K_avx512;
  t->gemv_every_token[kernel_slot(GgmlType::kQ4_K)] = true;
  t->gemv_tokens[kernel_slot(GgmlType::kQ4_K)] = gemv_tokens_q4_K_avx512;
  t->gemv[kernel_slot(GgmlType::kQ6_K)] = gemv_q6_K_avx512;
  t->gemv_every_token[kernel_slot(GgmlType::kQ6_K)] = true;
  t->gemv_tokens[kernel_slot(GgmlType::kQ6_K)] = gemv_tokens_q6_K_avx512;
  t->gemv[kernel_slot(GgmlType::kQ5_0)] = gemv_q8_0_like_avx512<GgmlType::kQ5_0, BlockQ5_0>;
  t->gemv[kernel_slot(GgmlType::kQ4_0)] = gemv_q8_0_like_avx512<GgmlType::kQ4_0, BlockQ4_0>;
#if HWY_TARGET == HWY_AVX3_DL
  t->gemv_tokens[kernel_slot(GgmlType::kQ8_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ8_0, BlockQ8_0>;
  t->gemv_tokens[kernel_slot(GgmlType::kQ5_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ5_0, BlockQ5_0>;
  t->gemv_tokens[kernel_slot(GgmlType::kQ4_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ4_0, BlockQ4_0>;
#endif
}
