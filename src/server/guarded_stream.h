// GuardedStream: cpp-httplib's Stream over a non-blocking socket (optionally TLS) that enforces HttpLimits:
// a deadline and a byte budget for the request line + headers, a byte budget for the body, read/write timeouts.
// When a limit cuts a request, reads fail at once and refusal() says which limit it was.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "server/http_limits.h"

typedef struct ssl_st SSL;

namespace fabula::server {

enum class Refusal { kNone, kHeaderTimeout, kHeaderTooLarge, kBodyTooLarge };

class GuardedStream : public httplib::Stream {
 public:
  // `ssl` (may be null) must already have completed its handshake; the stream does not own fd or ssl.
  GuardedStream(int fd, SSL* ssl, const HttpLimits& limits);

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  int socket() const override { return fd_; }

  // Waits up to `timeout` for the first byte of the next request; false on timeout, EOF or error.
  bool wait_for_request(std::chrono::milliseconds timeout);
  // A request starts: its line and headers get limits.header_timeout_s and limits.max_header_bytes.
  void begin_headers();
  // The headers are in: the body may take at most `budget` bytes (0 refuses any body at once).
  void begin_body(size_t budget);
  Refusal refusal() const { return refusal_; }
  size_t body_bytes() const { return phase_ == Phase::kBody ? phase_bytes_ : 0; }  // of this request's body, read
  size_t bytes_received() const { return received_; }
  size_t bytes_sent() const { return sent_; }

 private:
  enum class Phase { kIdle, kHeaders, kBody };
  bool wait_readable() const;  // buffered data, TLS-pending data, or the socket readable before the phase's limit
  ssize_t fill();              // one recv into the buffer: >0 bytes, 0 EOF, -1 error/timeout
  int poll_ms() const;         // how long the next wait may last (< 0: the header deadline has passed)

  int fd_;
  SSL* ssl_;
  HttpLimits limits_;
  Phase phase_ = Phase::kIdle;
  std::chrono::steady_clock::time_point header_deadline_{};
  size_t phase_bytes_ = 0;   // taken by the reader in this phase
  size_t body_budget_ = 0;
  mutable Refusal refusal_ = Refusal::kNone;
  size_t received_ = 0;
  size_t sent_ = 0;
  char buf_[16 * 1024];
  size_t buf_pos_ = 0;
  size_t buf_len_ = 0;
};

// The address of a socket's peer (`peer`) or of its own end: the IP (an IPv4-mapped IPv6 address as plain IPv4) and
// the port; "" and 0 when it has none.
void socket_address(int fd, bool peer, std::string& ip, int& port);

}  // namespace fabula::server
