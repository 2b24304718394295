// Multi-token tile kernels (kernels.h TileFn) on every attainable target against the scalar reference tiles,
// and matmul with tiles on vs off: random blocks (all byte values, including int8 -128 weights), odd token counts,
// misaligned rows, strided outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <hwy/targets.h>

#include "tensor/blocks.h"
#include "tensor/decode_stream.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/quant_ref.h"
#include "tensor/thread_pool.h"
#include "kernel_test_util.h"

namespace fabula {
namespace {

using kernel_test::for_each_target;
using kernel_test::random_weight_row;
using kernel_test::RandomMatrix;

const GgmlType kTileTypes[] = {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_0,
                               GgmlType::kQ5_0, GgmlType::kQ4_0, GgmlType::kF16,  GgmlType::kBF16,
                               GgmlType::kF32};

// Activations quantized by the scalar reference (Q8_K / Q8_0), `rows` rows of n.
std::vector<uint8_t> random_activations(GgmlType act_type, int64_t n, int rows, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  const size_t rb = row_bytes(act_type, static_cast<uint64_t>(n));
  std::vector<uint8_t> out(rb * rows);
  std::vector<float> x(static_cast<size_t>(n));
  for (int r = 0; r < rows; ++r) {
    for (auto& v : x) v = g(rng);
    scalar_kernels().quantize_act[kernel_slot(act_type)](x.data(), out.data() + rb * r, n);
  }
  return out;
}

// The f32 scale of every Q8_0 block of `rows` activation rows (empty for other activation types).
std::vector<float> block_scales_f32(GgmlType act_type, int64_t n, int rows, const std::vector<uint8_t>& act) {
  std::vector<float> scales;
  if (act_type != GgmlType::kQ8_0) return scales;
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(act.data());
  for (int64_t b = 0; b < n / 32 * rows; ++b) scales.push_back(fp16_to_fp32(blocks[b].d));
  return scales;
}

// -128 * the sum of every Q8_0 block's qs of `rows` activation rows, as QuantizedActivations::block_sums (empty for
// other activation types).
std::vector<int32_t> block_sums_q8_0(GgmlType act_type, int64_t n, int rows, const std::vector<uint8_t>& act) {
  std::vector<int32_t> sums;
  if (act_type != GgmlType::kQ8_0) return sums;
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(act.data());
  for (int64_t b = 0; b < n / 32 * rows; ++b) {
    int32_t sum = 0;
    for (int8_t v : blocks[b].qs) sum += v;
    sums.push_back(-128 * sum);
  }
  return sums;
}

TEST(Tile, EveryTargetMatchesTheScalarReference) {
  const KernelTable ref = scalar_kernels();
  std::mt19937 rng(42);
  int tested = 0;
  for_each_target([&](const KernelTable& table, int64_t) {
    for (GgmlType type : kTileTypes) {
      const TileFn tile = table.tile[kernel_slot(type)];
      if (tile == nullptr) continue;
      SCOPED_TRACE(std::string(type_name(type)));
      ++tested;
      const GgmlType at = vec_dot_type(type);
      // 2816: the 26B hidden size; 704 (22 blocks of 32) its expert width; 800 (25 blocks) an odd block count for
      // the kernels that take two 32-blocks per step; 96 (3 blocks) a row shorter than one 8-block step.
      // Float types: 77 and 1000 exercise the 16-wide remainder and the element-by-element tail.
      const int64_t block = type_traits(type).block_size;
      const std::vector<int64_t> sizes = block == kQK_K ? std::vector<int64_t>{256, 768, 2816}
                                         : block == 1   ? std::vector<int64_t>{77, 1000, 2816}
                                                        : std::vector<int64_t>{96, 256, 704, 800, 2816};
      for (int64_t n : sizes) {
        // +2: GGUF rows are only 2-byte aligned.
        std::vector<uint8_t> wbuf(row_bytes(type, n) + 2);
        uint8_t* w = wbuf.data() + 2;
        random_weight_row(type, n, w, rng);
        const int rows = table.tile_tokens + 1;
        const std::vector<uint8_t> act = random_activations(at, n, rows, rng);
        const size_t astride = row_bytes(at, n);
        // Q8_0 activations: the f32 block scales as QuantizedActivations provides them; the kernels must give the
        // same result with them and without (nullptr: they convert the f16 scales themselves).
        const std::vector<float> scales = block_scales_f32(at, n, rows, act);
        for (int nt = 1; nt <= table.tile_tokens; ++nt) {
          std::vector<float> y(static_cast<size_t>(nt) * 3, -1.0f);
          tile(n, w, act.data() + astride, astride, nullptr, nt, y.data(), 3);  // tokens 1..nt, y stride 3
          for (int t = 0; t < nt; ++t) {
            float want = 0;
            ref.tile[kernel_slot(type)](n, w, act.data() + astride * (t + 1), astride, nullptr, 1, &want, 1);
            EXPECT_NEAR(y[static_cast<size_t>(t) * 3], want, 1e-4f * (1.0f + std::fabs(want)))
                << "n " << n << " nt " << nt << " t " << t;
            EXPECT_EQ(y[static_cast<size_t>(t) * 3 + 1], -1.0f);  // nothing written between outputs
            // A token's result does not depend on the others in its tile (batched steps rely on it: a sequence's
            // decode token gives the same logits in a step of many rows as alone).
            float one = 0;
            tile(n, w, act.data() + astride * (t + 1), astride, nullptr, 1, &one, 1);
            EXPECT_EQ(y[static_cast<size_t>(t) * 3], one) << "n " << n << " nt " << nt << " t " << t;
          }
          if (!scales.empty()) {
            std::vector<float> ys(static_cast<size_t>(nt) * 3, -1.0f);
            tile(n, w, act.data() + astride, astride, scales.data() + n / 32, nt, ys.data(), 3);
            for (int t = 0; t < nt; ++t) EXPECT_EQ(ys[static_cast<size_t>(t) * 3], y[static_cast<size_t>(t) * 3]);
          }
        }
      }
    }
  });
#if defined(__x86_64__)
  EXPECT_GT(tested, 0) << "no tile kernels on an x86-64 machine";
#endif
}

// The one-token kernels (KernelTable::gemv) against the same target's tile with one token, bit for bit (a token's
// numbers must not depend on whether it runs alone or in a batch) unless the type's gemv takes every token
// (gemv_every_token: the same block sums, scaled in another f32 order), and against the scalar reference; several
// rows per call at a 2-byte-aligned stride, block counts with and without a remainder of < 8 blocks.
TEST(Gemv, EveryTargetMatchesItsTileForOneToken) {
  const KernelTable ref = scalar_kernels();
  std::mt19937 rng(11);
  int tested = 0;
  for_each_target([&](const KernelTable& table, int64_t target) {
#if defined(__x86_64__)
    // Every x86 target from AVX2 up has a Q4_K gemv (AVX2: gemv_q4_K_avx2-inl.h), so this test must reach it.
    if (target == HWY_AVX2) {
      EXPECT_NE(table.gemv[kernel_slot(GgmlType::kQ4_K)], nullptr);
    }
#else
    (void)target;
#endif
    for (GgmlType type : kTileTypes) {
      const GemvFn gemv = table.gemv[kernel_slot(type)];
      if (gemv == nullptr) continue;
      SCOPED_TRACE(std::string(type_name(type)));
      const GgmlType act_type = vec_dot_type(type);
      ASSERT_TRUE(act_type == GgmlType::kQ8_0 || act_type == GgmlType::kQ8_K);
      ++tested;
      for (int64_t n : {int64_t{96}, int64_t{256}, int64_t{512}, int64_t{704}, int64_t{800}, int64_t{2112},
                        int64_t{2816}}) {
        if (n % type_traits(type).block_size != 0) continue;  // the K-quants: 256, 512 and 2816
        // Kernels that take several rows per pass (the AVX-512 gemvs: 8; the AVX2 ones take one row at a time):
        // 19 = two passes of 8 and 3 rows left; 3 = fewer rows than one pass.
        for (const int64_t rows : {int64_t{19}, int64_t{3}}) {
          const size_t stride = row_bytes(type, n) + 2;
          std::vector<uint8_t> wbuf(stride * rows + 2);
          uint8_t* w = wbuf.data() + 2;
          for (int64_t r = 0; r < rows; ++r) random_weight_row(type, n, w + stride * r, rng);
          const std::vector<uint8_t> act = random_activations(act_type, n, 1, rng);
          const std::vector<float> scales = block_scales_f32(act_type, n, 1, act);
          const std::vector<int32_t> sums = block_sums_q8_0(act_type, n, 1, act);
          std::vector<float> y(rows + 1, -1.0f);
          const float* act_scales = act_type == GgmlType::kQ8_0 ? scales.data() : nullptr;
          gemv(n, w, stride, rows, act.data(), act_scales, act_type == GgmlType::kQ8_0 ? sums.data() : nullptr, y.data());
          for (int64_t r = 0; r < rows; ++r) {
            float tile = 0, want = 0;
            table.tile[kernel_slot(type)](n, w + stride * r, act.data(), 0, act_scales, 1, &tile, 1);
            ref.tile[kernel_slot(type)](n, w + stride * r, act.data(), 0, nullptr, 1, &want, 1);
            if (table.gemv_every_token[kernel_slot(type)]) {
              // Another f32 order over the same integer block sums: where a row's terms cancel (a result near 18
              // from terms in the thousands) the two orders differ by ~2e-4, so instead of a looser bound against the
              // tile, the gemv must be at least as close to the exact (double) dot product as the tile is, give or
              // take one f32 rounding of the terms' magnitude (2^-24 * sum |w a|: an order's rounding scales with the
              // terms, not the result; seen at most a third of it, where a wrong sub-block would be ~1/16 of it).
              std::vector<float> wf(n), af(n);
              dequantize_row(type, w + stride * r, wf.data(), n);
              dequantize_row(act_type, act.data(), af.data(), n);
              double exact = 0, magnitude = 0;
              for (int64_t i = 0; i < n; ++i) {
                exact += double{wf[i]} * double{af[i]};
                magnitude += std::fabs(double{wf[i]} * double{af[i]});
              }
              const double tile_error = std::fabs(double{tile} - exact);
              EXPECT_LE(std::fabs(double{y[r]} - exact), 2.0 * tile_error + 0x1p-24 * magnitude)
                  << "n " << n << " row " << r << ": tile " << tile << ", exact " << exact << ", sum |w a| "
                  << magnitude;
            } else {
              EXPECT_EQ(y[r], tile) << "n " << n << " row " << r;
            }
            EXPECT_NEAR(y[r], want, 1e-4f * (1.0f + std::fabs(want))) << "n " << n << " row " << r;
          }
          EXPECT_EQ(y[rows], -1.0f);  // nothing written past the last row
        }
      }
    }
    // The AVX2 decode gemvs (gemv_q8_0_avx2-inl.h, gemv_q6_K_avx2-inl.h) are in the AVX2 table on every x86 CPU
    // that has AVX2, so this test reaches them on AVX-512 machines too.
    if (target == HWY_AVX2) {
      for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ5_0, GgmlType::kQ4_0, GgmlType::kQ6_K}) {
        EXPECT_NE(table.gemv[kernel_slot(type)], nullptr) << type_name(type);
        EXPECT_FALSE(table.gemv_every_token[kernel_slot(type)]) << type_name(type);
      }
    }
  });
  if (best_kernels().gemv[kernel_slot(GgmlType::kQ5_0)] != nullptr) {
    EXPECT_GT(tested, 0);
  }
}

// The f32 steps of the one-token Q4_K gemvs (gemv_q4_K_one_512, gemv_q4_K_one_vbmi) in scalar code: per block, lane
// 4c + k of 16 takes the integer sum of sub-block 2c + k / 2 (weights 0..7 and 16..23 of it for even k, 8..15 and
// 24..31 for odd k) times its scale, into one FMA with d * yd. After each group of four blocks (or fewer, at the row's
// end), lane l subtracts dmin * yd of the group's block l / 4 times that block's mins of sub-blocks 2 (l % 4) and
// 2 (l % 4) + 1 against the activation's sums of those sub-blocks (an exact integer); the lanes are summed as
// _mm512_reduce_add_ps does.
float q4_K_gemv_model(const BlockQ4_K* x, const BlockQ8_K* a, int64_t blocks) {
  float acc[16] = {};
  for (int64_t g = 0; g < blocks; g += 4) {
    for (int64_t i = g; i < std::min<int64_t>(blocks, g + 4); ++i) {
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x[i].scales, &sc[j], &mn[j]);
      const float d_yd = fp16_to_fp32(x[i].d) * a[i].d;
      for (int lane = 0; lane < 16; ++lane) {
        const int sub = 2 * (lane / 4) + (lane % 4) / 2, half = lane % 2;
        int32_t sum = 0;
        for (int j : {0, 16}) {
          for (int k = 8 * half + j; k < 8 * half + j + 8; ++k) {
            const int q = sub % 2 == 0 ? x[i].qs[32 * (sub / 2) + k] & 15 : x[i].qs[32 * (sub / 2) + k] >> 4;
            sum += q * a[i].qs[32 * sub + k];
          }
        }
        acc[lane] = std::fma(d_yd, static_cast<float>(sum * sc[sub]), acc[lane]);
      }
    }
    for (int lane = 0; lane < 16; ++lane) {
      const int64_t i = g + lane / 4;
      if (i >= blocks) continue;  // the kernels subtract an exact zero there
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x[i].scales, &sc[j], &mn[j]);
      int32_t mins = 0;
      for (int sub = 2 * (lane % 4); sub < 2 * (lane % 4) + 2; ++sub) {
        mins += mn[sub] * (a[i].bsums[2 * sub] + a[i].bsums[2 * sub + 1]);
      }
      const float dmin_yd = fp16_to_fp32(x[i].dmin) * a[i].d;
      acc[lane] = std::fma(-dmin_yd, static_cast<float>(mins), acc[lane]);
    }
  }
  float quarter[4];
  for (int k = 0; k < 4; ++k) quarter[k] = (acc[k + 8] + acc[k]) + (acc[k + 12] + acc[k + 4]);
  return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

// Every target's one-token Q4_K gemv against that model, bit for bit: the grouped kernel (four blocks per group) and
// the ones that take a block at a time (AVX3; AVX3_DL with row streams, where 7 rows in 3 streams leave one row for
// the grouped kernel) do the same f32 steps, whatever the group remainder (1 to 5 and 11 blocks).
TEST(Gemv, Q4KEveryTargetDoesTheModelsStepsBitForBit) {
  std::mt19937 rng(13);
  int tested = 0;
  const DecodeRowStreams saved = decode_row_streams();
  for (const int streams : {1, 3}) {
    set_decode_row_streams({streams, streams, streams});
    SCOPED_TRACE("row streams " + std::to_string(streams));
    for_each_target([&](const KernelTable& table, int64_t) {
      const GemvFn gemv = table.gemv[kernel_slot(GgmlType::kQ4_K)];
      if (gemv == nullptr || !table.gemv_every_token[kernel_slot(GgmlType::kQ4_K)]) return;
      ++tested;
      for (int64_t blocks : {1, 2, 3, 4, 5, 11}) {
        const int64_t n = blocks * kQK_K, rows = 7;
        const size_t stride = row_bytes(GgmlType::kQ4_K, n) + 2;
        std::vector<uint8_t> wbuf(stride * rows + 2);
        uint8_t* w = wbuf.data() + 2;
        for (int64_t r = 0; r < rows; ++r) random_weight_row(GgmlType::kQ4_K, n, w + stride * r, rng);
        const std::vector<uint8_t> act = random_activations(GgmlType::kQ8_K, n, 1, rng);
        std::vector<float> y(rows);
        gemv(n, w, stride, rows, act.data(), nullptr, nullptr, y.data());
        for (int64_t r = 0; r < rows; ++r) {
          BlockQ4_K x[11];
          std::memcpy(x, w + stride * r, sizeof(BlockQ4_K) * blocks);
          const float want = q4_K_gemv_model(x, reinterpret_cast<const BlockQ8_K*>(act.data()), blocks);
          EXPECT_EQ(y[r], want) << "blocks " << blocks << " row " << r;
        }
      }
    });
  }
  set_decode_row_streams(saved);
#if defined(__x86_64__)
  if (best_kernels().gemv_every_token[kernel_slot(GgmlType::kQ4_K)]) {  // the AVX-512 gemvs (AVX2: the tile's)
    EXPECT_GT(tested, 0);
  }
#endif
}

// The Q6_K gemvs of every target give the same bits: they differ in how they unpack the weights (AVX3_DL with GFNI:
// GF2P8AFFINEQB and the weights in their own order; AVX3: cross-lane permutes) but must compute the same exact
// integer sums and the same f32 steps. One and several tokens, 1 and 11 blocks, rows at a 2-byte-aligned stride.
TEST(Gemv, Q6_KIsTheSameOnEveryTarget) {
  std::mt19937 rng(13);
  const GgmlType type = GgmlType::kQ6_K;
  const int64_t rows = 7;
  struct Case {
    int64_t n;
    std::vector<uint8_t> w, act;
    std::vector<float> first;  // the first target's outputs: nt = 1 by gemv, then nt = 1..kTokensPerGemvCall by gemv_tokens
  };
  std::vector<Case> cases;
  for (int64_t n : {int64_t{256}, int64_t{2816}}) {
    Case c{n, std::vector<uint8_t>((row_bytes(type, n) + 2) * rows + 2), {}, {}};
    for (int64_t r = 0; r < rows; ++r) random_weight_row(type, n, c.w.data() + 2 + (row_bytes(type, n) + 2) * r, rng);
    c.act = random_activations(GgmlType::kQ8_K, n, kTokensPerGemvCall, rng);
    cases.push_back(std::move(c));
  }
  int targets = 0;
  for_each_target([&](const KernelTable& table, int64_t) {
    const GemvFn gemv = table.gemv[kernel_slot(type)];
    const GemvTokensFn gemv_tokens = table.gemv_tokens[kernel_slot(type)];
    if (gemv == nullptr || gemv_tokens == nullptr) return;
    ++targets;
    for (Case& c : cases) {
      const size_t stride = row_bytes(type, c.n) + 2, astride = row_bytes(GgmlType::kQ8_K, c.n);
      const uint8_t* w = c.w.data() + 2;
      std::vector<float> out(rows);
      gemv(c.n, w, stride, rows, c.act.data(), nullptr, nullptr, out.data());
      for (int nt = 1; nt <= kTokensPerGemvCall; ++nt) {
        std::vector<float> y(static_cast<size_t>(nt * rows));
        gemv_tokens(c.n, w, stride, rows, c.act.data(), astride, nullptr, nullptr, nt, y.data(), rows);
        out.insert(out.end(), y.begin(), y.end());
      }
      if (c.first.empty()) {
        c.first = out;
        continue;
      }
      ASSERT_EQ(out.size(), c.first.size());
      for (size_t k = 0; k < out.size(); ++k) EXPECT_EQ(out[k], c.first[k]) << "n " << c.n << " output " << k;
    }
  });
  if (best_kernels().gemv_tokens[kernel_slot(type)] != nullptr) {
    EXPECT_GT(targets, 1);  // AVX3_DL and AVX3 on an AVX-512 machine (AVX2's Q6_K gemv has no gemv_tokens)
  }
}

// The multi-token gemv (a batched decode step) against the same target's gemv called for each token alone, bit for
// bit: a token's numbers must not depend on which tokens share its step (and for types whose gemv equals the tile,
// against the tile too). Every token count it takes, rows at a 2-byte-aligned stride with and without a remainder of
// < 8 Q8_0-family blocks, outputs at a row stride wider than the rows.
TEST(GemvTokens, EveryTokenEqualsTheGemvAlone) {
  std::mt19937 rng(12);
  int tested = 0, tested_q6_K = 0;
  for_each_target([&](const KernelTable& table, int64_t) {
    for (GgmlType type : kTileTypes) {
      const GemvTokensFn gemv_tokens = table.gemv_tokens[kernel_slot(type)];
      // matmul sends every token of such a type's batched products through gemv_tokens
      EXPECT_TRUE(gemv_tokens != nullptr || !table.gemv_every_token[kernel_slot(type)]) << type_name(type);
      if (gemv_tokens == nullptr) continue;
      SCOPED_TRACE(std::string(type_name(type)));
      const GemvFn gemv = table.gemv[kernel_slot(type)];
      ASSERT_NE(gemv, nullptr);
      const GgmlType act_type = vec_dot_type(type);
      ++tested;
      tested_q6_K += type == GgmlType::kQ6_K;
      for (int64_t n : {int64_t{256}, int64_t{704}, int64_t{800}, int64_t{2816}}) {
        if (n % type_traits(type).block_size != 0) continue;  // the K-quants: 256 and 2816
        const int64_t rows = 5, ldy = rows + 3;
        const size_t stride = row_bytes(type, n) + 2;
        std::vector<uint8_t> wbuf(stride * rows + 2);
        uint8_t* w = wbuf.data() + 2;
        for (int64_t r = 0; r < rows; ++r) random_weight_row(type, n, w + stride * r, rng);
        for (int nt = 1; nt <= kTokensPerGemvCall; ++nt) {
          const std::vector<uint8_t> act = random_activations(act_type, n, nt, rng);
          const size_t astride = row_bytes(act_type, n);
          // Q8_0 activations: every block's f32 scale and -128 * the sum of its qs, as QuantizedActivations.
          const std::vector<float> scales = block_scales_f32(act_type, n, nt, act);
          const std::vector<int32_t> sums = block_sums_q8_0(act_type, n, nt, act);
          const float* act_scales = scales.empty() ? nullptr : scales.data();
          const int32_t* act_sums = sums.empty() ? nullptr : sums.data();
          std::vector<float> y(static_cast<size_t>(nt * ldy), -1.0f);
          gemv_tokens(n, w, stride, rows, act.data(), astride, act_scales, act_sums, nt, y.data(), ldy);
          for (int t = 0; t < nt; ++t) {
            std::vector<float> alone(rows);
            const int64_t blocks = n / 32;
            gemv(n, w, stride, rows, act.data() + t * astride, act_scales ? act_scales + t * blocks : nullptr,
                 act_sums ? act_sums + t * blocks : nullptr, alone.data());
            for (int64_t r = 0; !table.gemv_every_token[kernel_slot(type)] && r < rows; ++r) {
              float tile = 0;
              table.tile[kernel_slot(type)](n, w + stride * r, act.data() + t * astride, 0,
                                            act_scales ? act_scales + t * blocks : nullptr, 1, &tile, 1);
              EXPECT_EQ(alone[r], tile) << "n " << n << " t " << t;
            }
            for (int64_t r = 0; r < rows; ++r) {
              EXPECT_EQ(y[t * ldy + r], alone[r]) << "n " << n << " nt " << nt << " t " << t << " row " << r;
            }
            for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(y[t * ldy + r], -1.0f);  // nothing written past the rows
          }
        }
      }
    }
  });
  if (best_kernels().gemv_tokens[kernel_slot(GgmlType::kQ4_K)] != nullptr) {
    EXPECT_GT(tested, 2);  // Q4_K, Q6_K and (AVX3_DL) the Q8_0 family
    EXPECT_GT(tested_q6_K, 0);
  }
}

// decode_row_streams() only changes the order in which the gemvs walk their rows (two to four parts of the range at
// once on Intel, decode_stream.h), and decode_fifth_bits_from_gpr() only how the Q5_0 step builds its fifth-bit
// mask: every output is the same bits with every setting, for row counts that leave rows over after the streams, a
// partial eight-row pass and no second part at all.
TEST(Gemv, DecodeSettingsChangeNoBit) {
  std::mt19937 rng(13);
  const DecodeRowStreams saved = decode_row_streams();
  const bool saved_gpr = decode_fifth_bits_from_gpr();
  // (row streams of every family, fifth bits from a general register) of each run; the first is the reference.
  constexpr std::pair<int, bool> kSettings[] = {{1, false}, {2, false}, {3, false}, {4, false},
                                                {1, true},  {2, true},  {3, true},  {4, true}};
  constexpr size_t kRuns = std::size(kSettings);
  int compared = 0;
  for_each_target([&](const KernelTable& table, int64_t) {
    for (GgmlType type : kTileTypes) {
      const GemvFn gemv = table.gemv[kernel_slot(type)];
      const GemvTokensFn gemv_tokens = table.gemv_tokens[kernel_slot(type)];
      if (gemv == nullptr) continue;
      SCOPED_TRACE(std::string(type_name(type)));
      const GgmlType act_type = vec_dot_type(type);
      for (int64_t n : {int64_t{704}, int64_t{2112}, int64_t{2816}}) {
        if (n % type_traits(type).block_size != 0) continue;
        for (const int64_t rows : {int64_t{1}, int64_t{7}, int64_t{19}, int64_t{40}, int64_t{71}}) {
          const size_t stride = row_bytes(type, n);
          std::vector<uint8_t> w(stride * rows);
          for (int64_t r = 0; r < rows; ++r) random_weight_row(type, n, w.data() + stride * r, rng);
          const int nt = gemv_tokens != nullptr ? 2 : 1;
          const std::vector<uint8_t> act = random_activations(act_type, n, nt, rng);
          const std::vector<float> scales = block_scales_f32(act_type, n, nt, act);
          const std::vector<int32_t> sums = block_sums_q8_0(act_type, n, nt, act);
          const float* act_scales = scales.empty() ? nullptr : scales.data();
          const int32_t* act_sums = sums.empty() ? nullptr : sums.data();
          std::vector<float> y[kRuns], yt[kRuns];
          for (size_t run = 0; run < kRuns; ++run) {
            set_decode_row_streams({kSettings[run].first, kSettings[run].first, kSettings[run].first});
            set_decode_fifth_bits_from_gpr(kSettings[run].second);
            y[run].assign(rows, -1.0f);
            gemv(n, w.data(), stride, rows, act.data(), act_scales, act_sums, y[run].data());
            yt[run].assign(static_cast<size_t>(nt * rows), -1.0f);
            if (gemv_tokens != nullptr) {
              gemv_tokens(n, w.data(), stride, rows, act.data(), row_bytes(act_type, n), act_scales, act_sums, nt,
                          yt[run].data(), rows);
            }
          }
          set_decode_row_streams(saved);
          set_decode_fifth_bits_from_gpr(saved_gpr);
          for (size_t run = 1; run < kRuns; ++run) {
            SCOPED_TRACE("streams " + std::to_string(kSettings[run].first) + ", fifth bits from a register " +
                         std::to_string(kSettings[run].second));
            for (size_t i = 0; i < y[0].size(); ++i) {
              uint32_t a = 0, b = 0;
              std::memcpy(&a, &y[0][i], 4);
              std::memcpy(&b, &y[run][i], 4);
              EXPECT_EQ(a, b) << "n " << n << " rows " << rows << " row " << i;
              ++compared;
            }
            for (size_t i = 0; i < yt[0].size(); ++i) {
              uint32_t a = 0, b = 0;
              std::memcpy(&a, &yt[0][i], 4);
              std::memcpy(&b, &yt[run][i], 4);
              EXPECT_EQ(a, b) << "tokens: n " << n << " rows " << rows << " output " << i;
            }
          }
          for (size_t i = 0; i < y[0].size(); ++i) EXPECT_NE(y[0][i], -1.0f) << "row " << i << " not written";
        }
      }
    }
  });
  set_decode_row_streams(saved);
  set_decode_fifth_bits_from_gpr(saved_gpr);
  EXPECT_GT(compared, 0);
}

TEST(Tile, MatmulWithAndWithoutTilesAgree) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  ThreadPool pool(2);
  for (GgmlType type : kTileTypes) {
    SCOPED_TRACE(std::string(type_name(type)));
    const int64_t cols = 512, rows = 37, tokens = 11;
    const RandomMatrix weights(type, cols, rows, rng);
    const MatrixView w = weights.view();
    std::vector<float> x(static_cast<size_t>(cols * tokens));
    for (auto& v : x) v = g(rng);
    for (int64_t nt : {int64_t{1}, tokens}) {
      QuantizedActivations xq;
      xq.quantize(vec_dot_type(type), x.data(), nt, cols, &pool);
      std::vector<float> with(static_cast<size_t>(rows * nt)), without(with.size());
      set_matmul_use_tiles(true);
      matmul(w, xq, with.data(), &pool);
      set_matmul_use_tiles(false);
      matmul(w, xq, without.data(), &pool);
      set_matmul_use_tiles(true);
      for (size_t i = 0; i < with.size(); ++i) EXPECT_NEAR(with[i], without[i], 1e-4f * (1.0f + std::fabs(without[i])));
    }
  }
}

}  // namespace
}  // namespace fabula
