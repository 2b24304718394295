// HardenedHttpServer: admission (caps), the per-connection request loop over a GuardedStream, TLS setup.
#include "server/hardened_http.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include <fmt/format.h>

#include "server/connection_pool.h"
#include "server/guarded_stream.h"

namespace fabula::server {

namespace {

using Clock = std::chrono::steady_clock;

bool declares_body(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > 0;
}

thread_local const GuardedStream* t_stream = nullptr;  // the connection this thread is serving

std::string peer_address(int sock) {
  std::string ip;
  int port = 0;
  socket_address(sock, /*peer=*/true, ip, port);
  return ip.empty() ? "?" : ip;
}

void set_nonblocking(int sock) {
  const int flags = ::fcntl(sock, F_GETFL, 0);
  if (flags >= 0) ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
}

// A short reply on a connection we will not serve, without waiting on the client: what it already sent is
// drained first (closing with unread input would reset the connection before the client reads the reply).
void refuse_plain(int sock, int status, const char* reason, const std::string& message) {
  set_nonblocking(sock);
  char sink[16 * 1024];
  for (int i = 0; i < 4 && ::recv(sock, sink, sizeof(sink), MSG_DONTWAIT) > 0; ++i) {
  }
  const std::string body = error_json(status, message).dump();
  const std::string reply = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Retry-After: 1\r\n\r\n{}",
      status, reason, body.size(), body);
  [[maybe_unused]] const ssize_t n = ::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(sock, SHUT_WR);
}

// SSL_accept on the non-blocking socket, within `deadline`.
bool tls_handshake(SSL* ssl, int sock, Clock::time_point deadline) {
  while (true) {
    ERR_clear_error();
    const int r = SSL_accept(ssl);
    if (r == 1) return true;
    const int err = SSL_get_error(ssl, r);
    short events = 0;
    if (err == SSL_ERROR_WANT_READ) events = POLLIN;
    else if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    else return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{sock, events, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  }
}

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// After refusing a request (its body or headers unread): stop sending, then discard what the client is still
// sending for a moment, so that closing does not reset the connection before the client has read the refusal.
// Bounded in time and bytes; nothing is kept.
void linger_close(int sock) {
  ::shutdown(sock, SHUT_WR);
  char sink[16 * 1024];
  size_t drained = 0;
  const auto until = Clock::now() + std::chrono::seconds(2);
  while (drained < (4u << 20) && Clock::now() < until) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) break;
    const ssize_t n = ::recv(sock, sink, sizeof(sink), MSG_DONTWAIT);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

std::string default_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

nlohmann::json error_json(int status, const std::string& message, const std::string& type) {
  return {{"error", {{"code", status}, {"message", message}, {"type", type.empty() ? default_error_type(status) : type}}}};
}

HardenedHttpServer::HardenedHttpServer(HttpLimits limits) {
  set_limits(limits);
  set_error_handler(nullptr);
}

void HardenedHttpServer::set_limits(const HttpLimits& limits) {
  limits_ = limits;
  const size_t cap = static_cast<size_t>(limits_.max_connections > 0 ? limits_.max_connections : 1);
  new_task_queue = [cap] { return new ConnectionPool(cap); };
  set_payload_max_length(limits_.max_body);
  set_read_timeout(limits_.read_timeout_s, 0);
  set_write_timeout(limits_.write_timeout_s, 0);
  // Only for the Keep-Alive reply header: the request loop below enforces both itself.
  set_keep_alive_timeout(limits_.idle_timeout_s);
  set_keep_alive_max_count(static_cast<size_t>(std::max(1, limits_.max_requests_per_connection)));
}

HardenedHttpServer& HardenedHttpServer::set_error_handler(HandlerWithResponse handler) {
  httplib::Server::set_error_handler(
      HandlerWithResponse([handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
        if (const int status = refusal_status()) {
          res.status = status;
          res.set_header("Connection", "close");
        }
        return handler ? handler(req, res) : HandlerResponse::Unhandled;
      }));
  return *this;
}

HardenedHttpServer::~HardenedHttpServer() {
  shutdown();
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
}

HardenedHttpServer& HardenedHttpServer::set_pre_routing_handler(HandlerWithResponse handler) {
  httplib::Server::set_pre_routing_handler(
      HandlerWithResponse([handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
        const HandlerResponse r = handler(req, res);
        if (r == HandlerResponse::Handled && declares_body(req)) res.set_header("Connection", "close");
        return r;
      }));
  return *this;
}

Status HardenedHttpServer::use_tls(const std::string& cert_path, const std::string& key_path) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return make_error(ErrorCode::kIo, "TLS: cannot create an OpenSSL context: {}", openssl_error());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  auto fail = [ctx](std::string message) {
    SSL_CTX_free(ctx);
    return make_error(ErrorCode::kInvalidArgument, "{}", message);
  };
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1)
    return fail(fmt::format("--ssl-cert {}: not a readable PEM certificate chain ({})", cert_path, openssl_error()));
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail(fmt::format("--ssl-key {}: not a readable PEM private key ({})", key_path, openssl_error()));
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail(fmt::format("--ssl-key {} does not match the certificate in --ssl-cert {}", key_path, cert_path));
  // OpenSSL writes with write(2): a client gone mid-reply must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
  ssl_ctx_ = ctx;
  return ok_status();
}

Result<int> HardenedHttpServer::bind(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound < 0) return make_error(ErrorCode::kIo, "cannot listen on {}:{} (in use, or not an address of this machine?)", host, port);
  // cpp-httplib listens with a backlog of 5: a burst of connections would wait for SYN retries (1 s and more).
  ::listen(svr_sock_, std::max(128, limits_.max_connections));
  return bound;
}

void HardenedHttpServer::shutdown() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (int sock : open_) ::shutdown(sock, SHUT_RDWR);  // blocked polls and reads return at once
  }
  // cpp-httplib's stop() does nothing until listen_after_bind() has begun: close the listener ourselves, so that a
  // shutdown racing the listening thread's start still ends it (the accept loop checks svr_sock_ first).
  const int listener = svr_sock_.exchange(INVALID_SOCKET);
  if (listener != INVALID_SOCKET) {
    ::shutdown(listener, SHUT_RDWR);
    ::close(listener);
  }
}

HttpStats HardenedHttpServer::stats() const {
  HttpStats s;
  s.refused_busy = refused_busy_.load();
  s.refused_per_client = refused_per_client_.load();
  s.header_timeouts = header_timeouts_.load();
  s.too_large = too_large_.load();
  std::lock_guard lk(mu_);
  s.open_connections = static_cast<int>(open_.size());
  return s;
}

int HardenedHttpServer::refusal_status() {
  if (!t_stream) return 0;
  switch (t_stream->refusal()) {
    case Refusal::kHeaderTimeout: return 408;
    case Refusal::kHeaderTooLarge: return 431;
    case Refusal::kBodyTooLarge: return 413;
    case Refusal::kNone: return 0;
  }
  return 0;
}

bool HardenedHttpServer::admit(int sock, const std::string& peer) {
  std::lock_guard lk(mu_);
  if (stopping_) return false;
  int& n = per_client_[peer];
  if (n >= limits_.max_client_connections) {
    if (n == 0) per_client_.erase(peer);
    return false;
  }
  ++n;
  open_.insert(sock);
  return true;
}

void HardenedHttpServer::release(int sock, const std::string& peer) {
  std::lock_guard lk(mu_);
  open_.erase(sock);
  auto it = per_client_.find(peer);
  if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
}

bool HardenedHttpServer::process_and_close_socket(int sock) {
  const std::string peer = peer_address(sock);
  if (ConnectionPool::on_overflow_thread()) {
    refused_busy_++;
    if (!ssl_ctx_)
      refuse_plain(sock, 503, "Service Unavailable",
                   fmt::format("server busy: {} connections are open, try again", limits_.max_connections));
    ::close(sock);
    return false;
  }
  if (!admit(sock, peer)) {
    bool stopping;
    {
      std::lock_guard lk(mu_);
      stopping = stopping_;
    }
    if (!stopping) {
      refused_per_client_++;
      if (!ssl_ctx_)
        refuse_plain(sock, 429, "Too Many Requests",
                     fmt::format("too many connections from {} (at most {} at once)", peer, limits_.max_client_connections));
    }
    ::close(sock);
    return false;
  }
  set_nonblocking(sock);

  bool ret = false;
  bool refused = false;  // a limit cut a request short
  SSL* ssl = nullptr;
  bool ready = true;
  if (ssl_ctx_) {
    ssl = SSL_new(ssl_ctx_);
    ready = ssl && SSL_set_fd(ssl, sock) == 1 &&
            tls_handshake(ssl, sock, Clock::now() + std::chrono::seconds(limits_.header_timeout_s));
    if (!ready) header_timeouts_++;
  }
  if (ready) {
    if (ssl) SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    GuardedStream strm(sock, ssl, limits_);
    t_stream = &strm;
    for (int i = 0; i < std::max(1, limits_.max_requests_per_connection); ++i) {
      if (svr_sock_ == INVALID_SOCKET) break;  // stopping
      // A kept-alive connection has the idle timeout to start its next request; a new one goes straight to the
      // header deadline (silence counts against it).
      if (i > 0 && !strm.wait_for_request(std::chrono::seconds(limits_.idle_timeout_s))) break;
      strm.begin_headers();
      const size_t sent_before = strm.bytes_sent();
      const size_t received_before = strm.bytes_received();
      bool closed = false;
      const bool last = i + 1 >= limits_.max_requests_per_connection;
      unsigned long long declared = 0;  // body bytes the request announced (1 for a chunked body)
      ret = process_request(strm, last, closed, [&](httplib::Request& req) {
        // Headers are in. A declared body over the limit is refused before a byte of it is read.
        declared = std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
        if (req.has_header("Transfer-Encoding")) declared = std::max<unsigned long long>(declared, 1);
        strm.begin_body(declared > limits_.max_body ? 0 : limits_.max_body);
      });
      // Answered without reading its body (refused before routing): the rest of it must not be parsed as a request.
      if (strm.body_bytes() < declared) closed = refused = true;
      const Refusal refusal = strm.refusal();
      if (refusal == Refusal::kHeaderTimeout) {
        header_timeouts_++;
        // A client that sent part of a request is told why it is dropped; a silent one is just closed.
        if (strm.bytes_sent() == sent_before && strm.bytes_received() > received_before && !ssl) {
          refuse_plain(sock, 408, "Request Timeout",
                       fmt::format("the request headers did not arrive within {} s", limits_.header_timeout_s));
        }
      } else if (refusal != Refusal::kNone) {
        too_large_++;
      }
      if (refusal != Refusal::kNone) refused = true;
      if (refused || !ret || closed) break;
    }
    t_stream = nullptr;
  }
  if (ssl) {
    if (ready) SSL_shutdown(ssl);
    SSL_free(ssl);
  } else if (refused) {
    linger_close(sock);
  }
  release(sock, peer);  // before close: the descriptor number may be reused by the next accept
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace fabula::server
