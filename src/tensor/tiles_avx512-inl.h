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
// leave the core stalled between blocks, so each kernel asks for the cache line kPrefetchBytes ahead of the block
// it is about to unpack (rows and experts are contiguous, so running past a row's end prefetches the next row).
// 8 KiB: a DRAM access takes about as long as the kernels need for 4-8 KiB of weights. With the faster gemv kernels
// decode of the 26B-A4B Q4_K_M on the test machine (2 threads, alternating runs) reached 25.0-25.8 t/s with 8 KiB
// against 22.3-23.9 with 4 KiB while memory read 73-76 GB/s, and the same at 47 GB/s (18.3-19.2 both).
constexpr int kPrefetchBytes = 8192;
HWY_INLINE void prefetch_weights(const void* p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) {
    _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes + off, _MM_HINT_T0);
  }
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

// unpack_k_scales (blocks.h) in one SSE register: the 8 six-bit scales in bytes 0..7 and the 8 mins in bytes
// 8..15, from the block's 12 scale bytes (the 16-byte load also reads the first 4 bytes of qs, which are dropped).
HWY_INLINE __m128i unpack_k_scales_128(const uint8_t* packed) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // u0 u1 u2 as utmp[0..2]
  // utmp[0] = u0 & 0x3f.., utmp[2] = u1 & 0x3f..: lanes 0 and 2; the low parts of utmp[1] = u2 & 0x0f.. and
  // utmp[3] = (u2 >> 4) & 0x0f..: lanes 1 and 3.
  const __m128i a = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));  // u0 u2 u1 u2
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // Their high parts ((u0 >> 6) & 3) << 4 and ((u1 >> 6) & 3) << 4 per byte, in lanes 1 and 3.
  const __m128i b = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));  // u0 u0 u1 u1
  const __m128i high = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, high);
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
    const __m256i sc16 = _mm256_cvtepu8_epi16(unpack_k_scales_128(x[i].scales));
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

// Four vectors s[p] of 16 int32 partial sums, blocks 2p (lanes 0..7) and 2p+1 (lanes 8..15), reduced to one
// total per block, in the lane order blocks 0, 2, 4, 6, 1, 3, 5, 7.
HWY_INLINE __m256i reduce_block_pairs(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1), _mm512_unpackhi_epi32(s0, s1));
  const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
  // Each 128-bit chunk c of u: the sums of s0..s3 over chunk c; chunks 0-1 are the first block, 2-3 the second.
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
  const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 0, 2, 0)));
}

// reduce_block_pairs when every lane fits in int16 (Q5_0 / Q4_0 gemv: 4 products of at most 31 x 128 per lane):
// two levels of vpackssdw + vpmaddwd with ones add neighbouring lanes, fewer shuffles than the unpack tree; the
// same totals in the same lane order.
HWY_INLINE __m256i reduce_block_pairs_int16(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
  const __m512i ones = _mm512_set1_epi16(1);
  const __m512i t01 = _mm512_madd_epi16(_mm512_packs_epi32(s0, s1), ones);  // lanes: at most 2 x 15872
  const __m512i t23 = _mm512_madd_epi16(_mm512_packs_epi32(s2, s3), ones);
  // Chunk c of u: the totals of chunk c of s0, s1, s2, s3 (chunks 0-1 are block 2p, chunks 2-3 block 2p + 1).
  const __m512i u = _mm512_madd_epi16(_mm512_packs_epi32(t01, t23), ones);
  const __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 0, 2, 0)));
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
template <GgmlType kType, typename Block, int kCount, int NT>
HWY_INLINE void gemv_q8_0_like_step_vbmi(const uint8_t* x, int64_t i, const int8_t* const (&acts)[NT],
                                         const float* const (&act_scales)[NT], const int32_t* const (&act_sums)[NT],
                                         __m256 (&acc)[NT]) {
  constexpr int kShift = kType == GgmlType::kQ8_0 ? 0 : kType == GgmlType::kQ5_0 ? 3 : 4;  // c * Σa = -sums >> shift
  constexpr int kBytes = static_cast<int>(sizeof(Block));
  constexpr int kQs = kBytes - 16;  // offset of the packed nibbles in a Q5_0 / Q4_0 block
  constexpr auto here = [](int k) { return k < kCount; };
  prefetch_weights(x + i * kBytes, kCount * kBytes);
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
  __m512i pair[4], u[4];
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
  const __m256 dw = _mm256_cvtph_ps(_mm512_castsi512_si128(d16));
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
// decode, up to kGemvTokensQ8_0 in a batched step of a few sequences. The tokens' int8 values go to a 64-byte
// aligned buffer (whole cache lines per load).
constexpr int kGemvTokensQ8_0 = 4;
template <GgmlType kType, typename Block, int NT>
HWY_INLINE void gemv_q8_0_like_tokens_vbmi(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows,
                                           const uint8_t* act, size_t act_stride, const float* act_scales,
                                           const int32_t* act_sums, float* y, int64_t ldy) {
  const int64_t nb = n / kQK8_0;
  const size_t token_bytes = static_cast<size_t>(nb + 2) * kQK8_0;
  thread_local hwy::AlignedFreeUniquePtr<int8_t[]> scratch;
  thread_local size_t scratch_bytes = 0;
  if (scratch_bytes < NT * token_bytes) {
    scratch = hwy::AllocateAligned<int8_t>(NT * token_bytes);
    scratch_bytes = NT * token_bytes;
  }
  const int8_t* acts[NT];
  const float* scales[NT];
  const int32_t* sums[NT];
  for (int t = 0; t < NT; ++t) {
    int8_t* out = scratch.get() + t * token_bytes;
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

template <GgmlType kType, typename Block>
void gemv_q8_0_like_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                           const float* act_scales, const int32_t* act_sums, float* y) {
#if HWY_TARGET == HWY_AVX3_DL
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
  with_token_count<kGemvTokensQ8_0>(nt, [&](auto k) {
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

// The Q4_K gemv: NT tokens (activation rows act + t * act_stride: one in decode, up to kGemvTokensQ4K in a
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
// call per token, and 1.2x the tiles' with 2 or 4 tokens.
constexpr int kGemvTokensQ4K = 4;
template <int NT>
HWY_INLINE void gemv_q4_K_tokens_512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                     size_t act_stride, float* y, int64_t ldy) {
  const int64_t nb = n / kQK_K;
  auto yb = [&](int t) { return reinterpret_cast<const BlockQ8_K*>(act + t * act_stride); };
  // Per token, 64-byte aligned (read as whole cache lines: loads across two lines made the 4-token kernel 5-8%
  // slower): the reordered activation (n bytes), then yd * the activation sum of each 32-weight sub-block (nb x 8
  // floats), which the mins multiply (one FMA per block and token instead of widening the bsums against them).
  const size_t token_bytes = static_cast<size_t>(n) + static_cast<size_t>(nb) * 8 * sizeof(float);
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> scratch;
  thread_local size_t scratch_bytes = 0;
  if (scratch_bytes < NT * token_bytes) {
    scratch = hwy::AllocateAligned<uint8_t>(NT * token_bytes);
    scratch_bytes = NT * token_bytes;
  }
  auto reordered = [&](int t) { return reinterpret_cast<int8_t*>(scratch.get() + t * token_bytes); };
  auto min_terms = [&](int t) { return reinterpret_cast<float*>(scratch.get() + t * token_bytes + n); };
  for (int t = 0; t < NT; ++t) {
    q4_K_gemv_activation(yb(t), nb, reordered(t));
    for (int64_t i = 0; i < nb; ++i) {  // the bsums come per 16 weights: add them in pairs
      const __m256i sub_sums = _mm256_madd_epi16(load256(yb(t)[i].bsums), _mm256_set1_epi16(1));
      _mm256_store_ps(min_terms(t) + i * 8, _mm256_mul_ps(_mm256_set1_ps(yb(t)[i].d), _mm256_cvtepi32_ps(sub_sums)));
    }
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // After vpackssdw(even, odd), int16 lane j holds sub-block j / 4 (chunk c: 4 lanes of 2c, then 4 of 2c + 1).
  const __m512i scale_index = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2,
                                               1, 1, 1, 1, 0, 0, 0, 0);  // lanes 31 down to 0
  for (int64_t r = 0; r < rows; ++r) {
    const BlockQ4_K* x = reinterpret_cast<const BlockQ4_K*>(w + static_cast<size_t>(r) * row_stride);
    __m512 acc[NT];
    __m256 accm[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_setzero_ps();
      accm[t] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
      prefetch_weights(x + i, sizeof(*x));
      // The scales into their int16 lanes: with VBMI one vpermb, zero-extended by the mask (the index vector's low
      // bytes are the byte indices).
      const __m128i scales_mins = unpack_k_scales_128(x[i].scales);
#if HWY_TARGET == HWY_AVX3_DL
      const __m512i scales = _mm512_maskz_permutexvar_epi8(0x5555555555555555ULL, scale_index,
                                                           _mm512_castsi128_si512(scales_mins));
#else
      const __m512i scales =
          _mm512_permutexvar_epi16(scale_index, _mm512_castsi256_si512(_mm256_cvtepu8_epi16(scales_mins)));
#endif
      const __m512i a = load512(x[i].qs), b = load512(x[i].qs + 64);
      const __m512i even_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i odd_chunks = _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1));
      const __m512i q0 = _mm512_and_si512(even_chunks, m4), q1 = _mm512_and_si512(odd_chunks, m4);
      const __m512i q2 = _mm512_and_si512(_mm512_srli_epi16(even_chunks, 4), m4);
      const __m512i q3 = _mm512_and_si512(_mm512_srli_epi16(odd_chunks, 4), m4);
      uint32_t d_dmin_bits;  // d and dmin (adjacent halves) in lanes 0 and 1, converted together
      std::memcpy(&d_dmin_bits, &x[i].d, 4);
      const __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d_dmin_bits)));
      const __m512 d = _mm512_broadcastss_ps(d_dmin);
      // dmin * the min of each sub-block (bytes 8..15 of the unpacked scales), shared by every token.
      const __m256 dmin_mins = _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)),
                                             _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(scales_mins, 8))));
      for (int t = 0; t < NT; ++t) {
        const int8_t* ya = reordered(t) + i * kQK_K;
        __m512i even = dp_u8s8_512(_mm512_setzero_si512(), q0, load512(ya));
        even = dp_u8s8_512(even, q1, load512(ya + 64));
        __m512i odd = dp_u8s8_512(_mm512_setzero_si512(), q2, load512(ya + 128));
        odd = dp_u8s8_512(odd, q3, load512(ya + 192));
        const __m512i sum = _mm512_madd_epi16(_mm512_packs_epi32(even, odd), scales);
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(yb(t)[i].d)), _mm512_cvtepi32_ps(sum), acc[t]);
        accm[t] = _mm256_fmadd_ps(dmin_mins, _mm256_load_ps(min_terms(t) + i * 8), accm[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[t]) - hsum_f32x8(accm[t]);
  }
}

inline void gemv_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
  gemv_q4_K_tokens_512<1>(n, w, row_stride, rows, act, 0, y, 0);
}

inline void gemv_tokens_q4_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
  with_token_count<kGemvTokensQ4K>(nt, [&](auto k) {
    gemv_q4_K_tokens_512<decltype(k)::value>(n, w, row_stride, rows, act, act_stride, y, ldy);
  });
}

// One token against `rows` rows of Q6_K: the one-token tile per row, inlined into one loop (the same arithmetic
// bit for bit; a call per 2816-column row spent about a tenth of the time on the call, the dispatch on the token
// count and the register set-up).
inline void gemv_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                             const float*, const int32_t*, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    tile_q6_K_512<1>(n, w + static_cast<size_t>(r) * row_stride, act, 0, nullptr, y + r, 1);
  }
}

// A batched decode step's NT <= kGemvTokensQ6K tokens against `rows` rows: the tile per row, inlined into one loop
// (each block unpacked once for all tokens, every token's arithmetic the one-token gemv's, bit for bit).
constexpr int kGemvTokensQ6K = 4;
inline void gemv_tokens_q6_K_avx512(int64_t n, const uint8_t* w, size_t row_stride, int64_t rows, const uint8_t* act,
                                    size_t act_stride, const float*, const int32_t*, int nt, float* y, int64_t ldy) {
  with_token_count<kGemvTokensQ6K>(nt, [&](auto k) {
    for (int64_t r = 0; r < rows; ++r) {
      tile_q6_K_512<decltype(k)::value>(n, w + static_cast<size_t>(r) * row_stride, act, act_stride, nullptr, y + r,
                                        ldy);
    }
  });
}

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
#if HWY_TARGET == HWY_AVX3_DL
  t->gemv[kernel_slot(GgmlType::kQ8_0)] = gemv_q8_0_like_avx512<GgmlType::kQ8_0, BlockQ8_0>;
#endif
  t->gemv[kernel_slot(GgmlType::kQ4_K)] = gemv_q4_K_avx512;
  t->gemv_every_token[kernel_slot(GgmlType::kQ4_K)] = true;
  t->gemv_tokens[kernel_slot(GgmlType::kQ4_K)] = gemv_tokens_q4_K_avx512;
  static_assert(kGemvTokensQ4K == kTokensPerGemvCall);
  t->gemv[kernel_slot(GgmlType::kQ6_K)] = gemv_q6_K_avx512;
  t->gemv_tokens[kernel_slot(GgmlType::kQ6_K)] = gemv_tokens_q6_K_avx512;
  static_assert(kGemvTokensQ6K == kTokensPerGemvCall);
  t->gemv[kernel_slot(GgmlType::kQ5_0)] = gemv_q8_0_like_avx512<GgmlType::kQ5_0, BlockQ5_0>;
  t->gemv[kernel_slot(GgmlType::kQ4_0)] = gemv_q8_0_like_avx512<GgmlType::kQ4_0, BlockQ4_0>;
#if HWY_TARGET == HWY_AVX3_DL
  static_assert(kGemvTokensQ8_0 == kTokensPerGemvCall);
  t->gemv_tokens[kernel_slot(GgmlType::kQ8_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ8_0, BlockQ8_0>;
  t->gemv_tokens[kernel_slot(GgmlType::kQ5_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ5_0, BlockQ5_0>;
  t->gemv_tokens[kernel_slot(GgmlType::kQ4_0)] = gemv_tokens_q8_0_like_avx512<GgmlType::kQ4_0, BlockQ4_0>;
#endif
}
