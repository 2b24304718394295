// Internals shared by the server's route files: loaded state, error replies, SSE helpers.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "backend/loaded_model.h"
#include "model/model.h"
#include "protocol/manifest.h"
#include "sample/constrained.h"
#include "server/hardened_http.h"
#include "server/http_policy.h"
#include "server/request.h"
#include "server/scheduler.h"
#include "server/server.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fabula::server {

// Everything the routes need once the model is loaded (immutable after load, except the scheduler's queue): the
// model, tokenizer and chat template (backend::LoadedModel), then the server's own state.
struct Loaded : backend::LoadedModel {
  std::unique_ptr<Scheduler> scheduler;
  protocol::Manifest manifest;  // ServerOptions::story's, for "vn_protocol"
  // The constraint's per-vocabulary tables: built on the first "vn_protocol" request, then shared.
  std::mutex vocab_mu;
  std::shared_ptr<const ConstraintVocab> vocab;
};

struct HttpCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors_4xx{0};
  std::atomic<uint64_t> errors_5xx{0};
};

struct Server::Impl {
  ServerOptions options;
  std::string alias;
  HardenedHttpServer http;
  bool check_host = false;  // bound to loopback (or --allow-host given): Host must name this server
  HostPolicy host_policy;
  std::thread listen_thread;
  std::thread load_thread;
  std::atomic<ServerState> state{ServerState::kLoading};
  std::mutex load_mu;
  std::mutex stop_mu;
  bool listen_done = false;
  std::condition_variable load_cv;
  Error load_error;
  std::unique_ptr<Loaded> loaded;  // set once, before state turns kReady
  int port = 0;
  HttpCounters counters;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  void register_routes();
  // Host, Origin / CORS and API key checks of one request; false when it sent the refusal.
  bool admit_request(const httplib::Request& req, httplib::Response& res);
  void register_completion_routes();
  void register_chat_routes();
  void load();
  std::chrono::steady_clock::time_point deadline() const {
    return std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
  }
};

// {"error": {"code", "message", "type"}} with the matching HTTP status.
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type = "");
// Error codes of our Result -> HTTP status (kInvalidArgument/kParse -> 400, kOutOfRange -> 400 exceed_context...).
void send_result_error(httplib::Response& res, const Error& error);
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
// Parses the body as a JSON object; on failure sends 400 and returns a discarded value.
nlohmann::json parse_body(const httplib::Request& req, httplib::Response& res);
// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& j);
// llama-server's probability entry for one token: {id, token, logprob, bytes, top_logprobs[]}.
nlohmann::json probs_json(const Tokenizer& tok, int32_t id, float logprob, std::span<const TokenProb> top);

}  // namespace fabula::server

namespace fabula::server {

// Streams a submitted task as SSE: `on_event` renders each token (empty string: nothing to send), `on_end` the
// closing event(s) from the outcome. A failed write (client gone) cancels the task.
using EventRenderer = std::function<std::string(const TokenEvent& event)>;
using EndRenderer = std::function<std::string(const Result<GenerationResult>& result)>;
void stream_task(httplib::Response& res, std::shared_ptr<Task> task, EventRenderer on_event, EndRenderer on_end);

// "vn_protocol" / "vn_cast" / "banned_phrases" -> the request's constraint and phrase bans. Fails closed: a
// request asking for them never runs without them (vn_cast errors are 400 naming the field, setup errors 500).
// Sends the error and returns false on failure.
bool apply_decoding_fields(httplib::Response& res, Loaded& loaded, CompletionRequest& request);

// Checks the prompt against the slot context; sends 400 exceed_context_size_error and returns false if too long.
bool check_prompt_fits(httplib::Response& res, size_t n_prompt, int64_t n_ctx);

}  // namespace fabula::server
