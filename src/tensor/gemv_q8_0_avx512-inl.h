// AVX-512 decode gemvs of the Q8_0 family (Q8_0, Q5_0, Q4_0): one token or the few tokens of a batched step.
// Included by gemv_avx512-inl.h inside the AVX3 and AVX3_DL target namespaces. No include guard on purpose.

// One token (decode) against `rows` rows of Q8_0 / Q5_0 / Q4_0: y[r] equals tile_q8_0_like_512<.., 1>'s result for
// row r bit for bit. The weights go to vpdpbusd as unsigned bytes u = w + c (Q8_0: c = 128, the sign bit flipped;
// Q5_0: c = 16, the 5-bit value before its offset, the fifth bit from a mask register; Q4_0: c = 8, the nibble),
// and c * Σa comes off each block's sum from the activation's precomputed block sums (act_sums = -128 * Σa), so no
// per-row sign work remains: the block sums are the same integers as the tile's, and the f32 steps are the tile's
// in the same order. One call covers all rows (no indirect call and setup per 704-column expert row).
// Without VNNI only Q5_0 / Q4_0 (u < 32): maddubs would saturate on u up to 255.
// The fifth bits of a pair of Q5_0 blocks as a byte mask (bit j: weight j of the first block, 32 + j of the second),
// from their qh words through a general register; qh1 nullptr: no second block (its bits zero).
HWY_INLINE __mmask64 q5_0_pair_fifth_bits(const uint8_t* qh0, const uint8_t* qh1) {
  uint32_t h0, h1 = 0;
  std::memcpy(&h0, qh0, 4);
  if (qh1 != nullptr) std::memcpy(&h1, qh1, 4);
  return _cvtu64_mask64(static_cast<uint64_t>(h0) | static_cast<uint64_t>(h1) << 32);
}

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
      const __mmask64 fifth = q5_0_pair_fifth_bits(x0->qh, x1->qh);
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
  prefetch_weights_at(x + i * sizeof(Block), kCount * sizeof(Block), kDecodePrefetchBytes);
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
// GF2P8AFFINEQB: every byte of x through the bit matrix of its qword (result bit b is the parity of byte 7 - b of
// the matrix and the input byte), so one instruction moves and masks any of a byte's bits. Inline assembly:
// Highway's AVX3_DL target does not enable GFNI, so callers check for it at run time (gemv_q8_0_like_avx512,
// gemv_q6_K_avx512). With kGfLowNibble in every qword each byte keeps its low nibble, with kGfHighNibble its high
// nibble moves down (the other four bits zero): one instruction instead of a shift and an and.
constexpr long long kGfLowNibble = 0x0102040800000000LL, kGfHighNibble = 0x1020408000000000LL;
HWY_INLINE __m512i gf2p8affine_bytes(__m512i x, __m512i matrix) {
  __m512i out;
  asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(x), "v"(matrix));
  return out;
}

// The same step with VBMI / BITALG (AVX3_DL), the same block sums and f32 steps (so bit-identical), in about half the
// instructions: decode is compute-bound on this kernel when memory is fast, and most of the step above goes to
// gathering bytes (two 16-byte nibble loads, the fifth bits through general registers, eight 2-byte scale loads).
// Here one masked 64-byte load takes a whole pair of blocks (Q5_0: 44 bytes, Q4_0: 36; Q8_0's 68-byte pairs load
// their first 64 for the scales), one vpermb places both blocks' nibbles in the tile's order, the fifth-bit mask
// comes from the two qh words (kGprFifthBits: through a general register and one kmovq, faster on Intel, where
// every byte permute shares port 5; else one more vpermb and a vpshufbitqmb, faster on AMD; decode_stream.h), and
// two vpermt2w pick the eight scales out of the four pairs.
// `acts` is the activation's int8 values without their scales (q8_0_gemv_activation), one load per pair.
// With NT tokens the weights are unpacked once and each token's arithmetic is the one-token step's (a batched decode
// step: every token's numbers equal its numbers alone, bit for bit).
// The weight half of a step (shared by the step's tokens): blocks i .. i + kCount - 1
// of a row as four vectors u[p] of gemv's unsigned bytes (blocks 2p and 2p + 1; zero where absent) and their scales
// dw in the reduced lane order.
template <GgmlType kType, typename Block, int kCount, bool kGprFifthBits>
HWY_INLINE void unpack_q8_0_like_step_vbmi(const uint8_t* x, int64_t i, __m512i (&u)[4], __m256& dw) {
  constexpr int kBytes = static_cast<int>(sizeof(Block));
  constexpr int kQs = kBytes - 16;  // offset of the packed nibbles in a Q5_0 / Q4_0 block
  constexpr auto here = [](int k) { return k < kCount; };
  // A fixed count of lines (at most one asked for twice): prefetch_weights' address-dependent loop cost the one-token
  // Q8_0 gemv 13-16% (GemvKernel/q8_0, one core in L2, alternating).
  prefetch_weights_lines<(kCount * kBytes + 63) / 64>(x + i * kBytes);
  // Nibble byte j of the pair: chunks 0 and 1 (weights 0..15, 16..31 of the first block) take its qs bytes 0..15,
  // chunks 2 and 3 the second block's; the high nibbles (chunks 1 and 3) are shifted down afterwards.
  alignas(64) static constexpr auto kNibbleIndex = [] {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) idx[j] = static_cast<uint8_t>((j < 32 ? 0 : kBytes) + kQs + j % 16);
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
        // Byte j of the pair's weights takes bit j % 32 of its block's qh (Q5_0: qh at byte 2).
        __mmask64 fifth;
        if constexpr (kGprFifthBits) {
          const auto* first = reinterpret_cast<const Block*>(b0);
          fifth = q5_0_pair_fifth_bits(first[0].qh, here(2 * p + 1) ? first[1].qh : nullptr);
        } else {
          // Qwords 0..3 of the source hold the first block's qh, 4..7 the second's.
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
          const __m512i qh = _mm512_permutexvar_epi8(_mm512_load_si512(kHighIndex.data()), pair[p]);
          fifth = _mm512_bitshuffle_epi64_mask(qh, _mm512_load_si512(kBitIndex.data()));
        }
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

// The one-token rows kernel's weight half (Q5_0 / Q4_0): blocks i .. i + kCount - 1 of a row as two groups of four
// blocks, u[2g] the low nibbles (weights 0..15 of blocks 4g .. 4g + 3, 16 bytes each) and u[2g + 1] the high nibbles
// (weights 16..31), each with its fifth bits; zero where absent. One vpermt2b places a group's 64 qs bytes from two
// pair loads, so both nibble vectors share it, and vpdpbusd of both into one accumulator leaves 4 lanes per block
// (gemv_q8_0_like_rows_step_vbmi reduces them). The nibbles by GF2P8AFFINEQB (so only with GFNI) and the fifth bits
// by a masked byte add. dw: the scales as unpack_q8_0_like_step_vbmi's.
template <GgmlType kType, typename Block, int kCount>
HWY_INLINE void unpack_q8_0_like_groups_vbmi(const uint8_t* x, int64_t i, __m512i (&u)[4], __m256& dw, size_t ahead) {
  static_assert(kType == GgmlType::kQ5_0 || kType == GgmlType::kQ4_0);
  constexpr int kBytes = static_cast<int>(sizeof(Block));
  constexpr int kQs = kBytes - 16;  // offset of the packed nibbles in a block
  constexpr auto here = [](int k) { return k < kCount; };
  prefetch_weights_at(x + i * kBytes, kCount * kBytes, ahead);
  // Byte 16 b + k of a group takes qs byte k (nibbles) or qh byte k % 4 (fifth bits) of its block b: blocks 0 and 1
  // from the first pair's load, 2 and 3 from the second's (index + 64).
  auto group_index = [](int offset, int period) {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) {
      idx[j] = static_cast<uint8_t>((j / 16 >= 2 ? 64 : 0) + (j / 16 % 2) * kBytes + offset + j % period);
    }
    return idx;
  };
  alignas(64) static constexpr auto kNibbleIndex = group_index(kQs, 16);
  alignas(64) static constexpr auto kHighIndex = group_index(2, 4);
  // Weight k of a block is bit k (low nibbles) or 16 + k (high) of its qh, repeated in every qword of its 16 bytes.
  auto bit_index = [](int first) {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 64; ++j) idx[j] = static_cast<uint8_t>(first + j % 16);
    return idx;
  };
  alignas(64) static constexpr auto kLowBits = bit_index(0);
  alignas(64) static constexpr auto kHighBits = bit_index(16);
  __m512i pair[4];
  for (int p = 0; p < 4; ++p) {
    const __mmask64 load_mask = here(2 * p + 1) ? ~uint64_t{0} >> (64 - 2 * kBytes) : ~uint64_t{0} >> (64 - kBytes);
    pair[p] = here(2 * p) ? _mm512_maskz_loadu_epi8(load_mask, x + (i + 2 * p) * kBytes) : _mm512_setzero_si512();
  }
  for (int g = 0; g < 2; ++g) {
    if (!here(4 * g)) {
      u[2 * g] = u[2 * g + 1] = _mm512_setzero_si512();
      continue;
    }
    const __m512i placed = _mm512_permutex2var_epi8(pair[2 * g], _mm512_load_si512(kNibbleIndex.data()), pair[2 * g + 1]);
    const __m512i low = gf2p8affine_bytes(placed, _mm512_set1_epi64(kGfLowNibble));
    const __m512i high = gf2p8affine_bytes(placed, _mm512_set1_epi64(kGfHighNibble));
    if constexpr (kType == GgmlType::kQ5_0) {
      const __m512i qh = _mm512_permutex2var_epi8(pair[2 * g], _mm512_load_si512(kHighIndex.data()), pair[2 * g + 1]);
      const __mmask64 fifth_low = _mm512_bitshuffle_epi64_mask(qh, _mm512_load_si512(kLowBits.data()));
      const __mmask64 fifth_high = _mm512_bitshuffle_epi64_mask(qh, _mm512_load_si512(kHighBits.data()));
      u[2 * g] = _mm512_mask_add_epi8(low, fifth_low, low, _mm512_set1_epi8(0x10));
      u[2 * g + 1] = _mm512_mask_add_epi8(high, fifth_high, high, _mm512_set1_epi8(0x10));
    } else {
      u[2 * g] = low;
      u[2 * g + 1] = high;
    }
  }
  constexpr short kH = kBytes / 2;
  const __m512i d_index = _mm512_zextsi128_si512(_mm_setr_epi16(0, 32, 0, 32, kH, 32 + kH, kH, 32 + kH));
  const __m512i d16 = _mm512_or_si512(_mm512_maskz_permutex2var_epi16(0x33, pair[0], d_index, pair[1]),
                                      _mm512_maskz_permutex2var_epi16(0xCC, pair[2], d_index, pair[3]));
  dw = _mm256_cvtph_ps(_mm512_castsi512_si128(d16));
}

// The activation side of gemv_q8_0_like_step_vbmi for one token, once per call instead of once per row and step:
// its block scales and c * Σa (the block sums shifted as below) in the step's reduced lane order (blocks 0, 2, 4, 6,
// 1, 3, 5, 7 of every 8), zero past the last block, at step_scales / step_sums (nb rounded up to 8 values each).
template <GgmlType kType>
HWY_INLINE void q8_0_gemv_step_scales(const float* act_scales, const int32_t* act_sums, int64_t nb,
                                      float* step_scales, int32_t* step_sums) {
  constexpr int kShift = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int64_t i = 0; i < nb; i += 8) {
    const __mmask8 present = static_cast<__mmask8>((1u << std::min<int64_t>(8, nb - i)) - 1);
    const __m256 da = _mm256_permutexvar_ps(order, _mm256_maskz_loadu_ps(present, act_scales + i));
    const __m256i c = _mm256_permutexvar_epi32(order, _mm256_maskz_loadu_epi32(present, act_sums + i));
    _mm256_storeu_ps(step_scales + i, da);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(step_sums + i), _mm256_srai_epi32(c, kShift));
  }
}

// step_scales / step_sums: q8_0_gemv_step_scales' of each token.
template <GgmlType kType, typename Block, int kCount, int NT, bool kGprFifthBits>
HWY_INLINE void gemv_q8_0_like_step_vbmi(const uint8_t* x, int64_t i, const int8_t* const (&acts)[NT],
                                         const float* const (&step_scales)[NT], const int32_t* const (&step_sums)[NT],
                                         __m256 (&acc)[NT]) {
  constexpr auto here = [](int k) { return k < kCount; };
  __m512i u[4];
  __m256 dw;
  unpack_q8_0_like_step_vbmi<kType, Block, kCount, kGprFifthBits>(x, i, u, dw);
  for (int t = 0; t < NT; ++t) {
    __m512i s[4];
    for (int p = 0; p < 4; ++p) {
      s[p] = here(2 * p) ? dp_u8s8_512(_mm512_setzero_si512(), u[p], load512(acts[t] + (i + 2 * p) * kQK8_0))
                         : _mm512_setzero_si512();
    }
    const __m256 da = _mm256_loadu_ps(step_scales[t] + i);
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(step_sums[t] + i));
    const __m256i block_sums = kType == GgmlType::kQ8_0 ? reduce_block_pairs(s[0], s[1], s[2], s[3])
                                                        : reduce_block_pairs_int16(s[0], s[1], s[2], s[3]);
    const __m256i sums = _mm256_add_epi32(block_sums, c);
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

// The activation's int8 values in unpack_q8_0_like_groups_vbmi's order: per four blocks 64 bytes of their weights
// 0..15 (16 per block) and 64 of their weights 16..31, zero past the last block, for every group of whole 8-block
// steps: (blocks rounded up to 8) * 32 bytes at out.
HWY_INLINE void q8_0_gemv_activation_groups(const BlockQ8_0* x, int64_t blocks, int8_t* out) {
  const int64_t groups = (blocks + 7) / 8 * 2;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < 4; ++b) {
      int8_t* low = out + g * 128 + b * 16;
      if (4 * g + b < blocks) {
        std::memcpy(low, x[4 * g + b].qs, 16);
        std::memcpy(low + 64, x[4 * g + b].qs + 16, 16);
      } else {
        std::memset(low, 0, 16);
        std::memset(low + 64, 0, 16);
      }
    }
  }
}

// The one-token step over kRows rows of Q5_0 / Q4_0 at once (x[k]: row k's blocks): each row's block sums are the
// same integers as gemv_q8_0_like_step_vbmi's with one token and its scales and f32 steps the same, lane for lane, so
// every row's sum is bit for bit the same; what the rows share is done once: the activation's loads, its scales and
// sums, and per two rows the last reduction level, the conversion and the FMA at 512 bits (acc[k / 2]: row k in lanes
// 8 (k % 2) .. 8 (k % 2) + 7). A 704-column expert row has only 22 blocks, so this per-step and per-row work was a
// large part of its time. The weights come in groups of four blocks (unpack_q8_0_like_groups_vbmi, with the
// activation in q8_0_gemv_activation_groups' order): per 8 blocks 2 vpermt2b instead of 4 vpermb for the nibbles and
// for the fifth bits, and one vpackssdw + vpmaddwd instead of three each to reduce (against pairs of blocks,
// alternating in one process: GemvKernel/q5_0/704 +4-5%, q5_0/2816 +10-11%; bench/ROUNDS-decode.md "Decode round 7").
template <GgmlType kType, typename Block, int kCount, int kRows>
HWY_INLINE void gemv_q8_0_like_rows_step_vbmi(const uint8_t* const (&x)[kRows], int64_t i, const int8_t* act,
                                              const float* act_scales, const int32_t* act_sums, size_t ahead,
                                              __m512 (&acc)[kRows / 2]) {
  static_assert(kRows % 2 == 0);
  constexpr int kShift = kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  constexpr auto here = [](int k) { return k < kCount; };
  constexpr __mmask8 kPresent = static_cast<__mmask8>((1u << kCount) - 1);
  __m512i a[4];  // q8_0_gemv_activation_groups' two groups of this step
  for (int q = 0; q < 4; ++q) a[q] = here(4 * (q / 2)) ? load512(act + i * 32 + 64 * q) : _mm512_setzero_si512();
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256 raw_da = kCount == 8 ? _mm256_loadu_ps(act_scales + i) : _mm256_maskz_loadu_ps(kPresent, act_scales + i);
  const __m256i raw_c = kCount == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act_sums + i))
                                    : _mm256_maskz_loadu_epi32(kPresent, act_sums + i);
  const __m256 da = _mm256_permutexvar_ps(order, raw_da);
  const __m256i c = _mm256_srai_epi32(_mm256_permutexvar_epi32(order, raw_c), kShift);
  const __m512 da2 = _mm512_insertf32x8(_mm512_castps256_ps512(da), da, 1);
  const __m512i c2 = _mm512_inserti64x4(_mm512_castsi256_si512(c), c, 1);
  // A row's partials (below) hold blocks b < 4 in lanes 4b, 4b + 1 and blocks 4 + b in 4b + 2, 4b + 3; these pick
  // both halves of each block in the lane order 0, 2, 4, 6, 1, 3, 5, 7, row k from the first, row k + 1 the second.
  const __m512i first_half = _mm512_setr_epi32(0, 8, 2, 10, 4, 12, 6, 14, 16, 24, 18, 26, 20, 28, 22, 30);
  const __m512i second_half = _mm512_add_epi32(first_half, _mm512_set1_epi32(1));
  for (int k = 0; k < kRows; k += 2) {
    __m512i partials[2];
    __m256 dw[2];
    // Row k + h's partials and scales. Called once per row by hand: GCC kept a two-row loop rolled and passed
    // partials and dw through the stack (GemvKernel/q5_0/704 28.3 -> 32.8 GiB/s, q5_0/2816 32.8 -> 37.2,
    // bench/ROUNDS-decode.md "Decode round 7").
    auto row = [&](int h) __attribute__((always_inline)) {
      __m512i u[4];
      unpack_q8_0_like_groups_vbmi<kType, Block, kCount>(x[k + h], i, u, dw[h], ahead);
      // Lanes 4b .. 4b + 3 of s[g]: block 4g + b (each lane at most 8 x 31 x 128: int16).
      __m512i s[2];
      for (int g = 0; g < 2; ++g) {
        s[g] = here(4 * g) ? dp_u8s8_512(dp_u8s8_512(_mm512_setzero_si512(), u[2 * g], a[2 * g]), u[2 * g + 1], a[2 * g + 1])
                           : _mm512_setzero_si512();
      }
      partials[h] = _mm512_madd_epi16(_mm512_packs_epi32(s[0], s[1]), _mm512_set1_epi16(1));
    };
    row(0);
    row(1);
    const __m512i block_sums = _mm512_add_epi32(_mm512_permutex2var_epi32(partials[0], first_half, partials[1]),
                                                _mm512_permutex2var_epi32(partials[0], second_half, partials[1]));
    const __m512i sums = _mm512_add_epi32(block_sums, c2);
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
template <GgmlType kType, typename Block, int NT, bool kGprFifthBits>
HWY_INLINE void gemv_q8_0_like_tokens_vbmi_as(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows,
                                              const uint8_t* act, size_t act_stride, const float* act_scales,
                                              const int32_t* act_sums, float* y, int64_t ldy) {
  const int64_t nb = n / kQK8_0;
  const size_t token_bytes = static_cast<size_t>(nb + 2) * kQK8_0;
  const size_t step_values = static_cast<size_t>((nb + 7) / 8 * 8);
  uint8_t* scratch = gemv_scratch(NT * (token_bytes + step_values * (sizeof(float) + sizeof(int32_t))));
  float* const step_scales0 = reinterpret_cast<float*>(scratch + NT * token_bytes);
  int32_t* const step_sums0 = reinterpret_cast<int32_t*>(step_scales0 + NT * step_values);
  const int8_t* acts[NT];
  const float* scales[NT];
  const int32_t* sums[NT];
  for (int t = 0; t < NT; ++t) {
    int8_t* out = reinterpret_cast<int8_t*>(scratch + t * token_bytes);
    q8_0_gemv_activation(reinterpret_cast<const BlockQ8_0*>(act + t * act_stride), nb, out);
    acts[t] = out;
    float* step_scales = step_scales0 + t * step_values;
    int32_t* step_sums = step_sums0 + t * step_values;
    q8_0_gemv_step_scales<kType>(act_scales + t * nb, act_sums + t * nb, nb, step_scales, step_sums);
    scales[t] = step_scales;
    sums[t] = step_sums;
  }
  auto rows_at = [&]<int kS>(int64_t first, int64_t part) __attribute__((always_inline)) {
    const uint8_t* x[kS];
    __m256 acc[kS][NT];
    for (int k = 0; k < kS; ++k) {
      x[k] = w + static_cast<size_t>(first + k * part) * row_stride;
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
      unrolled<kS>([&](auto k) __attribute__((always_inline)) {
        gemv_q8_0_like_step_vbmi<kType, Block, 8, NT, kGprFifthBits>(x[k], i, acts, scales, sums, acc[k]);
      });
    }
    for_remainder_blocks(nb - i, [&](auto count) {
      for (int k = 0; k < kS; ++k) {
        gemv_q8_0_like_step_vbmi<kType, Block, decltype(count)::value, NT, kGprFifthBits>(x[k], i, acts, scales, sums,
                                                                                       acc[k]);
      }
    });
    for (int k = 0; k < kS; ++k) {
      for (int t = 0; t < NT; ++t) y[t * ldy + first + k * part] = hsum_f32x8(acc[k][t]);
    }
  };
  for_row_streams(rows, decode_row_streams(GemvFamily::kQ8_0), rows_at);
}

// gemv_q8_0_like_tokens_vbmi_as with this CPU's fifth-bit sequence (Q5_0; the other types have no fifth bits).
template <GgmlType kType, typename Block, int NT>
HWY_INLINE void gemv_q8_0_like_tokens_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows,
                                           const uint8_t* act, size_t act_stride, const float* act_scales,
                                           const int32_t* act_sums, float* y, int64_t ldy) {
  if constexpr (kType == GgmlType::kQ5_0) {
    if (decode_fifth_bits_from_gpr()) {
      return gemv_q8_0_like_tokens_vbmi_as<kType, Block, NT, true>(n, w, row_stride, rows, act, act_stride,
                                                                   act_scales, act_sums, y, ldy);
    }
  }
  gemv_q8_0_like_tokens_vbmi_as<kType, Block, NT, false>(n, w, row_stride, rows, act, act_stride, act_scales, act_sums,
                                                         y, ldy);
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// One token against `rows` rows of Q5_0 / Q4_0, eight rows per pass (gemv_q8_0_like_rows_step_vbmi; against four,
// one core in L2: GemvKernel/q5_0/704 +9%, the 2816-column rows +0-3%): every row's sum bit for bit the one-token
// gemv_q8_0_like_tokens_vbmi's. Decode takes it where the CPU has GFNI (gemv_q8_0_like_avx512). Against round 6's
// kernel (per pair of blocks a shift, a mask-to-vector move and a ternary logic; two rows through the stack):
// GemvKernel/q5_0/704 about +25%, bench/ROUNDS-decode.md "Decode round 7".
template <GgmlType kType, typename Block>
HWY_INLINE void gemv_q8_0_like_one_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                        const float* act_scales, const int32_t* act_sums, float* y) {
  constexpr int kRows = 8;
  const int64_t nb = n / kQK8_0;
  int8_t* a = reinterpret_cast<int8_t*>(gemv_scratch(static_cast<size_t>((nb + 7) / 8 * 8) * kQK8_0));
  q8_0_gemv_activation_groups(reinterpret_cast<const BlockQ8_0*>(act), nb, a);
  // Each row's step prefetches `ahead` bytes past its own blocks. With a pass longer than the decode distance that
  // distance would land inside this pass (row k + 2 or k + 3, mostly lines already read): with 8 KiB, 8-row passes
  // of Q8_0 (which this kernel also ran then) at 2816 columns (23.9 KB) read 26.7 GB/s against 47.6 one pass ahead
  // (GemvStream/q8_0/2/2816, alternating pass by pass, bench/ROUNDS-decode.md "Decode round 5"). One whole pass
  // ahead asks for each row's lines in the next pass.
  const size_t ahead = std::max<size_t>(kDecodePrefetchBytes, kRows * row_stride);
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
  // The last rows (fewer than kRows) one by one; that kernel writes the activation into the same scratch again, in
  // its own (pair) order, after the passes above are done with it.
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
  // pass stay faster (Q5_0/704: 54.6 with eight, 51.6 with four, 44.0 with one at a read of 78). The eight-row
  // kernel needs GFNI (every AVX3_DL CPU so far has it; without, one row at a time). With row streams (Intel,
  // decode_stream.h) one row of each stream at a time streams faster than eight adjacent rows, though the eight-row
  // pass computes faster in L2 (2 threads, GemvStream q5_0/2816 20.9-21.7 -> 25.9-26.8 GB/s, q5_0/704 22.0-23.0 ->
  // 23.8-24.3; GemvKernel q5_0/704 16.2-16.8 -> 15.1-15.8 GiB/s). Eight rows as four of each of two streams streamed
  // slower still (bench_decode_walk on the synth 26B, session 29: Q5_0 at 77-79% of a plain read of the same bytes,
  // against 84-88% a row of each of two streams at a time and 90-93% of three). The same sums either way.
  if constexpr (kType != GgmlType::kQ8_0) {
    static const bool gfni = __builtin_cpu_supports("gfni");
    if (gfni && decode_row_streams(GemvFamily::kQ8_0) == 1) {
      return gemv_q8_0_like_one_vbmi<kType, Block>(n, w, row_stride, rows, act, act_scales, act_sums, y);
    }
  }
  gemv_q8_0_like_tokens_vbmi<kType, Block, 1>(n, w, row_stride, rows, act, 0, act_scales, act_sums, y, 0);
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
