// LocalNarrator: the in-process model (a LoadedModel + Session) streaming a beat through the shared Generator.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backend/generator.h"
#include "backend/loaded_model.h"
#include "engine/narrator.h"
#include "sample/constrained.h"

namespace fabula::backend {

struct LocalNarratorOptions {
  int64_t n_ctx = 4096;
  int n_threads = 0;  // <= 0: physical cores
  ModelLoadOptions load;
  KvCacheTypes cache_type;
};

// One beat request as generation parameters on a loaded model: the request's sampling and seed, its stops plus the
// model's end-of-turn texts, its phrase bans, and with sampling.constrained the protocol constraint over
// request.manifest and request.cast (fail closed: an error, never an unconstrained beat). `vocab` holds the
// constraint's vocabulary tables, built on the first constrained beat and reused.
Result<GenerationParams> beat_generation_params(const engine::NarratorRequest& request, const LoadedModel& loaded,
                                                std::shared_ptr<const ConstraintVocab>& vocab);

class LocalNarrator : public engine::Narrator {
 public:
  // kUnsupported when the GGUF's chat template is not one fabula renders (a beat needs the model's own turns).
  static Result<std::unique_ptr<LocalNarrator>> load(const std::string& gguf_path, LocalNarratorOptions options = {});

  // The request's messages go through the model's chat template; the model's end-of-generation tokens end the
  // beat. The KV cache keeps the longest common prefix between beats, so the system turn is decoded once.
  // sampling.constrained masks to protocol-valid beats (request.manifest and request.cast; an error without a
  // manifest); sampling.banned_phrases rewinds and resamples.
  Result<engine::NarratorResult> write(const engine::NarratorRequest& request, const engine::TextCallback& on_text) override;
  std::string describe() const override { return "local: " + path_; }

 private:
  LocalNarrator() = default;
  std::string path_;
  LoadedModel loaded_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Generator> generator_;
  std::shared_ptr<const ConstraintVocab> vocab_;  // built on the first constrained beat
  std::mutex mu_;  // one beat at a time
};

}  // namespace fabula::backend
