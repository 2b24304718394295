// HTTP server core: listen-then-load, Host/Origin/CORS checks, API key, JSON errors, /health /props /tokenize /detokenize /models /metrics.
#include "server/server_impl.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "base/json_view.h"
#include "base/log.h"
#include "base/utf8.h"

namespace fabula::server {

using nlohmann::json;

namespace {

bool is_public_path(const std::string& path) { return path == "/health" || path == "/v1/health"; }

}  // namespace

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(dump_json(body), "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type) {
  send_json(res, error_json(status, message, type), status);
}

void send_result_error(httplib::Response& res, const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse: send_error(res, 400, error.message); break;
    case ErrorCode::kOutOfRange: send_error(res, 400, error.message, "exceed_context_size_error"); break;
    case ErrorCode::kUnsupported: send_error(res, 501, error.message); break;
    case ErrorCode::kNotFound: send_error(res, 404, error.message); break;
    case ErrorCode::kCancelled: send_error(res, 503, error.message); break;
    default: send_error(res, 500, error.message); break;
  }
}

json parse_body(const httplib::Request& req, httplib::Response& res) {
  auto j = parse_json(req.body, "request body");
  if (!j) {
    send_error(res, 400, j.error().message);
    return json::value_t::discarded;
  }
  if (!j->is_object()) {
    send_error(res, 400, fmt::format("request body must be a JSON object, got {}", j->type_name()));
    return json::value_t::discarded;
  }
  return std::move(*j);
}

std::string sse_event(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

json probs_json(const Tokenizer& tok, int32_t id, float logprob, std::span<const TokenProb> top) {
  auto entry = [&](int32_t tid, float lp) {
    const std::string piece = tok.token_bytes(tid);
    json bytes = json::array();
    for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
    return json{{"id", tid}, {"token", piece}, {"logprob", lp}, {"bytes", bytes}};
  };
  json j = entry(id, logprob);
  json tops = json::array();
  for (const TokenProb& t : top) tops.push_back(entry(t.id, t.logprob));
  j["top_logprobs"] = tops;
  return j;
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->alias = impl_->options.alias.empty() ? std::filesystem::path(impl_->options.model_path).filename().string()
                                              : impl_->options.alias;
}

Server::~Server() { stop(); }

ServerState Server::state() const { return impl_->state.load(); }
int Server::port() const { return impl_->port; }

namespace {

// Refuses option combinations that would open the server wider than meant, naming the flag to fix.
Status check_security_options(const ServerOptions& o) {
  for (const std::string& origin : o.cors_origins) {
    if (origin == "*") {
      if (o.api_key.empty())
        return make_error(ErrorCode::kInvalidArgument,
                          "--cors-origin '*' lets every web page drive the model: it needs --api-key too");
    } else if (!origin_authority(origin)) {
      return make_error(ErrorCode::kInvalidArgument, "--cors-origin {}: expected an origin like http://localhost:3000, or *",
                        origin);
    }
  }
  if (o.ssl_cert.empty() != o.ssl_key.empty())
    return make_error(ErrorCode::kInvalidArgument, "--ssl-cert and --ssl-key go together (a PEM certificate and its key)");
  return ok_status();
}

}  // namespace

Result<int> Server::start() {
  Impl& im = *impl_;
  const ServerOptions& o = im.options;
  if (auto st = check_security_options(o); !st) return st.error();
  HttpLimits limits;
  limits.max_body = o.max_body;
  limits.read_timeout_s = o.read_timeout_s;
  limits.write_timeout_s = o.read_timeout_s;
  limits.header_timeout_s = o.header_timeout_s;
  limits.idle_timeout_s = o.idle_timeout_s;
  limits.max_connections = o.max_connections;
  limits.max_client_connections = o.max_client_connections;
  im.http.set_limits(limits);
  if (!o.ssl_cert.empty()) {
    if (auto st = im.http.use_tls(o.ssl_cert, o.ssl_key); !st) return st.error();
  }
  im.check_host = is_loopback_host(o.host) || !o.allowed_hosts.empty();
  im.host_policy = HostPolicy(o.host, o.allowed_hosts);
  im.http.set_tcp_nodelay(true);  // SSE events and small replies must not wait for Nagle + delayed ACK
  im.register_routes();
  im.register_completion_routes();
  im.register_chat_routes();

  auto port = im.http.bind(o.host, o.port);
  if (!port.ok()) return port.error();
  im.port = *port;
  im.listen_thread = std::thread([&im] {
    im.http.listen_after_bind();
    {
      std::lock_guard lk(im.load_mu);
      im.listen_done = true;
    }
    im.load_cv.notify_all();
  });
  im.load_thread = std::thread([&im] { im.load(); });
  return im.port;
}

Status Server::wait_ready() {
  std::unique_lock lk(impl_->load_mu);
  impl_->load_cv.wait(lk, [&] { return impl_->state.load() != ServerState::kLoading; });
  if (impl_->state.load() == ServerState::kFailed) return impl_->load_error;
  if (impl_->state.load() == ServerState::kStopped) return make_error(ErrorCode::kCancelled, "server stopped");
  return ok_status();
}

void Server::wait() {
  std::unique_lock lk(impl_->load_mu);
  impl_->load_cv.wait(lk, [&] { return impl_->listen_done; });
}

void Server::stop() {
  Impl& im = *impl_;
  std::lock_guard stop_lock(im.stop_mu);
  im.http.shutdown();
  if (im.listen_thread.joinable()) im.listen_thread.join();
  if (im.load_thread.joinable()) im.load_thread.join();
  if (im.state.load() == ServerState::kLoading) im.state = ServerState::kStopped;
  if (im.loaded) im.loaded->scheduler.reset();  // joins the inference thread
  im.load_cv.notify_all();
}

void Server::Impl::load() {
  auto fail = [this](Error e) {
    FABULA_LOG_ERROR("serve: {}", e.to_string());
    {
      std::lock_guard lk(load_mu);
      load_error = std::move(e);
      state = ServerState::kFailed;
    }
    load_cv.notify_all();
  };
  auto l = std::make_unique<Loaded>();
  auto lm = backend::load_model(options.model_path);
  if (!lm.ok()) return fail(lm.take_error());
  static_cast<backend::LoadedModel&>(*l) = std::move(*lm);
  // Raw /completion still works with a template we cannot render; chat requests then use Gemma 4's.
  if (!l->chat_template_error.empty()) FABULA_LOG_WARN("serve: {}; using the Gemma 4 template", l->chat_template_error);
  auto manifest = protocol::load_story_manifest(options.story);
  if (!manifest.ok()) return fail(manifest.take_error());
  l->manifest = std::move(*manifest);
  int64_t n_ctx = options.n_ctx;
  const int64_t n_ctx_train = l->model->info().n_ctx_train;
  if (n_ctx_train > 0 && n_ctx > n_ctx_train) {
    FABULA_LOG_WARN("serve: --ctx {} exceeds the model's training context {}; using {}", n_ctx, n_ctx_train,
                    n_ctx_train);
    n_ctx = n_ctx_train;
  }
  options.n_ctx = n_ctx;
  l->scheduler = std::make_unique<Scheduler>(*l->model, l->tokenizer,
                                             SchedulerOptions{options.n_parallel, n_ctx, options.n_threads,
                                                              options.n_batch, options.n_ubatch, options.cache_type});
  const int64_t n_batch = l->scheduler->n_batch(), n_ubatch = l->scheduler->n_ubatch();
  {
    std::lock_guard lk(load_mu);
    loaded = std::move(l);
    state = ServerState::kReady;
  }
  load_cv.notify_all();
  FABULA_LOG_INFO("serve: model {} ready ({} slots, ctx {}, KV cache {}/{}, batch {}, ubatch {})", options.model_path,
                  options.n_parallel, n_ctx, kv_type_name(options.cache_type.k), kv_type_name(options.cache_type.v),
                  n_batch, n_ubatch);
}

bool Server::Impl::admit_request(const httplib::Request& req, httplib::Response& res) {
  const std::string host = req.get_header_value("Host");
  if (check_host && !host_policy.allows(host)) {
    send_error(res, 421,
               fmt::format("Host '{}' is not an address of this server (a DNS-rebinding page?); if you reach it by this "
                           "name, start it with --allow-host {}",
                           host, host_of(host).empty() ? host : host_of(host)));
    return false;
  }
  // Browsers name the page behind every cross-site request. Only the listed origins (or the server's own) pass.
  const std::string origin = req.get_header_value("Origin");
  const bool any_origin =
      std::find(options.cors_origins.begin(), options.cors_origins.end(), "*") != options.cors_origins.end();
  if (any_origin) res.set_header("Access-Control-Allow-Origin", "*");
  if (!origin.empty() && !any_origin) {
    bool listed = false;
    for (const std::string& o : options.cors_origins) listed = listed || origin_authority(o) == origin_authority(origin);
    if (listed) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    } else if (!is_same_origin(origin, host)) {
      send_error(res, 403, fmt::format("a web page at {} may not use this server; to allow it, start the server with "
                                       "--cors-origin {}",
                                       origin, origin));
      return false;
    }
  }
  if (req.method == "OPTIONS") {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Api-Key");
    res.set_header("Access-Control-Max-Age", "86400");
    return false;
  }
  if (is_public_path(req.path) || options.api_key.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string bearer = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
  // Both compared in constant time, both always compared: neither timing nor order says which was close.
  const bool by_bearer = secret_equals(bearer, options.api_key);
  const bool by_header = secret_equals(req.get_header_value("X-Api-Key"), options.api_key);
  if (!by_bearer && !by_header) {
    send_error(res, 401, "Invalid API Key", "authentication_error");
    return false;
  }
  return true;
}

void Server::Impl::register_routes() {
  // Runs before routing (and before a body is read): Host, Origin, preflight, API key, loading state.
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    counters.requests++;
    if (!admit_request(req, res)) return httplib::Server::HandlerResponse::Handled;
    if (is_public_path(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    if (state.load() != ServerState::kReady) {
      if (state.load() == ServerState::kFailed) send_error(res, 500, "model failed to load: " + load_error.message);
      else send_error(res, 503, "Loading model", "unavailable_error");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Any 4xx/5xx without a body of ours (unknown route, 413 from the body limit, bad request line) gets JSON too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (res.status >= 500) counters.errors_5xx++;
    else counters.errors_4xx++;
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) send_error(res, 404, "File Not Found: " + req.path);
    else if (res.status == 413) send_error(res, 413, fmt::format("request body exceeds {} bytes", options.max_body));
    else if (res.status == 408)
      send_error(res, 408, fmt::format("the request headers did not arrive within {} s", options.header_timeout_s));
    else if (res.status == 431) send_error(res, 431, "request headers too large");
    else send_error(res, res.status, fmt::format("HTTP {}", res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));

  auto health = [this](const httplib::Request&, httplib::Response& res) {
    switch (state.load()) {
      case ServerState::kReady: send_json(res, json{{"status", "ok"}}); break;
      case ServerState::kLoading: {
        json body = error_json(503, "Loading model");
        body["status"] = "loading";
        send_json(res, body, 503);
        break;
      }
      default: send_error(res, 500, "model failed to load: " + load_error.message); break;
    }
  };
  http.Get("/health", health);
  http.Get("/v1/health", health);

  http.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
    GenerationParams g;
    g.sampler = CompletionDefaults{}.sampler;
    json settings = generation_settings_json(g, -1);
    settings["seed"] = -1;
    send_json(res, json{{"default_generation_settings", {{"n_ctx", loaded->scheduler->n_ctx()}, {"params", settings}}},
                        {"total_slots", loaded->scheduler->n_slots()},
                        {"cache_type_k", std::string(kv_type_name(options.cache_type.k))},
                        {"cache_type_v", std::string(kv_type_name(options.cache_type.v))},
                        {"model_path", options.model_path},
                        {"model_alias", alias},
                        {"chat_template", loaded->chat_template_text},
                        {"chat_template_caps", {{"supports_thinking", loaded->chat_template.supports_thinking()}}},
                        {"modalities", {{"vision", false}, {"audio", false}}},
                        {"bos_token", std::string(loaded->tokenizer.token_text(loaded->tokenizer.bos_id()))},
                        {"eos_token", std::string(loaded->tokenizer.token_text(loaded->tokenizer.eos_id()))},
                        {"build_info", "fabula 0.1.0"},
                        {"is_sleeping", false}});
  });

  http.Get("/slots", [this](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    for (const SlotInfo& s : loaded->scheduler->slots())
      arr.push_back(json{{"id", s.id}, {"is_processing", s.busy}, {"n_ctx", loaded->scheduler->n_ctx()}, {"n_cached", s.n_cached}});
    send_json(res, arr);
  });

  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const auto created = std::chrono::duration_cast<std::chrono::seconds>(started.time_since_epoch()).count();
    const ModelInfo& hp = loaded->model->info();
    send_json(res, json{{"object", "list"},
                        {"data", json::array({json{{"id", alias},
                                                   {"object", "model"},
                                                   {"created", created},
                                                   {"owned_by", "fabula"},
                                                   {"meta", {{"n_vocab", hp.n_vocab}, {"n_ctx_train", hp.n_ctx_train},
                                                             {"n_embd", hp.n_embd}, {"n_layer", hp.n_layer}}}}})}});
  });

  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req, res);
    if (body.is_discarded()) return;
    JsonView fields(body, "request");
    auto content = fields.string("content");
    if (!content) return send_result_error(res, content.error());
    bool add_special = false, parse_special = true, with_pieces = false;
    for (auto [key, out] : {std::pair{"add_special", &add_special}, std::pair{"parse_special", &parse_special},
                            std::pair{"with_pieces", &with_pieces}}) {
      auto flag = fields.boolean_or(key, *out);
      if (!flag) return send_result_error(res, flag.error());
      *out = *flag;
    }
    const Tokenizer& tok = loaded->tokenizer;
    std::vector<int32_t> ids = tok.encode(*content, add_special && tok.add_bos(), parse_special);
    json tokens = json::array();
    for (int32_t id : ids) {
      if (!with_pieces) {
        tokens.push_back(id);
        continue;
      }
      const std::string piece = tok.token_bytes(id, true);
      // A piece that is not valid UTF-8 on its own (part of a character) is given as its bytes.
      const bool valid = utf8_valid(piece);
      if (valid) {
        tokens.push_back(json{{"id", id}, {"piece", piece}});
      } else {
        json bytes = json::array();
        for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
        tokens.push_back(json{{"id", id}, {"piece", bytes}});
      }
    }
    send_json(res, json{{"tokens", tokens}});
  });

  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req, res);
    if (body.is_discarded()) return;
    auto tokens = JsonView(body, "request").field("tokens");
    if (!tokens) return send_result_error(res, tokens.error());
    auto items = tokens->elements();
    if (!items) return send_result_error(res, items.error());
    std::vector<int32_t> ids;
    const int64_t n_vocab = loaded->model->n_vocab();
    for (const JsonView& t : *items) {
      auto id = t.integer(0, n_vocab - 1);
      if (!id) return send_result_error(res, id.error());
      ids.push_back(static_cast<int32_t>(*id));
    }
    send_json(res, json{{"content", loaded->tokenizer.decode(ids)}});
  });

  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const SchedulerMetrics m = loaded->scheduler->metrics();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
      out += fmt::format("# HELP llamacpp:{} {}\n# TYPE llamacpp:{} {}\nllamacpp:{} {}\n", name, help, name, type, name, value);
    };
    metric("prompt_tokens_total", "counter", "Number of prompt tokens processed.", double(m.prompt_tokens_total));
    metric("prompt_seconds_total", "counter", "Prompt process time", m.prompt_seconds_total);
    metric("tokens_predicted_total", "counter", "Number of generation tokens processed.", double(m.tokens_predicted_total));
    metric("tokens_predicted_seconds_total", "counter", "Predict process time", m.tokens_predicted_seconds_total);
    metric("prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's cache.", double(m.cache_tokens_total));
    metric("requests_total", "counter", "Generation requests finished.", double(m.requests_total));
    metric("requests_cancelled_total", "counter", "Generation requests cancelled (client went away).", double(m.requests_cancelled));
    metric("requests_failed_total", "counter", "Generation requests that failed.", double(m.requests_failed));
    metric("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.",
           m.prompt_seconds_total > 0 ? m.prompt_tokens_total / m.prompt_seconds_total : 0);
    metric("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
           m.tokens_predicted_seconds_total > 0 ? m.tokens_predicted_total / m.tokens_predicted_seconds_total : 0);
    metric("requests_processing", "gauge", "Number of requests processing.", m.requests_processing);
    metric("requests_deferred", "gauge", "Number of requests deferred.", m.requests_deferred);
    metric("n_slots", "gauge", "Number of slots.", m.n_slots);
    metric("n_ctx", "gauge", "Context size per slot.", double(m.n_ctx));
    metric("kv_cache_tokens_max", "gauge", "Tokens held by the fullest slot.", double(m.max_cached_tokens));
    metric("batch_steps_total", "counter", "Forward steps run (continuous batching).", double(m.steps_total));
    metric("batch_sequences_total", "counter", "Sequences summed over the steps.", double(m.step_sequences_total));
    metric("batch_tokens_total", "counter", "Tokens summed over the steps.", double(m.step_tokens_total));
    metric("batch_size", "gauge", "Sequences in the last step.", m.last_batch_size);
    metric("batch_size_avg", "gauge", "Average sequences per step.",
           m.steps_total > 0 ? double(m.step_sequences_total) / double(m.steps_total) : 0);
    metric("tokens_per_step", "gauge", "Tokens in the last step.", double(m.last_step_tokens));
    metric("tokens_per_step_avg", "gauge", "Average tokens per step.",
           m.steps_total > 0 ? double(m.step_tokens_total) / double(m.steps_total) : 0);
    metric("queue_wait_seconds_total", "counter", "Seconds requests waited for a slot, summed.", m.queue_wait_seconds_total);
    metric("queue_waits_total", "counter", "Requests that got a slot.", double(m.queue_waits_total));
    metric("queue_wait_seconds_avg", "gauge", "Average wait for a slot in seconds.",
           m.queue_waits_total > 0 ? m.queue_wait_seconds_total / double(m.queue_waits_total) : 0);
    metric("queue_wait_seconds_max", "gauge", "Longest wait for a slot in seconds.", m.queue_wait_seconds_max);
    metric("http_requests_total", "counter", "HTTP requests received.", double(counters.requests.load()));
    metric("http_errors_4xx_total", "counter", "HTTP 4xx replies.", double(counters.errors_4xx.load()));
    metric("http_errors_5xx_total", "counter", "HTTP 5xx replies.", double(counters.errors_5xx.load()));
    res.set_content(out, "text/plain; version=0.0.4");
  });
}

}  // namespace fabula::server
