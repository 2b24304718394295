// Decode speed against a read bound measured right beside it (`fabula bench --bound-probe K`): a read probe before
// every chunk of K decode steps and after it, so each chunk is compared with the memory's read rate of its own
// seconds. On a machine whose read bandwidth jumps within seconds, a bound measured before or after a whole run
// says little about the run.
#pragma once

#include <vector>

namespace fabula {

// Chunks whose two probes both read within kStableSpread of the run's fastest probe, and differ by less than
// kStableSpread of the faster of the two: the memory stayed in its fast state for the whole chunk. Fast is relative
// to the run, not a figure: a fixed 72 GB/s suited the Zen 5 host it was chosen on and no chunk on the 2-core
// Xeon of BENCHMARKS.md, whose reads top out near 40.
inline constexpr double kStableSpread = 0.10;

struct BoundChunk {
  int steps = 0;            // decode steps in the chunk
  double decode_s = 0;      // their wall time, probes not included
  double probe_before_gbs = 0, probe_after_gbs = 0;
};

struct BoundChunkRate {
  double steps_per_s = 0;
  double weight_gbs = 0;    // steps_per_s x the weight bytes one step reads
  double probe_mean_gbs = 0;
  double efficiency = 0;    // weight_gbs / probe_mean_gbs
  bool stable_fast = false;
};
// fast_min_gbs: the slowest read a stable fast chunk may have (stable_fast_min_gbs of its run).
BoundChunkRate bound_chunk_rate(const BoundChunk& chunk, double bytes_per_step, double fast_min_gbs);
// (1 - kStableSpread) x the fastest probe of the run's chunks; 0 for none.
double stable_fast_min_gbs(const std::vector<BoundChunk>& chunks);

struct EfficiencyStats {
  int count = 0;  // chunks; the rest is 0 when there are none
  double median = 0, min = 0, max = 0;
};
struct BoundSummary {
  EfficiencyStats all, stable_fast;
  double stable_fast_min_gbs = 0;  // the threshold the stable fast chunks met
};
BoundSummary summarize_bound(const std::vector<BoundChunk>& chunks, double bytes_per_step);

}  // namespace fabula
