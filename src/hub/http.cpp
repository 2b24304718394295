// libcurl behind HttpRequest: easy handles, a header callback that records the last response's headers.
#include "hub/http.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "base/ascii.h"

namespace fabula::hub {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const HttpRequest* request;
  HttpResponse* response;
  bool stopped = false;
  bool started = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new status line: headers start over (1xx interim responses)
    t->response->headers.clear();
    const size_t sp = line.find(' ');
    t->response->status = sp == std::string_view::npos ? 0 : std::strtol(line.data() + sp + 1, nullptr, 10);
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  const std::string name = ascii_lower(line.substr(0, colon));
  t->response->headers[name] = std::string(ascii_trim(line.substr(colon + 1)));
  return size * n;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  const bool success = t->response->status >= 200 && t->response->status < 300;
  if (success && t->request->on_body) {
    if (t->response->body_bytes == 0 && !t->started) {
      t->started = true;
      if (t->request->on_start) t->request->on_start(t->response->status);
    }
    if (!t->request->on_body(data, bytes)) {
      t->stopped = true;
      return 0;  // makes curl abort with CURLE_WRITE_ERROR
    }
    t->response->body_bytes += bytes;
    return bytes;
  }
  if (t->response->body.size() < (1u << 20)) t->response->body.append(data, bytes);  // error bodies are small
  return bytes;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpResponse> http_request(const HttpRequest& request) {
  global_init();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return make_error(ErrorCode::kInternal, "libcurl: cannot create a handle");
  HttpResponse response;
  Transfer transfer{&request, &response};
  curl_slist* headers = nullptr;
  std::string auth;
  if (request.bearer_token) {
    auth = "Authorization: Bearer " + *request.bearer_token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  headers = curl_slist_append(headers, "User-Agent: fabula/1 (libcurl)");
  std::string range;
  if (request.range_from > 0) range = std::to_string(request.range_from) + "-";

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for a minute) fails, so the caller can resume it.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  if (request.head) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!range.empty()) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  for (const char* env : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* ca = std::getenv(env);
    if (ca != nullptr && *ca != '\0') {
      curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
      break;
    }
  }
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    if (transfer.stopped) return make_error(ErrorCode::kCancelled, "{}: transfer stopped", url_origin(request.url));
    return make_error(ErrorCode::kIo, "{}: {} (after {} bytes)", url_origin(request.url), curl_easy_strerror(rc),
                      response.body_bytes);
  }
  response.status = status;
  return response;
}

std::string url_origin(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t end = url.find_first_of("/?#", scheme + 3);
  if (end == std::string_view::npos) end = url.size();
  std::string origin = ascii_lower(url.substr(0, end));
  // Default ports are the same origin as no port.
  auto strip = [&](std::string_view scheme_name, std::string_view port) {
    if (origin.rfind(scheme_name, 0) == 0 && origin.size() > port.size() &&
        origin.compare(origin.size() - port.size(), port.size(), port) == 0)
      origin.resize(origin.size() - port.size());
  };
  strip("https://", ":443");
  strip("http://", ":80");
  // Credentials in the URL are never part of the origin (and never printed).
  if (const size_t at = origin.find('@', scheme + 3); at != std::string::npos) origin.erase(scheme + 3, at - scheme - 2);
  return origin;
}

std::string resolve_location(std::string_view base_url, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  if (location.rfind("//", 0) == 0) {  // scheme-relative
    return std::string(base_url.substr(0, base_url.find("://") + 1)) + std::string(location);
  }
  if (!location.empty() && location.front() == '/') return url_origin(base_url) + std::string(location);
  // Relative to the base path's directory.
  std::string_view base = base_url.substr(0, base_url.find_first_of("?#"));
  const size_t slash = base.rfind('/');
  return std::string(base.substr(0, slash + 1)) + std::string(location);
}

}  // namespace fabula::hub
