// RemoteNarrator: streams a beat from llama-server /completion or /v1/chat/completions, with retries and channel stripping.
#include "backend/remote_narrator.h"

#include <httplib.h>

#include <chrono>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/json_view.h"
#include "text/reasoning.h"

namespace fabula::backend {

using nlohmann::json;

namespace {

struct Endpoint {
  std::string origin;  // scheme://host:port
  std::string prefix;  // path prefix without trailing '/'
};

Endpoint split_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t scheme = url.find("://");
  const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path == std::string::npos) return {url, ""};
  return {url.substr(0, path), url.substr(path)};
}

}  // namespace

RemoteNarrator::RemoteNarrator(std::string base_url) {
  options_.url = std::move(base_url);
}

RemoteNarrator::RemoteNarrator(RemoteOptions options) : options_(std::move(options)) {}

std::string RemoteNarrator::describe() const {
  const char* api = options_.api == RemoteApi::kChat ? "chat" : options_.api == RemoteApi::kCompletion ? "completion" : "auto";
  return "server: " + options_.url + " (" + api + ")";
}

Status RemoteNarrator::resolve_api() {
  if (options_.api == RemoteApi::kChat || template_) return ok_status();
  const Endpoint ep = split_url(options_.url);
  if (options_.api == RemoteApi::kAuto && ep.prefix.ends_with("/v1")) {
    options_.api = RemoteApi::kChat;
    return ok_status();
  }
  httplib::Client cli(ep.origin);
  cli.set_connection_timeout(options_.connect_timeout_s, 0);
  cli.set_read_timeout(10, 0);
  if (!options_.api_key.empty()) cli.set_bearer_token_auth(options_.api_key.c_str());
  for (int attempt = 0;; ++attempt) {
    auto res = cli.Get((ep.prefix + "/props").c_str());
    if (res && res->status == 200) {
      // llama-server and fabula serve report the model's chat template and eos token here.
      auto parsed = parse_json(res->body, "/props");
      const json props = parsed ? std::move(*parsed) : json();
      JsonView view(props, "/props");
      std::string why = "its /props reports no chat_template";
      if (auto tmpl = view.string_or("chat_template", ""); tmpl.ok() && !tmpl->empty()) {
        auto detected = ChatTemplate::detect(*tmpl);
        if (detected.ok()) {
          template_ = *detected;
          model_stops_ = {std::string(template_->end_of_turn())};
          if (auto eos = view.string_or("eos_token", ""); eos.ok() && !eos->empty()) model_stops_.push_back(*eos);
          options_.api = RemoteApi::kCompletion;
          return ok_status();
        }
        why = detected.error().message;
      }
      if (options_.api == RemoteApi::kCompletion)
        return make_error(ErrorCode::kUnsupported,
                          "narrator server {}: /completion needs the prompt rendered by the model's chat template, but "
                          "{}; use its chat API instead (a URL ending in /v1)",
                          options_.url, why);
      options_.api = RemoteApi::kChat;  // the server renders its own template
      return ok_status();
    }
    if (res && res->status != 503 && res->status < 500) {  // no /props: an OpenAI-style server
      if (options_.api == RemoteApi::kCompletion)
        return make_error(ErrorCode::kUnsupported,
                          "narrator server {}: GET /props answered HTTP {}, so the model's chat template is unknown "
                          "and /completion cannot be used; use its chat API instead (a URL ending in /v1)",
                          options_.url, res->status);
      options_.api = RemoteApi::kChat;
      return ok_status();
    }
    if (attempt >= options_.max_retries)
      return make_error(ErrorCode::kIo, "narrator server {}: {}", options_.url,
                        res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error()));
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.backoff_ms << attempt));
  }
}

Result<engine::NarratorResult> RemoteNarrator::write(const engine::NarratorRequest& request,
                                                     const engine::TextCallback& on_text) {
  // A llama-server would ignore decoding controls it does not know: refuse rather than hand back unconstrained beats.
  if (request.sampling.constrained || request.sampling.banned_phrases)
    return make_error(ErrorCode::kUnsupported,
                      "constrained decoding and phrase bans need the in-process model (--model), not a remote server");
  FABULA_TRY(resolve_api());
  const bool chat = options_.api == RemoteApi::kChat;
  const Endpoint ep = split_url(options_.url);
  const auto& s = request.sampling;
  json body = {{"stream", true},           {"temperature", s.temperature}, {"top_p", s.top_p},
               {"top_k", s.top_k},         {"min_p", s.min_p},             {"repeat_penalty", s.repeat_penalty},
               {"seed", request.seed},     {"cache_prompt", true}};
  std::string path;
  if (chat) {
    json messages = json::array();
    for (const auto& m : request.messages) messages.push_back(json{{"role", m.role}, {"content", m.content}});
    body["messages"] = messages;
    if (!s.stop.empty()) body["stop"] = s.stop;  // the server stops at its model's end of turn by itself
    body["model"] = options_.model.empty() ? "default" : options_.model;
    body["max_tokens"] = s.max_tokens;
    body["chat_template_kwargs"] = {{"enable_thinking", false}};
    path = ep.prefix + (ep.prefix.ends_with("/v1") ? "/chat/completions" : "/v1/chat/completions");
  } else {
    // The server's own chat template, thinking off (the engine wants the beat, not a thought).
    FABULA_ASSIGN(body["prompt"], template_->render(request.messages));  // json-ok: a write
    std::vector<std::string> stop = s.stop;
    stop.insert(stop.end(), model_stops_.begin(), model_stops_.end());
    body["stop"] = stop;
    body["n_predict"] = s.max_tokens;
    path = ep.prefix + "/completion";
  }
  const std::string payload = dump_json(body);

  for (int attempt = 0;; ++attempt) {
    engine::NarratorResult result;
    ReasoningSplitter splitter;  // a thought channel in the streamed text never reaches the beat
    ReasoningDelta delta;
    std::string reasoning, buffer, error_message;
    bool finished = false, sent_any = false;
    int chunks = 0;
    auto emit = [&](std::string& text) -> bool {
      if (text.empty()) return true;
      result.text += text;
      sent_any = true;
      const bool go = on_text(text);
      text.clear();
      return go;
    };
    auto handle = [&](const std::string& data) -> bool {  // false: stop reading
      if (data == "[DONE]") {
        finished = true;
        return false;
      }
      auto parsed = parse_json(data, "stream");
      if (!parsed || !parsed->is_object()) return true;
      // A reply's fields are read leniently: one of the wrong type counts as absent.
      JsonView j(*parsed, "stream");
      auto text_of = [](const std::optional<JsonView>& v, std::string_view key) {
        auto s = v ? v->string_or(key, "") : Result<std::string>(std::string());
        return s ? *s : std::string();
      };
      auto count_of = [](const std::optional<JsonView>& v, std::string_view key, int fallback) {
        auto n = v ? v->integer_or(key, fallback, 0, std::numeric_limits<int>::max()) : Result<int64_t>(fallback);
        return n ? static_cast<int>(*n) : fallback;
      };
      if (auto e = j.find("error")) {
        error_message = text_of(e, "message");
        if (error_message.empty()) error_message = dump_json(e->raw());
        return false;
      }
      std::string piece;
      std::string reason;
      if (chat) {
        auto choices = j.find("choices");
        auto items = choices ? choices->elements() : Result<std::vector<JsonView>>(std::vector<JsonView>());
        if (items && !items->empty()) {
          const JsonView& c = items->front();
          piece = text_of(c.find("delta"), "content");
          reason = text_of(c, "finish_reason");
        }
        result.tokens = count_of(j.find("usage"), "completion_tokens", result.tokens);
      } else {
        piece = text_of(j, "content");
        auto stop = j.boolean_or("stop", false);
        if (stop && *stop) {
          reason = text_of(j, "stop_type");
          if (reason.empty()) reason = "stop";
          result.tokens = count_of(j, "tokens_predicted", result.tokens);
        }
      }
      if (!piece.empty()) {
        ++chunks;
        splitter.feed_text(piece, delta);
        reasoning += delta.reasoning;
        delta.reasoning.clear();
        if (!emit(delta.content)) {
          result.cancelled = true;
          return false;
        }
      }
      if (!reason.empty()) {
        result.stop_reason = reason == "length" || reason == "limit" ? "length" : reason == "word" ? "stop" : reason == "eos" ? "eos" : "stop";
        if (!chat) finished = true;
      }
      return true;
    };

    httplib::Client cli(ep.origin);
    cli.set_connection_timeout(options_.connect_timeout_s, 0);
    cli.set_read_timeout(options_.read_timeout_s, 0);
    cli.set_tcp_nodelay(true);
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = payload;
    req.set_header("Content-Type", "application/json");
    req.set_header("Accept", "text/event-stream");
    if (!options_.api_key.empty()) req.set_header("Authorization", "Bearer " + options_.api_key);
    int status = 0;
    std::string error_body;
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (status != 200) {  // an error reply: keep its body for the message
        error_body.append(data, std::min<size_t>(n, 4096));
        return true;
      }
      buffer.append(data, n);
      for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("data:", 0) != 0) continue;  // comments (": ping"), event names, blank separators
        std::string data = line.substr(5);
        if (!data.empty() && data[0] == ' ') data.erase(0, 1);
        if (!handle(data)) return false;
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool ok = cli.send(req, res, err);
    if (status == 0 && ok) status = res.status;

    const bool retryable = !sent_any && !result.cancelled && ((!ok && status == 0) || status >= 500);
    if (retryable && attempt < options_.max_retries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.backoff_ms << attempt));
      continue;
    }
    if (!error_message.empty()) return make_error(ErrorCode::kIo, "narrator server {}: {}", options_.url, error_message);
    if (status != 200 && status != 0)
      return make_error(ErrorCode::kIo, "narrator server {}: HTTP {}: {}", options_.url, status, error_body.empty() ? res.body : error_body);
    if (!ok && !finished && !result.cancelled)
      return make_error(ErrorCode::kIo, "narrator server {}: {}", options_.url, httplib::to_string(err));
    if (!result.cancelled) {
      ReasoningDelta last = splitter.finish();
      // The whole reply sat in an unclosed thought channel (some servers never close it): use it rather than nothing.
      if (splitter.unclosed() && result.text.empty() && last.content.empty()) last.content = reasoning + last.reasoning;
      if (!emit(last.content)) result.cancelled = true;
    }
    if (result.cancelled) result.stop_reason = "cancelled";
    else if (result.stop_reason.empty()) result.stop_reason = "end";
    if (result.tokens == 0) result.tokens = chunks;
    return result;
  }
}

}  // namespace fabula::backend
