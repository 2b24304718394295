// GuardedStream: deadlines and byte budgets on top of poll() + recv/send (or SSL_read/SSL_write).
#include "server/guarded_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fabula::server {

namespace {

using Clock = std::chrono::steady_clock;

// poll() for `events`; true when ready (or hung up: the next recv/send reports it).
bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  while (true) {
    const int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

}  // namespace

void socket_address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ip.clear();
  port = 0;
  if ((peer ? ::getpeername : ::getsockname)(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
    port = ntohs(a.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf));
    port = ntohs(a.sin6_port);
  }
  ip = buf;
  if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) ip = ip.substr(7);  // IPv4-mapped
}

GuardedStream::GuardedStream(int fd, SSL* ssl, const HttpLimits& limits) : fd_(fd), ssl_(ssl), limits_(limits) {}

int GuardedStream::poll_ms() const {
  const int read_ms = limits_.read_timeout_s * 1000;
  if (phase_ != Phase::kHeaders) return read_ms;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(header_deadline_ - Clock::now()).count();
  if (left <= 0) return -1;
  return static_cast<int>(std::min<long long>(left, read_ms));
}

bool GuardedStream::wait_readable() const {
  if (buf_pos_ < buf_len_) return true;
  if (ssl_ && SSL_pending(ssl_) > 0) return true;
  const int ms = poll_ms();
  if (ms < 0) {
    refusal_ = Refusal::kHeaderTimeout;
    return false;
  }
  if (wait_fd(fd_, POLLIN, ms)) return true;
  if (phase_ == Phase::kHeaders && poll_ms() < 0) refusal_ = Refusal::kHeaderTimeout;
  return false;
}

bool GuardedStream::is_readable() const { return refusal_ == Refusal::kNone && wait_readable(); }

bool GuardedStream::is_writable() const {
  pollfd p{fd_, POLLOUT, 0};
  int r;
  do r = ::poll(&p, 1, limits_.write_timeout_s * 1000);
  while (r < 0 && errno == EINTR);
  return r > 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

ssize_t GuardedStream::fill() {
  while (true) {
    if (!wait_readable()) return -1;
    if (ssl_) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buf_, sizeof(buf_));
      if (n > 0) return n;
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) continue;
      if (err == SSL_ERROR_WANT_WRITE) {
        if (!wait_fd(fd_, POLLOUT, limits_.write_timeout_s * 1000)) return -1;
        continue;
      }
      return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    const ssize_t n = ::recv(fd_, buf_, sizeof(buf_), 0);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
    return -1;
  }
}

ssize_t GuardedStream::read(char* ptr, size_t size) {
  if (refusal_ != Refusal::kNone) return -1;
  if (buf_pos_ >= buf_len_) {
    const ssize_t n = fill();
    if (n <= 0) return n;
    buf_pos_ = 0;
    buf_len_ = static_cast<size_t>(n);
    received_ += buf_len_;
  }
  const size_t take = std::min(size, buf_len_ - buf_pos_);
  if (phase_ == Phase::kHeaders && phase_bytes_ + take > limits_.max_header_bytes) {
    refusal_ = Refusal::kHeaderTooLarge;
    return -1;
  }
  if (phase_ == Phase::kBody && phase_bytes_ + take > body_budget_) {
    refusal_ = Refusal::kBodyTooLarge;
    return -1;
  }
  std::memcpy(ptr, buf_ + buf_pos_, take);
  buf_pos_ += take;
  phase_bytes_ += take;
  return static_cast<ssize_t>(take);
}

ssize_t GuardedStream::write(const char* ptr, size_t size) {
  size_t off = 0;
  const int write_ms = limits_.write_timeout_s * 1000;
  while (off < size) {
    if (ssl_) {
      ERR_clear_error();
      const int chunk = static_cast<int>(std::min<size_t>(size - off, 1 << 30));
      const int n = SSL_write(ssl_, ptr + off, chunk);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_WRITE && wait_fd(fd_, POLLOUT, write_ms)) continue;
      if (err == SSL_ERROR_WANT_READ && wait_fd(fd_, POLLIN, write_ms)) continue;
      return -1;
    }
    const ssize_t n = ::send(fd_, ptr + off, size - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd_, POLLOUT, write_ms)) continue;
    return -1;  // error, or the client took nothing for write_timeout_s
  }
  sent_ += size;
  return static_cast<ssize_t>(size);
}

void GuardedStream::get_remote_ip_and_port(std::string& ip, int& port) const { socket_address(fd_, true, ip, port); }

void GuardedStream::get_local_ip_and_port(std::string& ip, int& port) const { socket_address(fd_, false, ip, port); }

bool GuardedStream::wait_for_request(std::chrono::milliseconds timeout) {
  if (buf_pos_ < buf_len_) return true;
  if (ssl_ && SSL_pending(ssl_) > 0) return true;
  return wait_fd(fd_, POLLIN, static_cast<int>(timeout.count()));
}

void GuardedStream::begin_headers() {
  phase_ = Phase::kHeaders;
  phase_bytes_ = 0;
  header_deadline_ = Clock::now() + std::chrono::seconds(limits_.header_timeout_s);
}

void GuardedStream::begin_body(size_t budget) {
  phase_ = Phase::kBody;
  phase_bytes_ = 0;
  body_budget_ = budget;
}

}  // namespace fabula::server
