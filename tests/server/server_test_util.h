// Helpers for the server tests: the demo model path, one in-process server per suite, HTTP and SSE helpers.
#pragma once

#include <httplib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/server.h"

namespace fabula::server_test {

using nlohmann::json;

inline std::string demo_model() { return std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf"; }
inline bool have_demo_model() { return std::filesystem::exists(demo_model()); }

#define FABULA_REQUIRE_DEMO_MODEL()                                                                         \
  if (!::fabula::server_test::have_demo_model())                                                            \
  FAIL() << "models/fabula-demo-v1.gguf is missing (it is committed with the repository; or run "     \
                  "`fabula convert` on the demo narrator)"

// A server on a free loopback port with the demo model, started once per test suite.
struct RunningServer {
  std::unique_ptr<server::Server> srv;
  int port = 0;

  static std::unique_ptr<RunningServer> start(server::ServerOptions o) {
    auto rs = std::make_unique<RunningServer>();
    if (o.model_path.empty()) o.model_path = demo_model();
    o.host = "127.0.0.1";
    o.port = 0;
    rs->srv = std::make_unique<server::Server>(o);
    auto port = rs->srv->start();
    EXPECT_TRUE(port.ok()) << (port.ok() ? "" : port.error().to_string());
    if (!port.ok()) return nullptr;
    rs->port = *port;
    return rs;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }
};

// One running server on the demo model shared by a whole test suite (CRTP: Suite::options() gives its settings).
// Tests skip without the demo model and fail if the server did not start.
template <typename Suite>
class DemoServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_demo_model()) return;
    rs_ = RunningServer::start(Suite::options()).release();
    if (rs_) {
      ASSERT_TRUE(rs_->srv->wait_ready().ok());
    }
  }
  static void TearDownTestSuite() {
    delete rs_;
    rs_ = nullptr;
  }
  void SetUp() override {
    FABULA_REQUIRE_DEMO_MODEL();
    ASSERT_NE(rs_, nullptr);
  }
  static inline RunningServer* rs_ = nullptr;
};

inline json post_json(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    ADD_FAILURE() << "POST " << path << ": " << httplib::to_string(res.error());
    return json();
  }
  if (status) *status = res->status;
  json j = json::parse(res->body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << path << " returned non-JSON: " << res->body;
  return j;
}

// The `data:` payloads of an SSE body, in order ("[DONE]" kept as a string).
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    std::string event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

// Runs a streaming POST, returns the SSE data payloads.
inline std::vector<std::string> post_stream(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  std::string acc;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    acc.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool ok = c.send(req, res, err);
  EXPECT_TRUE(ok) << "POST " << path << ": " << httplib::to_string(err);
  if (status) *status = res.status;
  if (acc.empty()) acc = res.body;
  return sse_payloads(acc);
}

}  // namespace fabula::server_test
