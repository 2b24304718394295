// ThreadPool: persistent worker threads (no per-operation thread start) that split index ranges.
#pragma once

#include <cstdint>
#include <memory>

#include "base/function_ref.h"

namespace fabula {

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
