// ConnectionPool: cpp-httplib's task queue as one worker thread per open connection, grown on demand up to a cap.
//
// cpp-httplib serves each connection on a thread of its task queue; its stock ThreadPool has a fixed size, so a
// few slow clients holding threads shut everyone else out. Here a connection never waits for a thread: a worker is
// started when none is idle, up to `max_workers` (the server's connection cap). Past the cap the connection is run
// on a single overflow thread, where on_overflow_thread() is true and the server answers 503 and closes it at once.
// Workers idle for `idle_exit` leave again, so the pool shrinks back after a burst.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace fabula::server {

class ConnectionPool : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(size_t max_workers, std::chrono::milliseconds idle_exit = std::chrono::seconds(30));
  ~ConnectionPool() override;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void enqueue(std::function<void()> fn) override;
  // Finishes the queued jobs, then joins every thread.
  void shutdown() override;

  // True while a job runs on the overflow thread (the connection cap was reached when it arrived).
  static bool on_overflow_thread();
  size_t workers() const;

 private:
  void worker_loop();
  void overflow_loop();
  void reap_locked();

  const size_t max_workers_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable overflow_cv_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> overflow_jobs_;
  size_t idle_ = 0;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::map<std::thread::id, std::thread> workers_;
  std::vector<std::thread::id> retired_;  // left after idling; joined by the next enqueue or shutdown
  std::thread overflow_;
};

}  // namespace fabula::server
