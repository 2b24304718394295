// `fabula serve`: a llama-server-compatible HTTP API (native /completion and OpenAI /v1/chat/completions) over slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "tensor/kv_types.h"

namespace fabula::server {

struct ServerOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (see Server::port())
  int n_parallel = 1;         // slots
  int64_t n_ctx = 4096;       // per slot
  int n_threads = 0;          // inference threads (<= 0: physical cores)
  int64_t n_batch = 0;        // tokens per forward step, all slots together (<= 0: SchedulerOptions' default)
  int64_t n_ubatch = 0;       // most tokens of one slot per step (<= 0: SchedulerOptions' default)
  KvCacheTypes cache_type;    // the slots' KV cache (--cache-type-k / --cache-type-v)
  std::string api_key;        // "" : no key; else required on every route but /health
  // Web pages at these origins ("http://host:port") may call the API: they get Access-Control-Allow-Origin.
  // "*" allows every origin and needs api_key. Any other page's request (its Origin header) gets 403.
  std::vector<std::string> cors_origins;
  // Host names accepted besides localhost and the bound address. The Host check (421 otherwise, against DNS
  // rebinding) runs when the server is bound to loopback, or when names are given here.
  std::vector<std::string> allowed_hosts;
  std::string ssl_cert;       // PEM certificate chain and private key: serve HTTPS
  std::string ssl_key;
  size_t max_body = 1 << 20;  // request bodies above this get 413
  int timeout_s = 600;        // request time limit (generation stops with stop_type "limit")
  int read_timeout_s = 30;    // socket read/write timeout
  int header_timeout_s = 10;  // the request line and headers must arrive within this
  int idle_timeout_s = 5;     // a kept-alive connection is closed after this long without a request
  int max_connections = 512;  // open connections in total (503 above)
  int max_client_connections = 64;  // open connections from one address (429 above)
  std::string alias;          // model name in responses ("" : the file name)
  std::string story;          // story whose manifest "vn_protocol" requests are constrained by ("" : the built-in)
};

enum class ServerState { kLoading, kReady, kFailed, kStopped };

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket and starts serving on a background thread, then loads the model on another (/health says
  // 503 until it is ready). Returns the bound port.
  Result<int> start();
  // Blocks until the model is loaded (kReady) or failed (its error).
  Status wait_ready();
  // Blocks until stop() is called from another thread (or the listener dies).
  void wait();
  void stop();

  ServerState state() const;
  int port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabula::server
