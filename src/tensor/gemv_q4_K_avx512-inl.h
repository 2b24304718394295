// AVX-512 decode gemvs of Q4_K: one token, and 2-4 tokens of a batched step in groups of four blocks.
// Included by gemv_avx512-inl.h inside the AVX3 and AVX3_DL target namespaces. No include guard on purpose.

// The activation of the Q4_K gemvs: each 256-block's 16-byte chunks transposed as a 4 x 4 matrix, so that
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

// The activation sum of each 32-weight sub-block of blocks x[0 .. blocks - 1] as int16 (8 per block: at most 32 x
// 128), zero up to `padded` blocks (whole groups), which one vpmaddwd a group multiplies by the blocks' mins. The
// bsums come per 16 weights: they are added in pairs.
HWY_INLINE void q4_K_gemv_sub_sums(const BlockQ8_K* x, int64_t blocks, int64_t padded, int16_t* out) {
  for (int64_t i = 0; i < padded; ++i) {
    const __m256i pairs = i < blocks ? _mm256_madd_epi16(load256(x[i].bsums), _mm256_set1_epi16(1))
                                     : _mm256_setzero_si256();
    const __m128i sums = _mm256_cvtepi32_epi16(pairs);
    _mm_store_si128(reinterpret_cast<__m128i*>(out + i * 8), sums);
  }
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

// unpack_k_scales_header on the headers of load_q4_K_headers: chunk b holds block b's 8 scales (bytes 0..7) and 8
// mins (bytes 8..15). Each chunk's dwords are d|dmin, u0, u1, u2.
HWY_INLINE __m512i unpack_q4_K_header_scales(__m512i h) {
  const __m512i a = _mm512_shuffle_epi32(h, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(3, 2, 3, 1)));  // u0 u2 u1 u2
  const __m512i low = _mm512_and_si512(_mm512_srlv_epi32(a, _mm512_setr4_epi32(0, 0, 0, 4)),
                                       _mm512_setr4_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m512i b = _mm512_shuffle_epi32(h, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(2, 2, 1, 1)));  // u0 u0 u1 u1
  const __m512i high = _mm512_and_si512(_mm512_srli_epi32(b, 2), _mm512_setr4_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm512_or_si512(low, high);
}

// Q4_K blocks per group of the grouped gemvs (their headers in one vector).
constexpr int kQ4KGroup = 4;

// Block b's scales into int16 lanes for the vpmaddwd: after vpackssdw(even, odd), int16 lane j holds sub-block
// j / 4 (chunk c: 4 lanes of 2c, then 4 of 2c + 1). With VBMI one vpermb from the unpacked headers, zero-extended
// by the mask (the index's low bytes are byte indices); else one vpermw from the headers widened to int16 (blocks
// 2p and 2p + 1 in one vector).
alignas(64) inline constexpr auto kQ4KGroupScaleIndex = [] {
  std::array<std::array<int16_t, 32>, kQ4KGroup> idx{};
  for (int b = 0; b < kQ4KGroup; ++b) {
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
// The mins of a group's four blocks into int16 lanes for the vpmaddwd with the activation's sub-block sums: lane j
// holds block j / 8's min of sub-block j % 8. With VBMI byte indices into the unpacked headers (zero-extended by the
// mask), else int16 lane indices into the headers widened to int16 (blocks 0 and 1 from the first source, 2 and 3
// from the second).
alignas(64) inline constexpr auto kQ4KGroupMinIndex = [] {
  std::array<int16_t, 32> idx{};
  for (int j = 0; j < 32; ++j) {
#if HWY_TARGET == HWY_AVX3_DL
    idx[j] = static_cast<int16_t>(16 * (j / 8) + 8 + j % 8);
#else
    idx[j] = static_cast<int16_t>(32 * (j / 16) + 16 * (j / 8 % 2) + 8 + j % 8);
#endif
  }
  return idx;
}();
// After that vpmaddwd, int32 lane l holds block l / 4's mins times the sums of sub-blocks 2 (l % 4) and
// 2 (l % 4) + 1; this index takes dmin * yd of block l / 4 from lane 2 (l / 4) + 1 of the group's d * yd, dmin * yd
// pairs.
HWY_INLINE __m512i q4_K_group_dmin_lanes() {
  return _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
}

// The one-token Q4_K gemv: the activation row act against `rows` rows, y[r]. Decode is compute-bound on this kernel
// when memory is fast, so it spends fewer instructions per block than the tile: one vpdpbusd per 64 weights with VNNI
// (the tile: maddubs, then the scale by vpmaddwd), the scales applied once per block. For that each int32 lane must hold
// weights of one sub-block only: with E = the 16-byte chunks 0, 2, 4, 6 of qs and O = chunks 1, 3, 5, 7, chunk c of
// E's and O's low nibbles holds sub-block 2c (weights 64c + 0..31) and of their high nibbles sub-block 2c + 1, so
// two vpdpbusd sum the even sub-blocks and two the odd ones, lane for lane, against the reordered activation. A
// lane sums 8 products of at most 15 x 128, so one vpackssdw puts both into int16 lanes for one vpmaddwd with the
// 6-bit scales. The mins come off once per group of four blocks, as integers first: one vpmaddwd of the four
// blocks' mins (int16) against the activation's sub-block sums leaves, in int32 lane l, block l / 4's mins times the
// sums of two of its sub-blocks (exact), and one FNMADD by dmin * yd of block l / 4 takes them off all 16 lanes after
// the group's four FMAs (against a conversion and a multiply of dmin * mins per two blocks and an FNMADD per block:
// about 5 instructions a group instead of 18). The integer sums per block are exact; the f32 steps differ from the
// tile's (tile_test.cpp compares both with the reference). 2-4 tokens take gemv_q4_K_grouped_512 (below), whose
// per-lane arithmetic is the same, so a token's numbers do not depend on how many tokens share the call (bit for
// bit). This is the AVX3 kernel, a block at a time (each block's min products and dmin * yd go into their lanes of
// the group's vectors by a masked broadcast); with VBMI gemv_q4_K_one_vbmi (below) does the same steps four blocks
// at a time (tile_test.cpp holds both to a scalar model of these steps, bit for bit).
// d * yd and dmin * yd of a Q4_K block in lanes 0 and 1 (d and dmin are adjacent halves, converted together): the
// one-token gemvs that take a block at a time.
HWY_INLINE __m128 q4_K_block_d_dmin_yd(const BlockQ4_K& x, float yd) {
  uint32_t d_dmin_bits;
  std::memcpy(&d_dmin_bits, &x.d, 4);
  return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin_bits))), _mm_set1_ps(yd));
}

// Block i's mins (bytes 8..15 of its unpacked scales) times its sub-block sums (sub_sums: 8 per block), and its
// dmin * yd, into its lanes 4 (i % kQ4KGroup) .. + 3 of its group's vectors, which one FNMADD takes off after the
// group's blocks.
HWY_INLINE void add_q4_K_block_mins(__m128i scales_mins, const int16_t* sub_sums, int64_t i, __m128 d_dmin_yd,
                                    __m512i& group_mins, __m512& group_dmin_yd) {
  const __m128i min_products = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8)),
                                              _mm_load_si128(reinterpret_cast<const __m128i*>(sub_sums + i * 8)));
  const __mmask16 lanes = static_cast<__mmask16>(0xF << (4 * (i % kQ4KGroup)));
  group_mins = _mm512_mask_broadcast_i32x4(group_mins, lanes, min_products);
  group_dmin_yd = _mm512_mask_broadcastss_ps(group_dmin_yd, lanes, _mm_movehdup_ps(d_dmin_yd));
}

#if HWY_TARGET != HWY_AVX3_DL
HWY_INLINE void gemv_q4_K_one_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                  float* y) {
  const int64_t nb = n / kQK_K;
  const auto* yb = reinterpret_cast<const BlockQ8_K*>(act);
  // 64-byte aligned (read as whole cache lines): the reordered activation (n bytes), then the activation's sub-block
  // sums (int16, 8 per block).
  uint8_t* const scratch = gemv_scratch(static_cast<size_t>(n) + static_cast<size_t>(nb) * 8 * sizeof(int16_t));
  int8_t* const reordered = reinterpret_cast<int8_t*>(scratch);
  int16_t* const sub_sums = reinterpret_cast<int16_t*>(scratch + n);
  q4_K_gemv_activation(yb, nb, reordered);
  q4_K_gemv_sub_sums(yb, nb, nb, sub_sums);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // After vpackssdw(even, odd), int16 lane j holds sub-block j / 4 (chunk c: 4 lanes of 2c, then 4 of 2c + 1).
  const __m512i scale_index = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2,
                                               1, 1, 1, 1, 0, 0, 0, 0);  // lanes 31 down to 0
  for (int64_t r = 0; r < rows; ++r) {
    const auto* x = reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r) * row_stride);
    __m512 acc = _mm512_setzero_ps();
    // The group's min products (int32) and dmin * yd, block b's in lanes 4b .. 4b + 3; zero for absent blocks.
    __m512i group_mins = _mm512_setzero_si512();
    __m512 group_dmin_yd = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      // A fixed count of lines (at most one asked for twice): prefetch_weights' address-dependent loop cost this
      // loop 6% (GemvKernel/q4_K/2816, one core in L2, alternating).
      prefetch_weights_lines<(sizeof(BlockQ4_K) + 63) / 64>(x + i);
      const BlockQ4_K& xb = x[i];
      const __m128i scales_mins = unpack_k_scales_header(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&xb)));
      const __m512i scales =
          _mm512_permutexvar_epi16(scale_index, _mm512_castsi256_si512(_mm256_cvtepu8_epi16(scales_mins)));
      const __m512i a = load512(xb.qs), b = load512(xb.qs + 64);
      const __m512i even_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i odd_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));
      const int8_t* p = reordered + i * kQK_K;
      __m512i even = dp_u8s8_512(_mm512_setzero_si512(), _mm512_and_si512(even_chunks, m4), load512(p));
      even = dp_u8s8_512(even, _mm512_and_si512(odd_chunks, m4), load512(p + 64));
      __m512i odd = dp_u8s8_512(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(even_chunks, 4), m4),
                                load512(p + 128));
      odd = dp_u8s8_512(odd, _mm512_and_si512(_mm512_srli_epi16(odd_chunks, 4), m4), load512(p + 192));
      const __m512i sum = _mm512_madd_epi16(_mm512_packs_epi32(even, odd), scales);
      const __m128 d_dmin_yd = q4_K_block_d_dmin_yd(xb, yb[i].d);
      acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(d_dmin_yd), _mm512_cvtepi32_ps(sum), acc);
      add_q4_K_block_mins(scales_mins, sub_sums, i, d_dmin_yd, group_mins, group_dmin_yd);
      if (i % kQ4KGroup == kQ4KGroup - 1 || i == nb - 1) {
        acc = _mm512_fnmadd_ps(group_dmin_yd, _mm512_cvtepi32_ps(group_mins), acc);
        group_mins = _mm512_setzero_si512();
        group_dmin_yd = _mm512_setzero_ps();
      }
    }
    y[r] = _mm512_reduce_add_ps(acc);
  }
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd with the activation as a memory operand: one instruction instead of a load and the vpdpbusd.
HWY_INLINE __m512i dp_u8s8_512_at(__m512i acc, __m512i u, const int8_t* s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const __m512i*>(s)));
  return acc;
}

// The same into a fresh accumulator, zeroed by vpxord (a zero idiom, which the core resolves without executing it)
// where GCC would copy a zero register (a vector instruction per call).
HWY_INLINE __m512i dp_u8s8_512_at_zero(__m512i u, const int8_t* s) {
  __m512i acc;
  asm("vpxord %0, %0, %0\n\tvpdpbusd %2, %1, %0" : "=&v"(acc) : "v"(u), "m"(*reinterpret_cast<const __m512i*>(s)));
  return acc;
}

// The one-token Q4_K gemv with VBMI, the blocks of a row in groups of four, the same integer sums and f32 steps per
// lane as gemv_q4_K_one_512 (so bit-identical). The headers of a group are unpacked together at 512 bits (as
// gemv_q4_K_grouped_512 does); d * yd and dmin * yd of the four blocks come from one multiply, d * yd reaches each
// block's FMA as a broadcast load from the stack, and the group's mins go in one vpermb, one vpmaddwd and one FNMADD
// after its four blocks. The high nibbles by GF2P8AFFINEQB where the CPU has GFNI (kGfni), else as 16 x their value
// (vpandn) and the odd sums shifted back once per block (exact: every product is a multiple of 16; VNNI does not
// saturate). b, the second half of a block's qs, is loaded once (GCC folded it into both shuffles, a second load).
// Per block about 33 instructions instead of 53: one core in L2, `GemvKernel/q4_K/2816` 50.0 -> 56.4 and 45.4 -> 53.8
// GiB/s (+13% and +18%, medians of 6 and 8 alternating runs in two windows). Round 6's grouping with one token ran no faster than the kernel a block at a
// time (its FMAs masked, d * yd broadcast by shuffles, a copied zero per vpdpbusd, separate activation loads): in a
// harness those details took it from +5% to +13%.
// With row streams (kS > 1, Intel: decode_stream.h) the blocks go one at a time instead, block i of every stream in
// turn, each from its own 16-byte header, with the same integer sums and f32 steps (each block's min products and
// dmin * yd go into their lanes of the group's vectors, add_q4_K_block_mins as in gemv_q4_K_one_512, and the
// FNMADD still follows the group's four FMAs). A group begins with the loads of its four headers, and everything it
// computes waits on the furthest of them (576 bytes on); block by block, each block waits only on its own lines (the
// likely reason: there are no counters on this VM to show it). It costs instructions (one core in L2,
// `GemvKernel/q4_K/2816` 30.1-33.9 -> 23.7-25.7 GiB/s) and streams faster (2 threads, `GemvStream/q4_K/2/2816`
// 27.8-30.0 -> 31.6-33.6 GiB/s, alternating runs); the synth 26B's whole decode step took 5.6% less time (the two
// kernels alternating step by step in one process, as `fabula bench --ab-streams` does: t(group) / t(block) median
// 1.0597, quartiles 1.045-1.075, 128 quads; BENCHMARKS.md session 32). Unpacking the next group's headers a group
// ahead, or the four headers again after the group's blocks for its mins, streamed slower than this (1-4%); d * yd
// and the min products through the stack computed 11% faster in L2 but made the step 0.7% slower. One stream (AMD,
// and the rows after the streams) keeps the groups, which compute faster.
template <bool kGfni>
HWY_INLINE void gemv_q4_K_one_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                   float* y) {
  const int64_t nb = n / kQK_K;
  const int64_t nb_groups = (nb + kQ4KGroup - 1) / kQ4KGroup * kQ4KGroup;
  const auto* yb = reinterpret_cast<const BlockQ8_K*>(act);
  // 64-byte aligned: the reordered activation (n bytes), the activation's sub-block sums (int16, 8 per block, a
  // group's in one line), then each block's yd twice (a group's d and dmin multiply them in one instruction); both
  // in whole groups.
  uint8_t* const scratch = gemv_scratch(static_cast<size_t>(n) + static_cast<size_t>(nb_groups) * 8 * sizeof(int16_t) +
                                        static_cast<size_t>(nb_groups) * 2 * sizeof(float));
  int8_t* const reordered = reinterpret_cast<int8_t*>(scratch);
  int16_t* const sub_sums = reinterpret_cast<int16_t*>(scratch + n);
  float* const yd_pairs = reinterpret_cast<float*>(sub_sums + nb_groups * 8);
  q4_K_gemv_activation(yb, nb, reordered);
  q4_K_gemv_sub_sums(yb, nb, nb_groups, sub_sums);
  for (int64_t i = 0; i < nb_groups; ++i) yd_pairs[2 * i] = yd_pairs[2 * i + 1] = i < nb ? yb[i].d : 0.0f;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i high_nibble = _mm512_set1_epi64(kGfHighNibble);
  // d and dmin of the four blocks: half-float lanes 0, 1, 8, 9, ... of the headers.
  const __m512i d_dmin_index = _mm512_zextsi128_si512(_mm_setr_epi16(0, 1, 8, 9, 16, 17, 24, 25));
  const __m512i dmin_lanes = q4_K_group_dmin_lanes();
  const __m512i min_index = _mm512_load_si512(kQ4KGroupMinIndex.data());
  __m512i scale_index[kQ4KGroup];
  for (int b = 0; b < kQ4KGroup; ++b) scale_index[b] = _mm512_load_si512(kQ4KGroupScaleIndex[b].data());
  // Block i of row x: per int32 lane of 16, its two sub-block sums times their 6-bit scales (vpmaddwd by `scales`).
  auto scaled_sums = [&](const BlockQ4_K* x, int64_t i, __m512i scales) __attribute__((always_inline)) {
    const uint8_t* qs = x[i].qs;
    __m512i b;
    asm("vmovdqu64 %1, %0" : "=v"(b) : "m"(*reinterpret_cast<const __m512i*>(qs + 64)));
    const __m512i a = load512(qs);
    const __m512i even_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i odd_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    const int8_t* p = reordered + i * kQK_K;
    __m512i even = dp_u8s8_512_at_zero(_mm512_and_si512(even_chunks, m4), p);
    even = dp_u8s8_512_at(even, _mm512_and_si512(odd_chunks, m4), p + 64);
    __m512i odd;
    if constexpr (kGfni) {
      odd = dp_u8s8_512_at_zero(gf2p8affine_bytes(even_chunks, high_nibble), p + 128);
      odd = dp_u8s8_512_at(odd, gf2p8affine_bytes(odd_chunks, high_nibble), p + 192);
    } else {
      odd = dp_u8s8_512_at_zero(_mm512_andnot_si512(m4, even_chunks), p + 128);
      odd = _mm512_srai_epi32(dp_u8s8_512_at(odd, _mm512_andnot_si512(m4, odd_chunks), p + 192), 4);
    }
    return _mm512_madd_epi16(_mm512_packs_epi32(even, odd), scales);
  };
  // Blocks i .. i + kCount - 1 of row x into acc.
  auto group = [&]<int kCount>(const BlockQ4_K* x, __m512& acc, int64_t i) __attribute__((always_inline)) {
      prefetch_weights_lines<(kCount * sizeof(BlockQ4_K) + 63) / 64>(x + i);
      const __m512i h = load_q4_K_headers<kCount>(x + i);
      const __m512i sm = unpack_q4_K_header_scales(h);
      const __m256 d_dmin = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(d_dmin_index, h)));
      alignas(32) float dyd[8];  // d * yd of block b at [2b], dmin * yd at [2b + 1]
      const __m256 d_dmin_yd = _mm256_mul_ps(d_dmin, _mm256_loadu_ps(yd_pairs + 2 * i));
      _mm256_store_ps(dyd, d_dmin_yd);
      auto block = [&]<int B>() __attribute__((always_inline)) {
        const __m512i scales = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index[B], sm);
        const __m512i sum = scaled_sums(x, i + B, scales);
        __m512 d_yd;
        asm("vbroadcastss %1, %0" : "=v"(d_yd) : "m"(dyd[2 * B]));  // a load, where GCC would shuffle
        acc = _mm512_fmadd_ps(d_yd, _mm512_cvtepi32_ps(sum), acc);
      };
      [&]<int... B>(std::integer_sequence<int, B...>) __attribute__((always_inline)) {
        (block.template operator()<B>(), ...);
      }(std::make_integer_sequence<int, kCount>());
      // The group's mins (absent blocks: zero mins and dmin * yd, an exact zero off each of their lanes).
      const __m512i mins = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, min_index, sm);
      const __m512i min_products = _mm512_madd_epi16(mins, load512(sub_sums + i * 8));
      const __m512 dmin_yd = _mm512_permutexvar_ps(dmin_lanes, _mm512_castps256_ps512(d_dmin_yd));
      acc = _mm512_fnmadd_ps(dmin_yd, _mm512_cvtepi32_ps(min_products), acc);
    };
  // Block i of row x alone into acc; its min products and dmin * yd into its lanes of the group's vectors.
  auto block_alone = [&](const BlockQ4_K* x, int64_t i, __m512& acc, __m512i& group_mins, __m512& group_dmin_yd)
                         __attribute__((always_inline)) {
    prefetch_weights_lines<(sizeof(BlockQ4_K) + 63) / 64>(x + i);
    const __m128i sm = unpack_k_scales_header(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m512i scales =
        _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index[0], _mm512_castsi128_si512(sm));
    const __m128 d_dmin_yd = q4_K_block_d_dmin_yd(x[i], yb[i].d);
    acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(d_dmin_yd), _mm512_cvtepi32_ps(scaled_sums(x, i, scales)), acc);
    add_q4_K_block_mins(sm, sub_sums, i, d_dmin_yd, group_mins, group_dmin_yd);
  };
  auto row_of = [&](int64_t r) { return reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r) * row_stride); };
  auto tail = [&](const BlockQ4_K* x, __m512& acc, int64_t i) __attribute__((always_inline)) {
    switch (nb - i) {
      case 1: group.template operator()<1>(x, acc, i); break;
      case 2: group.template operator()<2>(x, acc, i); break;
      case 3: group.template operator()<3>(x, acc, i); break;
      default: break;
    }
  };
  auto rows_at = [&]<int kS>(int64_t first, int64_t part) __attribute__((always_inline)) {
    const BlockQ4_K* x[kS];
    __m512 acc[kS];
    for (int k = 0; k < kS; ++k) {
      x[k] = row_of(first + k * part);
      acc[k] = _mm512_setzero_ps();
    }
    if constexpr (kS == 1) {
      int64_t i = 0;
      for (; i + kQ4KGroup <= nb; i += kQ4KGroup) group.template operator()<kQ4KGroup>(x[0], acc[0], i);
      tail(x[0], acc[0], i);
    } else {
      __m512i group_mins[kS];
      __m512 group_dmin_yd[kS];
      for (int64_t i = 0; i < nb; ++i) {
        if (i % kQ4KGroup == 0) {
          for (int k = 0; k < kS; ++k) {
            group_mins[k] = _mm512_setzero_si512();
            group_dmin_yd[k] = _mm512_setzero_ps();
          }
        }
        unrolled<kS>([&](auto k) __attribute__((always_inline)) {
          block_alone(x[k], i, acc[k], group_mins[k], group_dmin_yd[k]);
        });
        if (i % kQ4KGroup == kQ4KGroup - 1 || i == nb - 1) {
          for (int k = 0; k < kS; ++k) {
            acc[k] = _mm512_fnmadd_ps(group_dmin_yd[k], _mm512_cvtepi32_ps(group_mins[k]), acc[k]);
          }
        }
      }
    }
    for (int k = 0; k < kS; ++k) y[first + k * part] = _mm512_reduce_add_ps(acc[k]);
  };
  for_row_streams(rows, decode_row_streams(GemvFamily::kQ4_K), rows_at);
}
#endif

// The multi-token Q4_K gemv (NT >= 2 tokens of a batched decode step), the same per-lane arithmetic as
// gemv_q4_K_one_512 (so every token's numbers equal the one-token gemv's, bit for bit), with the blocks in groups
// of four: their headers are unpacked together at 512 bits (the scales, d and dmin of four blocks in the
// instructions one block takes at 128 bits), d * yd reaches each block's FMAs as a memory operand, and the mins come
// off once per group and token (one vpmaddwd, a conversion and an FNMADD). One core in L2, base 049c7cf / this,
// GB/s of weights (`bench_quant --benchmark_filter=DecodeTokens/q4_K`, alternating): 2 tokens 17.9-18.1 /
// 37.5-39.3, 3 tokens 14.4 / 30.4-31.2, 4 tokens 16.5-16.8 / 24.6-25.3. With one token this kernel ran no faster than a block at a time
// (GemvKernel/q4_K/2816 49.4-50.1 against 49.9-51.1 GiB/s with one row per pass; with two rows per pass 4% faster in
// L2 but 20% slower streaming from memory); one token takes gemv_q4_K_one_vbmi (one row per pass) instead.
template <int NT>
HWY_INLINE void gemv_q4_K_grouped_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                     size_t act_stride, float* y, int64_t ldy) {
  constexpr int kGroup = kQ4KGroup;
  const int64_t nb = n / kQK_K;
  const int64_t nb_groups = (nb + kGroup - 1) / kGroup * kGroup;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  // Per token, 64-byte aligned (read as whole cache lines: loads across two lines made the 4-token kernel 5-8%
  // slower): the reordered activation (n bytes), then the activation's sub-block sums (int16, 8 per block, a group's
  // in one line), then each block's yd twice (a group's d and dmin multiply them in one instruction); both in whole
  // groups.
  const size_t token_bytes = (static_cast<size_t>(n) + static_cast<size_t>(nb_groups) * 8 * sizeof(int16_t) +
                              static_cast<size_t>(nb_groups) * 2 * sizeof(float) + 63) / 64 * 64;
  uint8_t* const scratch = gemv_scratch(NT * token_bytes);
  auto reordered = [&](int t) { return reinterpret_cast<int8_t*>(scratch + t * token_bytes); };
  auto sub_sums = [&](int t) { return reinterpret_cast<int16_t*>(scratch + t * token_bytes + n); };
  auto yd_pairs = [&](int t) { return reinterpret_cast<float*>(sub_sums(t) + nb_groups * 8); };
  for (int t = 0; t < NT; ++t) {
    q4_K_gemv_activation(yb(t), nb, reordered(t));
    q4_K_gemv_sub_sums(yb(t), nb, nb_groups, sub_sums(t));
    for (int64_t i = 0; i < nb_groups; ++i) {
      const float d = i < nb ? yb(t)[i].d : 0.0f;
      yd_pairs(t)[2 * i] = yd_pairs(t)[2 * i + 1] = d;
    }
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // d and dmin of the four blocks: half-float lanes 0, 1, 8, 9, ... of the headers.
  const __m512i d_dmin_index = _mm512_zextsi128_si512(_mm_setr_epi16(0, 1, 8, 9, 16, 17, 24, 25));
  const __m512i dmin_lanes = q4_K_group_dmin_lanes();
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
      // Per row and token: d * yd of block b at [2b], broadcast from memory into each block's FMA (a load, where a
      // broadcast from a register is a shuffle), and dmin * yd at [2b + 1].
      alignas(64) float dyd[kRows][NT][8];
      __m512i mins[kRows];  // the group's mins as int16, block b's in lanes 8b .. 8b + 7
      for (int k = 0; k < kRows; ++k) {
        // A fixed count of lines, rounded up (at most one line asked for twice, at a row's last group): the
        // address-dependent loop of prefetch_weights cost the remainder groups here 9% at 2 tokens, 12% at 3
        // (DecodeTokens/q4_K, one core, four alternating rounds; bench/ROUNDS-decode.md "Decode round 6").
        prefetch_weights_lines<(kCount * sizeof(BlockQ4_K) + 63) / 64>(x[k] + i);
        const __m512i h = load_q4_K_headers<kCount>(x[k] + i);
        sm[k] = unpack_q4_K_header_scales(h);
#if HWY_TARGET != HWY_AVX3_DL
        sm16[k][0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sm[k]));
        sm16[k][1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sm[k], 1));
#endif
        d_dmin[k] = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(d_dmin_index, h)));
#if HWY_TARGET == HWY_AVX3_DL
        mins[k] = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, _mm512_load_si512(kQ4KGroupMinIndex.data()),
                                                sm[k]);
#else
        mins[k] = _mm512_permutex2var_epi16(sm16[k][0], _mm512_load_si512(kQ4KGroupMinIndex.data()), sm16[k][1]);
#endif
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
          const __m512i scale_index = _mm512_load_si512(kQ4KGroupScaleIndex[B].data());
#if HWY_TARGET == HWY_AVX3_DL
          u[k].scales = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index, sm[k]);
#else
          u[k].scales = _mm512_permutexvar_epi16(scale_index, sm16[k][B / 2]);
#endif
        }
        for (int t = 0; t < NT; ++t) {
          const int8_t* p = reordered(t) + (i + B) * kQK_K;
          const __m512i ya[4] = {load512(p), load512(p + 64), load512(p + 128), load512(p + 192)};
          for (int k = 0; k < kRows; ++k) {
            __m512i even = dp_u8s8_512(_mm512_setzero_si512(), u[k].q[0], ya[0]);
            even = dp_u8s8_512(even, u[k].q[1], ya[1]);
            __m512i odd = dp_u8s8_512(_mm512_setzero_si512(), u[k].q[2], ya[2]);
            odd = dp_u8s8_512(odd, u[k].q[3], ya[3]);
            const __m512i sum = _mm512_madd_epi16(_mm512_packs_epi32(even, odd), u[k].scales);
            acc[k][t] = _mm512_fmadd_ps(_mm512_set1_ps(dyd[k][t][2 * B]), _mm512_cvtepi32_ps(sum), acc[k][t]);
          }
        }
      };
      [&]<int... B>(std::integer_sequence<int, B...>) {
        (block.template operator()<B>(), ...);
      }(std::make_integer_sequence<int, kCount>());
      // The group's mins, as the one-token kernel (absent blocks: zero mins and dmin * yd).
      for (int t = 0; t < NT; ++t) {
        const __m512i sub = load512(sub_sums(t) + i * 8);
        for (int k = 0; k < kRows; ++k) {
          const __m512 dmin_yd = _mm512_permutexvar_ps(dmin_lanes, _mm512_castps256_ps512(_mm256_load_ps(dyd[k][t])));
          acc[k][t] = _mm512_fnmadd_ps(dmin_yd, _mm512_cvtepi32_ps(_mm512_madd_epi16(mins[k], sub)), acc[k][t]);
        }
      }
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

// The one-token Q4_K gemv of this target: with VBMI the grouped kernel (GFNI or not, checked once), else one block
// at a time.
HWY_INLINE void gemv_q4_K_one(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                              float* y) {
#if HWY_TARGET == HWY_AVX3_DL
  static const bool gfni = __builtin_cpu_supports("gfni");
  if (gfni) {
    gemv_q4_K_one_vbmi<true>(n, w, row_stride, rows, act, y);
  } else {
    gemv_q4_K_one_vbmi<false>(n, w, row_stride, rows, act, y);
  }
#else
  gemv_q4_K_one_512(n, w, row_stride, rows, act, y);
#endif
}

inline void gemv_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
  gemv_q4_K_one(n, w, row_stride, rows, act, y);
}

inline void gemv_tokens_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
  with_token_count<kTokensPerGemvCall>(nt, [&](auto k) {
    if constexpr (decltype(k)::value == 1) {
      gemv_q4_K_one(n, w, row_stride, rows, act, y);  // token 0: act and y[r]
    } else {
      gemv_q4_K_grouped_512<decltype(k)::value>(n, w, row_stride, rows, act, act_stride, y, ldy);
    }
  });
}
