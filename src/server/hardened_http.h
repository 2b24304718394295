// HardenedHttpServer: cpp-httplib's Server with the connection handling replaced, so that slow or greedy clients
// cannot shut others out: a thread per open connection (ConnectionPool) up to a total cap, a cap per client address,
// a deadline for the request line + headers, an idle timeout between requests, header and body size limits that
// refuse without reading the excess, and optional TLS (OpenSSL). Routes and handlers are cpp-httplib's as usual.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "base/result.h"
#include "server/http_limits.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace fabula::server {

// llama-server's error body {"error": {"code", "message", "type"}}; an empty `type` is the one the status implies.
nlohmann::json error_json(int status, const std::string& message, const std::string& type = "");

struct HttpStats {
  uint64_t refused_busy = 0;        // 503: the total connection cap was reached
  uint64_t refused_per_client = 0;  // 429: one address had max_client_connections open
  uint64_t header_timeouts = 0;     // 408 / closed: the request line + headers took longer than header_timeout_s
  uint64_t too_large = 0;           // 413 / 431
  int open_connections = 0;
};

class HardenedHttpServer : public httplib::Server {
 public:
  explicit HardenedHttpServer(HttpLimits limits = {});
  ~HardenedHttpServer() override;
  // Replaces the limits (before bind()).
  void set_limits(const HttpLimits& limits);

  // Serves HTTPS with this PEM certificate chain and private key (call before listening).
  Status use_tls(const std::string& cert_path, const std::string& key_path);
  bool tls() const { return ssl_ctx_ != nullptr; }
  const HttpLimits& limits() const { return limits_; }

  // Binds host:port (0: any free port) with a listen backlog the size of the connection cap; returns the port.
  Result<int> bind(const std::string& host, int port);
  // stop(), and wakes every connection blocked in a read so its thread ends at once.
  void shutdown();

  HttpStats stats() const;

  // Installs `handler` for 4xx/5xx replies. A request cut by a limit first gets that limit's status (408, 413 or
  // 431) and "Connection: close", so the handler can describe it.
  HardenedHttpServer& set_error_handler(HandlerWithResponse handler);
  // Installs `handler` to run before routing (and before the body is read). When it answers a request that has a
  // body, the reply says "Connection: close" and the connection ends: the unread body is never parsed as a request.
  HardenedHttpServer& set_pre_routing_handler(HandlerWithResponse handler);

  // For error handlers: 408, 413 or 431 when a limit cut the request being answered on this thread, else 0.
  static int refusal_status();

 private:
  bool process_and_close_socket(int sock) override;
  bool admit(int sock, const std::string& peer);
  void release(int sock, const std::string& peer);

  HttpLimits limits_;
  SSL_CTX* ssl_ctx_ = nullptr;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::set<int> open_;                    // sockets being served (to wake them on shutdown)
  std::map<std::string, int> per_client_;  // open connections per peer address
  std::atomic<uint64_t> refused_busy_{0}, refused_per_client_{0}, header_timeouts_{0}, too_large_{0};
};

}  // namespace fabula::server
