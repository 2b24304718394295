#include "model/decode_bound.h"

#include <algorithm>
#include <utility>

#include "base/sorted_median.h"

namespace fabula {
namespace {

EfficiencyStats stats_of(std::vector<double> v) {
  EfficiencyStats s;
  s.count = static_cast<int>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = sorted_median(v);
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace

BoundChunkRate bound_chunk_rate(const BoundChunk& chunk, double bytes_per_step, double fast_min_gbs) {
  BoundChunkRate r;
  r.steps_per_s = chunk.decode_s > 0 ? chunk.steps / chunk.decode_s : 0;
  r.weight_gbs = r.steps_per_s * bytes_per_step / 1e9;
  r.probe_mean_gbs = (chunk.probe_before_gbs + chunk.probe_after_gbs) / 2;
  r.efficiency = r.probe_mean_gbs > 0 ? r.weight_gbs / r.probe_mean_gbs : 0;
  const double lo = std::min(chunk.probe_before_gbs, chunk.probe_after_gbs);
  const double hi = std::max(chunk.probe_before_gbs, chunk.probe_after_gbs);
  r.stable_fast = lo >= fast_min_gbs && hi - lo < kStableSpread * hi;
  return r;
}

double stable_fast_min_gbs(const std::vector<BoundChunk>& chunks) {
  double fastest = 0;
  for (const BoundChunk& c : chunks) fastest = std::max({fastest, c.probe_before_gbs, c.probe_after_gbs});
  return (1 - kStableSpread) * fastest;
}

BoundSummary summarize_bound(const std::vector<BoundChunk>& chunks, double bytes_per_step) {
  const double fast_min = stable_fast_min_gbs(chunks);
  std::vector<double> all, stable;
  for (const BoundChunk& c : chunks) {
    const BoundChunkRate r = bound_chunk_rate(c, bytes_per_step, fast_min);
    all.push_back(r.efficiency);
    if (r.stable_fast) stable.push_back(r.efficiency);
  }
  return {stats_of(std::move(all)), stats_of(std::move(stable)), fast_min};
}

}  // namespace fabula
