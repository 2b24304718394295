// A thin libcurl client for the Hub: one request at a time, redirects returned to the caller (so it decides
// where the token may go), bodies streamed to a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula::hub {

struct HttpRequest {
  std::string url;
  bool head = false;
  std::optional<std::string> bearer_token;  // sent as Authorization: Bearer (never logged)
  uint64_t range_from = 0;                  // > 0: ask for bytes range_from.. (resume)
  // Body bytes as they arrive (2xx responses only; an error body is kept in HttpResponse::body instead).
  // Return false to stop the transfer (then the request fails with kCancelled).
  std::function<bool(const char* data, size_t size)> on_body;
  // Called once with the status before the first body byte of a 2xx response (e.g. 200 where 206 was asked:
  // the server ignored the Range, so the receiver starts over).
  std::function<void(long status)> on_start;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names; the last value of a repeated header
  std::string body;                            // whole body when on_body is not set, or an error body
  uint64_t body_bytes = 0;                     // bytes passed to on_body

  std::string header(std::string_view name) const;  // "" when absent; name in lower case
};

// Performs one request without following redirects. Network failures (refused, reset, cut mid-body, timeout)
// are kIo errors naming the host; HTTP error statuses are not errors here (the caller maps them).
// TLS uses the system CA store, or the bundle named by CURL_CA_BUNDLE / SSL_CERT_FILE.
Result<HttpResponse> http_request(const HttpRequest& request);

// "https://host:port" of a URL (scheme + authority), for the same-origin test before sending a token.
std::string url_origin(std::string_view url);
// Resolves a Location header against the URL that answered with it (absolute, or a path on the same origin).
std::string resolve_location(std::string_view base_url, std::string_view location);

}  // namespace fabula::hub
