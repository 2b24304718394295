// The Gemma 4 family behind the Model / SessionState interface of model/model.h (docs/GEMMA4.md).
#pragma once

#include <memory>

#include "model/gemma4/hparams.h"
#include "model/gemma4/weights.h"
#include "model/model.h"

namespace fabula {

class Gemma4Model final : public Model {
 public:
  const Gemma4HParams& hparams() const { return hp_; }
  const Gemma4Weights& weights() const { return w_; }
  std::unique_ptr<SessionState> new_session(const SessionOptions& options, ThreadPool* pool) const override;
  std::unique_ptr<BatchState> new_batch(const BatchOptions& options, ThreadPool* pool) const override;

 private:
  friend Result<std::unique_ptr<Model>> gemma4_load_model(GgufFile file);
  explicit Gemma4Model(GgufFile file) : Model(std::move(file)) {}
  Gemma4HParams hp_;
  Gemma4Weights w_;
};

// Reads the gemma4.* metadata and binds the weights (the registry's entry for general.architecture = "gemma4").
Result<std::unique_ptr<Model>> gemma4_load_model(GgufFile file);

}  // namespace fabula
