// ThreadPool: every index is visited exactly once, every thread runs, and rapid reuse does not lose wakeups.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tensor/thread_pool.h"

namespace fabula {
namespace {

TEST(ThreadPool, DefaultSizeIsPositive) {
  ThreadPool pool;
  EXPECT_GE(pool.size(), 1);
}

TEST(ThreadPool, ParallelForCoversEachIndexOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_thread{0};
      pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
        if (t < 0 || t >= threads || b >= e) bad_thread++;
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      EXPECT_EQ(bad_thread.load(), 0);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, RunOnAllRunsEveryThreadOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> ran(4);
  pool.run_on_all([&](int t) { ran[static_cast<size_t>(t)]++; });
  for (auto& r : ran) EXPECT_EQ(r.load(), 1);
}

TEST(ThreadPool, ManySmallJobsInARow) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int rep = 0; rep < 2000; ++rep) {
    pool.parallel_for(10, [&](int64_t b, int64_t e, int) { total += e - b; });
  }
  EXPECT_EQ(total.load(), 20000);
}

TEST(ThreadPool, ResultsVisibleAfterReturn) {
  ThreadPool pool(2);
  std::vector<int64_t> out(100000, -1);  // plain (non-atomic) writes must be visible after parallel_for returns
  for (int rep = 0; rep < 20; ++rep) {
    pool.parallel_for(static_cast<int64_t>(out.size()), [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = i * rep;
    });
    for (size_t i = 0; i < out.size(); i += 997) ASSERT_EQ(out[i], static_cast<int64_t>(i) * rep);
  }
}

TEST(ThreadPool, DestroyIdlePoolAndAfterSleep) {
  { ThreadPool idle(4); }
  ThreadPool pool(2);
  std::atomic<int> n{0};
  pool.run_on_all([&](int) { n++; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // workers fall asleep on the condition variable
  pool.run_on_all([&](int) { n++; });
  EXPECT_EQ(n.load(), 4);
}

TEST(ThreadPool, RegionTotalsAddUp) {
  ThreadPool pool(3);
  reset_region_totals();
  pool.run_on_all([](int) {});  // profiling off: not counted
  EXPECT_EQ(region_totals().regions, 0);
  set_region_profiling(true);
  for (int rep = 0; rep < 5; ++rep) {
    pool.run_on_all([](int t) { std::this_thread::sleep_for(std::chrono::milliseconds(1 + t)); });
  }
  ThreadPool single(1);
  single.run_on_all([](int) {});  // one thread: no region
  set_region_profiling(false);
  const RegionTotals t = region_totals();
  EXPECT_EQ(t.regions, 5);
  // The caller's time splits into the wake-up, the time every thread worked, and the end.
  EXPECT_EQ(t.start_ns + t.all_busy_ns + t.end_ns, t.wall_ns);
  EXPECT_GE(t.start_ns, 0);
  EXPECT_GE(t.all_busy_ns, 0);
  EXPECT_GE(t.signal_ns, 0);
  EXPECT_LE(t.signal_ns, t.end_ns);
  EXPECT_GE(t.busy_ns, 5 * (1 + 2 + 3) * 1000000);  // each thread slept inside the job
  EXPECT_LE(t.busy_ns, 3 * t.wall_ns);
  RegionTotals d = t;
  d -= t;
  EXPECT_EQ(d.regions, 0);
  EXPECT_EQ(d.wall_ns, 0);
  reset_region_totals();
  EXPECT_EQ(region_totals().wall_ns, 0);
}

}  // namespace
}  // namespace fabula
