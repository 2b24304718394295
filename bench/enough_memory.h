// For benchmarks whose buffers are a large share of a machine's memory: skip with a message, rather than let the
// kernel kill the whole bench program partway through filling them.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "model/available_memory.h"

namespace fabula {

// False, after telling the state why, when `bytes` would take more than 90% of the memory available now.
inline bool enough_memory_for(benchmark::State& state, size_t bytes) {
  const std::optional<uint64_t> available = available_memory();
  if (!available || static_cast<double>(bytes) <= 0.9 * static_cast<double>(*available)) return true;
  char why[96];
  std::snprintf(why, sizeof why, "needs %.1f GiB of memory, %.1f GiB is available",
                static_cast<double>(bytes) / (1 << 30), static_cast<double>(*available) / (1 << 30));
  state.SkipWithError(why);
  return false;
}

}  // namespace fabula
