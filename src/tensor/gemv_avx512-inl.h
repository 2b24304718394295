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

// Every row of [0, rows) through rows_at.template operator()<kS>(first, part), which computes rows first + k * part
// for k < kS, block steps interleaved. With `streams` = S > 1 (Intel, decode_stream.h) row r goes with r + rows / S,
// r + 2 rows / S, ...: S sequential streams for the L2 hardware prefetcher, which runs a bounded distance ahead of
// each, so S times the lines are on their way while the core computes; the last rows % S rows go alone. With 1, one
// row at a time. Each row's steps are the same either way, so its sum is too, bit for bit.
template <int kS, typename RowsAt>
HWY_INLINE void for_row_streams_of(int64_t rows, const RowsAt& rows_at) {
  const int64_t part = rows / kS;
  for (int64_t r = 0; r < part; ++r) rows_at.template operator()<kS>(r, part);
  for (int64_t r = kS * part; r < rows; ++r) rows_at.template operator()<1>(r, 0);
}
template <typename RowsAt>
HWY_INLINE void for_row_streams(int64_t rows, int streams, const RowsAt& rows_at) {
  static_assert(kMaxDecodeRowStreams == 4);
  switch (streams) {
    case 4: return for_row_streams_of<4>(rows, rows_at);
    case 3: return for_row_streams_of<3>(rows, rows_at);
    case 2: return for_row_streams_of<2>(rows, rows_at);
    default: return for_row_streams_of<1>(rows, rows_at);
  }
}

#include "tensor/gemv_q8_0_avx512-inl.h"
#include "tensor/gemv_q4_K_avx512-inl.h"
#include "tensor/gemv_q6_K_avx512-inl.h"

inline void fill_avx512_gemv(KernelTable* t) {
#if HWY_TARGET == HWY_AVX3_DL
  t->gemv[kernel_slot(GgmlType::kQ8_0)] = gemv_q8_0_like_avx512<GgmlType::kQ8_0, BlockQ8_0>;
#else
  // AVX3's Q8_0 tile (8 blocks per step) sums in another f32 order than the AVX2 gemv fill_avx2_gemv_q8_q6 set.
  t->gemv[kernel_slot(GgmlType::kQ8_0)] = nullptr;
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
