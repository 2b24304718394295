// The row-interleaved int8 GEMM (kernels.h RepackFn / GemmFn) on every attainable target against the scalar
// reference dots: random blocks (every byte value), full and partial row tiles (16 rows on AVX-512 VNNI, 8 on AVX2
// and AVX-512 without VNNI), 1..gemm_tokens tokens, odd block counts, rows only 2-byte aligned; and matmul through
// the GEMM against matmul through the tiles.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/amx.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/thread_pool.h"
#include "kernel_test_util.h"

namespace fabula {
namespace {

const GgmlType kGemmTypes[] = {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_0, GgmlType::kQ5_0,
                               GgmlType::kQ4_0, GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16};

using kernel_test::for_each_target;
using kernel_test::gemm_group_acts;
using kernel_test::random_weight_row;
using kernel_test::RandomMatrix;

bool is_half(GgmlType t) { return t == GgmlType::kF16 || t == GgmlType::kBF16; }

TEST(Gemm, EveryTargetMatchesTheScalarReference) {
  const KernelTable ref = scalar_kernels();
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  int tested = 0;
  for_each_target([&](const KernelTable& table, int64_t target) {
    for (GgmlType type : kGemmTypes) {
#if HWY_ARCH_X86
      if (target == HWY_AVX2 || target == HWY_AVX3 || target == HWY_AVX3_DL) {
        EXPECT_NE(table.gemm[kernel_slot(type)], nullptr) << "every x86 target from AVX2 up has a GEMM";
      }
#endif
      if (table.gemm[kernel_slot(type)] == nullptr) continue;
      SCOPED_TRACE(std::string(type_name(type)));
      ++tested;
      const GgmlType at = vec_dot_type(type);
      const int64_t bs = type_traits(type).block_size;
      const std::vector<int64_t> sizes = bs == kQK_K ? std::vector<int64_t>{256, 2816}
                                         : bs == 1   ? std::vector<int64_t>{7, 256, 1000}
                                                     : std::vector<int64_t>{32, 704, 800};
      for (int64_t n : sizes) {
        const size_t rb = row_bytes(type, n) + 2;  // a row stride that leaves rows only 2-byte aligned
        const int max_rows = table.gemm_rows;
        std::vector<uint8_t> wbuf(rb * max_rows + 2);
        uint8_t* w = wbuf.data() + 2;
        for (int r = 0; r < max_rows; ++r) random_weight_row(type, n, w + r * rb, rng);
        const int tokens = table.gemm_tokens;
        std::vector<float> x(static_cast<size_t>(n * tokens));
        for (auto& v : x) v = g(rng);
        QuantizedActivations xq;
        const int64_t saved = matmul_gemm_min_tokens();
        set_matmul_gemm_min_tokens(1);  // F16/BF16: QuantizedActivations keeps the widened rows for the GEMM
        xq.quantize(at, x.data(), tokens, n);
        set_matmul_gemm_min_tokens(saved);
        const size_t astride = tokens > 1 ? static_cast<size_t>(xq.row(1) - xq.row(0)) : 0;
        std::vector<uint8_t> tile(table.gemm_tile_bytes(type, n)), packed;
        // A full tile, one row past a half and a half (AVX2's 16-row tiles run as two 8-row vectors), a tail,
        // one row.
        for (int rows : {max_rows, max_rows / 2 + 1, max_rows / 2, max_rows - 5, 1}) {
          table.repack[kernel_slot(type)](n, w, rb, rows, tile.data());
          for (int nt = 1; nt <= tokens; ++nt) {
            const int64_t ldy = max_rows + 3;
            std::vector<float> y(static_cast<size_t>(ldy * nt), -1.0f);
            const GemmActs rows_act =
                is_half(type) ? GemmActs{reinterpret_cast<const uint8_t*>(xq.widened(0)), n * sizeof(float), nullptr,
                                         nullptr}
                              : GemmActs{xq.row(0), astride, xq.block_scales(0), xq.block_sums(0)};
            const GemmActs act = gemm_group_acts(table, type, n, rows_act, nt, &packed);
            table.gemm[kernel_slot(type)](n, tile.data(), act, nt, y.data(), ldy);
            for (int t = 0; t < nt; ++t) {
              for (int r = 0; r < ldy; ++r) {
                const float got = y[static_cast<size_t>(t * ldy + r)];
                if (r >= rows) {
                  EXPECT_EQ(got, -1.0f) << "row " << r << " written beyond the tile's " << rows;
                  continue;
                }
                float want = 0;
                ref.tile[kernel_slot(type)](n, w + r * rb, xq.row(t), 0, nullptr, 1, &want, 1);
                EXPECT_NEAR(got, want, 1e-4f * (1.0f + std::fabs(want))) << "n " << n << " nt " << nt << " t " << t
                                                                         << " r " << r;
              }
            }
          }
        }
      }
    }
  });
  std::printf("GEMM kernels tested: %d\n", tested);
}

// F32's GEMM takes the F32 tile's steps for every row and token, so the two agree bit for bit on every target (a
// prompt's router scores do not depend on how its tokens were batched): lengths with and without whole groups of
// four vectors, a remainder of whole vectors and a scalar tail; partial tiles and token counts.
TEST(Gemm, F32EqualsTheTileBitForBit) {
  std::mt19937 rng(23);
  std::normal_distribution<float> g(0.0f, 1.0f);
  int tested = 0;
  for_each_target([&](const KernelTable& table, int64_t) {
    if (table.gemm[kernel_slot(GgmlType::kF32)] == nullptr) return;
    ++tested;
    for (int64_t n : {7, 64, 200, 1000, 2816}) {
      const int max_rows = table.gemm_rows, tokens = table.gemm_tokens;
      const size_t rb = static_cast<size_t>(n) * sizeof(float) + 8;
      std::vector<uint8_t> w(rb * max_rows);
      for (int r = 0; r < max_rows; ++r) random_weight_row(GgmlType::kF32, n, w.data() + r * rb, rng);
      std::vector<float> x(static_cast<size_t>(n * tokens));
      for (auto& v : x) v = g(rng);
      const GemmActs act{reinterpret_cast<const uint8_t*>(x.data()), static_cast<size_t>(n) * sizeof(float), nullptr,
                         nullptr};
      std::vector<uint8_t> tile(table.gemm_tile_bytes(GgmlType::kF32, n));
      for (int rows : {max_rows, max_rows - 3, 1}) {
        table.repack[kernel_slot(GgmlType::kF32)](n, w.data(), rb, rows, tile.data());
        for (int nt : {tokens, tokens - 1, 1}) {
          const int64_t ldy = max_rows + 1;
          std::vector<float> y(static_cast<size_t>(ldy * nt), -1.0f);
          table.gemm[kernel_slot(GgmlType::kF32)](n, tile.data(), act, nt, y.data(), ldy);
          for (int t = 0; t < nt; ++t) {
            for (int r = 0; r < ldy; ++r) {
              if (r >= rows) {
                EXPECT_EQ(y[static_cast<size_t>(t * ldy + r)], -1.0f) << "row " << r << " beyond the tile's " << rows;
                continue;
              }
              float want = 0;
              table.tile[kernel_slot(GgmlType::kF32)](n, w.data() + r * rb, act.rows + t * act.stride, 0, nullptr, 1,
                                                      &want, 1);
              EXPECT_EQ(y[static_cast<size_t>(t * ldy + r)], want) << "n " << n << " rows " << rows << " nt " << nt
                                                                   << " t " << t << " r " << r;
            }
          }
        }
      }
    }
  });
#if HWY_ARCH_X86
  EXPECT_GT(tested, 0) << "every x86 target from AVX2 up has an F32 GEMM";
#endif
}

// The AMX GEMM sums the same integers as the VNNI GEMM it replaces and takes the same f32 steps for each row and
// token, so the two agree bit for bit: a token's numbers do not depend on which of them the CPU has.
TEST(Gemm, AmxEqualsTheVnniGemmBitForBit) {
#if HWY_ARCH_X86
  if (!amx_usable()) GTEST_SKIP() << "this CPU has no AMX";  // skip-ok: a CPU feature
  const bool was_allowed = amx_allowed();
  hwy::SetSupportedTargetsForTest(HWY_AVX3_DL);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  set_amx_allowed(true);
  const KernelTable amx = kernels_for_current_target();
  set_amx_allowed(false);
  const KernelTable vnni = kernels_for_current_target();
  set_amx_allowed(was_allowed);
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  ASSERT_TRUE(amx.amx);
  ASSERT_FALSE(vnni.amx);
  std::mt19937 rng(17);
  std::normal_distribution<float> g(0.0f, 1.0f);
  int compared = 0;
  for (GgmlType type : kGemmTypes) {
    if (is_half(type)) continue;
    SCOPED_TRACE(std::string(type_name(type)));
    const int64_t n = type_traits(type).block_size == kQK_K ? 2816 : 736;  // 736: an odd count of 32-blocks
    const int tokens = amx.gemm_tokens;
    const size_t rb = row_bytes(type, n);
    std::vector<uint8_t> w(rb * kernel_test::kMaxGemmRows);
    for (int r = 0; r < kernel_test::kMaxGemmRows; ++r) random_weight_row(type, n, w.data() + r * rb, rng);
    std::vector<float> x(static_cast<size_t>(n * tokens));
    for (auto& v : x) v = g(rng);
    QuantizedActivations xq;
    xq.quantize(vec_dot_type(type), x.data(), tokens, n);
    const size_t astride = static_cast<size_t>(xq.row(1) - xq.row(0));
    std::vector<uint8_t> amx_tile(amx.gemm_tile_bytes(type, n)), vnni_tile(vnni.gemm_tile_bytes(type, n)), packed;
    for (int rows : {16, 11}) {
      amx.repack[kernel_slot(type)](n, w.data(), rb, rows, amx_tile.data());
      vnni.repack[kernel_slot(type)](n, w.data(), rb, rows, vnni_tile.data());
      for (int nt : {16, 13, 5, 1}) {
        std::vector<float> y_amx(static_cast<size_t>(16 * nt), -1.0f), y_vnni(y_amx.size(), -1.0f);
        const GemmActs rows_act{xq.row(0), astride, xq.block_scales(0), xq.block_sums(0)};
        amx.gemm[kernel_slot(type)](n, amx_tile.data(), gemm_group_acts(amx, type, n, rows_act, nt, &packed), nt,
                                    y_amx.data(), 16);
        for (int t0 = 0; t0 < nt; t0 += vnni.gemm_tokens) {
          const GemmActs part{xq.row(t0), astride, xq.block_scales(t0), xq.block_sums(t0)};
          vnni.gemm[kernel_slot(type)](n, vnni_tile.data(), part, std::min(vnni.gemm_tokens, nt - t0),
                                       y_vnni.data() + t0 * 16, 16);
        }
        for (int t = 0; t < nt; ++t) {
          for (int r = 0; r < 16; ++r) {
            const size_t i = static_cast<size_t>(t * 16 + r);
            if (r >= rows) {
              EXPECT_EQ(y_amx[i], -1.0f) << "row " << r << " written beyond the tile's " << rows;
              continue;
            }
            uint32_t a = 0, v = 0;
            std::memcpy(&a, &y_amx[i], 4);
            std::memcpy(&v, &y_vnni[i], 4);
            EXPECT_EQ(a, v) << "rows " << rows << " nt " << nt << " t " << t << " r " << r << ": " << y_amx[i]
                            << " vs " << y_vnni[i];
            ++compared;
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 0);
#else
  GTEST_SKIP() << "AMX is x86";  // skip-ok: a CPU feature
#endif
}

TEST(Gemm, MatmulThroughTheGemmAgreesWithTheTiles) {
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.0f, 1.0f);
  ThreadPool pool(2);
  const int64_t saved = matmul_gemm_min_tokens();
  for (GgmlType type : kGemmTypes) {
    SCOPED_TRACE(std::string(type_name(type)));
    const int64_t cols = type_traits(type).block_size == kQK_K ? 512 : 704, rows = 53, tokens = 37;
    set_matmul_gemm_min_tokens(1);
    const RandomMatrix weights(type, cols, rows, rng);
    const MatrixView w = weights.view();
    std::vector<float> x(static_cast<size_t>(cols * tokens));
    for (auto& v : x) v = g(rng);
    QuantizedActivations xq;
    xq.quantize(vec_dot_type(type), x.data(), tokens, cols, &pool);
    std::vector<float> tiles(static_cast<size_t>(rows * tokens)), gemm(tiles.size()), gemm1(tiles.size());
    set_matmul_gemm_min_tokens(0);  // after quantize: the widened rows stay, the tiles ignore them
    matmul(w, xq, tiles.data(), &pool);
    set_matmul_gemm_min_tokens(1);
    matmul(w, xq, gemm.data(), &pool);
    matmul(w, xq, gemm1.data(), nullptr);
    // The two sum in different orders; random weight bytes make large terms that cancel (Q6_K's scales reach
    // ±127), so the error bound follows the largest output rather than each output.
    float largest = 0;
    for (float v : tiles) largest = std::max(largest, std::fabs(v));
    for (size_t i = 0; i < tiles.size(); ++i) {
      EXPECT_NEAR(gemm[i], tiles[i], 1e-5f * largest + 1e-4f * std::fabs(tiles[i])) << i;
      EXPECT_EQ(gemm[i], gemm1[i]) << "the thread count changed a result at " << i;
    }
  }
  set_matmul_gemm_min_tokens(saved);
}

// A batched step gives each sequence's rows the path they take alone: MatmulJob::gemm_tokens sends the first tokens
// through the GEMM and the rest through the tiles, each token exactly as a product of that path alone.
TEST(Gemm, JobSplitBetweenGemmAndTilesEqualsEachPathAlone) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  ThreadPool pool(2);
  const int64_t saved = matmul_gemm_min_tokens();
  for (GgmlType type : kGemmTypes) {
    SCOPED_TRACE(std::string(type_name(type)));
    const int64_t cols = type_traits(type).block_size == kQK_K ? 512 : 704, rows = 150, tokens = 45, split = 33;
    const RandomMatrix weights(type, cols, rows, rng);
    const MatrixView w = weights.view();
    std::vector<float> x(static_cast<size_t>(cols * tokens));
    for (auto& v : x) v = g(rng);
    set_matmul_gemm_min_tokens(32);
    QuantizedActivations xq;
    xq.quantize(vec_dot_type(type), x.data(), tokens, cols, &pool);
    std::vector<float> mixed(static_cast<size_t>(rows * tokens)), gemm(mixed.size()), tiles(mixed.size());
    for (int64_t gemm_tokens : {split, int64_t{0}, tokens}) {
      const MatmulJob job{w, &xq, mixed.data(), 0, 0, -1, gemm_tokens};
      matmul_jobs(std::span<const MatmulJob>(&job, 1), &pool);
      set_matmul_gemm_min_tokens(1);
      matmul(w, xq, gemm.data(), &pool);
      set_matmul_gemm_min_tokens(0);
      matmul(w, xq, tiles.data(), &pool);
      set_matmul_gemm_min_tokens(32);
      for (int64_t t = 0; t < tokens; ++t) {
        const std::vector<float>& want = t < gemm_tokens ? gemm : tiles;
        for (int64_t r = 0; r < rows; ++r) {
          const size_t i = static_cast<size_t>(t * rows + r);
          ASSERT_EQ(mixed[i], want[i]) << "gemm_tokens " << gemm_tokens << " token " << t << " row " << r;
        }
      }
    }
  }
  set_matmul_gemm_min_tokens(saved);
}

}  // namespace
}  // namespace fabula
