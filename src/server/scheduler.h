// Slots and queue: N Sessions over one Model, one inference thread that runs continuous batching: each forward
// step holds the next token of every generating slot plus a chunk of waiting prompts, up to n_batch tokens.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/generator.h"
#include "base/result.h"
#include "model/model.h"
#include "tensor/thread_pool.h"
#include "text/tokenizer.h"

namespace fabula::server {

// A copy of one GeneratedToken, handed from the inference thread to the HTTP thread.
struct TokenEvent {
  int32_t id = -1;
  std::string content;
  std::string reasoning;
  float logprob = 0;
  std::vector<TokenProb> top;
  bool eog = false;
};

// One request in flight. The HTTP thread submits it and waits; the inference thread fills it.
class Task {
 public:
  std::vector<int32_t> prompt;
  GenerationParams params;
  int id_slot = -1;          // preferred slot (-1: the one with the longest cached prefix)
  bool want_events = false;  // streaming: every token is queued as a TokenEvent
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();  // for the queue wait

  // Consumer: moves queued events into `out` (waiting up to `timeout` if none); true once finished.
  bool wait(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout);
  // Consumer: blocks until finished and returns the outcome.
  Result<GenerationResult> wait_result();
  int slot() const { return slot_.load(); }

  // Producer (inference thread).
  void push(const GeneratedToken& token);
  void finish(Result<GenerationResult> result, int slot);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::optional<Result<GenerationResult>> result_;
  std::atomic<int> slot_{-1};
};

struct SchedulerOptions {
  // Default chunk sizes, measured with a 1536-token prompt on the synth 26B-A4B Q4_K_M (2 threads, one window):
  // one step of 1536 ran at 96.4 t/s (15.9 s), chunks of 512 at 81.2-81.6 t/s (5.4-7.3 s a step), chunks of 256
  // at 69.4-75.1 t/s (each chunk reads all the experts again). One slot keeps its prompt in one step, as
  // `fabula run` and `play` do; with several, 512 keeps 85% of that speed while a new prompt holds the others back
  // 5-7 s a chunk instead of 16.
  static constexpr int64_t kOneSlotUbatch = 1536;
  static constexpr int64_t kSharedUbatch = 512;
  int n_slots = 1;
  int64_t n_ctx = 4096;
  int n_threads = 0;      // <= 0: physical cores
  // Tokens per forward step, all slots together (a prompt is chunked to what is left). <= 0: n_ubatch plus one per
  // slot, so a whole chunk fits beside every generating slot's next token.
  int64_t n_batch = 0;
  // Most tokens of one slot in one step (its sliding-window ring holds this much extra). <= 0: kOneSlotUbatch with
  // one slot, kSharedUbatch with several (a prompt chunk holds every other slot back for its whole step), at most
  // a given n_batch.
  int64_t n_ubatch = 0;
  KvCacheTypes cache_type{};  // every slot's KV cache
  // When no slot is generating, how long the first new request waits for others sent with it, so their prompts
  // share a forward step (0: start at once).
  int gather_ms = 3;
};

// Totals for /metrics (monotonic counters plus the current queue state).
struct SchedulerMetrics {
  uint64_t prompt_tokens_total = 0;    // prompt tokens decoded
  double prompt_seconds_total = 0;
  uint64_t tokens_predicted_total = 0;
  double tokens_predicted_seconds_total = 0;
  uint64_t cache_tokens_total = 0;     // prompt tokens reused from a slot's cache
  uint64_t requests_total = 0;         // finished tasks
  uint64_t requests_cancelled = 0;
  uint64_t requests_failed = 0;
  int requests_processing = 0;         // tasks holding a slot
  int requests_deferred = 0;           // tasks waiting for a slot
  int n_slots = 0;
  int64_t n_ctx = 0;
  int64_t max_cached_tokens = 0;       // largest slot cache (tokens)
  // Continuous batching: forward steps, the sequences and tokens they held, and the last step's batch.
  uint64_t steps_total = 0;
  uint64_t step_sequences_total = 0;
  uint64_t step_tokens_total = 0;
  int last_batch_size = 0;
  int64_t last_step_tokens = 0;
  double queue_wait_seconds_total = 0;  // submit to slot, summed over the tasks that got a slot
  uint64_t queue_waits_total = 0;
  double queue_wait_seconds_max = 0;
};

struct SlotInfo {
  int id = 0;
  bool busy = false;
  int64_t n_cached = 0;
};

class Scheduler {
 public:
  Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options);
  ~Scheduler();  // stops the thread; queued tasks finish with kCancelled
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void submit(std::shared_ptr<Task> task);
  SchedulerMetrics metrics() const;
  std::vector<SlotInfo> slots() const;
  int64_t n_ctx() const { return options_.n_ctx; }
  int n_slots() const { return options_.n_slots; }
  int64_t n_batch() const { return options_.n_batch; }
  int64_t n_ubatch() const { return options_.n_ubatch; }

 private:
  struct Slot {
    std::unique_ptr<Session> session;
    std::unique_ptr<Generator> gen;
    std::shared_ptr<Task> task;
    uint64_t last_used = 0;  // admission clock: prompts are chunked oldest first
    std::atomic<int64_t> n_cached{0};
  };
  void run();
  int pick_slot(const Task& task) const;  // a free slot, or -1 (caller holds mu_)
  void admit(std::vector<int>& started);   // queued tasks into free slots, oldest first (caller holds mu_)
  void finish(Slot& slot, int index, Result<GenerationResult> result);
  // One forward step over the pending ids of every active slot (generating slots first, then prompt chunks in
  // admission order, up to n_batch tokens); then every slot with nothing pending samples its next token.
  void step();
  // -v: the step's sequences, tokens, distinct experts per layer and where its time went (debug log).
  void log_step(std::chrono::steady_clock::time_point begin, std::chrono::steady_clock::time_point built,
                std::chrono::steady_clock::time_point decoded, std::chrono::steady_clock::time_point end);

  SchedulerOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Batch> batch_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<BatchItem> items_;  // the step being built, and the slot of each item
  std::vector<int> item_slots_;
  std::vector<int> prompt_slots_;  // slots still in their prompt, oldest first
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Task>> queue_;
  SchedulerMetrics metrics_;
  uint64_t clock_ = 0;
  bool log_steps_ = false;
  std::chrono::steady_clock::time_point last_step_end_{};  // -v: the time between steps
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace fabula::server
