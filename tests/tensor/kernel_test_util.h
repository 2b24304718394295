// Shared by the kernel tests: random inputs, and a loop that runs a check once per Highway target the CPU supports.
#pragma once

#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cstdint>
#include <random>
#include <vector>

#include "tensor/kernels.h"

namespace fabula::kernel_test {

// n values from N(0, scale), reproducible by seed.
inline std::vector<float> random_values(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

// Runs fn() once per attainable target, with the dispatch forced to it.
template <typename Fn>
void on_every_target(Fn fn) {
  const auto targets = kernel_targets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    SCOPED_TRACE(hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

}  // namespace fabula::kernel_test
