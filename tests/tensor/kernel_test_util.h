// Shared by the kernel tests: random inputs and weights, and a loop that runs a check once per Highway target the CPU supports.
#pragma once

#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/amx.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/matmul.h"
#include "tensor/types.h"

namespace fabula::kernel_test {

constexpr int kMaxGemmRows = 16;  // the widest GEMM tile (AVX-512 VNNI and AMX)

// n values from N(0, scale), reproducible by seed.
inline std::vector<float> random_values(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

// One weight row of n: random bytes with a small positive fp16 scale in every block's d (and dmin) field; F32,
// F16, BF16: random normal values.
inline void random_weight_row(GgmlType type, int64_t n, uint8_t* dst, std::mt19937& rng) {
  if (type == GgmlType::kF32) {
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (int64_t i = 0; i < n; ++i) {
      const float v = g(rng);
      std::memcpy(dst + 4 * i, &v, 4);
    }
    return;
  }
  if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = type == GgmlType::kF16 ? fp32_to_fp16(g(rng)) : fp32_to_bf16(g(rng));
      std::memcpy(dst + 2 * i, &h, 2);
    }
    return;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> sc(0.001f, 0.05f);
  const TypeTraits& tr = type_traits(type);
  const size_t bytes = row_bytes(type, static_cast<uint64_t>(n));
  for (size_t i = 0; i < bytes; ++i) dst[i] = static_cast<uint8_t>(byte(rng));
  for (int64_t b = 0; b < n / tr.block_size; ++b) {
    uint8_t* blk = dst + b * tr.block_bytes;
    const uint16_t d = fp32_to_fp16(sc(rng)), dmin = fp32_to_fp16(sc(rng));
    if (type == GgmlType::kQ6_K) {
      std::memcpy(&reinterpret_cast<BlockQ6_K*>(blk)->d, &d, 2);
    } else {
      std::memcpy(blk, &d, 2);
      if (type == GgmlType::kQ4_K || type == GgmlType::kQ5_K) std::memcpy(blk + 2, &dmin, 2);
    }
  }
}

// A dense rows x cols weight matrix of random_weight_row rows, for the matmul tests.
struct RandomMatrix {
  RandomMatrix(GgmlType type, int64_t cols, int64_t rows, std::mt19937& rng)
      : type(type), cols(cols), rows(rows), row_stride(row_bytes(type, static_cast<uint64_t>(cols))),
        bytes(row_stride * static_cast<size_t>(rows)) {
    for (int64_t r = 0; r < rows; ++r) random_weight_row(type, cols, bytes.data() + row_stride * r, rng);
  }
  // Borrows bytes: valid while this matrix lives.
  MatrixView view() const { return MatrixView{type, bytes.data(), cols, rows, row_stride}; }

  GgmlType type;
  int64_t cols, rows;
  size_t row_stride;
  std::vector<uint8_t> bytes;
};

// Runs fn(table, target) once per attainable target, with the dispatch forced to it; table: that target's kernels.
template <typename Fn>
void for_each_target(Fn fn) {
  const auto targets = kernel_targets();
  ASSERT_FALSE(targets.empty());
  const bool amx_was_allowed = amx_allowed();
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    // AVX3_DL on a CPU with AMX: once with the AMX GEMM (the default) and once with the VNNI one it replaces.
    const bool amx_variant = HWY_ARCH_X86 && target == HWY_AVX3_DL && amx_usable();
    for (bool amx : amx_variant ? std::vector<bool>{true, false} : std::vector<bool>{amx_was_allowed}) {
      set_amx_allowed(amx);
      const KernelTable table = kernels_for_current_target();
      EXPECT_STREQ(table.target, hwy::TargetName(target));
      SCOPED_TRACE(std::string(hwy::TargetName(target)) + (table.amx ? " + AMX" : ""));
      fn(table, target);
    }
  }
  set_amx_allowed(amx_was_allowed);
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

// The activations a GEMM call gets from matmul for a group of nt tokens: act, plus the table's packed layout where
// it has one (in *storage).
inline GemmActs gemm_group_acts(const KernelTable& t, GgmlType type, int64_t n, GemmActs act, int nt,
                                std::vector<uint8_t>* storage) {
  // Not zero: the packing must write every byte the GEMM reads back.
  storage->assign(gemm_packed_bytes(t, type, n), 0xA5);
  return pack_gemm_acts(t, type, n, act, nt, storage->data());
}

// Runs fn() once per attainable target, with the dispatch forced to it.
template <typename Fn>
void on_every_target(Fn fn) {
  for_each_target([&](const KernelTable&, int64_t) { fn(); });
}

}  // namespace fabula::kernel_test
