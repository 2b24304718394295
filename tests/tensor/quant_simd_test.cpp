// Every attainable Highway target's kernels against the scalar references: random blocks, odd block counts,
// rows not aligned to the vector size (GGUF rows are only 2-byte aligned), bit-exact where the math is exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "tensor/quant_ref.h"
#include "kernel_test_util.h"

namespace fabula {
namespace {

using kernel_test::for_each_target;

const GgmlType kDotTypes[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ4_K,
                              GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kF32,  GgmlType::kF16,
                              GgmlType::kBF16};

// Fills a row of `type` with random but valid content. `exact` uses unit scales and activations in [-4, 4], so
// with at most 3 blocks every partial sum is an integer below 2^24: any summation order gives the same float,
// and the SIMD result must equal the reference bit for bit.
void random_row(GgmlType type, int64_t n, uint8_t* dst, std::mt19937& rng, bool exact) {
  std::uniform_int_distribution<int> byte(0, 255), q8_wide(-127, 127), q8_small(-4, 4);
  auto q8 = [&](std::mt19937& r) { return exact ? q8_small(r) : q8_wide(r); };
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto scale = [&] { return exact ? 1.0f : 0.01f + std::fabs(g(rng)) * 0.05f; };
  const TypeTraits& tr = type_traits(type);
  const size_t bytes = row_bytes(type, static_cast<uint64_t>(n));
  for (size_t i = 0; i < bytes; ++i) dst[i] = static_cast<uint8_t>(byte(rng));
  const int64_t nb = n / tr.block_size;
  switch (type) {
    case GgmlType::kF32:
      for (int64_t i = 0; i < n; ++i) {
        const float v = exact ? static_cast<float>(q8_wide(rng)) : g(rng);
        std::memcpy(dst + 4 * i, &v, 4);
      }
      break;
    case GgmlType::kF16: case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const float v = exact ? static_cast<float>(q8_wide(rng) / 8) : g(rng);
        const uint16_t h = type == GgmlType::kF16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case GgmlType::kQ8_0: case GgmlType::kQ4_0: case GgmlType::kQ5_0:
      for (int64_t b = 0; b < nb; ++b) {
        const uint16_t d = fp32_to_fp16(scale());
        std::memcpy(dst + b * tr.block_bytes, &d, 2);  // d leads these blocks
      }
      break;
    case GgmlType::kQ4_K: case GgmlType::kQ5_K:
      for (int64_t b = 0; b < nb; ++b) {
        const uint16_t dd[2] = {fp32_to_fp16(scale()), fp32_to_fp16(scale())};
        std::memcpy(dst + b * tr.block_bytes, dd, 4);
      }
      break;
    case GgmlType::kQ6_K:
      for (int64_t b = 0; b < nb; ++b) {
        const uint16_t d = fp32_to_fp16(scale());
        std::memcpy(dst + b * tr.block_bytes + offsetof(BlockQ6_K, d), &d, 2);
      }
      break;
    case GgmlType::kQ8_K:
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8_K blk{};
        blk.d = -scale();
        for (int j = 0; j < kQK_K; ++j) blk.qs[j] = static_cast<int8_t>(q8(rng));
        for (int g16 = 0; g16 < 16; ++g16) {
          int s = 0;
          for (int k = 0; k < 16; ++k) s += blk.qs[16 * g16 + k];
          blk.bsums[g16] = static_cast<int16_t>(s);
        }
        std::memcpy(dst + b * sizeof(BlockQ8_K), &blk, sizeof(blk));
      }
      break;
    default:
      FAIL() << "no generator for " << type_name(type);
  }
}

// Activation rows must hold int8 in [-127, 127] (as the quantizers produce).
void random_act_row(GgmlType act, int64_t n, uint8_t* dst, std::mt19937& rng, bool exact) {
  random_row(act, n, dst, rng, exact);
  if (act == GgmlType::kQ8_0) {
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
      auto* blk = reinterpret_cast<BlockQ8_0*>(dst + b * sizeof(BlockQ8_0));
      for (auto& q : blk->qs) q = q == -128 ? -127 : q;
    }
  }
}

double magnitude(GgmlType type, int64_t n, const uint8_t* w, const uint8_t* a) {
  std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
  dequantize_row_ref(type, w, wf.data(), n);
  dequantize_row_ref(vec_dot_type(type), a, af.data(), n);
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m += std::fabs(static_cast<double>(wf[i]) * af[i]);
  return m;
}

TEST(QuantSimd, VecDotMatchesReferenceOnEveryTarget) {
  const KernelTable ref = scalar_kernels();
  for_each_target([&](const KernelTable& k, int64_t) {
    std::mt19937 rng(123);
    for (GgmlType type : kDotTypes) {
      const GgmlType act = vec_dot_type(type);
      const int bs = static_cast<int>(type_traits(type).block_size);
      for (int blocks : {1, 2, 3, 7, 11}) {
        const int64_t n = static_cast<int64_t>(blocks) * (bs == 1 ? 37 : bs);  // plain types: odd lengths
        for (int misalign : {0, 1, 2, 3}) {
          for (bool exact : {false, true}) {
            if (exact && blocks > 3 && bs > 1) continue;
            // Rows start at any multiple of the element/block alignment: blocks hold fp16 (2 bytes; Q8_K: f32).
            const int off = misalign * (bs == 1 ? static_cast<int>(type_traits(type).block_bytes) : 2);
            const int act_align = act == GgmlType::kQ8_K ? 4 : (bs == 1 ? static_cast<int>(type_traits(act).block_bytes) : 2);
            std::vector<uint8_t> wbuf(row_bytes(type, static_cast<uint64_t>(n)) + 64);  // 16-byte aligned start
            std::vector<uint8_t> abuf(row_bytes(act, static_cast<uint64_t>(n)) + 64);
            uint8_t* w = wbuf.data() + off;
            uint8_t* a = abuf.data() + act_align * (3 - misalign);
            random_row(type, n, w, rng, exact);
            random_act_row(act, n, a, rng, exact);
            float want = 0, got = 0;  // the one-token tile is the single-row dot
            ref.tile[kernel_slot(type)](n, w, a, 0, nullptr, 1, &want, 1);
            k.tile[kernel_slot(type)](n, w, a, 0, nullptr, 1, &got, 1);
            if (exact) {
              ASSERT_EQ(got, want) << type_name(type) << " n=" << n << " misalign=" << misalign;
            } else {
              ASSERT_NEAR(got, want, 2e-6 * magnitude(type, n, w, a) + 1e-30)
                  << type_name(type) << " n=" << n << " misalign=" << misalign;
            }
          }
        }
      }
    }
  });
}

TEST(QuantSimd, ActivationQuantizersAreBitExactOnEveryTarget) {
  const KernelTable ref = scalar_kernels();
  for_each_target([&](const KernelTable& k, int64_t) {
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_int_distribution<int> small(-40, 40);
    for (GgmlType act : {GgmlType::kQ8_0, GgmlType::kQ8_K}) {
      const int bs = static_cast<int>(type_traits(act).block_size);
      for (int blocks : {1, 3, 5}) {
        const int64_t n = static_cast<int64_t>(blocks) * bs;
        for (int kind = 0; kind < 4; ++kind) {
          std::vector<float> xbuf(static_cast<size_t>(n) + 1);
          float* x = xbuf.data() + (kind & 1);  // 4-byte misaligned relative to the vector size
          for (int64_t i = 0; i < n; ++i) {
            x[i] = kind < 2 ? g(rng) * 3.0f : 0.5f * static_cast<float>(small(rng));  // ties
          }
          if (kind == 3) std::fill(x, x + bs, 0.0f);  // an all-zero block
          if (kind == 2) {  // equal +/- maxima: the first one decides Q8_K's sign
            x[5] = 20.0f;
            x[9] = -20.0f;
          }
          std::vector<uint8_t> want(row_bytes(act, static_cast<uint64_t>(n))), got(want.size());
          ref.quantize_act[kernel_slot(act)](x, want.data(), n);
          k.quantize_act[kernel_slot(act)](x, got.data(), n);
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size()))
              << type_name(act) << " blocks=" << blocks << " kind=" << kind;
        }
      }
    }
  });
}

// F16/BF16 weights round their activations to the weight type: every rounding case (ties, overflow to inf, results
// below the smallest normal half, signed zeros, infinities, NaNs with payloads) and lengths with a scalar tail.
TEST(QuantSimd, HalfActivationRoundingIsBitExactOnEveryTarget) {
  const KernelTable ref = scalar_kernels();
  std::vector<float> x;
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int i = 0; i < 4000; ++i) x.push_back(g(rng) * std::pow(2.0f, static_cast<float>(i % 60 - 30)));
  for (uint32_t bits : {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00001u, 0x7F812345u,
                        0x477FF000u, 0x477FEFFFu, 0x47800000u, 0x33000000u, 0x33000001u, 0x387FC000u, 0x3F801000u,
                        0x3F803000u, 0x3F808000u, 0x3F818000u, 0x00000001u, 0x7F7FFFFFu}) {
    float f;
    std::memcpy(&f, &bits, 4);
    x.push_back(f);
    x.push_back(-f);
  }
  for_each_target([&](const KernelTable& k, int64_t) {
    for (GgmlType act : {GgmlType::kF16, GgmlType::kBF16}) {
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{37}, static_cast<int64_t>(x.size())}) {
        for (int64_t start : {int64_t{0}, static_cast<int64_t>(x.size()) - n}) {
          std::vector<uint16_t> want(static_cast<size_t>(n)), got(want.size());
          ref.quantize_act[kernel_slot(act)](x.data() + start, want.data(), n);
          k.quantize_act[kernel_slot(act)](x.data() + start, got.data(), n);
          ASSERT_EQ(want, got) << type_name(act) << " n=" << n << " start=" << start;
        }
      }
    }
  });
}

// Widening back to f32 is exact: all 65,536 half values, compared bit for bit (NaNs included).
TEST(QuantSimd, HalfWideningIsExactOnEveryTarget) {
  const KernelTable ref = scalar_kernels();
  std::vector<uint16_t> h(65536 + 3);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  for_each_target([&](const KernelTable& k, int64_t) {
    for (GgmlType type : {GgmlType::kF16, GgmlType::kBF16}) {
      std::vector<float> want(h.size()), got(h.size());
      ref.dequantize[kernel_slot(type)](h.data(), want.data(), static_cast<int64_t>(h.size()));
      k.dequantize[kernel_slot(type)](h.data(), got.data(), static_cast<int64_t>(h.size()));
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << type_name(type);
    }
  });
}

TEST(QuantSimd, BestTableIsTheBestTarget) {
  const KernelTable& best = best_kernels();
  EXPECT_STREQ(best.target, hwy::TargetName(kernel_targets().front()));
  std::printf("best kernel target: %s\n", best.target);
}

}  // namespace
}  // namespace fabula
