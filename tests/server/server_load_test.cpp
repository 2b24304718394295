// Bounded load: concurrent clients x short requests against one server; zero errors, latency percentiles printed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "server_test_util.h"

namespace fabula::server_test {
namespace {

struct LoadFigures {
  int errors = 0;
  std::vector<double> latency_ms;
  double wall_s = 0;
  double kind_total_ms[3] = {0, 0, 0};  // completion, chat, chat stream
};

LoadFigures run_load(int port, int n_clients, int n_requests, int n_predict) {
  LoadFigures f;
  std::mutex mu;
  std::atomic<int> errors{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int ci = 0; ci < n_clients; ++ci) {
    clients.emplace_back([&, ci] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(120, 0);
      c.set_tcp_nodelay(true);
      std::vector<double> lat;
      double kind_ms[3] = {0, 0, 0};
      for (int i = 0; i < n_requests; ++i) {
        // Alternate the three request kinds; half the prompts repeat (prefix cache), half differ.
        const std::string user = "Client " + std::to_string(ci) + " beat " + std::to_string(i % 2 == 0 ? 0 : i);
        const auto t = std::chrono::steady_clock::now();
        bool ok = false;
        if (i % 3 == 0) {
          auto res = c.Post("/completion", json{{"prompt", user}, {"n_predict", n_predict}, {"seed", i}}.dump(), "application/json");
          ok = res && res->status == 200 && json::parse(res->body, nullptr, false).contains("content");
        } else if (i % 3 == 1) {
          auto res = c.Post("/v1/chat/completions",
                            json{{"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", n_predict}, {"seed", i}}.dump(),
                            "application/json");
          ok = res && res->status == 200 && json::parse(res->body, nullptr, false).contains("choices");
        } else {
          std::string acc;
          httplib::Request req;
          req.method = "POST";
          req.path = "/v1/chat/completions";
          req.body = json{{"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", n_predict}, {"stream", true}}.dump();
          req.set_header("Content-Type", "application/json");
          req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
            acc.append(d, n);
            return true;
          };
          httplib::Response res;
          httplib::Error err;
          ok = c.send(req, res, err) && res.status == 200 && acc.size() >= 14 && acc.substr(acc.size() - 14) == "data: [DONE]\n\n";
        }
        lat.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
        kind_ms[i % 3] += lat.back();
        if (!ok) errors++;
      }
      std::lock_guard lk(mu);
      f.latency_ms.insert(f.latency_ms.end(), lat.begin(), lat.end());
      for (int k = 0; k < 3; ++k) f.kind_total_ms[k] += kind_ms[k];
    });
  }
  for (auto& t : clients) t.join();
  f.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  f.errors = errors;
  std::sort(f.latency_ms.begin(), f.latency_ms.end());
  return f;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[i];
}

void print_figures(const char* name, const LoadFigures& f) {
  std::printf("%s: %zu requests in %.2f s (%.1f req/s), errors %d, latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f\n", name,
              f.latency_ms.size(), f.wall_s, static_cast<double>(f.latency_ms.size()) / f.wall_s, f.errors,
              percentile(f.latency_ms, 50), percentile(f.latency_ms, 90), percentile(f.latency_ms, 99),
              f.latency_ms.empty() ? 0 : f.latency_ms.back());
  const double n = static_cast<double>(f.latency_ms.size()) / 3;
  std::printf("  mean ms by kind: /completion %.1f, chat %.1f, chat stream %.1f\n", f.kind_total_ms[0] / n,
              f.kind_total_ms[1] / n, f.kind_total_ms[2] / n);
}

void load_test(int n_parallel, int n_clients, int n_requests, int n_predict, const char* name) {
  server::ServerOptions o;
  o.n_parallel = n_parallel;
  o.n_ctx = 512;
  o.n_threads = 2;
  auto rs = RunningServer::start(o);
  ASSERT_NE(rs, nullptr);
  ASSERT_TRUE(rs->srv->wait_ready().ok());
  LoadFigures f = run_load(rs->port, n_clients, n_requests, n_predict);
  print_figures(name, f);
  EXPECT_EQ(f.errors, 0);
  EXPECT_EQ(f.latency_ms.size(), static_cast<size_t>(n_clients * n_requests));
  auto c = rs->client();
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("llamacpp:requests_total " + std::to_string(n_clients * n_requests)), std::string::npos);
  EXPECT_NE(m->body.find("llamacpp:requests_processing 0"), std::string::npos);
}

TEST(ServerLoad, FourClientsFiftyShortRequests) {
  FABULA_REQUIRE_DEMO_MODEL();
  load_test(2, 4, 50, 4, "load 4x50 (2 slots, n_predict 4)");
}

TEST(ServerLoadSlow, EightClientsTwoHundredRequests) {
  FABULA_REQUIRE_DEMO_MODEL();
  load_test(4, 8, 200, 16, "load 8x200 (4 slots, n_predict 16)");
}

}  // namespace
}  // namespace fabula::server_test
