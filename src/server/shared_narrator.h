// One in-process narrator model shared by several games (the several-players mode of `fabula play`): every game's
// beats go through one Scheduler, so beats written at the same time share each forward step (continuous batching).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backend/loaded_model.h"
#include "engine/narrator.h"
#include "sample/constrained.h"
#include "server/scheduler.h"

namespace fabula::server {

struct SharedNarratorOptions {
  int players = 2;        // slots: one per player, so each player's prompt prefix stays in its own KV cache
  int64_t n_ctx = 4096;   // per player
  int n_threads = 0;      // <= 0: physical cores
  ModelLoadOptions load;
  KvCacheTypes cache_type;
};

class SharedNarrator {
 public:
  // kUnsupported when the GGUF's chat template is not one fabula renders (as LocalNarrator).
  static Result<std::unique_ptr<SharedNarrator>> load(const std::string& gguf_path, SharedNarratorOptions options);

  // The narrator of player `player` (0-based): its beats run in slot player % players. The SharedNarrator must
  // outlive it. A cancelled beat (on_text returned false) gives its slot back at the next step.
  std::unique_ptr<engine::Narrator> narrator_for(int player);
  Scheduler& scheduler() { return *scheduler_; }

 private:
  class PlayerNarrator;
  SharedNarrator() = default;
  std::string name_;
  backend::LoadedModel loaded_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mutex vocab_mu_;
  std::shared_ptr<const ConstraintVocab> vocab_;  // built on the first constrained beat, then shared
};

}  // namespace fabula::server
