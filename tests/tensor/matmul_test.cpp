// matmul against a naive dequantize + f32 reference, and thread-count independence.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/matmul.h"
#include "tensor/quant.h"
#include "tensor/quant_ref.h"
#include "tensor/thread_pool.h"

namespace fabula {
namespace {

struct Weights {
  GgmlType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  MatrixView view() const {
    return MatrixView{type, bytes.data(), cols, rows, row_bytes(type, static_cast<uint64_t>(cols))};
  }
};

Weights random_weights(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.05f);
  Weights w{type, rows, cols, std::vector<uint8_t>(row_bytes(type, static_cast<uint64_t>(cols)) * rows)};
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = g(rng);
    quantize_row(type, row.data(), w.bytes.data() + r * row_bytes(type, static_cast<uint64_t>(cols)), cols);
  }
  return w;
}

std::vector<float> random_input(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  return x;
}

const GgmlType kTypes[] = {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ4_0, GgmlType::kQ5_0,
                           GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

TEST(Matmul, MatchesNaiveDequantizedReference) {
  for (GgmlType type : kTypes) {
    const int64_t rows = 37, cols = 512, n_tokens = 3;
    const Weights w = random_weights(type, rows, cols, 1);
    const auto x = random_input(n_tokens * cols, 2);
    QuantizedActivations xq;
    std::vector<float> y(static_cast<size_t>(n_tokens * rows));
    matmul(w.view(), x.data(), n_tokens, y.data(), xq);

    // Naive: dequantize the weights and the (identically quantized) activations, dot in double.
    std::vector<float> wf(static_cast<size_t>(cols)), xf(static_cast<size_t>(cols));
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<uint8_t> aq(row_bytes(vec_dot_type(type), static_cast<uint64_t>(cols)));
      quantize_row_act_ref(vec_dot_type(type), x.data() + t * cols, aq.data(), cols);
      dequantize_row_ref(vec_dot_type(type), aq.data(), xf.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row_ref(type, w.bytes.data() + r * w.view().row_stride, wf.data(), cols);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < cols; ++i) {
          ref += static_cast<double>(wf[i]) * xf[i];
          mag += std::fabs(static_cast<double>(wf[i]) * xf[i]);
        }
        // Same math in a different order: f32 rounding of the per-block scales only.
        EXPECT_NEAR(y[t * rows + r], ref, 1e-5 * mag + 1e-6) << type_name(type) << " t=" << t << " r=" << r;
      }
    }
  }
}

TEST(Matmul, ThreadCountDoesNotChangeResults) {
  ThreadPool pool2(2), pool3(3);
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ6_K, GgmlType::kF16}) {
    for (int64_t n_tokens : {1, 5}) {
      const int64_t rows = 301, cols = 768;
      const Weights w = random_weights(type, rows, cols, 3);
      const auto x = random_input(n_tokens * cols, 4);
      QuantizedActivations xq1, xq2, xq3;
      std::vector<float> y1(static_cast<size_t>(n_tokens * rows)), y2(y1.size()), y3(y1.size());
      matmul(w.view(), x.data(), n_tokens, y1.data(), xq1, nullptr);
      matmul(w.view(), x.data(), n_tokens, y2.data(), xq2, &pool2);
      matmul(w.view(), x.data(), n_tokens, y3.data(), xq3, &pool3);
      EXPECT_EQ(y1, y2) << type_name(type) << " n_tokens=" << n_tokens;
      EXPECT_EQ(y1, y3) << type_name(type) << " n_tokens=" << n_tokens;
      // The threaded quantization of the activations is identical too.
      for (int64_t t = 0; t < n_tokens; ++t) {
        ASSERT_EQ(0, std::memcmp(xq1.row(t), xq2.row(t), row_bytes(xq1.type(), static_cast<uint64_t>(cols))));
      }
    }
  }
}

TEST(Matmul, EachOutputIsOneVecDot) {
  const int64_t rows = 19, cols = 256, n_tokens = 2;
  const Weights w = random_weights(GgmlType::kQ4_K, rows, cols, 5);
  const auto x = random_input(n_tokens * cols, 6);
  QuantizedActivations xq;
  xq.quantize(GgmlType::kQ8_K, x.data(), n_tokens, cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * 32), -1.0f);
  set_matmul_use_tiles(false);  // the multi-token tiles sum in another order (tile_test.cpp compares them)
  matmul(w.view(), xq, y.data(), nullptr, 32);  // row stride 32 > rows: the gap stays untouched
  set_matmul_use_tiles(true);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(y[t * 32 + r], vec_dot(GgmlType::kQ4_K, cols, w.bytes.data() + r * w.view().row_stride, xq.row(t)));
    }
    for (int64_t r = rows; r < 32; ++r) EXPECT_EQ(y[t * 32 + r], -1.0f);
  }
}

TEST(Matmul, TiledResultsDoNotDependOnTokenGroupingOrThreads) {
  // A token's outputs are the same whether it is multiplied alone, in a batch, or with more threads.
  const int64_t rows = 45, cols = 512, n_tokens = 7;
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ6_K}) {
    const Weights w = random_weights(type, rows, cols, 11);
    const auto x = random_input(n_tokens * cols, 12);
    QuantizedActivations all;
    all.quantize(vec_dot_type(type), x.data(), n_tokens, cols);
    std::vector<float> batch(static_cast<size_t>(rows * n_tokens));
    matmul(w.view(), all, batch.data(), &pool);
    for (int64_t t = 0; t < n_tokens; ++t) {
      QuantizedActivations one;
      one.quantize(vec_dot_type(type), x.data() + t * cols, 1, cols);
      std::vector<float> y(static_cast<size_t>(rows));
      matmul(w.view(), one, y.data());
      for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(y[r], batch[t * rows + r]) << type_name(type) << " t " << t;
    }
  }
}

TEST(Matmul, JobsEqualSeparateProducts) {
  // matmul_jobs over several weights, token sub-ranges and strided outputs == one matmul per job.
  ThreadPool pool(2);
  const int64_t cols = 256, n_tokens = 9;
  // Products of 9 and of 4 tokens on the same path (the tiles), so that the job's 4 tokens equal the whole product's.
  const int64_t saved_min = matmul_gemm_min_tokens();
  set_matmul_gemm_min_tokens(16);
  const Weights wa = random_weights(GgmlType::kQ4_K, 40, cols, 21), wb = random_weights(GgmlType::kQ8_0, 17, cols, 22);
  const auto x = random_input(n_tokens * cols, 23);
  QuantizedActivations xk, x8;
  xk.quantize(GgmlType::kQ8_K, x.data(), n_tokens, cols);
  x8.quantize(GgmlType::kQ8_0, x.data(), n_tokens, cols);
  std::vector<float> ya(static_cast<size_t>(40 * n_tokens), -1.0f), yb(static_cast<size_t>(20 * 4), -1.0f);
  const MatmulJob jobs[2] = {{wa.view(), &xk, ya.data()}, {wb.view(), &x8, yb.data(), 20, 3, 4}};
  matmul_jobs(jobs, &pool);
  std::vector<float> ra(ya.size()), rb(static_cast<size_t>(17 * n_tokens));
  matmul(wa.view(), xk, ra.data());
  matmul(wb.view(), x8, rb.data());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ya[i], ra[i]);
  for (int64_t t = 0; t < 4; ++t) {
    for (int64_t r = 0; r < 17; ++r) EXPECT_EQ(yb[t * 20 + r], rb[(t + 3) * 17 + r]);
    for (int64_t r = 17; r < 20; ++r) EXPECT_EQ(yb[t * 20 + r], -1.0f);
  }
  set_matmul_gemm_min_tokens(saved_min);
}

TEST(Matmul, OneTokenJobsSplitByStealingEqualSeparateProducts) {
  // Decode products go in chunks that threads take from each other's shares (matmul.cpp run_stealing): whoever
  // computes a row, it equals the serial product's, with jobs of several types, sizes and output strides.
  const int64_t cols = 256;
  const auto x = random_input(cols, 31);
  QuantizedActivations xk, x8;
  xk.quantize(GgmlType::kQ8_K, x.data(), 1, cols);
  x8.quantize(GgmlType::kQ8_0, x.data(), 1, cols);
  const Weights wa = random_weights(GgmlType::kQ4_K, 3001, cols, 32), wb = random_weights(GgmlType::kQ8_0, 1000, cols, 33),
                wc = random_weights(GgmlType::kQ6_K, 517, cols, 34), wd = random_weights(GgmlType::kQ8_0, 0, cols, 35);
  std::vector<float> ya(3001), yb(1000 * 2, -1.0f), yc(517), yd(1);
  std::vector<float> ra(ya.size()), rb(1000), rc(yc.size());
  matmul(wa.view(), xk, ra.data());
  matmul(wb.view(), x8, rb.data());
  matmul(wc.view(), xk, rc.data());
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 20; ++rep) {  // the steals race differently each time
      const MatmulJob jobs[4] = {{wa.view(), &xk, ya.data()}, {wd.view(), &x8, yd.data()},
                                 {wb.view(), &x8, yb.data(), 1000, 0, -1}, {wc.view(), &xk, yc.data()}};
      std::fill(ya.begin(), ya.end(), 0.0f);
      std::fill(yc.begin(), yc.end(), 0.0f);
      matmul_jobs(jobs, &pool);
      for (size_t i = 0; i < ra.size(); ++i) ASSERT_EQ(ya[i], ra[i]) << threads << " threads, row " << i;
      for (size_t i = 0; i < rb.size(); ++i) ASSERT_EQ(yb[i], rb[i]) << threads << " threads, row " << i;
      for (size_t i = 0; i < rb.size(); ++i) ASSERT_EQ(yb[1000 + i], -1.0f);
      for (size_t i = 0; i < rc.size(); ++i) ASSERT_EQ(yc[i], rc[i]) << threads << " threads, row " << i;
    }
  }
}

TEST(Matmul, FewTokenJobsSplitByStealingEqualSeparateProducts) {
  // A batched decode step (every job 4 tokens or fewer: one expert with 1 token, one with 2, the dense products with
  // 4) is split by bytes with stealing too: each row still equals the serial product's.
  const int64_t cols = 512, n_tokens = 4;
  const auto x = random_input(n_tokens * cols, 41);
  QuantizedActivations xk, x8;
  xk.quantize(GgmlType::kQ8_K, x.data(), n_tokens, cols);
  x8.quantize(GgmlType::kQ8_0, x.data(), n_tokens, cols);
  const Weights wa = random_weights(GgmlType::kQ4_K, 1501, cols, 42), wb = random_weights(GgmlType::kQ8_0, 700, cols, 43),
                wc = random_weights(GgmlType::kQ6_K, 333, cols, 44);
  std::vector<float> ra(static_cast<size_t>(1501 * n_tokens)), rb(static_cast<size_t>(700 * n_tokens)),
      rc(static_cast<size_t>(333 * n_tokens));
  matmul(wa.view(), xk, ra.data());
  matmul(wb.view(), x8, rb.data());
  matmul(wc.view(), xk, rc.data());
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 10; ++rep) {  // the steals race differently each time
      std::vector<float> ya(ra.size(), -1.0f), yb(700 * 2, -1.0f), yc(333, -1.0f);
      // wa over all 4 tokens, wb over tokens 1..2, wc over token 3 alone, and wb over no token.
      const MatmulJob jobs[4] = {{wa.view(), &xk, ya.data()}, {wb.view(), &x8, yb.data(), 700, 1, 2},
                                 {wb.view(), &x8, nullptr, 0, 0, 0}, {wc.view(), &xk, yc.data(), 0, 3, 1}};
      matmul_jobs(jobs, &pool);
      for (size_t i = 0; i < ra.size(); ++i) ASSERT_EQ(ya[i], ra[i]) << threads << " threads, " << i;
      for (size_t i = 0; i < yb.size(); ++i) ASSERT_EQ(yb[i], rb[700 + i]) << threads << " threads, " << i;
      for (size_t i = 0; i < yc.size(); ++i) ASSERT_EQ(yc[i], rc[3 * 333 + i]) << threads << " threads, " << i;
    }
  }
}

TEST(Matmul, PrefillJobsSplitByStealingEqualTheSerialProducts) {
  // Prefill products (more than 4 tokens) go in chunks of whole row tiles that threads take from each other's
  // shares too: whoever computes a row, through the GEMM, the tiles or both, it equals the one-thread result.
  const int64_t cols = 512, n_tokens = 40;
  const auto x = random_input(n_tokens * cols, 61);
  QuantizedActivations xk, x8, xh;
  xk.quantize(GgmlType::kQ8_K, x.data(), n_tokens, cols);
  x8.quantize(GgmlType::kQ8_0, x.data(), n_tokens, cols);
  xh.quantize(vec_dot_type(GgmlType::kF16), x.data(), n_tokens, cols);
  const Weights wa = random_weights(GgmlType::kQ4_K, 1203, cols, 62), wb = random_weights(GgmlType::kQ8_0, 700, cols, 63),
                wc = random_weights(GgmlType::kQ6_K, 333, cols, 64), wd = random_weights(GgmlType::kF16, 91, cols, 65);
  // wa over all tokens (the GEMM), wb over tokens 3..33 with 20 through the GEMM and the rest through the tiles, wc
  // over 5 tokens (the tiles), wd over all tokens; an empty job between them.
  auto make_jobs = [&](std::vector<float>& ya, std::vector<float>& yb, std::vector<float>& yc, std::vector<float>& yd) {
    return std::vector<MatmulJob>{{wa.view(), &xk, ya.data()},
                                  {wb.view(), &x8, yb.data(), 0, 3, 30, 20},
                                  {wb.view(), &x8, nullptr, 0, 0, 0},
                                  {wc.view(), &xk, yc.data(), 0, 7, 5},
                                  {wd.view(), &xh, yd.data()}};
  };
  std::vector<float> ra(static_cast<size_t>(1203 * n_tokens)), rb(700 * 30), rc(333 * 5), rd(static_cast<size_t>(91 * n_tokens));
  matmul_jobs(make_jobs(ra, rb, rc, rd), nullptr);
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 5; ++rep) {  // the steals race differently each time
      std::vector<float> ya(ra.size(), -1.0f), yb(rb.size(), -1.0f), yc(rc.size(), -1.0f), yd(rd.size(), -1.0f);
      matmul_jobs(make_jobs(ya, yb, yc, yd), &pool);
      ASSERT_EQ(ya, ra) << threads << " threads";
      ASSERT_EQ(yb, rb) << threads << " threads";
      ASSERT_EQ(yc, rc) << threads << " threads";
      ASSERT_EQ(yd, rd) << threads << " threads";
    }
  }
}

TEST(Matmul, AfterRowsSeesEveryRowOnceRightAfterIt) {
  // The output head's softcap runs in after_rows: each row of the job in exactly one call, on the thread that
  // computed it and after it was written, whether the step is decode (stealing) or not (static split).
  const int64_t cols = 256, rows = 2000;
  const Weights w = random_weights(GgmlType::kQ6_K, rows, cols, 51);
  for (int64_t n_tokens : {1, 3, 9}) {
    const auto x = random_input(n_tokens * cols, 52);
    QuantizedActivations xq;
    xq.quantize(GgmlType::kQ8_K, x.data(), n_tokens, cols);
    std::vector<float> ref(static_cast<size_t>(rows * n_tokens));
    MatmulJob plain{w.view(), &xq, ref.data()};
    plain.gemm_tokens = 0;
    matmul_jobs(std::span<const MatmulJob>(&plain, 1), nullptr);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(ref.size(), 0.0f), copy(ref.size(), -1.0f);
      std::vector<std::atomic<int>> seen(static_cast<size_t>(rows));
      auto after = [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          seen[static_cast<size_t>(r)]++;
          for (int64_t t = 0; t < n_tokens; ++t) copy[static_cast<size_t>(t * rows + r)] = y[static_cast<size_t>(t * rows + r)];
        }
      };
      const FunctionRef<void(int64_t, int64_t)> after_rows = after;
      MatmulJob job{w.view(), &xq, y.data()};
      job.gemm_tokens = 0;
      job.after_rows = &after_rows;
      matmul_jobs(std::span<const MatmulJob>(&job, 1), &pool);
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(seen[static_cast<size_t>(r)].load(), 1) << n_tokens << " " << threads;
      for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_EQ(y[i], ref[i]) << n_tokens << " tokens, " << threads << " threads, " << i;
        ASSERT_EQ(copy[i], ref[i]) << n_tokens << " tokens, " << threads << " threads, " << i;  // seen when done
      }
    }
  }
}

TEST(Matmul, ExpertSliceOfA3DTensor) {
  // Expert weights are [cols, rows, n_expert]; expert e starts at data + e * nb2 with nb2 = rows * row_bytes.
  const int64_t rows = 24, cols = 64, n_expert = 4;
  const Weights all = random_weights(GgmlType::kQ5_0, rows * n_expert, cols, 7);
  const size_t nb1 = row_bytes(GgmlType::kQ5_0, cols), nb2 = nb1 * rows;
  const auto x = random_input(cols, 8);
  QuantizedActivations xq;
  xq.quantize(GgmlType::kQ8_0, x.data(), 1, cols);
  for (int64_t e = 0; e < n_expert; ++e) {
    MatrixView view{GgmlType::kQ5_0, all.bytes.data() + e * nb2, cols, rows, nb1};
    std::vector<float> y(static_cast<size_t>(rows));
    matmul(view, xq, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(y[r], vec_dot(GgmlType::kQ5_0, cols, all.bytes.data() + (e * rows + r) * nb1, xq.row(0)));
    }
  }
}

TEST(Matmul, ActivationBufferIsReused) {
  QuantizedActivations xq;
  const auto x = random_input(4 * 512, 9);
  xq.quantize(GgmlType::kQ8_0, x.data(), 4, 512);
  const uint8_t* first = xq.row(0);
  xq.quantize(GgmlType::kQ8_K, x.data(), 2, 512);  // smaller: no reallocation
  EXPECT_EQ(xq.row(0), first);
  EXPECT_EQ(xq.type(), GgmlType::kQ8_K);
  EXPECT_EQ(xq.n_tokens(), 2);
  EXPECT_EQ(xq.row(1) - xq.row(0), static_cast<ptrdiff_t>(row_bytes(GgmlType::kQ8_K, 512)));
}

// gather (the routed experts' inputs) equals quantizing the gathered f32 rows: the same bytes, block scales and
// sums, and widened rows for the GEMM (also when the source had too few rows to be widened).
TEST(Matmul, GatheredActivationsEqualQuantizingTheGatheredRows) {
  const int64_t cols = 512, n_src = 5;
  const std::vector<int32_t> rows = {3, 0, 3, 4, 1, 1, 2, 4, 0, 2, 3, 3};
  const auto x = random_input(n_src * cols, 11);
  std::vector<float> gathered;
  for (int32_t r : rows) gathered.insert(gathered.end(), x.begin() + r * cols, x.begin() + (r + 1) * cols);
  const int64_t saved_min = matmul_gemm_min_tokens();
  set_matmul_gemm_min_tokens(8);  // the source (5 rows) is not widened, the gathered rows (12) are
  ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ8_K, GgmlType::kF16, GgmlType::kBF16, GgmlType::kF32}) {
    SCOPED_TRACE(std::string(type_name(type)));
    QuantizedActivations src, got, want;
    src.quantize(type, x.data(), n_src, cols);
    got.gather(src, rows, &pool);
    want.quantize(type, gathered.data(), static_cast<int64_t>(rows.size()), cols);
    ASSERT_EQ(got.type(), type);
    ASSERT_EQ(got.n_tokens(), static_cast<int64_t>(rows.size()));
    ASSERT_EQ(got.cols(), cols);
    for (int64_t i = 0; i < got.n_tokens(); ++i) {
      EXPECT_EQ(std::memcmp(got.row(i), want.row(i), row_bytes(type, cols)), 0) << i;
      ASSERT_EQ(got.block_scales(i) == nullptr, want.block_scales(i) == nullptr);
      if (want.block_scales(i) != nullptr) {
        for (int64_t b = 0; b < cols / 32; ++b) {
          EXPECT_EQ(got.block_scales(i)[b], want.block_scales(i)[b]);
          EXPECT_EQ(got.block_sums(i)[b], want.block_sums(i)[b]);
        }
      }
      ASSERT_EQ(got.widened(i) == nullptr, want.widened(i) == nullptr);
      if (want.widened(i) != nullptr) {
        EXPECT_EQ(std::memcmp(got.widened(i), want.widened(i), cols * sizeof(float)), 0) << i;
      }
    }
  }
  set_matmul_gemm_min_tokens(saved_min);
}

}  // namespace
}  // namespace fabula
