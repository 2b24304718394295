// AVX2 decode gemv of the Q8_0 family (Q8_0, Q5_0, Q4_0; kernels.h GemvFn): one token against many rows. Included
// by quant-inl.h after tiles_avx2-inl.h inside every x86 target namespace (the AVX-512 targets replace the entries
// with their own). No include guard on purpose.
//
// Per row the same steps as tile_q8_0_like_avx2 with one token (the sign trick, one 8-lane int32 block sum, one f32
// FMA per block in block order, hsum_f32x8 at the end), so y[r] is the tile's result bit for bit. What differs is
// around them: the block scales of eight blocks at once (q8_0_like_block_scales_avx2), and every step asks for the
// weights kGemvPrefetchAvx2 bytes ahead (the hardware prefetchers stop at 4 KiB page boundaries, which a decode step
// crosses every 4 KiB). kRows rows per pass (sharing the activation's loads) is kept as a parameter; one is fastest.

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

// Blocks i .. i + kCount - 1 of kRows rows (x[k]: row k's first block) into acc[k], one block at a time for all rows.
template <GgmlType kType, typename Block, int kRows, int kCount>
HWY_INLINE void gemv_q8_0_like_rows_step_avx2(const uint8_t* const (&x)[kRows], int64_t i, const BlockQ8_0* a,
                                              const float* act_scales, size_t ahead, __m256 (&acc)[kRows]) {
  constexpr int kLines = (kCount * static_cast<int>(sizeof(Block)) + 63) / 64;
  // Every row's eight scale products, read back one lane at a time by broadcast loads (load ports, not vector pipes).
  alignas(32) float scales[kRows][8];
  for (int k = 0; k < kRows; ++k) {
    prefetch_lines_avx2<kLines>(x[k] + i * sizeof(Block), ahead);
    _mm256_store_ps(scales[k], q8_0_like_block_scales_avx2<Block, kCount>(x[k], i, act_scales));
  }
  for (int b = 0; b < kCount; ++b) {
    const __m256i av = load256(a[i + b].qs);
    for (int k = 0; k < kRows; ++k) {
      const __m256i w = q8_0_like_weights<kType>(x[k] + (i + b) * sizeof(Block));
      const __m256i sumi = dp_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
      acc[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scales[k][b]), _mm256_cvtepi32_ps(sumi), acc[k]);
    }
  }
}

template <GgmlType kType, typename Block, int kRows>
HWY_INLINE void gemv_q8_0_like_rows_avx2(int64_t nb, const uint8_t* w, size_t row_stride, const BlockQ8_0* a,
                                         const float* act_scales, size_t ahead, float* y) {
  constexpr int kStep = 8;  // blocks per prefetch
  const uint8_t* x[kRows];
  __m256 acc[kRows];
  for (int k = 0; k < kRows; ++k) {
    x[k] = w + static_cast<size_t>(k) * row_stride;
    acc[k] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + kStep <= nb; i += kStep) {
    gemv_q8_0_like_rows_step_avx2<kType, Block, kRows, kStep>(x, i, a, act_scales, ahead, acc);
  }
  for_remainder_blocks_avx2(nb - i, [&](auto count) {
    gemv_q8_0_like_rows_step_avx2<kType, Block, kRows, decltype(count)::value>(x, i, a, act_scales, ahead, acc);
  });
  for (int k = 0; k < kRows; ++k) y[k] = hsum_f32x8(acc[k]);
}

// GemvFn: kRows rows per pass, the last rows one by one. act_sums is unused (the sign trick needs no offset).
template <GgmlType kType, typename Block>
void gemv_q8_0_like_avx2(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                         const float* act_scales, const int32_t*, float* y) {
  // One row at a time: one sequential stream per thread reads DRAM faster than several interleaved rows (a 512 MB
  // stream, 2 threads, alternating builds: 704 columns 18.8-20.1 GB/s with one row, 11.2-11.7 with two, 10.7-11.0
  // with four; 2816 columns 17.8-22.1 against 14.5-15.4 and 11.3-12.0, a plain read 18-26), though in L1 four rows
  // hide the FMA chain's latency better (704 columns 16-18 GB/s per core with four, 20-21 with one: not the limit).
  constexpr int kRows = 1;
  const int64_t nb = n / kQK8_0;
  const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(act);
  // A pass reads kRows rows side by side: ask for the same rows of the next pass, at least kGemvPrefetchAvx2 ahead.
  const size_t ahead = std::max<size_t>(kGemvPrefetchAvx2, kRows * row_stride);
  int64_t r = 0;
  for (; r + kRows <= rows; r += kRows) {
    gemv_q8_0_like_rows_avx2<kType, Block, kRows>(nb, w + static_cast<size_t>(r) * row_stride, row_stride, a,
                                                  act_scales, ahead, y + r);
  }
  for (; r < rows; ++r) {
    gemv_q8_0_like_rows_avx2<kType, Block, 1>(nb, w + static_cast<size_t>(r) * row_stride, row_stride, a, act_scales,
                                              kGemvPrefetchAvx2, y + r);
  }
}
