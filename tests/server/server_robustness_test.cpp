// Hostile and unlucky clients: bad JSON and types, huge bodies, trickled bytes, disconnects, API key, CORS, Host,
// loading.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include "server_test_util.h"

namespace fabula::server_test {
namespace {

int connect_raw(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

bool send_all(int fd, const std::string& s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }

std::string recv_some(int fd, size_t at_least) {
  std::string out;
  char buf[4096];
  while (out.size() < at_least) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

double metric(httplib::Client& c, const std::string& name) {
  auto m = c.Get("/metrics");
  if (!m) return -1;
  const size_t at = m->body.find("\nllamacpp:" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(m->body.substr(at + 11 + name.size()));
}

class ServerRobust : public DemoServerSuite<ServerRobust> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_parallel = 2;
    o.n_ctx = 4096;
    o.n_threads = 2;
    o.max_body = 64 * 1024;
    o.read_timeout_s = 2;
    o.api_key = "sesame";
    o.cors_origins = {"*"};  // allowed because of the key
    return o;
  }

 protected:
  httplib::Client client() {
    auto c = rs_->client();
    c.set_bearer_token_auth("sesame");
    return c;
  }
  // Sends a raw body to `path`; returns (status, parsed JSON error).
  std::pair<int, json> post_raw(const std::string& path, const std::string& body) {
    auto c = client();
    auto res = c.Post(path.c_str(), body, "application/json");
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
};

TEST_F(ServerRobust, MalformedJsonAndWrongTypesAre400WithTheField) {
  struct Case {
    const char* path;
    const char* body;
    const char* mention;
  };
  const Case cases[] = {
      {"/completion", "{\"prompt\": \"x\"", "not valid JSON"},
      {"/completion", "[1, 2, 3]", "JSON object"},
      {"/completion", "{}", "prompt"},
      {"/completion", "{\"prompt\": 5}", "prompt"},
      {"/completion", "{\"prompt\": [1, {\"a\": 1}]}", "prompt[1]"},
      {"/completion", "{\"prompt\": [1, -4]}", "outside the vocabulary"},
      {"/completion", "{\"prompt\": \"x\", \"temperature\": \"hot\"}", "temperature"},
      {"/completion", "{\"prompt\": \"x\", \"n_predict\": 1.5}", "n_predict"},
      {"/completion", "{\"prompt\": \"x\", \"n_predict\": -7}", "n_predict"},
      {"/completion", "{\"prompt\": \"x\", \"stop\": \"END\"}", "stop"},
      {"/completion", "{\"prompt\": \"x\", \"stop\": [1]}", "stop[0]"},
      {"/completion", "{\"prompt\": \"x\", \"stream\": \"yes\"}", "stream"},
      {"/completion", "{\"prompt\": \"x\", \"logit_bias\": 3}", "logit_bias"},
      {"/completion", "{\"prompt\": \"x\", \"logit_bias\": [[1]]}", "logit_bias"},
      {"/completion", "{\"prompt\": \"x\", \"logit_bias\": {\"5\": \"big\"}}", "logit_bias"},
      {"/completion", "{\"prompt\": []}", "empty"},
      {"/v1/chat/completions", "{\"messages\": []}", "messages"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": 3}]}", "role"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"pirate\", \"content\": \"arr\"}]}", "pirate"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 7}]}", "content"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chat_template_kwargs\": {\"enable_thinking\": 1}}", "enable_thinking"},
      {"/tokenize", "{\"content\": 12}", "content"},
      {"/detokenize", "{\"tokens\": [\"a\"]}", "tokens"},
      {"/detokenize", "{\"tokens\": [99999999]}", "tokens"},
  };
  for (const Case& c : cases) {
    auto [status, j] = post_raw(c.path, c.body);
    EXPECT_EQ(status, 400) << c.path << " " << c.body;
    ASSERT_TRUE(j.is_object() && j.contains("error")) << c.body;
    EXPECT_EQ(j["error"]["code"], 400);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << c.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.mention), std::string::npos)
        << c.body << " -> " << j["error"]["message"];
  }
  auto c = client();
  auto nf = c.Get("/nope");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(json::parse(nf->body)["error"]["type"], "not_found_error");
  auto tools = post_raw("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]})");
  EXPECT_EQ(tools.first, 501);
}

TEST_F(ServerRobust, HugeBodyIs413AndTheServerCarriesOn) {
  const std::string big = "{\"prompt\": \"" + std::string(200 * 1024, 'a') + "\"}";
  auto [status, j] = post_raw("/completion", big);
  EXPECT_EQ(status, 413);
  if (j.is_object()) {
    EXPECT_EQ(j["error"]["code"], 413);
  }
  auto c = client();
  json ok = post_json(c, "/completion", json{{"prompt", "Hello"}, {"n_predict", 2}, {"temperature", 0}});
  EXPECT_EQ(ok["tokens_predicted"].get<int>() >= 1, true);
}

TEST_F(ServerRobust, TricklingClientDoesNotBlockOthers) {
  const int fd = connect_raw(rs_->port);
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt": "Hello there, Sakura", "n_predict": 2})";
  ASSERT_TRUE(send_all(fd, "POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sesame\r\nContent-Type: application/json\r\n"
                           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  // A byte at a time, while others are served.
  auto c = client();
  for (size_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(send_all(fd, body.substr(i, 1)));
    json r = post_json(c, "/completion", json{{"prompt", "Good morning"}, {"n_predict", 2}, {"temperature", 0}});
    EXPECT_TRUE(r.contains("content")) << r.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Then it stalls: the read timeout (2 s) ends the connection (closed, or a 4xx), and nothing else suffers.
  const std::string reply = recv_some(fd, 1);
  if (!reply.empty()) {
    EXPECT_EQ(reply.rfind("HTTP/1.1 4", 0), 0u) << reply.substr(0, 40);
  }
  ::close(fd);
  json r = post_json(c, "/completion", json{{"prompt", "Good evening"}, {"n_predict", 2}});
  EXPECT_TRUE(r.contains("content"));
}

TEST_F(ServerRobust, AbruptDisconnectCancelsGenerationAndFreesTheSlot) {
  auto c = client();
  const double cancelled_before = metric(c, "requests_cancelled_total");
  for (int round = 0; round < 2; ++round) {
    const int fd = connect_raw(rs_->port);
    ASSERT_GE(fd, 0);
    const std::string body = R"({"prompt": "Once upon a time", "n_predict": 3000, "ignore_eos": true, "stream": true})";
    ASSERT_TRUE(send_all(fd, "POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sesame\r\nContent-Type: application/json\r\n"
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    const std::string first = recv_some(fd, 300);  // headers and a few events
    EXPECT_NE(first.find("data: "), std::string::npos);
    ::close(fd);  // gone mid-stream
  }
  // Both slots must come free again: poll the metrics (generous bound; no timing assertion on how fast).
  double cancelled = cancelled_before;
  for (int i = 0; i < 300 && cancelled < cancelled_before + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancelled = metric(c, "requests_cancelled_total");
  }
  EXPECT_GE(cancelled, cancelled_before + 2);
  EXPECT_EQ(metric(c, "requests_processing"), 0);
  json r = post_json(c, "/completion", json{{"prompt", "Still here?"}, {"n_predict", 3}, {"temperature", 0}});
  EXPECT_TRUE(r.contains("content"));
}

TEST_F(ServerRobust, ApiKeyAndCors) {
  auto open = rs_->client();  // no key
  auto h = open.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto p = open.Get("/props");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 401);
  json e = json::parse(p->body);
  EXPECT_EQ(e["error"]["type"], "authentication_error");
  EXPECT_EQ(e["error"]["code"], 401);
  auto comp = open.Post("/completion", R"({"prompt":"x"})", "application/json");
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->status, 401);
  open.set_bearer_token_auth("wrong");
  EXPECT_EQ(open.Get("/props")->status, 401);
  httplib::Headers xkey{{"X-Api-Key", "sesame"}};
  auto ok = rs_->client().Get("/props", xkey);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), "*");
  auto pre = rs_->client().Options("/v1/chat/completions", httplib::Headers{{"Origin", "http://example.com"},
                                                                          {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "*");
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
}

// Default flags: no CORS header for anyone, other web pages refused, rebinding Host names refused.
class ServerDefaults : public DemoServerSuite<ServerDefaults> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_threads = 2;
    return o;
  }
};

TEST_F(ServerDefaults, NoCorsHeaderAndForeignPagesRefused) {
  auto c = rs_->client();
  for (const char* path : {"/health", "/props", "/v1/models"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin")) << path;
  }
  // A page elsewhere: a no-preflight text/plain POST, a fetch, a preflight. None gets through or a CORS header.
  const httplib::Headers evil{{"Origin", "http://evil.example"}};
  auto post = c.Post("/completion", evil, R"({"prompt":"Hello","n_predict":4})", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 403);
  EXPECT_FALSE(post->has_header("Access-Control-Allow-Origin"));
  EXPECT_NE(json::parse(post->body)["error"]["message"].get<std::string>().find("--cors-origin"), std::string::npos);
  auto get = c.Get("/props", evil);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 403);
  auto pre = c.Options("/v1/chat/completions", httplib::Headers{{"Origin", "http://evil.example"},
                                                                {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 403);
  EXPECT_FALSE(pre->has_header("Access-Control-Allow-Origin"));
  // Same-origin pages (the server's own address) are fine.
  auto own = c.Get("/props", httplib::Headers{{"Origin", "http://127.0.0.1:" + std::to_string(rs_->port)}});
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
}

TEST_F(ServerDefaults, RebindingHostIs421) {
  auto c = rs_->client();
  for (const char* host : {"evil.example", "evil.example:8080", "localhost.evil.example"}) {
    auto r = c.Get("/props", httplib::Headers{{"Host", host}});
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 421) << host;
    EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("--allow-host"), std::string::npos);
  }
  auto local = c.Get("/props", httplib::Headers{{"Host", "localhost:" + std::to_string(rs_->port)}});
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
}

// --cors-origin lists the pages that may call the API; each gets its own origin back, nobody else gets one.
class ServerCorsListed : public DemoServerSuite<ServerCorsListed> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_threads = 2;
    o.cors_origins = {"http://localhost:3000", "https://vn.example"};
    o.allowed_hosts = {"llm.example"};
    return o;
  }
};

TEST_F(ServerCorsListed, ListedOriginsGetTheirOwnOriginBack) {
  auto c = rs_->client();
  for (const char* origin : {"http://localhost:3000", "https://vn.example"}) {
    auto r = c.Get("/props", httplib::Headers{{"Origin", origin}});
    ASSERT_TRUE(r) << origin;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), origin);
    EXPECT_EQ(r->get_header_value("Vary"), "Origin");
    auto pre = c.Options("/completion", httplib::Headers{{"Origin", origin}, {"Access-Control-Request-Method", "POST"}});
    ASSERT_TRUE(pre);
    EXPECT_EQ(pre->status, 204);
    EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), origin);
  }
  auto other = c.Get("/props", httplib::Headers{{"Origin", "http://localhost:3001"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 403);
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  auto named = c.Get("/props", httplib::Headers{{"Host", "llm.example"}});
  ASSERT_TRUE(named);
  EXPECT_EQ(named->status, 200);
}

TEST(ServerOptionsCheck, UnsafeCombinationsAreRefusedWithTheFlag) {
  struct Case {
    std::function<void(server::ServerOptions&)> set;
    const char* mention;
  };
  const Case cases[] = {
      {[](server::ServerOptions& o) { o.cors_origins = {"*"}; }, "--api-key"},
      {[](server::ServerOptions& o) { o.cors_origins = {"localhost:3000"}; }, "--cors-origin"},
      {[](server::ServerOptions& o) { o.ssl_cert = "cert.pem"; }, "--ssl-key"},
      {[](server::ServerOptions& o) {
         o.ssl_cert = "/nonexistent/cert.pem";
         o.ssl_key = "/nonexistent/key.pem";
       },
       "--ssl-cert"},
  };
  for (const Case& c : cases) {
    server::ServerOptions o;
    o.model_path = demo_model();
    o.host = "127.0.0.1";
    o.port = 0;
    c.set(o);
    server::Server srv(o);
    auto port = srv.start();
    ASSERT_FALSE(port.ok()) << c.mention;
    EXPECT_NE(port.error().message.find(c.mention), std::string::npos) << port.error().message;
  }
}

// The model path is a FIFO: opening it blocks, so the server is deterministically "loading" until we write to it;
// what we write is not a GGUF, so loading then fails.
TEST(ServerLoading, ListensWhileLoadingThenReportsTheFailure) {
  const std::string fifo = ::testing::TempDir() + "fabula_fifo_" + std::to_string(::getpid()) + ".gguf";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  server::ServerOptions o;
  o.model_path = fifo;
  auto rs = RunningServer::start(o);
  ASSERT_NE(rs, nullptr);
  auto c = rs->client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(json::parse(h->body)["status"], "loading");
  auto p = c.Post("/completion", R"({"prompt":"x"})", "application/json");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 503);
  EXPECT_EQ(json::parse(p->body)["error"]["type"], "unavailable_error");
  const int w = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(w, 0);
  ::close(w);
  EXPECT_FALSE(rs->srv->wait_ready().ok());
  auto h2 = c.Get("/health");
  ASSERT_TRUE(h2);
  EXPECT_EQ(h2->status, 500);
  ::unlink(fifo.c_str());
}

}  // namespace
}  // namespace fabula::server_test
