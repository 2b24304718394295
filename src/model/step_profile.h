// Wall time per phase of the forward pass, for `fabula bench --profile`: where a decode step's time goes (each
// phase streams a known set of weights, so time per phase against its bytes shows which one misses the memory
// bound). Off by default: a disabled timer is one branch.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "tensor/thread_pool.h"

namespace fabula {

enum class StepPhase : int {
  kEmbed,        // token embedding rows
  kAttnQkv,      // input norm, q/k/v products
  kAttention,    // q/k norms, RoPE, cache writes, attention over the cache
  kAttnOut,      // output product, post-attention norm, residual
  kFfnGateUp,    // pre-FFN norm, dense gate/up and the router
  kFfnDown,      // GELU, routing, dense down and every chosen expert's gate_up
  kExpertDown,   // expert GELU, expert downs, weighted sum, norms, residual
  kHead,         // final norm, output head and softcap
  kCount
};

std::string_view step_phase_name(StepPhase phase);

class StepProfile {
 public:
  static bool enabled();
  static void set_enabled(bool on);
  static void reset();
  static void add(StepPhase phase, int64_t ns, const RegionTotals& regions);
  // Accumulated nanoseconds per phase since the last reset.
  static std::array<int64_t, static_cast<size_t>(StepPhase::kCount)> totals();
  // The parallel regions of each phase since the last reset (tensor/thread_pool.h: their time on the caller; the
  // rest of the phase's time is serial work on the calling thread).
  static std::array<RegionTotals, static_cast<size_t>(StepPhase::kCount)> region_totals();
  // Distinct routed experts read per MoE layer (a step of several tokens reads each chosen expert once): the sum
  // over layers and the number of layers since the last reset, when profiling is on.
  static void add_experts(int64_t distinct);
  static int64_t experts_total();
  static int64_t expert_layers_total();
};

// Adds the wall time from construction to destruction, and the parallel regions run meanwhile, to `phase` when
// profiling is on.
class PhaseTimer {
 public:
  explicit PhaseTimer(StepPhase phase) : phase_(phase), on_(StepProfile::enabled()) {
    if (on_) {
      regions_ = region_totals();
      start_ = std::chrono::steady_clock::now();
    }
  }
  ~PhaseTimer() {
    if (on_) {
      const int64_t ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
      RegionTotals regions = region_totals();
      regions -= regions_;
      StepProfile::add(phase_, ns, regions);
    }
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  StepPhase phase_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
  RegionTotals regions_;
};

}  // namespace fabula
