// AVX2 decode gemv of the Q8_0 family (Q8_0, Q5_0, Q4_0; kernels.h GemvFn): one token against many rows. Included
// by quant-inl.h after tiles_avx2-inl.h inside every x86 target namespace (the AVX-512 targets replace the entries
// with their own). No include guard on purpose.
//
// Per row the same steps as tile_q8_0_like_avx2 with one token (the sign trick, one 8-lane int32 block sum, one f32
// FMA per block into the even or the odd blocks' accumulator, their sum through hsum_f32x8), so y[r] is the tile's
// result bit for bit. What differs is around them: the block scales of eight blocks at once
// (q8_0_like_block_scales_avx2), and every step asks for the weights kGemvPrefetchAvx2 bytes ahead (the hardware
// prefetchers stop at 4 KiB page boundaries, which a decode step crosses every 4 KiB).

// Distance of the software prefetches past the bytes being read. Rows are contiguous, so past a row's end it asks
// for the next rows.
constexpr size_t kGemvPrefetchAvx2 = 8192;

// Prefetches kLines cache lines from p + ahead on (a fixed count, no address-dependent loop: a step of a short row
// costs the same every time).
template <int kLines>
HWY_INLINE void prefetch_lines_avx2(const uint8_t* p, size_t ahead) {
  for (int j = 0; j < kLines; ++j) _mm_prefetch(reinterpret_cast<const char*>(p + ahead + 64 * j), _MM_HINT_T0);
}

// The f32 scale products dw * da of blocks i .. i + kCount - 1 (kCount <= 8) of one row, lane b for block i + b
// (absent lanes 0): the same products as the tile's per-block _mm256_mul_ps. The eight f16 d go through general
// registers and one conversion, instead of an insert, a conversion, a multiply and a broadcast per block on the
// vector pipes (GemvKernel/q8_0/2816, one core in L2, four rows per pass: 17.8 -> 22.1 GB/s).
template <typename Block, int kCount>
HWY_INLINE __m256 q8_0_like_block_scales_avx2(const uint8_t* x, int64_t i, const float* act_scales) {
  uint64_t half[2] = {0, 0};
  for (int b = 0; b < kCount; ++b) {
    uint16_t h;
    std::memcpy(&h, x + (i + b) * sizeof(Block), 2);
    half[b / 4] |= uint64_t{h} << (16 * (b % 4));
  }
  const __m128i d16 = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(half[0])),
                                       static_cast<long long>(half[1]), 1);
  __m256 da;
  if constexpr (kCount == 8) {
    da = _mm256_loadu_ps(act_scales + i);
  } else {
    const __m256i present = _mm256_cmpgt_epi32(_mm256_set1_epi32(kCount), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    da = _mm256_maskload_ps(act_scales + i, present);
  }
  return _mm256_mul_ps(_mm256_cvtph_ps(d16), da);
}

// k (0..7) -> step(std::integral_constant<int, k>()), nothing for 0: a row's last blocks in one unrolled step.
template <typename Step>
HWY_INLINE void for_remainder_blocks_avx2(int64_t k, Step&& step) {
  switch (k) {
    case 1: return step(std::integral_constant<int, 1>());
    case 2: return step(std::integral_constant<int, 2>());
    case 3: return step(std::integral_constant<int, 3>());
    case 4: return step(std::integral_constant<int, 4>());
    case 5: return step(std::integral_constant<int, 5>());
    case 6: return step(std::integral_constant<int, 6>());
    case 7: return step(std::integral_constant<int, 7>());
    default: return;
  }
}

// Q5_0 / Q4_0: one block's 32 weights plus their offset (16 / 8), as unsigned bytes: the nibbles of a 16-byte load
// broadcast to both halves (the high half's dwords shifted by 4: a load and one shift instead of a shift, an insert
// and a load), the fifth bit ORed in as 16. With these, maddubs(u, a) - maddubs(offset, a) gives the sign trick's
// int16 pairs (sign(w, w) and sign(a, w)) exactly, and the offset term depends on the activation alone.
template <GgmlType kType>
HWY_INLINE __m256i q4_5_0_unsigned_weights_avx2(const uint8_t* blk) {
  const uint8_t* qs = kType == GgmlType::kQ5_0 ? reinterpret_cast<const BlockQ5_0*>(blk)->qs
                                                : reinterpret_cast<const BlockQ4_0*>(blk)->qs;
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i nibbles =
      _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
  if constexpr (kType == GgmlType::kQ5_0) {
    const __m256i fifth = bytes_from_bits_32(reinterpret_cast<const BlockQ5_0*>(blk)->qh);
    return _mm256_or_si256(nibbles, _mm256_and_si256(fifth, _mm256_set1_epi8(0x10)));
  }
  return nibbles;
}

// Q5_0 / Q4_0: per activation block the int16 pairs offset * (a[2k] + a[2k + 1]) (maddubs of the offset), once per
// call in a per-thread buffer reused across calls; nullptr for Q8_0 (the sign trick).
template <GgmlType kType>
HWY_INLINE const int16_t* q4_5_0_offset_pairs_avx2(const BlockQ8_0* a, int64_t blocks) {
  if constexpr (kType == GgmlType::kQ8_0) {
    return nullptr;
  } else {
    thread_local std::vector<int16_t> pairs;  // 16 per block (std::vector would not align __m256i elements)
    if (pairs.size() < static_cast<size_t>(16 * blocks)) pairs.resize(static_cast<size_t>(16 * blocks));
    const __m256i offset = _mm256_set1_epi8(kType == GgmlType::kQ5_0 ? 16 : 8);
    for (int64_t i = 0; i < blocks; ++i) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs.data() + 16 * i),
                          _mm256_maddubs_epi16(offset, load256(a[i].qs)));
    }
    return pairs.data();
  }
}

// Blocks i .. i + kCount - 1 (i even) of the row x: even blocks into acc[0], odd into acc[1], as the tile. Every
// block's int32 lanes are the tile's: Q8_0 by the sign trick, Q5_0 / Q4_0 by unsigned weights less the offset pairs.
template <GgmlType kType, typename Block, int kCount>
HWY_INLINE void gemv_q8_0_like_step_avx2(const uint8_t* x, int64_t i, const BlockQ8_0* a, const float* act_scales,
                                         const int16_t* offset_pairs, size_t ahead, __m256 (&acc)[2]) {
  constexpr int kLines = (kCount * static_cast<int>(sizeof(Block)) + 63) / 64;
  prefetch_lines_avx2<kLines>(x + i * sizeof(Block), ahead);
  // The eight scale products, read back one lane at a time by broadcast loads (load ports, not vector pipes).
  alignas(32) float scales[8];
  _mm256_store_ps(scales, q8_0_like_block_scales_avx2<Block, kCount>(x, i, act_scales));
  for (int b = 0; b < kCount; ++b) {
    const uint8_t* blk = x + (i + b) * sizeof(Block);
    __m256i pairs;
    if constexpr (kType == GgmlType::kQ8_0) {
      const __m256i w = q8_0_like_weights<kType>(blk);
      pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(load256(a[i + b].qs), w));
    } else {
      pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(q4_5_0_unsigned_weights_avx2<kType>(blk), load256(a[i + b].qs)),
                               load256(offset_pairs + 16 * (i + b)));
    }
    const __m256i sumi = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    acc[b % 2] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scales[b]), _mm256_cvtepi32_ps(sumi), acc[b % 2]);
  }
}

// GemvFn: one row at a time. act_sums is unused: the Q5_0 / Q4_0 offset must come off each int16 pair, so it is
// taken from the activation blocks themselves (q4_5_0_offset_pairs_avx2).
template <GgmlType kType, typename Block>
void gemv_q8_0_like_avx2(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                         const float* act_scales, const int32_t*, float* y) {
  // One row at a time: one sequential stream per thread reads DRAM faster than several interleaved rows (a 512 MB
  // stream, 2 threads, alternating builds: 704 columns 18.8-20.1 GB/s with one row, 11.2-11.7 with two, 10.7-11.0
  // with four; 2816 columns 17.8-22.1 against 14.5-15.4 and 11.3-12.0, a plain read 18-26). Two FMA chains instead
  // of one: GemvKernel/q8_0 (one core, in L2) 2816 columns 15.1 -> ~23 GB/s, 704 13.8 -> ~20; GemvStream 2 threads
  // 16.5 -> 22.7-23.7 and 18.3 -> 22.9-25.2.
  constexpr int kStep = 8;  // blocks per prefetch and per scale conversion
  const int64_t nb = n / kQK8_0;
  const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(act);
  const int16_t* offset_pairs = q4_5_0_offset_pairs_avx2<kType>(a, nb);
  const size_t ahead = std::max<size_t>(kGemvPrefetchAvx2, row_stride);  // past a row's end: the next rows
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* x = w + static_cast<size_t>(r) * row_stride;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + kStep <= nb; i += kStep) {
      gemv_q8_0_like_step_avx2<kType, Block, kStep>(x, i, a, act_scales, offset_pairs, ahead, acc);
    }
    for_remainder_blocks_avx2(nb - i, [&](auto count) {
      gemv_q8_0_like_step_avx2<kType, Block, decltype(count)::value>(x, i, a, act_scales, offset_pairs, ahead,
                                                                  acc);
    });
    y[r] = hsum_f32x8(_mm256_add_ps(acc[0], acc[1]));
  }
}
