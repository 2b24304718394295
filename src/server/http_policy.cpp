// Host / Origin parsing and checks, constant-time secret comparison, per-launch tokens, cookies.
#include "server/http_policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/random.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "base/ascii.h"

namespace fabula::server {

namespace {

// HTTP optional white space (RFC 9110 5.6.3).
constexpr std::string_view kOws = " \t";

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// A host name or IPv4 literal: name characters in labels that are never empty, with at most one trailing dot (the
// absolute form, "localhost."). Empty labels ("..", a leading dot) are refused rather than normalised, so that
// parsing a normalised name gives it back unchanged ("....." once lost one dot per parse).
bool is_host_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return !name.empty() && name.front() != '.' && name.back() != '.' && name.find("..") == std::string_view::npos &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

// inet_pton on a string_view: it reads a C string, so a NUL would end the address early and let the bytes after
// it through ("[::2<NUL>junk[::]", "127.0.0.1<NUL>evil"); such text is no address.
bool parse_address(int family, std::string_view text, void* out) {
  return text.find('\0') == std::string_view::npos && inet_pton(family, std::string(text).c_str(), out) == 1;
}

struct Authority {
  std::string host;  // lower-case; IPv6 without brackets
  std::string port;  // "" when absent
};

// "name[:port]" or "[v6][:port]"; nullopt when malformed.
std::optional<Authority> parse_authority(std::string_view s) {
  s = ascii_trim(s, kOws);
  if (s.empty()) return std::nullopt;
  Authority a;
  std::string_view rest;
  if (s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    std::string_view v6 = s.substr(1, close - 1);
    in6_addr addr{};
    if (!parse_address(AF_INET6, v6, &addr)) return std::nullopt;
    a.host = ascii_lower(v6);
    rest = s.substr(close + 1);
  } else {
    const size_t colon = s.find(':');
    std::string_view name = s.substr(0, colon);
    if (!is_host_name(name)) return std::nullopt;
    a.host = ascii_lower(name);
    rest = colon == std::string_view::npos ? std::string_view() : s.substr(colon);
  }
  if (!rest.empty()) {
    if (rest.front() != ':' || !all_digits(rest.substr(1))) return std::nullopt;
    a.port = std::string(rest.substr(1));
  }
  if (a.host.back() == '.') a.host.pop_back();  // "localhost." is "localhost" (is_host_name: never "." alone)
  return a;
}

}  // namespace

std::string host_of(std::string_view host_header) {
  auto a = parse_authority(host_header);
  return a ? a->host : std::string();
}

std::optional<std::string> origin_authority(std::string_view origin) {
  origin = ascii_trim(origin, kOws);
  std::string_view scheme;
  for (std::string_view s : {"http://", "https://"}) {
    if (origin.size() > s.size() && ascii_lower(origin.substr(0, s.size())) == s) scheme = s;
  }
  if (scheme.empty()) return std::nullopt;
  auto a = parse_authority(origin.substr(scheme.size()));
  if (!a) return std::nullopt;
  const bool v6 = a->host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + a->host + "]" : a->host;
  const std::string default_port = scheme == "https://" ? "443" : "80";
  return a->port.empty() || a->port == default_port ? host : host + ":" + a->port;
}

bool is_loopback_host(std::string_view host) {
  std::string h = ascii_lower(ascii_trim(host, kOws));
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost" || h == "localhost.") return true;
  in_addr v4{};
  if (parse_address(AF_INET, h, &v4)) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (parse_address(AF_INET6, h, &v6)) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool is_wildcard_host(std::string_view host) {
  std::string h = ascii_lower(ascii_trim(host, kOws));
  return h.empty() || h == "0.0.0.0" || h == "::" || h == "[::]";
}

HostPolicy::HostPolicy(const std::string& bind_host, std::vector<std::string> extra_names) {
  names_ = {"localhost"};
  auto add = [this](std::string_view name) {
    std::string h = name.find(':') != std::string_view::npos && name.front() != '[' ? ascii_lower(name) : host_of(name);
    if (!h.empty()) names_.push_back(h);
  };
  if (is_wildcard_host(bind_host)) {
    // Bound to every interface: each local address is "the address fabula is bound to".
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
      for (ifaddrs* it = list; it; it = it->ifa_next) {
        if (!it->ifa_addr) continue;
        char buf[INET6_ADDRSTRLEN] = {};
        if (it->ifa_addr->sa_family == AF_INET)
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, buf, sizeof(buf));
        else if (it->ifa_addr->sa_family == AF_INET6)
          inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(it->ifa_addr)->sin6_addr, buf, sizeof(buf));
        if (buf[0]) add(buf);
      }
      freeifaddrs(list);
    }
  } else {
    add(bind_host);
  }
  for (const std::string& n : extra_names) add(n);
}

bool HostPolicy::allows(std::string_view host_header) const {
  if (ascii_trim(host_header, kOws).empty()) return true;
  const std::string h = host_of(host_header);
  if (h.empty()) return false;
  if (is_loopback_host(h)) return true;  // "localhost" or a loopback address literal
  return std::find(names_.begin(), names_.end(), h) != names_.end();
}

bool is_same_origin(std::string_view origin, std::string_view host_header) {
  auto o = origin_authority(origin);
  if (!o) return false;
  auto h = parse_authority(host_header);
  if (!h) return false;
  const bool v6 = h->host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + h->host + "]" : h->host;
  // The Host header omits the scheme's default port; the Origin was normalised the same way.
  if (h->port.empty()) return *o == host;
  if (*o == host + ":" + h->port) return true;
  // "Host: x:80" from an http page or "Host: x:443" from an https one.
  return *o == host && (h->port == "80" || h->port == "443");
}

bool secret_equals(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  // Keep the compiler from turning the loop into an early exit.
  volatile unsigned char sink = diff;
  return sink == 0;
}

std::string random_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string cookie_value(std::string_view cookie_header, std::string_view name) {
  for (const std::string_view part : split(cookie_header, ';')) {
    std::string_view pair = ascii_trim(part, kOws);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && ascii_trim(pair.substr(0, eq), kOws) == name)
      return std::string(ascii_trim(pair.substr(eq + 1), kOws));
  }
  return "";
}

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = ascii_trim(content_type.substr(0, content_type.find(';')), kOws);
  return ascii_lower(media) == "application/json";
}

}  // namespace fabula::server
