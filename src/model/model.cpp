// Model loading through the family registry, and the family-independent part of Session.
#include "model/model.h"

#include "base/log.h"
#include "model/family.h"

namespace fabula {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelLoadOptions& options) {
  FABULA_ASSIGN(GgufFile file, GgufFile::open(path, GgufOpenOptions{options.no_mmap}));
  file.advise_hugepages();
  if (options.mlock) {
    if (auto locked = file.lock_memory(); !locked.ok()) FABULA_LOG_WARN("--mlock: {}", locked.error().message);
  }
  return from_gguf(std::move(file));
}

Result<std::unique_ptr<Model>> Model::from_gguf(GgufFile file) {
  FABULA_ASSIGN(const ModelFamily* family, model_family_of(file));
  return family->load(std::move(file));
}

Session::Session(const Model& model, SessionOptions options, ThreadPool* pool)
    : model_(&model), s_(model.new_session(options, pool)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::logits() const {
  return {s_->logits.data(), static_cast<size_t>(s_->logits_rows * model_->n_vocab())};
}

std::span<const float> Session::last_logits() const {
  if (s_->logits_rows == 0) return {};
  const size_t V = static_cast<size_t>(model_->n_vocab());
  return {s_->logits.data() + static_cast<size_t>(s_->logits_rows - 1) * V, V};
}

}  // namespace fabula
