// x86 AVX2 / AVX-512 int8 block dot kernels, included by quant-inl.h inside each x86 target namespace (AVX2,
// AVX3, AVX3_DL), so they compile with that target's instruction set. No include guard on purpose.
// Per block the integer sums are exact (same as the references); only the f32 accumulation order differs.

// Sum of x[i]*y[i] over 32 int8 pairs, as 8 int32 lanes. y must lie in [-127, 127] (activation quantizers
// guarantee it); x may be any int8. Sign trick: |x| (u8) times y*sign(x) (s8).
HWY_INLINE __m256i dot_i8x32(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
#if HWY_TARGET == HWY_AVX3_DL
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
#endif
}

// Unsigned x (u8, <= 127 in practice) times signed y: int16 pair sums (no saturation for x <= 63 or the
// 4-bit/5-bit ranges used here).
HWY_INLINE __m256i mul_u8_s8_pairs(__m256i x, __m256i y) { return _mm256_maddubs_epi16(x, y); }

HWY_INLINE float hsum_f32x8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

HWY_INLINE int hsum_i32x8(__m256i v) {
  __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
  return _mm_cvtsi128_si32(r);
}

HWY_INLINE float h2f_fast(uint16_t h) { return _cvtsh_ss(h); }

HWY_INLINE __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 packed bytes -> 32 nibbles: low nibbles in bytes 0..15, high nibbles in bytes 16..31 (Q4_0/Q5_0 order).
HWY_INLINE __m256i nibbles_32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set (ggml's bytes_from_bits_32).
HWY_INLINE __m256i bytes_from_bits_32(const uint8_t* p) {
  uint32_t x32;
  std::memcpy(&x32, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

inline float vec_dot_q8_0_q8_0_x86(int64_t n, const void* wv, const void* av) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(wv);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(av);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256i s = dot_i8x32(load256(x[i].qs), load256(y[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f_fast(x[i].d) * h2f_fast(y[i].d)), _mm256_cvtepi32_ps(s), acc);
  }
  return hsum_f32x8(acc);
}

inline float vec_dot_q4_0_q8_0_x86(int64_t n, const void* wv, const void* av) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(wv);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(av);
  __m256 acc = _mm256_setzero_ps();
  const __m256i eight = _mm256_set1_epi8(8);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const __m256i qx = _mm256_sub_epi8(nibbles_32(x[i].qs), eight);
    const __m256i s = dot_i8x32(qx, load256(y[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f_fast(x[i].d) * h2f_fast(y[i].d)), _mm256_cvtepi32_ps(s), acc);
  }
  return hsum_f32x8(acc);
}

inline float vec_dot_q5_0_q8_0_x86(int64_t n, const void* wv, const void* av) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(wv);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(av);
  __m256 acc = _mm256_setzero_ps();
  const __m256i f0 = _mm256_set1_epi8(static_cast<char>(0xF0));
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    // A clear fifth bit ORs in 0xF0, which reads as nibble - 16 in int8; a set bit leaves nibble = (16+q) - 16.
    const __m256i hi = _mm256_andnot_si256(bytes_from_bits_32(x[i].qh), f0);
    const __m256i qx = _mm256_or_si256(nibbles_32(x[i].qs), hi);
    const __m256i s = dot_i8x32(qx, load256(y[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f_fast(x[i].d) * h2f_fast(y[i].d)), _mm256_cvtepi32_ps(s), acc);
  }
  return hsum_f32x8(acc);
}

// Q4_K/Q5_K: 8 scales and 8 mins from the packed 12 bytes (ggml's kmask arithmetic).
HWY_INLINE void unpack_k_scales_x86(const uint8_t* packed, uint32_t utmp[4]) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  std::memcpy(utmp, packed, 12);
  utmp[3] = ((utmp[2] >> 4) & kmask2) | (((utmp[1] >> 6) & kmask3) << 4);
  const uint32_t uaux = utmp[1] & kmask1;
  utmp[1] = (utmp[2] & kmask2) | (((utmp[0] >> 6) & kmask3) << 4);
  utmp[2] = uaux;
  utmp[0] &= kmask1;
}

// Σ_j mins[j] * (bsums[2j] + bsums[2j+1]) for the Q4_K/Q5_K min term.
HWY_INLINE int k_min_term(const uint32_t utmp[4], const int16_t* bsums) {
  const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(utmp[3]), static_cast<int>(utmp[2])));
  const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums));
  const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8));
  const __m128i pair_sums = _mm_hadd_epi16(b0, b1);
  __m128i p = _mm_madd_epi16(mins, pair_sums);
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
  return _mm_cvtsi128_si32(p);
}

// kHighBits: Q5_K's fifth bit plane (qh), else Q4_K.
template <bool kHighBits, typename Block>
inline float vec_dot_qk_q8_K_x86(int64_t n, const void* wv, const void* av) {
  const Block* x = static_cast<const Block*>(wv);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(av);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float acc_min = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint32_t utmp[4];
    unpack_k_scales_x86(x[i].scales, utmp);
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(utmp);
    const float d = h2f_fast(x[i].d) * y[i].d;
    const float dmin = h2f_fast(x[i].dmin) * y[i].d;
    acc_min += dmin * static_cast<float>(k_min_term(utmp, y[i].bsums));
    const uint8_t* q4 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kHighBits) hbits = load256(x[i].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < kQK_K / 64; ++j) {
      const __m256i q4bits = load256(q4 + 32 * j);
      __m256i q4l = _mm256_and_si256(q4bits, m4);
      __m256i q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
      if constexpr (kHighBits) {
        q4l = _mm256_or_si256(q4l, _mm256_slli_epi16(_mm256_and_si256(hbits, one), 4));
        q4h = _mm256_or_si256(q4h, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), one), 4));
        hbits = _mm256_srli_epi16(hbits, 2);
      }
      const __m256i pl = _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j]), mul_u8_s8_pairs(q4l, load256(q8 + 64 * j)));
      const __m256i ph =
          _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j + 1]), mul_u8_s8_pairs(q4h, load256(q8 + 64 * j + 32)));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_f32x8(acc) - acc_min;
}

inline float vec_dot_q6_K_q8_K_x86(int64_t n, const void* wv, const void* av) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(wv);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(av);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x30);
  const __m256i m32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = h2f_fast(x[i].d) * y[i].d;
    const int8_t* sc = x[i].scales;
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const __m256i qh = load256(x[i].qh + 32 * h);
      const __m256i lo1 = load256(ql);
      const __m256i lo2 = load256(ql + 32);
      // Unsigned 6-bit values q in [0, 63]; the -32 offset is applied as 32 * Σq8 below.
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(lo1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2)),
          _mm256_or_si256(_mm256_and_si256(lo2, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo1, 4), m4), _mm256_and_si256(qh, m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo2, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i q8 = load256(y[i].qs + 128 * h + 32 * k);
        const __m256i p = _mm256_sub_epi16(mul_u8_s8_pairs(q[k], q8), mul_u8_s8_pairs(m32, q8));
        // Elements 0..15 of this 32-run use scale 8h+2k, elements 16..31 use 8h+2k+1.
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * k + 1]), _mm_set1_epi16(sc[8 * h + 2 * k]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_f32x8(acc);
}

inline void fill_x86_kernels(KernelTable* t) {
  t->vec_dot[kernel_slot(GgmlType::kQ8_0)] = vec_dot_q8_0_q8_0_x86;
  t->vec_dot[kernel_slot(GgmlType::kQ4_0)] = vec_dot_q4_0_q8_0_x86;
  t->vec_dot[kernel_slot(GgmlType::kQ5_0)] = vec_dot_q5_0_q8_0_x86;
  t->vec_dot[kernel_slot(GgmlType::kQ4_K)] = vec_dot_qk_q8_K_x86<false, BlockQ4_K>;
  t->vec_dot[kernel_slot(GgmlType::kQ5_K)] = vec_dot_qk_q8_K_x86<true, BlockQ5_K>;
  t->vec_dot[kernel_slot(GgmlType::kQ6_K)] = vec_dot_q6_K_q8_K_x86;
}
