// libFuzzer target: the servers' Host / Origin / Cookie / Content-Type parsing on arbitrary header values.
// fuzz-link: fabula_server
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "server/http_policy.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const server::HostPolicy policy("127.0.0.1", {"vn.example"});

  const std::string host = server::host_of(text);
  // A parsed host is lower-case and never carries a port or brackets.
  for (char c : host) FABULA_CHECK(!(c >= 'A' && c <= 'Z') && c != '[' && c != ']');
  policy.allows(text);
  if (auto a = server::origin_authority(text)) {
    FABULA_CHECK(!a->empty());
    // An origin always matches the Host header that names the same authority.
    FABULA_CHECK(server::is_same_origin(text, *a));
  }
  server::is_same_origin(text, "127.0.0.1:8765");
  server::cookie_value(text, "fabula_8765");
  server::is_json_content_type(text);
  // Equal secrets compare equal; a secret never equals itself with a byte appended.
  FABULA_CHECK(server::secret_equals(text, text));
  FABULA_CHECK(!server::secret_equals(std::string(text) + "x", text));
  return 0;
}
