// ThreadPool: persistent workers woken per job by a generation counter; they spin briefly, then sleep on a
// condition variable, so back-to-back small jobs (decode) avoid futex round trips.
#include "tensor/thread_pool.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/check.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FABULA_CPU_RELAX() _mm_pause()
#else
#define FABULA_CPU_RELAX() std::this_thread::yield()
#endif

namespace fabula {
namespace {

// Physical cores from sysfs (distinct package/core id pairs); logical CPUs if sysfs is unreadable.
int physical_cores() {
  std::set<std::pair<int, int>> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core_file(base + "core_id");
    std::ifstream pkg_file(base + "physical_package_id");
    int core = -1, pkg = -1;
    if (!(core_file >> core) || !(pkg_file >> pkg)) return logical > 0 ? static_cast<int>(logical) : 1;
    cores.insert({pkg, core});
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

// Spin this many pauses before sleeping (~5-50 µs depending on the CPU's pause latency). Longer spins hurt
// badly when threads outnumber free cores, since the spinner holds the core the worker needs.
constexpr int kSpinIterations = 1000;
// While jobs come back to back (a worker's last job came less than this after the one before: a decode step runs
// ~180 products per token with a few µs of serial work between them), a worker spins up to this much longer before
// sleeping; the caller always does when it waits for the workers. A sleeping thread costs each product a futex
// wake-up: on the Zen 4 test VM 5-26 µs per product before the worker started, and about as much again when the
// caller slept waiting for it, ~3 ms per token of the 26B.
constexpr auto kBurstSpin = std::chrono::microseconds(250);

// Spins until ready() (kSpinIterations pauses, then up to kBurstSpin more if `burst`); returns ready().
template <typename Ready>
bool spin_until(Ready ready, bool burst) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (ready()) return true;
    FABULA_CPU_RELAX();
  }
  if (!burst) return ready();
  const auto deadline = std::chrono::steady_clock::now() + kBurstSpin;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      FABULA_CPU_RELAX();
    }
  } while (std::chrono::steady_clock::now() < deadline);
  return ready();
}

std::atomic<bool> g_region_profiling{false};
constexpr size_t kRegionFields = 7;
std::array<std::atomic<int64_t>, kRegionFields> g_region_totals{};  // RegionTotals' fields, in order

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// When one thread was inside one profiled job (own cache line: the threads write them side by side).
struct alignas(64) JobSpan {
  int64_t begin = 0, end = 0;
};

}  // namespace

RegionTotals& RegionTotals::operator-=(const RegionTotals& o) {
  regions -= o.regions;
  wall_ns -= o.wall_ns;
  all_busy_ns -= o.all_busy_ns;
  start_ns -= o.start_ns;
  end_ns -= o.end_ns;
  signal_ns -= o.signal_ns;
  busy_ns -= o.busy_ns;
  return *this;
}

RegionTotals& RegionTotals::operator+=(const RegionTotals& o) {
  regions += o.regions;
  wall_ns += o.wall_ns;
  all_busy_ns += o.all_busy_ns;
  start_ns += o.start_ns;
  end_ns += o.end_ns;
  signal_ns += o.signal_ns;
  busy_ns += o.busy_ns;
  return *this;
}

void set_region_profiling(bool on) { g_region_profiling.store(on, std::memory_order_relaxed); }

void reset_region_totals() {
  for (auto& v : g_region_totals) v.store(0, std::memory_order_relaxed);
}

RegionTotals region_totals() {
  const auto get = [](size_t i) { return g_region_totals[i].load(std::memory_order_relaxed); };
  return {get(0), get(1), get(2), get(3), get(4), get(5), get(6)};
}

struct ThreadPool::Impl {
  int n_threads = 1;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_start;
  std::condition_variable cv_done;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> busy{false};
  const FunctionRef<void(int)>* job = nullptr;
  std::atomic<bool> stop{false};
  bool profiling = false;      // this job records spans (set before its generation bump)
  std::vector<JobSpan> spans;  // per thread, when profiling

  // Adds the region that began at `begin` on the caller and ended now to the totals.
  void add_region(int64_t begin) {
    const int64_t end = now_ns();
    int64_t last_start = begin, first_end = end, last_end = begin, busy = 0;
    for (const JobSpan& s : spans) {
      last_start = std::max(last_start, s.begin);
      first_end = std::min(first_end, s.end);
      last_end = std::max(last_end, s.end);
      busy += s.end - s.begin;
    }
    const int64_t wall = end - begin;
    const int64_t all_busy = std::max<int64_t>(0, first_end - last_start);
    const int64_t start = std::min(wall - all_busy, last_start - begin);
    const int64_t fields[kRegionFields] = {1, wall, all_busy, start, wall - all_busy - start, end - last_end, busy};
    for (size_t i = 0; i < kRegionFields; ++i) g_region_totals[i].fetch_add(fields[i], std::memory_order_relaxed);
  }

  // Thread `index`'s share of a job, its span recorded when profiling.
  void run_job(const FunctionRef<void(int)>& fn, int index) {
    if (!profiling) {
      fn(index);
      return;
    }
    JobSpan& span = spans[static_cast<size_t>(index)];
    span.begin = now_ns();
    fn(index);
    span.end = now_ns();
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    bool burst = false;  // the last job came within kBurstSpin of the one before
    auto done = std::chrono::steady_clock::now();
    for (;;) {
      spin_until([&] { return generation.load(std::memory_order_acquire) != seen; }, burst);
      uint64_t gen = generation.load(std::memory_order_acquire);
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mu);
        cv_start.wait(lock, [&] { return stop.load() || generation.load(std::memory_order_acquire) != seen; });
        if (stop.load()) return;
        gen = generation.load(std::memory_order_acquire);
      }
      seen = gen;
      if (stop.load(std::memory_order_acquire)) return;  // stop is set before its generation bump
      burst = std::chrono::steady_clock::now() - done < kBurstSpin;
      run_job(*job, index);
      done = std::chrono::steady_clock::now();
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu);
        cv_done.notify_one();
      }
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(std::make_unique<Impl>()) {
  impl_->n_threads = n_threads > 0 ? n_threads : physical_cores();
  impl_->spans.resize(static_cast<size_t>(impl_->n_threads));
  for (int i = 1; i < impl_->n_threads; ++i) {
    impl_->workers.emplace_back([this, i] { impl_->worker_loop(i); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop.store(true);
    impl_->generation.fetch_add(1, std::memory_order_acq_rel);
  }
  impl_->cv_start.notify_all();
  for (auto& t : impl_->workers) t.join();
}

int ThreadPool::size() const { return impl_->n_threads; }

void ThreadPool::run_on_all(FunctionRef<void(int thread)> fn) {
  Impl& p = *impl_;
  if (p.n_threads == 1) {
    fn(0);
    return;
  }
  const bool was_busy = p.busy.exchange(true, std::memory_order_acq_rel);
  FABULA_CHECK(!was_busy && "ThreadPool: nested or concurrent run_on_all");
  p.job = &fn;
  p.profiling = g_region_profiling.load(std::memory_order_relaxed);
  const int64_t region_begin = p.profiling ? now_ns() : 0;
  p.pending.store(p.n_threads - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.generation.fetch_add(1, std::memory_order_acq_rel);
  }
  p.cv_start.notify_all();
  p.run_job(fn, 0);
  if (!spin_until([&] { return p.pending.load(std::memory_order_acquire) == 0; }, true)) {
    std::unique_lock<std::mutex> lock(p.mu);
    p.cv_done.wait(lock, [&] { return p.pending.load(std::memory_order_acquire) == 0; });
  }
  if (p.profiling) p.add_region(region_begin);
  p.job = nullptr;
  p.busy.store(false, std::memory_order_release);
}

void ThreadPool::parallel_for(int64_t n, FunctionRef<void(int64_t begin, int64_t end, int thread)> fn) {
  if (n <= 0) return;
  const int nt = impl_->n_threads;
  if (nt == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  run_on_all([&](int thread) {
    const int64_t begin = n * thread / nt;
    const int64_t end = n * (thread + 1) / nt;
    if (begin < end) fn(begin, end, thread);
  });
}

}  // namespace fabula
