// The SIMD activations (tensor/activations.h) against their scalar references on random inputs, on every Highway
// target the CPU supports: the tails (n not a multiple of the vector width), large magnitudes where tanh
// saturates, aliasing out == gate, strided rows, and attention heads split into two runs of cache rows.
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "tensor/activations.h"
#include "tensor/kernels.h"
#include "kernel_test_util.h"

namespace fabula {
namespace {

using kernel_test::on_every_target;
using kernel_test::random_values;

// Relative error with an absolute floor: Highway's Tanh/Exp are within a few ULP.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol = 2e-6f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << i;
}

TEST(Activations, GeluTanhMulMatchesTheReference) {
  on_every_target([] {
    for (int64_t n : {1, 7, 16, 33, 704, 2112}) {
      for (float scale : {0.5f, 3.0f, 30.0f}) {
        const auto gate = random_values(n, scale, static_cast<uint32_t>(n));
        const auto up = random_values(n, 1.0f, 99);
        std::vector<float> want(gate.size()), got(gate.size());
        gelu_tanh_mul_ref(gate.data(), up.data(), want.data(), n);
        gelu_tanh_mul(gate.data(), up.data(), got.data(), n);
        expect_close(got, want);
        std::vector<float> in_place = gate;  // out == gate, as the forward pass calls it
        gelu_tanh_mul(in_place.data(), up.data(), in_place.data(), n);
        expect_close(in_place, want);
      }
    }
    // Known values: gelu(0) = 0, gelu(x) ~ x for large x, ~ 0 for very negative x.
    const float gate[3] = {0.0f, 10.0f, -10.0f}, up[3] = {1.0f, 2.0f, 1.0f};
    float out[3];
    gelu_tanh_mul(gate, up, out, 3);
    EXPECT_EQ(out[0], 0.0f);
    EXPECT_NEAR(out[1], 20.0f, 1e-5f);
    EXPECT_NEAR(out[2], 0.0f, 1e-6f);
  });
}

// Bit for bit: the same double lanes, the same reduction order and the same f32 products on every target; with and
// without a weight, in place, lengths with a tail, values whose squares span a wide range, and known values.
TEST(Activations, RmsNormIsTheReferenceBitForBit) {
  on_every_target([] {
    for (int64_t n : {1, 7, 8, 15, 16, 33, 256, 2816}) {
      for (float scale : {1e-20f, 1.0f, 3e15f}) {
        const auto x = random_values(n, scale, static_cast<uint32_t>(n));
        const auto w = random_values(n, 2.0f, 7);
        for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
          std::vector<float> want(x.size()), got(x.size());
          rms_norm_ref(x.data(), weight, want.data(), n, 1e-6f);
          rms_norm(x.data(), weight, got.data(), n, 1e-6f);
          ASSERT_EQ(want, got) << "n " << n << " scale " << scale;
          std::vector<float> in_place = x;  // y == x, as the forward pass calls it
          rms_norm(in_place.data(), weight, in_place.data(), n, 1e-6f);
          ASSERT_EQ(want, in_place) << "n " << n << " scale " << scale;
        }
      }
    }
    // Every value 2: mean square 4, so x / 2 (eps 0), times the weight.
    const std::vector<float> x(19, 2.0f), w(19, 3.0f);
    std::vector<float> y(19);
    rms_norm(x.data(), w.data(), y.data(), 19, 0.0f);
    for (float v : y) EXPECT_EQ(v, 3.0f);
  });
}

TEST(Activations, AddScaledIsTheReferenceBitForBit) {
  on_every_target([] {
    for (int64_t n : {1, 7, 16, 33, 2816}) {
      const auto src = random_values(n, 3.0f, static_cast<uint32_t>(n));
      const auto start = random_values(n, 1.0f, 5);
      std::vector<float> want = start, got = start;
      add_scaled_ref(want.data(), src.data(), 0.37f, n);
      add_scaled(got.data(), src.data(), 0.37f, n);
      ASSERT_EQ(want, got) << "n " << n;
    }
    float dst[3] = {1.0f, 2.0f, 3.0f};
    const float src[3] = {4.0f, 5.0f, 6.0f};
    add_scaled(dst, src, 0.5f, 3);
    EXPECT_EQ(dst[0], 3.0f);
    EXPECT_EQ(dst[1], 4.5f);
    EXPECT_EQ(dst[2], 6.0f);
  });
}

// The MoE layout: rows of [gate | up], written to rows of n.
TEST(Activations, GeluTanhMulRowsMatchesTheReference) {
  on_every_target([] {
    for (int64_t n : {5, 64, 704}) {
      const int64_t rows = 9;
      const auto gate_up = random_values(rows * 2 * n, 2.0f, static_cast<uint32_t>(n));
      std::vector<float> want(static_cast<size_t>(rows * n), -7.0f), got(want.size(), -7.0f);
      gelu_tanh_mul_rows_ref(gate_up.data(), gate_up.data() + n, 2 * n, want.data(), n, rows, n);
      gelu_tanh_mul_rows(gate_up.data(), gate_up.data() + n, 2 * n, got.data(), n, rows, n);
      expect_close(got, want);
      // Row 3 by hand: the rows are independent and land at their own stride.
      std::vector<float> row(static_cast<size_t>(n));
      gelu_tanh_mul_ref(gate_up.data() + 3 * 2 * n, gate_up.data() + 3 * 2 * n + n, row.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(want[static_cast<size_t>(3 * n + i)], row[static_cast<size_t>(i)]);
    }
  });
}

TEST(Activations, TanhSoftcapMatchesTheReference) {
  on_every_target([] {
    for (int64_t n : {5, 64, 1000}) {
      auto x = random_values(n, 40.0f, 3);
      auto want = x;
      tanh_softcap_ref(want.data(), n, 30.0f);
      tanh_softcap(x.data(), n, 30.0f);
      expect_close(x, want);
      for (float v : x) EXPECT_LE(std::fabs(v), 30.0f);
    }
  });
}

// Weights more than ~87 below the row's maximum underflow FLT_MIN: the kernel gives exact zeros there (as
// subnormals they cost Intel cores a microcode assist per multiply-add that takes them), the reference keeps the
// subnormals, and every other weight still matches it.
TEST(Activations, SoftmaxFlushesSubnormalWeightsToZero) {
  on_every_target([] {
    constexpr int64_t n = 64;  // whole vectors on every target, so no value takes the scalar tail
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = -3.0f * static_cast<float>(i % 48);  // 0 .. -141
    auto want = x;
    softmax_rows_ref(want.data(), 1, n);
    softmax_rows(x.data(), 1, n);
    int subnormal_in_reference = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float got = x[static_cast<size_t>(i)], ref = want[static_cast<size_t>(i)];
      EXPECT_NE(std::fpclassify(got), FP_SUBNORMAL) << "weight " << i;
      if (std::fpclassify(ref) == FP_SUBNORMAL) {
        ++subnormal_in_reference;
        EXPECT_EQ(got, 0.0f) << "weight " << i;
      } else {
        EXPECT_NEAR(got, ref, 1e-6f * std::max(1.0f, ref)) << "weight " << i;
      }
    }
    EXPECT_GT(subnormal_in_reference, 0);  // the row does reach the subnormal range
  });
}

TEST(Activations, SoftmaxRowsMatchesTheReference) {
  on_every_target([] {
    for (int64_t n : {1, 3, 17, 128, 512}) {
      const int64_t rows = 4;
      auto x = random_values(rows * n, 4.0f, static_cast<uint32_t>(n));
      auto want = x;
      softmax_rows_ref(want.data(), rows, n);
      softmax_rows(x.data(), rows, n);
      expect_close(x, want);
      for (int64_t r = 0; r < rows; ++r) {  // every row sums to 1 on its own
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += x[static_cast<size_t>(r * n + i)];
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
    }
  });
}

// Cache rows at a stride wider than d (a KV cache slot holds every kv head), d not a multiple of the vector width,
// and the keys split into two runs (a ring buffer that wrapped).
TEST(Activations, AttendHeadMatchesTheReference) {
  on_every_target([] {
    for (int64_t d : {7, 64, 256, 300, 512}) {
      const int64_t stride = 2 * d + 13, n_rows = 37;
      const auto cache = random_values(stride * n_rows, 1.0f, static_cast<uint32_t>(d));
      const auto q = random_values(d, 1.0f, 11);
      for (int64_t split : {n_rows, int64_t{1}, int64_t{20}}) {
        // Run 0 is the cache's tail rows split..n_rows-1, run 1 its head 0..split-1 (the ring order).
        const CacheRun runs[2] = {{cache.data() + split * stride, cache.data() + split * stride + d, n_rows - split},
                                  {cache.data(), cache.data() + d, split}};
        const int n_runs = split == n_rows ? 1 : 2;
        const CacheRun* first = split == n_rows ? runs + 1 : runs;
        std::vector<float> sw(static_cast<size_t>(n_rows)), sg(sw.size());
        std::vector<float> want(static_cast<size_t>(d), 5.0f), got(want.size(), 5.0f);
        attend_head_ref(q.data(), first, n_runs, stride, d, sw.data(), want.data());
        attend_head(q.data(), first, n_runs, stride, d, sg.data(), got.data());
        expect_close(got, want, 1e-5f);
        expect_close(sg, sw, 1e-5f);  // the softmax weights
        // One key with all the weight: out is its value row.
        if (split == n_rows && d == 64) {
          std::vector<float> k(static_cast<size_t>(3 * d), 0.0f);
          std::vector<float> qq(static_cast<size_t>(d), 0.0f);
          qq[0] = 100.0f;
          k[static_cast<size_t>(d)] = 1.0f;  // key 1 matches q
          const CacheRun run{k.data(), cache.data(), 3};
          float s3[3];
          std::vector<float> out(static_cast<size_t>(d));
          attend_head(qq.data(), &run, 1, d, d, s3, out.data());
          for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(out[static_cast<size_t>(i)], cache[static_cast<size_t>(d + i)], 1e-6f);
        }
      }
    }
  });
}

}  // namespace
}  // namespace fabula
