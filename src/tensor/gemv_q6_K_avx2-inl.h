// AVX2 decode gemv of Q6_K (kernels.h GemvFn): one token against many rows. Included by quant-inl.h after
// gemv_q8_0_avx2-inl.h (its prefetch helpers) inside every x86 target namespace (the AVX-512 targets replace the
// entry with their own). No include guard on purpose.
//
// Per row and block the same integer lanes as tile_q6_K_avx2_n with one token (every lane's sum is exact, so the
// order of its integer additions does not matter) and the same f32 steps (one FMA per block, hsum_f32x8), so y[r] is
// the tile's result bit for bit. What differs: the sixteen 6-bit scales become the eight int16 scale vectors by two
// qword permutes and eight byte shuffles instead of sixteen scalar broadcasts (GemvKernel/q6_K, one core in L2, two
// rows per pass then: 10.0 -> 17.5 GB/s against the tile per row), and every block asks for its lines
// kGemvPrefetchAvx2 bytes ahead.

// Byte shuffles that take the scale vector of weights 32k..32k+31 (k % 4) out of eight int16 scales repeated in both
// 128-bit halves: words 2k (first 16 weights, low half) and 2k + 1 (last 16, high half) of them.
alignas(32) static constexpr std::array<std::array<uint8_t, 32>, 4> kQ6KScaleShuffle = [] {
  std::array<std::array<uint8_t, 32>, 4> ctrl{};
  for (int k = 0; k < 4; ++k) {
    for (int j = 0; j < 32; ++j) ctrl[k][j] = static_cast<uint8_t>(4 * k + (j >= 16 ? 2 : 0) + j % 2);
  }
  return ctrl;
}();

// One block of one row against the token's block yb into acc.
HWY_INLINE void gemv_q6_K_block_avx2(const BlockQ6_K& x, const BlockQ8_K& yb, size_t ahead, __m256& acc) {
  constexpr int kLines = (sizeof(BlockQ6_K) + 63) / 64;  // 210 bytes: 4 lines, one of them at times asked twice
  prefetch_lines_avx2<kLines>(reinterpret_cast<const uint8_t*>(&x), ahead);
  __m256i q[8];
  unpack_q6_K_weights_avx2(x, q);
  const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
  const __m256i sc_low = _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(1, 0, 1, 0));   // scales 0..7 in both halves
  const __m256i sc_high = _mm256_permute4x64_epi64(sc16, _MM_SHUFFLE(3, 2, 3, 2));  // scales 8..15
  __m256i sumi = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) {
    const __m256i ctrl = _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6KScaleShuffle[k % 4].data()));
    const __m256i s = _mm256_shuffle_epi8(k < 4 ? sc_low : sc_high, ctrl);
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], load256(yb.qs + 32 * k)), s));
  }
  const __m256i off = _mm256_madd_epi16(sc16, load256(yb.bsums));  // Σ sc_g * bsum_g, 8 lanes (the -32 offset)
  sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f_fast(x.d) * yb.d), _mm256_cvtepi32_ps(sumi), acc);
}

// GemvFn: one row at a time, as the Q8_0 family (gemv_q8_0_like_avx2): a 512 MB stream, 2 threads, alternating
// builds: 15.9-18.1 GB/s with one row, 12.3-14.7 with two (a plain read 19-23); in L1 both 22-24 GB/s per core.
// Q8_K activations: act_scales and act_sums unused.
inline void gemv_q6_K_avx2(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                           const float*, const int32_t*, float* y) {
  const int64_t nb = n / kQK_K;
  const BlockQ8_K* a = reinterpret_cast<const BlockQ8_K*>(act);
  const size_t ahead = std::max<size_t>(kGemvPrefetchAvx2, row_stride);  // past a row's end: the next rows
  for (int64_t r = 0; r < rows; ++r) {
    const BlockQ6_K* x = reinterpret_cast<const BlockQ6_K*>(w + static_cast<size_t>(r) * row_stride);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) gemv_q6_K_block_avx2(x[i], a[i], ahead, acc);
    y[r] = hsum_f32x8(acc);
  }
}

inline void fill_avx2_gemv_q8_q6(KernelTable* t) {
  t->gemv[kernel_slot(GgmlType::kQ8_0)] = gemv_q8_0_like_avx2<GgmlType::kQ8_0, BlockQ8_0>;
  t->gemv[kernel_slot(GgmlType::kQ5_0)] = gemv_q8_0_like_avx2<GgmlType::kQ5_0, BlockQ5_0>;
  t->gemv[kernel_slot(GgmlType::kQ4_0)] = gemv_q8_0_like_avx2<GgmlType::kQ4_0, BlockQ4_0>;
  t->gemv[kernel_slot(GgmlType::kQ6_K)] = gemv_q6_K_avx2;
}
