// Request checks shared by the game API and `fabula serve`: which Host names this server answers to (DNS
// rebinding), whether an Origin is the server's own (cross-site requests), secrets compared in constant time.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabula::server {

// "name", "name:port", "[v6]" or "[v6]:port" -> the lower-case host part ("" when malformed or empty).
std::string host_of(std::string_view host_header);
// "http://name:port" -> "name:port" (lower-case); nullopt for anything else ("null", other schemes, paths).
std::optional<std::string> origin_authority(std::string_view origin);

bool is_loopback_host(std::string_view host);  // localhost, 127.0.0.0/8, ::1
bool is_wildcard_host(std::string_view host);  // 0.0.0.0, ::, "" (every interface)

// The Host names a server bound to `bind_host` answers to: localhost and the loopback addresses, the bound address
// (every local interface address when bound to a wildcard), and the names given with --allow-host.
class HostPolicy {
 public:
  HostPolicy() = default;
  HostPolicy(const std::string& bind_host, std::vector<std::string> extra_names);
  // A request without a Host header passes (only browsers can be rebound, and they always send one).
  bool allows(std::string_view host_header) const;

 private:
  std::vector<std::string> names_;
};

// True when `origin` ("http(s)://host[:port]") names the host and port the request was sent to (its Host header).
// Either scheme passes: behind a TLS reverse proxy the page is https while this server speaks plain http.
bool is_same_origin(std::string_view origin, std::string_view host_header);

// Constant-time comparison: the time depends on the length of `expected` only, never on where they differ.
bool secret_equals(std::string_view given, std::string_view expected);

// 32 random bytes from the kernel, as 64 hex digits.
std::string random_token();

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string cookie_value(std::string_view cookie_header, std::string_view name);

// True for "application/json" with or without parameters ("; charset=utf-8"), in any case.
bool is_json_content_type(std::string_view content_type);

}  // namespace fabula::server
