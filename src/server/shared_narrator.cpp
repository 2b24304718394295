// SharedNarrator: engine::Narrator for each player over one Scheduler (tasks pinned to the player's slot).
#include "server/shared_narrator.h"

#include <filesystem>

#include "backend/local_narrator.h"

namespace fabula::server {

class SharedNarrator::PlayerNarrator final : public engine::Narrator {
 public:
  PlayerNarrator(SharedNarrator& shared, int slot) : shared_(shared), slot_(slot) {}

  Result<engine::NarratorResult> write(const engine::NarratorRequest& request,
                                       const engine::TextCallback& on_text) override {
    auto task = std::make_shared<Task>();
    FABULA_ASSIGN(task->prompt, shared_.loaded_.encode_chat(request.messages));
    {
      std::lock_guard<std::mutex> lock(shared_.vocab_mu_);
      FABULA_ASSIGN(task->params, backend::beat_generation_params(request, shared_.loaded_, shared_.vocab_));
    }
    task->id_slot = slot_;
    task->want_events = true;
    shared_.scheduler_->submit(task);

    engine::NarratorResult out;
    std::vector<TokenEvent> events;
    bool finished = false;
    while (!finished) {
      events.clear();
      finished = task->wait(events, std::chrono::milliseconds(200));
      for (const TokenEvent& e : events) {
        ++out.tokens;
        if (e.content.empty() || task->cancelled) continue;
        out.text += e.content;
        if (!on_text(e.content)) task->cancelled = true;  // the scheduler frees the slot at its next step
      }
    }
    auto gen = task->wait_result();
    if (!gen) return gen.take_error();
    out.cancelled = gen->stop_type == StopType::kCancelled;
    out.stop_reason = std::string(stop_type_name(gen->stop_type));
    out.backtracks = gen->timings.backtracks;
    return out;
  }

  std::string describe() const override {
    return fmt::format("local: {} (shared by {} players, slot {})", shared_.name_, shared_.scheduler_->n_slots(), slot_);
  }

 private:
  SharedNarrator& shared_;
  int slot_;
};

Result<std::unique_ptr<SharedNarrator>> SharedNarrator::load(const std::string& gguf_path,
                                                             SharedNarratorOptions options) {
  std::unique_ptr<SharedNarrator> n(new SharedNarrator());
  n->name_ = std::filesystem::path(gguf_path).filename().string();
  FABULA_ASSIGN(n->loaded_, backend::load_model(gguf_path, {.model = options.load}));
  if (!n->loaded_.chat_template_error.empty())
    return make_error(ErrorCode::kUnsupported, "{} (the narrator renders beats through the model's chat template)",
                      n->loaded_.chat_template_error);
  SchedulerOptions so;
  so.n_slots = std::max(1, options.players);
  so.n_ctx = options.n_ctx;
  so.n_threads = options.n_threads;
  so.cache_type = options.cache_type;
  n->scheduler_ = std::make_unique<Scheduler>(*n->loaded_.model, n->loaded_.tokenizer, so);
  return n;
}

std::unique_ptr<engine::Narrator> SharedNarrator::narrator_for(int player) {
  return std::make_unique<PlayerNarrator>(*this, player % scheduler_->n_slots());
}

}  // namespace fabula::server
