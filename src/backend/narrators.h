// Narrator backends behind engine::Narrator: the in-process model (local_narrator.h) and a remote llama-server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "backend/remote_narrator.h"
#include "engine/narrator.h"
#include "model/model.h"

namespace fabula::backend {

struct NarratorSpec {
  std::string model;   // GGUF path; empty: models/fabula-demo-v1.gguf found near the binary
  std::string server;  // llama-server-compatible base URL (http://host:port); wins over model
  ModelLoadOptions load;  // --no-mmap / --mlock for the local model
  KvCacheTypes cache_type;  // the local model's KV cache (--cache-type-k / --cache-type-v)
};

Result<std::unique_ptr<engine::Narrator>> make_narrator(const NarratorSpec& spec);
// Several players over remote servers: player k narrates through servers[k % n], always the same one, so that the
// server's prompt cache keeps that player's story warm (sessions pin to a backend). Empty servers: make_narrator.
Result<std::unique_ptr<engine::Narrator>> make_player_narrator(NarratorSpec spec, const std::vector<std::string>& servers,
                                                               int player);
// The local model make_narrator loads: spec.model, else the demo narrator found near the binary.
Result<std::string> narrator_model_path(const NarratorSpec& spec);

}  // namespace fabula::backend
