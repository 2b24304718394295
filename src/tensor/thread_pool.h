// ThreadPool: persistent worker threads (no per-operation thread start) that split index ranges.
#pragma once

#include <cstdint>
#include <memory>

#include "base/function_ref.h"

namespace fabula {

// Opt-in accounting of the parallel regions of every pool (`fabula bench --profile`): where a step's threads are
// not all working. A region runs from the caller waking the workers to the caller seeing them all done. Off, a
// region costs one relaxed load.
struct RegionTotals {
  int64_t regions = 0;
  int64_t wall_ns = 0;      // the regions' time on the caller
  int64_t all_busy_ns = 0;  // the part of it during which every thread was inside the job
  int64_t start_ns = 0;     // from waking the workers until the last thread started the job
  int64_t end_ns = 0;       // from the first thread done until the region's end: imbalance, then...
  int64_t signal_ns = 0;    // ...from the last thread done until the caller saw it (part of end_ns)
  int64_t busy_ns = 0;      // thread-time inside the job, summed over the threads
  RegionTotals& operator-=(const RegionTotals& o);
  RegionTotals& operator+=(const RegionTotals& o);
};
void set_region_profiling(bool on);
void reset_region_totals();
RegionTotals region_totals();  // since the last reset

class ThreadPool {
 public:
  // n_threads <= 0 means the number of physical cores. The calling thread works too (n_threads - 1 workers).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;

  // Runs fn(begin, end, thread_index) over [0, n) split into contiguous chunks, and returns when all are done.
  // Neither entry point allocates (FunctionRef), so the decode loop can use them freely.
  // fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, FunctionRef<void(int64_t begin, int64_t end, int thread)> fn);

  // Runs fn(thread_index) once on every thread.
  void run_on_all(FunctionRef<void(int thread)> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabula
