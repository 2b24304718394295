// Model loading through the family registry, and the family-independent part of Session.
#include "model/model.h"

#include <algorithm>

#include "base/log.h"
#include "model/available_memory.h"
#include "model/family.h"

namespace fabula {

bool read_weights_into_memory(uint64_t file_bytes, uint64_t available) {
  return file_bytes + file_bytes / 10 + (uint64_t{1} << 30) <= available;
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelLoadOptions& options) {
  // kAuto maps first (only the header is read), for the size of every shard, and reads the file if it fits.
  FABULA_ASSIGN(GgufFile file,
                GgufFile::open(path, GgufOpenOptions{.read_into_memory = options.weights == WeightMemory::kRead}));
  if (options.weights == WeightMemory::kAuto) {
    const std::optional<uint64_t> available = available_memory();
    const bool read = available.has_value() && read_weights_into_memory(file.total_file_bytes(), *available);
    FABULA_LOG_DEBUG("{}: {:.2f} GB of weights, {:.2f} GB available: {}", path, file.total_file_bytes() / 1e9,
                     available.value_or(0) / 1e9, read ? "reading them into memory" : "mapping them");
    if (read) {  // FABULA_ASSIGN is several statements
      FABULA_ASSIGN(file, GgufFile::open(path, GgufOpenOptions{.read_into_memory = true}));
    }
  }
  if (!file.file().is_copy()) {
    file.advise_hugepages();
    file.prefault();
  }
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

Batch::Batch(const Model& model, BatchOptions options, ThreadPool* pool)
    : model_(&model), options_(options), s_(nullptr) {
  options_.n_batch = std::max<int64_t>(1, options_.n_batch);
  s_ = model.new_batch(options_, pool);
}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

Status Batch::decode(std::span<const BatchItem> items) {
  // Checked here, before any step, so that a bad item leaves every session as it was.
  std::vector<BatchItem> work;
  work.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    if (item.session == nullptr) return make_error(ErrorCode::kInvalidArgument, "batch item {}: no session", i);
    if (&item.session->model() != model_)
      return make_error(ErrorCode::kInvalidArgument, "batch item {}: the session belongs to another model", i);
    for (const BatchItem& other : work)
      if (other.session == item.session)
        return make_error(ErrorCode::kInvalidArgument, "batch item {}: the session appears twice in one batch", i);
    if (item.tokens.empty()) continue;
    const Session& s = *item.session;
    const int64_t n = static_cast<int64_t>(item.tokens.size());
    if (s.n_past() + n > s.n_ctx())
      return make_error(ErrorCode::kOutOfRange, "batch item {}: {} + {} tokens exceed the context of {}", i, s.n_past(),
                        n, s.n_ctx());
    for (size_t t = 0; t < item.tokens.size(); ++t) {
      if (item.tokens[t] < 0 || item.tokens[t] >= model_->n_vocab())
        return make_error(ErrorCode::kInvalidArgument, "batch item {}: token {} at index {} is outside the vocabulary [0, {})",
                          i, item.tokens[t], t, model_->n_vocab());
    }
    work.push_back(item);
  }
  if (work.empty()) return ok_status();
  if (work.size() == 1) return work[0].session->decode(work[0].tokens, work[0].mode);
  for (size_t i = 0; i < work.size(); ++i) {
    if (work[i].session->state().hook)
      return make_error(ErrorCode::kInvalidArgument, "batch item {}: a session with a hidden hook decodes alone", i);
  }
  return s_->decode(work);
}

}  // namespace fabula
