// AVX2 decode gemv of Q4_K (kernels.h GemvFn): one token against many rows. Included by quant-inl.h after
// tiles_avx2-inl.h inside each x86 target namespace (AVX3 and AVX3_DL replace the entry with their own gemv).
// No include guard on purpose.
//
// Bit for bit the tile with one token (tile_qk_avx2): the same int32 lanes per block (sub-block k's maddubs pairs
// times its 6-bit scale by vpmaddwd), one 8-lane FMA with d * yd per block, the min term in 4 lanes, the same final
// sums, so gemv_every_token stays false. What differs is the per-block cost: the tile unpacks the scales in scalar
// code and broadcasts each from a GPR; here they are unpacked in one xmm (7 ops) and each sub-block's scale is one
// vpshufb of it, d and dmin convert together, the activation's per-32 sums (the min term's hadd) are computed
// once per call instead of once per row, and the weights are prefetched ahead of the hardware prefetchers, which
// stop at 4 KiB page boundaries.

// Bytes ahead of the block being read at which the gemv asks for weights. GemvStream q4_K (512 MB, 1 / 2 threads,
// GB/s, noisy shared machine): none 7.9 / 14.1, 1 KiB 10.6 / 17.8, 4 KiB 10.3-11.7 / 16.7-19.6, 16 KiB 9.0 / 15.4.
constexpr size_t kQ4KGemvAvx2PrefetchBytes = 4096;

// Per activation block the 8 per-32 sums of its Q8_K bsums (int16, as _mm_hadd_epi16 of the two halves gives
// them to the tile), in a per-thread buffer reused across calls.
HWY_INLINE const __m128i* q4_K_gemv_avx2_sub_sums(const BlockQ8_K* a, int64_t blocks) {
  thread_local std::vector<__m128i> sums;
  if (sums.size() < static_cast<size_t>(blocks)) sums.resize(static_cast<size_t>(blocks));
  for (int64_t i = 0; i < blocks; ++i) {
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].bsums));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].bsums + 8));
    sums[static_cast<size_t>(i)] = _mm_hadd_epi16(b0, b1);
  }
  return sums.data();
}

inline void gemv_q4_K_avx2(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                           const float*, const int32_t*, float* y) {
  const int64_t nb = n / kQK_K;
  const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(act);
  const __m128i* sub_sums = q4_K_gemv_avx2_sub_sums(a, nb);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // vpshufb index of the mins: byte 8 + j zero-extended into int16 lane j.
  const __m128i min_index = _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1);
  for (int64_t r = 0; r < rows; ++r) {
    const BlockQ4_K* x = reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r) * row_stride);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      // The lines that start in [x + i + ahead, + 192): 2.25 lines per block, so a quarter of them asked twice.
      const uintptr_t ahead =
          (reinterpret_cast<uintptr_t>(x + i) + kQ4KGemvAvx2PrefetchBytes + 63) & ~uintptr_t{63};
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 128), _MM_HINT_T0);
      const __m128i header = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
      const __m128i scales_mins = unpack_k_scales_header(header);
      const __m256i scales = _mm256_broadcastsi128_si256(scales_mins);
      const BlockQ8_K& yb = a[i];
      __m256i sumi = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {  // qs bytes 32j..32j+31: sub-block 2j in the low nibbles, 2j + 1 in the high
        const __m256i bits = load256(x[i].qs + 32 * j);
        const __m256i lo = _mm256_and_si256(bits, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
        // Sub-block k's scale in every int16 lane: byte k, zero-extended.
        const __m256i s_lo = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>(0xFF00 | (2 * j))));
        const __m256i s_hi =
            _mm256_shuffle_epi8(scales, _mm256_set1_epi16(static_cast<int16_t>(0xFF00 | (2 * j + 1))));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(yb.qs + 64 * j)), s_lo));
        sumi = _mm256_add_epi32(sumi,
                                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(yb.qs + 64 * j + 32)), s_hi));
      }
      // d and dmin (adjacent halves of the header's first dword) converted together, then times yd.
      const __m128 d_dmin = _mm_mul_ps(_mm_cvtph_ps(header), _mm_set1_ps(yb.d));
      acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(d_dmin), _mm256_cvtepi32_ps(sumi), acc);
      const __m128i mm = _mm_madd_epi16(_mm_shuffle_epi8(scales_mins, min_index), sub_sums[i]);
      accm = _mm_fmadd_ps(_mm_permute_ps(d_dmin, _MM_SHUFFLE(1, 1, 1, 1)), _mm_cvtepi32_ps(mm), accm);
    }
    y[r] = hsum_f32x8(acc) - hsum_f32x4(accm);
  }
}

inline void fill_avx2_gemv_q4_K(KernelTable* t) { t->gemv[kernel_slot(GgmlType::kQ4_K)] = gemv_q4_K_avx2; }
