// Narrator backends behind engine::Narrator: the in-process model (local_narrator.h) and a remote llama-server.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "engine/narrator.h"

namespace fabula::backend {

struct NarratorSpec {
  std::string model;   // GGUF path; empty: models/fabula-demo-v1.gguf found near the binary
  std::string server;  // llama-server-compatible base URL (http://host:port); wins over model
};

Result<std::unique_ptr<engine::Narrator>> make_narrator(const NarratorSpec& spec);

// Streams POST {url}/completion (llama-server API: prompt, stream=true, temperature, top_p, top_k, min_p,
// repeat_penalty, n_predict, seed, stop) and forwards each SSE `data:` chunk's "content".
class RemoteNarrator : public engine::Narrator {
 public:
  explicit RemoteNarrator(std::string base_url) : url_(std::move(base_url)) {}
  Result<engine::NarratorResult> write(const engine::NarratorRequest& request, const engine::TextCallback& on_text) override;
  std::string describe() const override { return "server: " + url_; }

 private:
  std::string url_;
};

}  // namespace fabula::backend
