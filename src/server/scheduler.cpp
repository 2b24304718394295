// Slot scheduler: FIFO queue, slot choice by longest cached prefix, continuous batching on one thread: every
// forward step decodes the next token of each generating slot together with chunks of new prompts.
#include "server/scheduler.h"

#include <algorithm>

#include "base/log.h"
#include "model/step_profile.h"

namespace fabula::server {

bool Task::wait(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (events_.empty() && !result_) cv_.wait_for(lk, timeout, [&] { return !events_.empty() || result_.has_value(); });
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return result_.has_value();
}

Result<GenerationResult> Task::wait_result() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return result_.has_value(); });
  return std::move(*result_);
}

void Task::push(const GeneratedToken& token) {
  TokenEvent e;
  e.id = token.id;
  e.content.assign(token.content);
  e.reasoning.assign(token.reasoning);
  e.logprob = token.logprob;
  e.top.assign(token.top.begin(), token.top.end());
  e.eog = token.eog;
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void Task::finish(Result<GenerationResult> result, int slot) {
  slot_.store(slot);
  {
    std::lock_guard lk(mu_);
    result_.emplace(std::move(result));
  }
  cv_.notify_all();
}

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options)
    : options_(options) {
  if (options_.n_slots < 1) options_.n_slots = 1;
  pool_ = std::make_unique<ThreadPool>(options_.n_threads);
  if (options_.n_ubatch <= 0) {
    options_.n_ubatch = options_.n_slots == 1 ? SchedulerOptions::kOneSlotUbatch : SchedulerOptions::kSharedUbatch;
    if (options_.n_batch > 0) options_.n_ubatch = std::min(options_.n_ubatch, options_.n_batch);  // a chunk fits a step
  }
  if (options_.n_batch <= 0) options_.n_batch = options_.n_ubatch + options_.n_slots;
  SessionOptions so;
  so.n_ctx = options_.n_ctx;
  so.n_threads = options_.n_threads;
  so.n_ubatch = options_.n_ubatch;
  so.cache_type = options_.cache_type;
  batch_ = std::make_unique<Batch>(model, BatchOptions{options_.n_batch, options_.n_threads}, pool_.get());
  for (int i = 0; i < options_.n_slots; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->session = std::make_unique<Session>(model, so, pool_.get());
    slot->gen = std::make_unique<Generator>(tokenizer, *slot->session);
    slot->gen->set_deferred(true);  // step() puts every slot's ids into one forward pass
    slots_.push_back(std::move(slot));
  }
  metrics_.n_slots = options_.n_slots;
  metrics_.n_ctx = options_.n_ctx;
  // -v: one debug line per step with its phases (the step profile's timers cost a clock read per phase).
  log_steps_ = log_level() <= LogLevel::kDebug;
  if (log_steps_) StepProfile::set_enabled(true);
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::submit(std::shared_ptr<Task> task) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(task));
    metrics_.requests_deferred = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard lk(mu_);
  SchedulerMetrics m = metrics_;
  for (const auto& s : slots_) m.max_cached_tokens = std::max(m.max_cached_tokens, s->n_cached.load());
  return m;
}

std::vector<SlotInfo> Scheduler::slots() const {
  std::lock_guard lk(mu_);
  std::vector<SlotInfo> out;
  for (size_t i = 0; i < slots_.size(); ++i)
    out.push_back(SlotInfo{static_cast<int>(i), slots_[i]->task != nullptr, slots_[i]->n_cached.load()});
  return out;
}

void Scheduler::admit(std::vector<int>& started) {
  const auto now = std::chrono::steady_clock::now();
  while (!queue_.empty()) {
    const int i = pick_slot(*queue_.front());
    if (i < 0) break;
    const double wait = std::chrono::duration<double>(now - queue_.front()->submitted).count();
    metrics_.queue_wait_seconds_total += wait;
    metrics_.queue_wait_seconds_max = std::max(metrics_.queue_wait_seconds_max, wait);
    metrics_.queue_waits_total++;
    slots_[i]->task = std::move(queue_.front());
    slots_[i]->last_used = ++clock_;
    queue_.pop_front();
    metrics_.requests_processing++;
    started.push_back(i);
  }
}

int Scheduler::pick_slot(const Task& task) const {
  if (task.id_slot >= 0 && task.id_slot < static_cast<int>(slots_.size()) && !slots_[task.id_slot]->task)
    return task.id_slot;
  int best = -1;
  size_t best_prefix = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = *slots_[i];
    if (s.task) continue;
    const size_t prefix = task.params.cache_prompt ? s.gen->common_prefix(task.prompt) : 0;
    // Longest cached prefix wins; ties go to the least recently used slot (keeps other caches warm).
    if (best < 0 || prefix > best_prefix || (prefix == best_prefix && s.last_used < slots_[best]->last_used)) {
      best = static_cast<int>(i);
      best_prefix = prefix;
    }
  }
  return best;
}

void Scheduler::finish(Slot& slot, int index, Result<GenerationResult> result) {
  std::shared_ptr<Task> task;
  {
    std::lock_guard lk(mu_);
    task = std::move(slot.task);
    slot.task.reset();
    metrics_.requests_processing--;
    metrics_.requests_total++;
    if (!result.ok()) {
      metrics_.requests_failed++;
    } else {
      const GenerationResult& r = *result;
      if (r.stop_type == StopType::kCancelled) metrics_.requests_cancelled++;
      metrics_.prompt_tokens_total += static_cast<uint64_t>(r.timings.prompt_n);
      metrics_.prompt_seconds_total += r.timings.prompt_ms / 1e3;
      metrics_.tokens_predicted_total += static_cast<uint64_t>(r.timings.predicted_n);
      metrics_.tokens_predicted_seconds_total += r.timings.predicted_ms / 1e3;
      metrics_.cache_tokens_total += static_cast<uint64_t>(r.timings.cache_n);
    }
  }
  slot.n_cached.store(static_cast<int64_t>(slot.gen->cached().size()));
  task->finish(std::move(result), index);
}

void Scheduler::run() {
  std::vector<int> started;
  for (;;) {
    started.clear();
    {
      std::unique_lock lk(mu_);
      auto has_work = [&] {
        if (stop_) return true;
        for (const auto& s : slots_)
          if (s->task) return true;
        if (queue_.empty()) return false;
        for (const auto& s : slots_)
          if (!s->task) return true;
        return false;
      };
      cv_.wait(lk, has_work);
      if (stop_) break;
      const bool was_idle = std::none_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->task != nullptr; });
      admit(started);
      // Requests sent together (players starting at once) reach the queue up to a millisecond apart (0.1-0.5 ms
      // for 4 streams from one client), and a prompt step started on the first alone holds the cores for its whole
      // chunk while the others wait, then holds the first one's next token back for theirs (a 1.1-1.7 s gap on the
      // 26B). When nothing was generating, a moment's wait lets them share one step; nobody's tokens wait for it.
      if (was_idle && !started.empty() && options_.gather_ms > 0) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.gather_ms);
        auto free_slot = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return !s->task; }); };
        while (!stop_ && free_slot() && cv_.wait_until(lk, until, [&] { return stop_ || !queue_.empty(); }))
          admit(started);
      }
      metrics_.requests_deferred = static_cast<int>(queue_.size());
    }
    for (int i : started) {
      Slot& s = *slots_[i];
      if (s.task->cancelled) {
        GenerationResult r;
        r.stop_type = StopType::kCancelled;
        finish(s, i, std::move(r));
        continue;
      }
      Status st = s.gen->begin(s.task->prompt, s.task->params);  // deferred: queues the prompt, decodes nothing
      if (!st.ok()) finish(s, i, st.take_error());
    }
    step();
  }
  // Shutting down: nothing more will run.
  std::deque<std::shared_ptr<Task>> left;
  {
    std::lock_guard lk(mu_);
    left.swap(queue_);
  }
  for (auto& t : left) t->finish(make_error(ErrorCode::kCancelled, "server is shutting down"), -1);
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i]->task) slots_[i]->task->finish(make_error(ErrorCode::kCancelled, "server is shutting down"), -1);
}

void Scheduler::step() {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t_begin = Clock::now();
  // Cancelled tasks (the client went away) give their slot back before the step is built.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = *slots_[i];
    if (!s.task || !s.task->cancelled.load()) continue;
    GenerationResult r = std::move(s.gen->result());
    r.stop_type = StopType::kCancelled;
    finish(s, static_cast<int>(i), std::move(r));
  }

  // Build the step: every generating slot's ids first (usually one each), then prompt chunks, oldest first, from
  // what the budget leaves; no slot gives more than n_ubatch ids (its sliding ring's headroom).
  items_.clear();
  item_slots_.clear();
  int64_t budget = options_.n_batch;
  std::vector<int>& prompts = prompt_slots_;
  prompts.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = *slots_[i];
    if (!s.task || s.gen->pending().empty()) continue;
    if (s.gen->in_prompt()) {
      prompts.push_back(static_cast<int>(i));
      continue;
    }
    const std::span<const int32_t> ids = s.gen->pending();
    const int64_t n = std::min<int64_t>({static_cast<int64_t>(ids.size()), budget, options_.n_ubatch});
    if (n <= 0) continue;
    items_.push_back({s.session.get(), ids.first(static_cast<size_t>(n)),
                      n == static_cast<int64_t>(ids.size()) ? LogitsMode::kLast : LogitsMode::kNone});
    item_slots_.push_back(static_cast<int>(i));
    budget -= n;
  }
  const int64_t after_generating = budget;
  std::sort(prompts.begin(), prompts.end(), [&](int a, int b) { return slots_[a]->last_used < slots_[b]->last_used; });
  for (int i : prompts) {
    Slot& s = *slots_[i];
    const std::span<const int32_t> ids = s.gen->pending();
    // A prompt goes in the chunks it would take alone (n_ubatch each), so its results do not depend on who else
    // is running (batch invariance): a chunk that does not fit what older prompts left waits for a later step;
    // one that would not fit even beside the generating slots alone takes what is left.
    int64_t n = std::min<int64_t>(static_cast<int64_t>(ids.size()), options_.n_ubatch);
    if (n > budget) {
      if (n <= after_generating) continue;
      n = budget;
    }
    if (n <= 0) break;
    items_.push_back({s.session.get(), ids.first(static_cast<size_t>(n)),
                      n == static_cast<int64_t>(ids.size()) ? LogitsMode::kLast : LogitsMode::kNone});
    item_slots_.push_back(i);
    budget -= n;
  }

  const Clock::time_point t_built = Clock::now();
  if (log_steps_) StepProfile::reset();
  if (!items_.empty()) {
    Status st = batch_->decode(items_);
    if (!st.ok()) {
      // The sessions' state is unknown: every slot of the step starts over and its request fails.
      FABULA_LOG_WARN("scheduler: batched decode failed: {}", st.error().message);
      for (int i : item_slots_) {
        slots_[i]->gen->clear();
        finish(*slots_[i], i, st.error());
      }
      return;
    }
    {
      std::lock_guard lk(mu_);
      metrics_.steps_total++;
      metrics_.step_sequences_total += items_.size();
      metrics_.step_tokens_total += static_cast<uint64_t>(options_.n_batch - budget);
      metrics_.last_batch_size = static_cast<int>(items_.size());
      metrics_.last_step_tokens = options_.n_batch - budget;
    }
    for (size_t k = 0; k < items_.size(); ++k) slots_[item_slots_[k]]->gen->decoded(items_[k].tokens.size());
  }
  const Clock::time_point t_decoded = Clock::now();

  // Sample: each slot whose ids are all decoded picks its next token (queued for the next step) or ends. A
  // phrase-ban rewind truncates only its own session and queues its own ids again.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = *slots_[i];
    if (!s.task || !s.gen->pending().empty()) continue;
    Task* task = s.task.get();
    if (!s.gen->done()) {
      Status st = s.gen->step([task](const GeneratedToken& t) {
        if (task->want_events) task->push(t);
        return !task->cancelled.load();
      });
      if (!st.ok()) {
        finish(s, static_cast<int>(i), st.take_error());
        continue;
      }
    }
    if (s.gen->done() && s.gen->pending().empty()) finish(s, static_cast<int>(i), std::move(s.gen->result()));
  }
  if (log_steps_ && !items_.empty()) log_step(t_begin, t_built, t_decoded, Clock::now());
  last_step_end_ = Clock::now();
}

void Scheduler::log_step(std::chrono::steady_clock::time_point begin, std::chrono::steady_clock::time_point built,
                         std::chrono::steady_clock::time_point decoded, std::chrono::steady_clock::time_point end) {
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  int64_t tokens = 0;
  for (const BatchItem& item : items_) tokens += static_cast<int64_t>(item.tokens.size());
  const auto phases = StepProfile::totals();
  std::string split;
  for (size_t i = 0; i < phases.size(); ++i)
    split += fmt::format("{}{} {:.1f}", i == 0 ? "" : ", ", step_phase_name(static_cast<StepPhase>(i)),
                         static_cast<double>(phases[i]) / 1e6);
  const int64_t layers = StepProfile::expert_layers_total();
  FABULA_LOG_DEBUG("step: {} sequences, {} tokens, {:.1f} experts/layer; before {:.1f} ms, build {:.1f}, decode {:.1f}, "
                   "sample {:.1f} ({})",
                   items_.size(), tokens, layers > 0 ? static_cast<double>(StepProfile::experts_total()) / layers : 0.0,
                   last_step_end_ == std::chrono::steady_clock::time_point{} ? 0.0 : ms(last_step_end_, begin),
                   ms(begin, built), ms(built, decoded), ms(decoded, end), split);
}

}  // namespace fabula::server
