// Host / Origin parsing and the checks built on them (DNS rebinding, cross-site requests), secrets, cookies.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "server/http_policy.h"

namespace fabula::server {
namespace {

TEST(HttpPolicy, HostOfStripsPortBracketsCaseAndTrailingDot) {
  EXPECT_EQ(host_of("LocalHost:8080"), "localhost");
  EXPECT_EQ(host_of("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(host_of("[::1]:8765"), "::1");
  EXPECT_EQ(host_of("localhost."), "localhost");
  EXPECT_EQ(host_of(" vn.example:443 "), "vn.example");
  // Malformed: empty, bare IPv6, junk port, characters no host name has.
  for (const char* bad : {"", ":80", "::1", "a:b", "x:99999999", "evil.example/path", "a b", "[::1", "[zz]:1", "x:"})
    EXPECT_EQ(host_of(bad), "") << bad;
  // A NUL inside brackets once ended the address for inet_pton and let the rest through ("[::2\0...[...]").
  using namespace std::string_literals;
  EXPECT_EQ(host_of("[::2\0junk[::]"s), "");
  EXPECT_EQ(host_of("[::1\0evil.example]:80"s), "");
  // Empty labels are malformed, not normalised: ".", "..", a leading dot, two dots anywhere.
  for (const char* bad : {".", "..", ".....", ".example", "vn..example", "localhost..", "a..:80"})
    EXPECT_EQ(host_of(bad), "") << bad;
}

TEST(HttpPolicy, OriginAuthorityNormalisesDefaultPorts) {
  EXPECT_EQ(origin_authority("http://127.0.0.1:8765"), "127.0.0.1:8765");
  EXPECT_EQ(origin_authority("http://Example.COM:80"), "example.com");
  EXPECT_EQ(origin_authority("https://example.com:443"), "example.com");
  EXPECT_EQ(origin_authority("https://example.com:80"), "example.com:80");
  EXPECT_EQ(origin_authority("http://[::1]:3000"), "[::1]:3000");
  for (const char* bad : {"null", "", "file://", "ftp://x", "http://", "http://x/path", "javascript:1", "http://x:y"})
    EXPECT_FALSE(origin_authority(bad).has_value()) << bad;
}

TEST(HttpPolicy, LoopbackAndWildcardAddresses) {
  using namespace std::string_literals;
  EXPECT_FALSE(is_loopback_host("127.0.0.1\0evil.example"s));
  EXPECT_FALSE(HostPolicy("127.0.0.1", {}).allows("[::1\0evil.example]"s));
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "LOCALHOST"}) EXPECT_TRUE(is_loopback_host(h)) << h;
  for (const char* h : {"0.0.0.0", "192.168.1.5", "evil.example", "localhost.evil.example", "128.0.0.1", "::"})
    EXPECT_FALSE(is_loopback_host(h)) << h;
  for (const char* h : {"0.0.0.0", "::", "", "[::]"}) EXPECT_TRUE(is_wildcard_host(h)) << h;
  EXPECT_FALSE(is_wildcard_host("127.0.0.1"));
}

TEST(HttpPolicy, HostPolicyRefusesRebindingNames) {
  const HostPolicy p("127.0.0.1", {"VN.example"});
  for (const char* ok : {"127.0.0.1:8765", "localhost:8765", "[::1]:8765", "vn.example", "vn.example:8765", ""})
    EXPECT_TRUE(p.allows(ok)) << ok;
  // A page whose name was rebound to 127.0.0.1 sends its own name; malformed values never pass.
  for (const char* bad : {"evil.example", "evil.example:8765", "127.0.0.1.evil.example", "vn.example.evil", "a b"})
    EXPECT_FALSE(p.allows(bad)) << bad;

  const HostPolicy lan("192.168.7.9", {});
  EXPECT_TRUE(lan.allows("192.168.7.9:8765"));
  EXPECT_FALSE(lan.allows("192.168.7.10:8765"));
  EXPECT_FALSE(lan.allows("evil.example"));
}

TEST(HttpPolicy, WildcardBindAcceptsEveryLocalAddressButNoStrangeName) {
  const HostPolicy any("0.0.0.0", {});
  EXPECT_TRUE(any.allows("127.0.0.1:1"));
  EXPECT_TRUE(any.allows("localhost"));
  EXPECT_FALSE(any.allows("evil.example"));
  EXPECT_FALSE(any.allows("203.0.113.77"));  // TEST-NET-3: no interface of a test machine has it
}

TEST(HttpPolicy, SameOriginComparesHostAndPort) {
  EXPECT_TRUE(is_same_origin("http://127.0.0.1:8765", "127.0.0.1:8765"));
  EXPECT_TRUE(is_same_origin("http://LOCALHOST:8765", "localhost:8765"));
  EXPECT_TRUE(is_same_origin("https://vn.example", "vn.example"));      // behind a TLS proxy
  EXPECT_TRUE(is_same_origin("https://vn.example", "vn.example:443"));
  EXPECT_TRUE(is_same_origin("http://[::1]:8765", "[::1]:8765"));
  EXPECT_FALSE(is_same_origin("http://evil.example", "127.0.0.1:8765"));
  EXPECT_FALSE(is_same_origin("http://127.0.0.1:9999", "127.0.0.1:8765"));  // another local app
  EXPECT_FALSE(is_same_origin("http://localhost:8765", "127.0.0.1:8765"));
  EXPECT_FALSE(is_same_origin("null", "127.0.0.1:8765"));
  EXPECT_FALSE(is_same_origin("http://127.0.0.1:8765", ""));
  // The trailing dot of the absolute form, on either side.
  EXPECT_TRUE(is_same_origin("http://localhost.:8765", "localhost:8765"));
  EXPECT_TRUE(is_same_origin("http://localhost:8765", "localhost.:8765"));
  // An origin always matches the Host header that names its own normalised authority (fuzz_http_policy's
  // invariant; "http://....." once normalised to "...." and then to "...").
  for (const char* origin : {"http://localhost.:8765", "https://Vn.Example.", "http://[::1]:80", "http://a-b.c_d:1"}) {
    const auto a = origin_authority(origin);
    ASSERT_TRUE(a.has_value()) << origin;
    EXPECT_TRUE(is_same_origin(origin, *a)) << origin;
  }
  EXPECT_FALSE(origin_authority("http://.....").has_value());
}

TEST(HttpPolicy, SecretEqualsIsExact) {
  EXPECT_TRUE(secret_equals("sesame", "sesame"));
  EXPECT_TRUE(secret_equals("", ""));
  EXPECT_FALSE(secret_equals("", "sesame"));
  EXPECT_FALSE(secret_equals("sesam", "sesame"));
  EXPECT_FALSE(secret_equals("sesamee", "sesame"));
  EXPECT_FALSE(secret_equals("Sesame", "sesame"));
  EXPECT_FALSE(secret_equals(std::string("sesame\0", 7), "sesame"));
}

TEST(HttpPolicy, RandomTokensAreLongHexAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    const std::string t = random_token();
    ASSERT_EQ(t.size(), 64u);
    EXPECT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos) << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 16u);
}

TEST(HttpPolicy, CookieValueAndJsonContentType) {
  EXPECT_EQ(cookie_value("a=1; fabula_8765=tok; b=2", "fabula_8765"), "tok");
  EXPECT_EQ(cookie_value("fabula_8765=tok", "fabula_8765"), "tok");
  EXPECT_EQ(cookie_value("xfabula_8765=no; fabula_87650=no", "fabula_8765"), "");
  EXPECT_EQ(cookie_value("", "fabula_8765"), "");
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  for (const char* no : {"text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "application/jsonx", "text/plain; application/json"})
    EXPECT_FALSE(is_json_content_type(no)) << no;
}

}  // namespace
}  // namespace fabula::server
