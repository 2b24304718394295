// ConnectionPool: elastic worker threads for cpp-httplib, with an overflow thread past the connection cap.
#include "server/connection_pool.h"

namespace fabula::server {

namespace {
thread_local bool t_overflow = false;
}  // namespace

ConnectionPool::ConnectionPool(size_t max_workers, std::chrono::milliseconds idle_exit)
    : max_workers_(max_workers > 0 ? max_workers : 1), idle_exit_(idle_exit) {}

ConnectionPool::~ConnectionPool() { shutdown(); }

bool ConnectionPool::on_overflow_thread() { return t_overflow; }

size_t ConnectionPool::workers() const {
  std::lock_guard lk(mu_);
  return workers_.size() - retired_.size();
}

void ConnectionPool::reap_locked() {
  for (const std::thread::id& id : retired_) {
    auto it = workers_.find(id);
    if (it == workers_.end()) continue;
    it->second.join();  // the thread has left its loop; join returns at once
    workers_.erase(it);
  }
  retired_.clear();
}

void ConnectionPool::enqueue(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  reap_locked();
  if (busy_ + jobs_.size() >= max_workers_) {
    overflow_jobs_.push_back(std::move(fn));
    if (!overflow_.joinable()) overflow_ = std::thread([this] { overflow_loop(); });
    overflow_cv_.notify_one();
    return;
  }
  jobs_.push_back(std::move(fn));
  if (idle_ >= jobs_.size()) {
    work_cv_.notify_one();
  } else {
    std::thread t([this] { worker_loop(); });
    const std::thread::id id = t.get_id();
    workers_.emplace(id, std::move(t));
  }
}

void ConnectionPool::worker_loop() {
  std::unique_lock lk(mu_);
  while (true) {
    ++idle_;
    const bool woken = work_cv_.wait_for(lk, idle_exit_, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) {
      if (stopping_) return;
      if (!woken) {
        retired_.push_back(std::this_thread::get_id());
        return;
      }
      continue;
    }
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++busy_;
    lk.unlock();
    job();
    job = nullptr;  // release what the job holds before taking the lock again
    lk.lock();
    --busy_;
  }
}

void ConnectionPool::overflow_loop() {
  t_overflow = true;
  std::unique_lock lk(mu_);
  while (true) {
    overflow_cv_.wait(lk, [this] { return stopping_ || !overflow_jobs_.empty(); });
    if (overflow_jobs_.empty()) return;  // stopping, nothing left
    std::function<void()> job = std::move(overflow_jobs_.front());
    overflow_jobs_.pop_front();
    lk.unlock();
    job();
    job = nullptr;
    lk.lock();
  }
}

void ConnectionPool::shutdown() {
  std::map<std::thread::id, std::thread> workers;
  std::thread overflow;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    work_cv_.notify_all();
    overflow_cv_.notify_all();
  }
  // Workers drain the queue before they leave; join outside the lock they need for that.
  while (true) {
    {
      std::lock_guard lk(mu_);
      workers.swap(workers_);
      retired_.clear();
      if (!overflow.joinable()) overflow = std::move(overflow_);
    }
    if (workers.empty()) break;
    for (auto& [id, t] : workers) t.join();
    workers.clear();
  }
  if (overflow.joinable()) overflow.join();
}

}  // namespace fabula::server
