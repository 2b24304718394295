// RemoteNarrator: engine::Narrator over HTTP — llama-server /completion or an OpenAI-compatible chat endpoint (SSE).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "engine/narrator.h"
#include "text/chat_template.h"

namespace fabula::backend {

enum class RemoteApi {
  kAuto,        // GET {url}/props answers with a chat template fabula renders: kCompletion; else kChat
  kCompletion,  // POST {url}/completion, prompt = the messages rendered through the server's /props chat template
  kChat,        // POST {url}/v1/chat/completions (or {url}/chat/completions when url ends in /v1), messages
};

struct RemoteOptions {
  std::string url;      // http://host:port[/prefix]
  std::string api_key;  // sent as Authorization: Bearer
  RemoteApi api = RemoteApi::kAuto;
  std::string model;    // chat "model" field ("" : "default")
  int max_retries = 3;  // connect errors and 5xx before any text arrived
  int backoff_ms = 200; // doubled per retry
  int connect_timeout_s = 5;
  int read_timeout_s = 600;
};

class RemoteNarrator : public engine::Narrator {
 public:
  explicit RemoteNarrator(std::string base_url);
  explicit RemoteNarrator(RemoteOptions options);
  Result<engine::NarratorResult> write(const engine::NarratorRequest& request, const engine::TextCallback& on_text) override;
  std::string describe() const override;

  // The API in use (kAuto is resolved on the first write).
  RemoteApi api() const { return options_.api; }

 private:
  // Picks the API (kAuto) and, for kCompletion, reads the server's chat template and eos token from /props.
  Status resolve_api();
  RemoteOptions options_;
  std::optional<ChatTemplate> template_;  // the server's (kCompletion)
  std::vector<std::string> model_stops_;  // the template's end-of-turn marker and the server's eos token
};

}  // namespace fabula::backend
