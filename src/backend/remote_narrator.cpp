// RemoteNarrator: llama-server /completion with stream=true, parsed as Server-Sent Events.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "backend/narrators.h"

namespace fabula::backend {

using nlohmann::json;

Result<engine::NarratorResult> RemoteNarrator::write(const engine::NarratorRequest& request,
                                                     const engine::TextCallback& on_text) {
  httplib::Client cli(url_);
  cli.set_read_timeout(600, 0);
  const auto& s = request.sampling;
  json body = {{"prompt", request.prompt}, {"stream", true},           {"temperature", s.temperature},
               {"top_p", s.top_p},         {"top_k", s.top_k},         {"min_p", s.min_p},
               {"repeat_penalty", s.repeat_penalty}, {"n_predict", s.max_tokens}, {"seed", request.seed},
               {"stop", s.stop},           {"cache_prompt", true}};
  engine::NarratorResult result;
  std::string buffer;
  bool stop = false;
  httplib::Request req;
  req.method = "POST";
  req.path = "/completion";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.rfind("data:", 0) != 0) continue;
      json j = json::parse(line.substr(5), nullptr, false);
      if (j.is_discarded() || !j.is_object()) continue;
      std::string piece = j.value("content", "");
      if (!piece.empty()) {
        result.text += piece;
        ++result.tokens;
        if (!on_text(piece)) {
          result.cancelled = true;
          result.stop_reason = "cancelled";
          return false;
        }
      }
      if (j.value("stop", false)) {
        result.stop_reason = j.value("stop_type", "stop");
        stop = true;
      }
    }
    return !stop;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool ok = cli.send(req, res, err);
  if (result.cancelled || stop) return result;
  if (!ok) return make_error(ErrorCode::kIo, "narrator server {}: {}", url_, httplib::to_string(err));
  if (res.status != 200) return make_error(ErrorCode::kIo, "narrator server {}: HTTP {}: {}", url_, res.status, res.body);
  if (result.stop_reason.empty()) result.stop_reason = "end";
  return result;
}

}  // namespace fabula::backend
