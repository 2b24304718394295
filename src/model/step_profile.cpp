#include "model/step_profile.h"

#include <atomic>
#include <mutex>

namespace fabula {
namespace {
std::atomic<bool> g_enabled{false};
std::array<std::atomic<int64_t>, static_cast<size_t>(StepPhase::kCount)> g_ns{};
std::atomic<int64_t> g_experts{0}, g_expert_layers{0};
std::mutex g_regions_mu;  // phases of concurrent steps (server) may add at once
std::array<RegionTotals, static_cast<size_t>(StepPhase::kCount)> g_regions{};
}  // namespace

std::string_view step_phase_name(StepPhase phase) {
  switch (phase) {
    case StepPhase::kEmbed: return "embed";
    case StepPhase::kAttnQkv: return "attn q/k/v";
    case StepPhase::kAttention: return "attention";
    case StepPhase::kAttnOut: return "attn output";
    case StepPhase::kFfnGateUp: return "ffn gate/up + router";
    case StepPhase::kFfnDown: return "ffn down + experts gate_up";
    case StepPhase::kExpertDown: return "experts down";
    case StepPhase::kHead: return "output head";
    case StepPhase::kCount: break;
  }
  return "?";
}

bool StepProfile::enabled() { return g_enabled.load(std::memory_order_relaxed); }
void StepProfile::set_enabled(bool on) {
  g_enabled.store(on, std::memory_order_relaxed);
  set_region_profiling(on);
}
void StepProfile::reset() {
  {
    const std::lock_guard<std::mutex> lock(g_regions_mu);
    g_regions = {};
  }
  for (auto& ns : g_ns) ns.store(0, std::memory_order_relaxed);
  g_experts.store(0, std::memory_order_relaxed);
  g_expert_layers.store(0, std::memory_order_relaxed);
}
void StepProfile::add_experts(int64_t distinct) {
  if (!enabled()) return;
  g_experts.fetch_add(distinct, std::memory_order_relaxed);
  g_expert_layers.fetch_add(1, std::memory_order_relaxed);
}
int64_t StepProfile::experts_total() { return g_experts.load(std::memory_order_relaxed); }
int64_t StepProfile::expert_layers_total() { return g_expert_layers.load(std::memory_order_relaxed); }
void StepProfile::add(StepPhase phase, int64_t ns, const RegionTotals& regions) {
  g_ns[static_cast<size_t>(phase)].fetch_add(ns, std::memory_order_relaxed);
  const std::lock_guard<std::mutex> lock(g_regions_mu);
  g_regions[static_cast<size_t>(phase)] += regions;
}
std::array<RegionTotals, static_cast<size_t>(StepPhase::kCount)> StepProfile::region_totals() {
  const std::lock_guard<std::mutex> lock(g_regions_mu);
  return g_regions;
}
std::array<int64_t, static_cast<size_t>(StepPhase::kCount)> StepProfile::totals() {
  std::array<int64_t, static_cast<size_t>(StepPhase::kCount)> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = g_ns[i].load(std::memory_order_relaxed);
  return out;
}

}  // namespace fabula
