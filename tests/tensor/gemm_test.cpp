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
#include <vector>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/thread_pool.h"
#include "kernel_test_util.h"

namespace fabula {
namespace {

const GgmlType kGemmTypes[] = {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_0,
                               GgmlType::kQ5_0, GgmlType::kQ4_0, GgmlType::kF16,  GgmlType::kBF16};

using kernel_test::for_each_target;
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
        std::vector<uint8_t> tile(table.gemm_tile_bytes(type, n));
        // A full tile, one row past a half and a half (AVX2's 16-row tiles run as two 8-row vectors), a tail,
        // one row.
        for (int rows : {max_rows, max_rows / 2 + 1, max_rows / 2, max_rows - 5, 1}) {
          table.repack[kernel_slot(type)](n, w, rb, rows, tile.data());
          for (int nt = 1; nt <= tokens; ++nt) {
            const int64_t ldy = max_rows + 3;
            std::vector<float> y(static_cast<size_t>(ldy * nt), -1.0f);
            const GemmActs act =
                is_half(type) ? GemmActs{reinterpret_cast<const uint8_t*>(xq.widened(0)), n * sizeof(float), nullptr,
                                         nullptr}
                              : GemmActs{xq.row(0), astride, xq.block_scales(0), xq.block_sums(0)};
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
