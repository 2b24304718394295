// make_narrator: picks the backend for `fabula play` from --server / --model.
#include "backend/narrators.h"

#include "protocol/manifest.h"

namespace fabula::backend {

Result<std::unique_ptr<engine::Narrator>> make_local_narrator(const std::string& model_path,
                                                               const ModelLoadOptions& load,
                                                               KvCacheTypes cache_type);  // local_narrator.cpp

Result<std::string> narrator_model_path(const NarratorSpec& spec) {
  if (!spec.model.empty()) return spec.model;
  auto found = protocol::find_in_repo("models/fabula-demo-v1.gguf");
  if (!found) return make_error(ErrorCode::kNotFound, "no --model given and models/fabula-demo-v1.gguf was not found");
  return *found;
}

Result<std::unique_ptr<engine::Narrator>> make_narrator(const NarratorSpec& spec) {
  if (!spec.server.empty()) return std::unique_ptr<engine::Narrator>(std::make_unique<RemoteNarrator>(spec.server));
  FABULA_ASSIGN(std::string model, narrator_model_path(spec));
  return make_local_narrator(model, spec.load, spec.cache_type);
}

Result<std::unique_ptr<engine::Narrator>> make_player_narrator(NarratorSpec spec, const std::vector<std::string>& servers,
                                                               int player) {
  if (!servers.empty()) spec.server = servers[static_cast<size_t>(player) % servers.size()];
  return make_narrator(spec);
}

}  // namespace fabula::backend
