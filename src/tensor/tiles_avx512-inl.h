// AVX-512 (512-bit) tile kernels for Q4_K, Q6_K, the Q8_0 family (Q8_0, Q5_0, Q4_0), F16 and BF16, tiles of up
// to 8 tokens (Q5_K: the 256-bit kernel with 8 tokens), included by quant-inl.h inside the AVX3 and AVX3_DL target
// namespaces after tiles_avx2-inl.h, whose kernels they replace there. No include guard on purpose.
//
// Why: the 256-bit kernels spend two instructions (maddubs + the scale step) per 32 weights per token; a 512-bit
// register holds 64 weights, so the per-token work halves. The weight blocks are laid out so that 64 consecutive
// weights come from one load: a Q4_K 32-byte chunk gives its low nibbles (32 weights) and its high nibbles (the
// next 32), and a Q6_K 64-byte ql load gives 64 weights. The sub-block scales become per-lane int16 vectors with one
// vpermw per 64 weights, shared by all tokens of the tile. Integer sums per block are exact; only the f32
// accumulation order differs from the references (tests/tensor/tile_test.cpp compares every target with them).

// Highway 1.0.3 compiles AVX3_DL with the 256-bit AVX-VNNI attribute only, not avx512vnni, but selects that
// target only on CPUs with AVX512_VNNI; so the 512-bit VNNI instructions are emitted as inline assembly (as the
// 256-bit ones in tiles_avx2-inl.h).

// acc += Σ pairs(p16 * s16), 512-bit.
HWY_INLINE __m512i dp_i16_512(__m512i acc, __m512i p16, __m512i s16) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(p16), "v"(s16));
  return acc;
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, s16));
#endif
}

HWY_INLINE __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// Weights stream from memory once per token in decode. The hardware prefetchers stop at 4 KiB page boundaries and
// leave the core stalled between blocks, so each kernel asks for the cache line some distance ahead of the block
// it is about to unpack (rows and experts are contiguous, so running past a row's end prefetches the next row).
// The decode gemvs take the distance chosen for the CPU (kDecodePrefetchBytes, decode_stream.h: 16 KiB on
// AMD, 1 KiB on Intel); the prefill tiles keep kPrefetchBytes.
// 16 KiB on Zen 4 / Zen 5: a DRAM access takes about as long as the kernels need for 4-8 KiB of weights, and more
// lines in flight pay when memory is fast. With the faster gemv kernels decode of the 26B-A4B Q4_K_M on the test
// machine (2 threads, alternating runs) reached 25.0-25.8 t/s with 8 KiB against 22.3-23.9 with 4 KiB while memory
// read 73-76 GB/s, and the same at 47 GB/s (18.3-19.2 both). Once Q8_0 read one row at a time
// (gemv_q8_0_avx512-inl.h), GemvStream over 256 MB with distances alternating pass by pass at a read of 77-80 GB/s
// gave, 8 -> 16 KiB: q4_K 66.5 -> 72.0, q6_K 68.1 -> 74.7, q8_0/2816 78.2 -> 81.2, q8_0/704 77.8 -> 81.0 GB/s,
// q5_0/704 equal (24 and 32 KiB: slower again); at a read of 50, 16 KiB was 0-3% slower than 8 (BENCHMARKS.md
// "Decode round 5"). On an Intel Xeon the same 16 KiB cost the streams 15-25% against 1 KiB.
// Each call asks for the lines that START in [p + ahead, p + ahead + bytes), so the calls along a stream ask for
// every line once: counting 64-byte steps from the unaligned address asked for up to a third of the lines twice
// (3 prefetches per 144-byte Q4_K block of 2.25 lines, 5 per 4.25 lines of a Q8_0 step), each a load-port slot and
// a miss-buffer lookup (decode 1-5% faster, bench/ROUNDS-decode.md "Decode round 4").
constexpr size_t kPrefetchBytes = 16384;
// The lines of [p, p + bytes) `ahead` bytes further on (a kernel that reads several rows at once may need to look
// further than one row).
HWY_INLINE void prefetch_weights_at(const void* p, size_t bytes, size_t ahead) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) + ahead;
  for (uintptr_t line = (begin + 63) & ~uintptr_t{63}; line < begin + bytes; line += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
  }
}
// The prefill tiles' prefetch.
HWY_INLINE void prefetch_weights(const void* p, size_t bytes) { prefetch_weights_at(p, bytes, kPrefetchBytes); }
// The decode gemvs' prefetch, for kLines * 64 bytes: exactly kLines lines start in such a range, so the prefetches
// need no loop.
template <size_t kLines>
HWY_INLINE void prefetch_weights_lines(const void* p) {
  const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + kDecodePrefetchBytes + 63) & ~uintptr_t{63};
  for (size_t j = 0; j < kLines; ++j) _mm_prefetch(reinterpret_cast<const char*>(first + 64 * j), _MM_HINT_T0);
}

HWY_INLINE __m512i join256(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Q6_K row block -> 4 vectors of 64 unsigned 6-bit weights (0..63, the -32 offset left to the caller). Shared by the
// tiles and the VNNI GEMM.
HWY_INLINE void unpack_q6_K_weights_512(const BlockQ6_K& x, __m512i q[4]) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    // Weights 128h + 0..63: low nibbles of ql[64h..64h+63] with qh bits 0-1 (first 32) and 2-3 (next 32);
    // weights 128h + 64..127: the high nibbles with qh bits 4-5 and 6-7.
    const __m512i lo = load512(x.ql + 64 * h);
    const __m256i qh = load256(x.qh + 32 * h);
    const __m512i hi_a = join256(_mm256_slli_epi16(qh, 4), _mm256_slli_epi16(qh, 2));
    const __m512i hi_b = join256(qh, _mm256_srli_epi16(qh, 2));
    q[2 * h] = _mm512_or_si512(_mm512_and_si512(lo, m4), _mm512_and_si512(hi_a, m2));
    q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lo, 4), m4), _mm512_and_si512(hi_b, m2));
  }
}

// Index vectors for vpermw: int16 lane l of the result takes lane idx[l] of the source.
// Q4_K: 64 weights = sub-blocks 2j and 2j+1; lanes 0..15 (weights 0..31) take scale 2j, lanes 16..31 take 2j+1.
HWY_INLINE __m512i q4_K_scale_index(int j) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(2 * j)),
                            _mm256_set1_epi16(static_cast<short>(2 * j + 1)), 1);
}

// Q4_K x Q8_K, up to 8 tokens. Per block and row: 4 vectors of 64 weights, 4 scale vectors, the mins duplicated per
// 16 (to meet the per-16 bsums); per token: 4 x (load, maddubs, vpdpwssd), one f32 FMA, and the min term.
template <int NT>
HWY_INLINE void tile_q4_K_512(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                              float* y, int64_t ldy) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(wv);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i idx0 = q4_K_scale_index(0), idx1 = q4_K_scale_index(1), idx2 = q4_K_scale_index(2),
                idx3 = q4_K_scale_index(3);
  // mins are int16 lanes 8..15 of the unpacked scales; bsums come per 16 weights, so each min serves two lanes.
  const __m256i min_index = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  __m512 acc[NT];
  __m256 accm[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm512_setzero_ps();
    accm[t] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    prefetch_weights(x + i, sizeof(*x));
    const __m128i header = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const __m256i sc16 = _mm256_cvtepu8_epi16(unpack_k_scales_header(header));
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    const __m512i s0 = _mm512_permutexvar_epi16(idx0, sc512), s1 = _mm512_permutexvar_epi16(idx1, sc512),
                  s2 = _mm512_permutexvar_epi16(idx2, sc512), s3 = _mm512_permutexvar_epi16(idx3, sc512);
    const __m256i mins = _mm256_permutexvar_epi16(min_index, sc16);
    // q[j] = [low nibbles | high nibbles] of qs bytes 32j..32j+31: two 512-bit loads of 64 bytes, and each half
    // of a vector regrouped with the matching half of its shifted copy (the weights 64j..64j+63 in order).
    __m512i q[4];
    for (int h = 0; h < 2; ++h) {
      const __m512i bits = load512(x[i].qs + 64 * h);
      const __m512i high = _mm512_srli_epi16(bits, 4);
      q[2 * h] = _mm512_and_si512(_mm512_shuffle_i64x2(bits, high, _MM_SHUFFLE(1, 0, 1, 0)), m4);
      q[2 * h + 1] = _mm512_and_si512(_mm512_shuffle_i64x2(bits, high, _MM_SHUFFLE(3, 2, 3, 2)), m4);
    }
    // d and dmin (adjacent halves) in lanes 0 and 1, converted together.
    uint32_t d_dmin_bits;
    std::memcpy(&d_dmin_bits, &x[i].d, 4);
    const __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin_bits)));
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_K* yb = reinterpret_cast<const BlockQ8_K*>(act + t * act_stride) + i;
      const __m128 scale = _mm_mul_ps(d_dmin, _mm_set1_ps(yb->d));  // d * yd, dmin * yd
      // Two chains so that a single token (decode) is not bound by the vpdpwssd latency.
      __m512i sum_a = _mm512_maddubs_epi16(q[0], load512(yb->qs));
      __m512i sum_b = _mm512_maddubs_epi16(q[1], load512(yb->qs + 64));
      sum_a = _mm512_madd_epi16(sum_a, s0);
      sum_b = _mm512_madd_epi16(sum_b, s1);
      sum_a = dp_i16_512(sum_a, _mm512_maddubs_epi16(q[2], load512(yb->qs + 128)), s2);
      sum_b = dp_i16_512(sum_b, _mm512_maddubs_epi16(q[3], load512(yb->qs + 192)), s3);
      acc[t] = _mm512_fmadd_ps(_mm512_broadcastss_ps(scale), _mm512_cvtepi32_ps(_mm512_add_epi32(sum_a, sum_b)), acc[t]);
      const __m256i mm = _mm256_madd_epi16(mins, load256(yb->bsums));
      accm[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(scale)), _mm256_cvtepi32_ps(mm), accm[t]);
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = _mm512_reduce_add_ps(acc[t]) - hsum_f32x8(accm[t]);
}

// Q6_K: 64 weights = 4 groups of 16; lanes 8g..8g+7 take scale 4G+g (G = which 64 of the block).
HWY_INLINE __m512i q6_K_scale_index(int G) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_setr_epi16(4 * G, 4 * G, 4 * G, 4 * G, 4 * G, 4 * G, 4 * G, 4 * G, 4 * G + 1,
                                               4 * G + 1, 4 * G + 1, 4 * G + 1, 4 * G + 1, 4 * G + 1, 4 * G + 1,
                                               4 * G + 1)),
      _mm256_setr_epi16(4 * G + 2, 4 * G + 2, 4 * G + 2, 4 * G + 2, 4 * G + 2, 4 * G + 2, 4 * G + 2, 4 * G + 2,
                        4 * G + 3, 4 * G + 3, 4 * G + 3, 4 * G + 3, 4 * G + 3, 4 * G + 3, 4 * G + 3, 4 * G + 3),
      1);
}

// Q6_K x Q8_K, up to 8 tokens. Unsigned 6-bit q (0..63) in 4 vectors of 64 weights; the -32 offset is
// 32 * Σ_g sc_g * bsum_g per token, as in the 256-bit kernel: the scales times -32 once per block, and per token one
// more multiply-add of them with the bsums into lanes 0..7 (the upper 8 lanes add 0 x 0). A token's 16 int32 lanes
// fold into 8 (lane j + lane j + 8), which are scaled by d * yd into its 8 f32 accumulators. Two tokens share each
// fold, conversion and FMA (one token in each 256-bit half); a lone token takes the same steps at 256 bits, so every
// token's numbers are the same whatever NT (the integer lanes exact, the f32 steps lane for lane).
template <int NT>
HWY_INLINE void tile_q6_K_512(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                              float* y, int64_t ldy) {
  constexpr int kPairs = NT / 2;
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(wv);
  const __m512i idx0 = q6_K_scale_index(0), idx1 = q6_K_scale_index(1), idx2 = q6_K_scale_index(2),
                idx3 = q6_K_scale_index(3);
  __m512 acc2[kPairs > 0 ? kPairs : 1];  // tokens 2p (lanes 0..7) and 2p + 1 (lanes 8..15)
  __m256 acc1 = _mm256_setzero_ps();    // the last token when NT is odd
  for (int p = 0; p < kPairs; ++p) acc2[p] = _mm512_setzero_ps();
  auto yb = [&](int t, int64_t i) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride) + i; };
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    prefetch_weights(x + i, sizeof(*x));
    __m512i q[4];
    unpack_q6_K_weights_512(x[i], q);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    const __m512i s0 = _mm512_permutexvar_epi16(idx0, sc512), s1 = _mm512_permutexvar_epi16(idx1, sc512),
                  s2 = _mm512_permutexvar_epi16(idx2, sc512), s3 = _mm512_permutexvar_epi16(idx3, sc512);
    const __m512i offset_scales =
        _mm512_zextsi256_si512(_mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5));  // -32 sc
    const __m512 d = _mm512_set1_ps(h2f_fast(x[i].d));
    auto token_sum = [&](int t) {  // 16 int32 lanes
      const BlockQ8_K* b = yb(t, i);
      const __m512i bsums = _mm512_zextsi256_si512(load256(b->bsums));
      __m512i sum = _mm512_madd_epi16(_mm512_maddubs_epi16(q[0], load512(b->qs)), s0);
      if constexpr (NT == 1) {  // two chains, so that one token is not bound by the multiply-add latency
        __m512i sum_b = _mm512_madd_epi16(_mm512_maddubs_epi16(q[1], load512(b->qs + 64)), s1);
        sum = dp_i16_512(sum, _mm512_maddubs_epi16(q[2], load512(b->qs + 128)), s2);
        sum_b = dp_i16_512(sum_b, _mm512_maddubs_epi16(q[3], load512(b->qs + 192)), s3);
        return _mm512_add_epi32(sum, dp_i16_512(sum_b, offset_scales, bsums));
      }
      sum = dp_i16_512(sum, _mm512_maddubs_epi16(q[1], load512(b->qs + 64)), s1);
      sum = dp_i16_512(sum, _mm512_maddubs_epi16(q[2], load512(b->qs + 128)), s2);
      sum = dp_i16_512(sum, _mm512_maddubs_epi16(q[3], load512(b->qs + 192)), s3);
      return dp_i16_512(sum, offset_scales, bsums);
    };
    for (int p = 0; p < kPairs; ++p) {
      const __m512i a = token_sum(2 * p), b = token_sum(2 * p + 1);
      const __m512i folded = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                                              _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
      const __m512 yd = _mm512_mask_broadcastss_ps(_mm512_set1_ps(yb(2 * p, i)->d), 0xFF00,
                                                   _mm_load_ss(&yb(2 * p + 1, i)->d));
      acc2[p] = _mm512_fmadd_ps(_mm512_mul_ps(d, yd), _mm512_cvtepi32_ps(folded), acc2[p]);
    }
    if constexpr (NT % 2 == 1) {
      const __m512i a = token_sum(NT - 1);
      const __m256i folded = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
      const __m256 scale = _mm256_mul_ps(_mm512_castps512_ps256(d), _mm256_set1_ps(yb(NT - 1, i)->d));
      acc1 = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(folded), acc1);
    }
  }
  for (int p = 0; p < kPairs; ++p) {
    y[2 * p * ldy] = hsum_f32x8(_mm512_castps512_ps256(acc2[p]));
    y[(2 * p + 1) * ldy] = hsum_f32x8(_mm512_extractf32x8_ps(acc2[p], 1));
  }
  if constexpr (NT % 2 == 1) y[(NT - 1) * ldy] = hsum_f32x8(acc1);
}

// acc += Σ quads(u8 * s8), 512-bit (without VNNI through int16 pairs, which do not saturate for |w| <= 128 and
// |a| <= 127).
HWY_INLINE __m512i dp_u8s8_512(__m512i acc, __m512i u, __m512i s) {
#if HWY_TARGET == HWY_AVX3_DL
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));  // u: unsigned bytes, s: signed bytes
  return acc;
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// Four vectors s[p] of 16 int32 partial sums, blocks 2p (lanes 0..7) and 2p+1 (lanes 8..15), half reduced: each
// 128-bit chunk c of the result holds the sums of s0, s1, s2, s3 over their chunk c (chunks 0-1 are the first
// block of each pair, 2-3 the second).
HWY_INLINE __m512i block_pair_partials(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1), _mm512_unpackhi_epi32(s0, s1));
  const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
}

// block_pair_partials when every lane fits in int16 (Q5_0 / Q4_0 gemv: 4 products of at most 31 x 128 per lane):
// two levels of vpackssdw + vpmaddwd with ones add neighbouring lanes, fewer shuffles than the unpack tree; the
// same sums in the same lanes.
HWY_INLINE __m512i block_pair_partials_int16(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  const __m512i ones = _mm512_set1_epi16(1);
  const __m512i t01 = _mm512_madd_epi16(_mm512_packs_epi32(s0, s1), ones);  // lanes: at most 2 x 15872
  const __m512i t23 = _mm512_madd_epi16(_mm512_packs_epi32(s2, s3), ones);
  return _mm512_madd_epi16(_mm512_packs_epi32(t01, t23), ones);
}

// Block pair partials u (above) to one total per block, in the lane order blocks 0, 2, 4, 6, 1, 3, 5, 7.
HWY_INLINE __m256i block_totals(__m512i u) {
  const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 0, 2, 0)));
}

// Four vectors s[p] as above to one total per block, in the lane order blocks 0, 2, 4, 6, 1, 3, 5, 7.
HWY_INLINE __m256i reduce_block_pairs(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  return block_totals(block_pair_partials(s0, s1, s2, s3));
}

// reduce_block_pairs when every lane fits in int16.
HWY_INLINE __m256i reduce_block_pairs_int16(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  return block_totals(block_pair_partials_int16(s0, s1, s2, s3));
}

// Q8_0 / Q5_0 / Q4_0 x Q8_0, eight blocks per step. Per row: the weights of block pairs become 64 signed int8,
// their |w| and sign masks, and the 8 block scales. Per token: the sign moves onto the activations (masked
// negate; AVX-512 has no vpsignb), vpdpbusd gives 8 lanes per block, one shuffle tree reduces them to one lane per
// block, and a single FMA applies the 8 weight x activation scales. The per-block f32 work of the 256-bit kernel
// (convert, broadcast, multiply, FMA per block and token) drops to one vector op per 8 blocks.
// A remainder of fewer than 8 blocks is one more step of the same kind (kCount < 8): a routed expert's 704-column
// down rows are 22 blocks, 2 x 8 + 6, and in decode that remainder through the 256-bit kernel, unprefetched, made
// them the slowest rows per byte. Blocks past the row's end are never read: their weights, activations and both
// scales are zero, so they add exactly 0.
template <GgmlType kType, typename Block, int NT, int kCount>
HWY_INLINE void q8_0_like_step_512(const uint8_t* x, int64_t i, int64_t nb, const uint8_t* act, size_t act_stride,
                                   const float* act_scales, __m256 (&acc)[NT]) {
  auto here = [](int k) { return k < kCount; };  // known at compile time: no branches in the unrolled loops
  prefetch_weights(x + i * sizeof(Block), kCount * sizeof(Block));
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m512i aw[4];
  __mmask64 negative[4];
  alignas(16) uint16_t dh[8] = {};  // weight scales in the reduced lane order; 0 for absent blocks
  for (int p = 0; p < 4; ++p) {
    const uint8_t* b0 = x + (i + 2 * p) * sizeof(Block);
    const uint8_t* b1 = b0 + sizeof(Block);
    const __m256i w0 = here(2 * p) ? q8_0_like_weights<kType>(b0) : _mm256_setzero_si256();
    const __m256i w1 = here(2 * p + 1) ? q8_0_like_weights<kType>(b1) : _mm256_setzero_si256();
    const __m512i w = join256(w0, w1);
    negative[p] = _mm512_movepi8_mask(w);
    aw[p] = _mm512_abs_epi8(w);
    if (here(2 * p)) std::memcpy(&dh[p], b0, 2);  // d leads all three block types
    if (here(2 * p + 1)) std::memcpy(&dh[4 + p], b1, 2);
  }
  const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dh)));
  for (int t = 0; t < NT; ++t) {
    const BlockQ8_0* yb = reinterpret_cast<const BlockQ8_0*>(act + t * act_stride) + i;
    __m512i s[4];
    for (int p = 0; p < 4; ++p) {
      const __m256i a0 = here(2 * p) ? load256(yb[2 * p].qs) : _mm256_setzero_si256();
      const __m256i a1 = here(2 * p + 1) ? load256(yb[2 * p + 1].qs) : _mm256_setzero_si256();
      const __m512i a = join256(a0, a1);
      const __m512i sa = _mm512_mask_sub_epi8(a, negative[p], _mm512_setzero_si512(), a);
      s[p] = dp_u8s8_512(_mm512_setzero_si512(), aw[p], sa);
    }
    __m256 da;
    if (act_scales != nullptr) {
      const float* as = act_scales + t * nb + i;
      const __m256 raw =
          kCount == 8 ? _mm256_loadu_ps(as) : _mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << kCount) - 1), as);
      da = _mm256_permutexvar_ps(order, raw);
    } else {
      alignas(16) uint16_t ah[8] = {};
      for (int p = 0; p < 4; ++p) {
        if (here(2 * p)) std::memcpy(&ah[p], &yb[2 * p].d, 2);
        if (here(2 * p + 1)) std::memcpy(&ah[4 + p], &yb[2 * p + 1].d, 2);
      }
      da = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(ah)));
    }
    const __m256i sums = reduce_block_pairs(s[0], s[1], s[2], s[3]);
    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(sums), acc[t]);
  }
}

// A row's remainder of k = 0..7 blocks as one step whose block count is a compile-time constant:
// step(std::integral_constant<int, k>()) for k > 0, nothing for 0.
template <typename Step>
HWY_INLINE void for_remainder_blocks(int64_t k, Step&& step) {
  switch (k) {
    case 1: step(std::integral_constant<int, 1>()); break;
    case 2: step(std::integral_constant<int, 2>()); break;
    case 3: step(std::integral_constant<int, 3>()); break;
    case 4: step(std::integral_constant<int, 4>()); break;
    case 5: step(std::integral_constant<int, 5>()); break;
    case 6: step(std::integral_constant<int, 6>()); break;
    case 7: step(std::integral_constant<int, 7>()); break;
    default: break;
  }
}

template <GgmlType kType, typename Block, int NT>
HWY_INLINE void tile_q8_0_like_512(int64_t n, const void* wv, const uint8_t* act, size_t act_stride,
                                   const float* act_scales, float* y, int64_t ldy) {
  const uint8_t* x = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / kQK8_0;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) q8_0_like_step_512<kType, Block, NT, 8>(x, i, nb, act, act_stride, act_scales, acc);
  for_remainder_blocks(nb - i, [&](auto count) {
    q8_0_like_step_512<kType, Block, NT, decltype(count)::value>(x, i, nb, act, act_stride, act_scales, acc);
  });
  for (int t = 0; t < NT; ++t) y[t * ldy] = hsum_f32x8(acc[t]);
}

// 16 f16 or bf16 values -> 16 f32.
template <bool kBf16>
HWY_INLINE __m512 halves16_to_ps(const uint16_t* p) {
  const __m256i h = load256(p);
  if constexpr (kBf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}

// F16 / BF16 weights x activations of the same type (vec_dot_type): 32 weights are widened to f32 once per row
// and step, then each token costs a widen and an FMA per 16 (two accumulators, so one token is not bound by the
// FMA latency). The tail (n % 16) goes element by element.
template <bool kBf16, int NT>
HWY_INLINE void tile_half_512(int64_t n, const void* wv, const uint8_t* act, size_t act_stride, const float*,
                              float* y, int64_t ldy) {
  const uint16_t* w = static_cast<const uint16_t*>(wv);
  auto row = [&](int t) { return reinterpret_cast<const uint16_t*>(act + t * act_stride); };
  __m512 acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 w0 = halves16_to_ps<kBf16>(w + i), w1 = halves16_to_ps<kBf16>(w + i + 16);
    for (int t = 0; t < NT; ++t) {
      acc0[t] = _mm512_fmadd_ps(w0, halves16_to_ps<kBf16>(row(t) + i), acc0[t]);
      acc1[t] = _mm512_fmadd_ps(w1, halves16_to_ps<kBf16>(row(t) + i + 16), acc1[t]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 w0 = halves16_to_ps<kBf16>(w + i);
    for (int t = 0; t < NT; ++t) acc0[t] = _mm512_fmadd_ps(w0, halves16_to_ps<kBf16>(row(t) + i), acc0[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
    for (int64_t k = i; k < n; ++k) {
      sum += kBf16 ? bf16_to_fp32(w[k]) * bf16_to_fp32(row(t)[k]) : fp16_to_fp32(w[k]) * fp16_to_fp32(row(t)[k]);
    }
    y[t * ldy] = sum;
  }
}
constexpr int kTileTokensAvx512 = 8;

FABULA_TILE_ENTRY(tile_q4_K_avx512, kTileTokensAvx512, tile_q4_K_512)
FABULA_TILE_ENTRY(tile_q5_K_avx512, kTileTokensAvx512, tile_qk_avx2, true, BlockQ5_K, )
FABULA_TILE_ENTRY(tile_q6_K_avx512, kTileTokensAvx512, tile_q6_K_512)
FABULA_TILE_ENTRY(tile_q8_0_avx512, kTileTokensAvx512, tile_q8_0_like_512, GgmlType::kQ8_0, BlockQ8_0, )
FABULA_TILE_ENTRY(tile_q5_0_avx512, kTileTokensAvx512, tile_q8_0_like_512, GgmlType::kQ5_0, BlockQ5_0, )
FABULA_TILE_ENTRY(tile_q4_0_avx512, kTileTokensAvx512, tile_q8_0_like_512, GgmlType::kQ4_0, BlockQ4_0, )
FABULA_TILE_ENTRY(tile_f16_avx512, kTileTokensAvx512, tile_half_512, false, )
FABULA_TILE_ENTRY(tile_bf16_avx512, kTileTokensAvx512, tile_half_512, true, )

inline void fill_avx512_tiles(KernelTable* t) {
  t->tile[kernel_slot(GgmlType::kQ4_K)] = tile_q4_K_avx512;
  t->tile[kernel_slot(GgmlType::kQ5_K)] = tile_q5_K_avx512;
  t->tile[kernel_slot(GgmlType::kQ6_K)] = tile_q6_K_avx512;
  t->tile[kernel_slot(GgmlType::kQ8_0)] = tile_q8_0_avx512;
  t->tile[kernel_slot(GgmlType::kQ5_0)] = tile_q5_0_avx512;
  t->tile[kernel_slot(GgmlType::kQ4_0)] = tile_q4_0_avx512;
  t->tile[kernel_slot(GgmlType::kF16)] = tile_f16_avx512;
  t->tile[kernel_slot(GgmlType::kBF16)] = tile_bf16_avx512;
  t->tile_tokens = kTileTokensAvx512;
}
