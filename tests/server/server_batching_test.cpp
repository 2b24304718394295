// `fabula serve --parallel 4` with continuous batching, over HTTP: concurrent requests (constrained, phrase bans,
// seeded sampling) answer what each answers alone, and /metrics reports the batches.
#include <thread>

#include "protocol/validator.h"
#include "server_test_util.h"

namespace fabula::server_test {
namespace {

class ServerBatching : public DemoServerSuite<ServerBatching> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_parallel = 4;
    o.n_ctx = 1024;
    o.n_threads = 2;
    o.n_batch = 24;  // small: prompts are chunked between the others' tokens
    o.n_ubatch = 16;
    return o;
  }
};

double metric_value(const std::string& body, const std::string& name) {
  const std::string key = "\nllamacpp:" + name + " ";
  const size_t at = body.find(key);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no metric " << name;
    return 0;
  }
  return std::stod(body.substr(at + key.size()));
}

TEST_F(ServerBatching, ConcurrentRequestsAnswerWhatEachAnswersAlone) {
  const std::string scene =
      "<bos><|turn>user\nCast: Hana, Mio. Place: rooftop. Time: after school.\nThe player chose: \"Look around\".\n"
      "Write the next beat.<turn|>\n<|turn>model\n";
  std::vector<json> bodies = {
      json{{"prompt", scene}, {"vn_protocol", true}, {"vn_cast", {"Hana", "Mio"}}, {"temperature", 1.2}, {"seed", 5},
           {"n_predict", 200}},
      json{{"prompt", "The rain over Sakuragaoka"}, {"temperature", 0.9}, {"seed", 11}, {"n_predict", 48},
           {"banned_phrases", {"the", "and"}}},
      json{{"prompt", "Mika opened the door of the club room and saw"}, {"temperature", 0}, {"n_predict", 40}},
      json{{"prompt", "Once"}, {"temperature", 1.0}, {"seed", 3}, {"n_predict", 40}, {"ignore_eos", true}}};
  for (json& b : bodies) b["cache_prompt"] = false;

  std::vector<json> together(bodies.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < bodies.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = rs_->client();
      together[i] = post_json(c, "/completion", bodies[i]);
    });
  }
  for (auto& t : threads) t.join();
  auto c = rs_->client();
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_GT(metric_value(m->body, "batch_size_avg"), 1.0) << "the four requests never shared a step";
  EXPECT_LE(metric_value(m->body, "tokens_per_step_avg"), 24.0);
  EXPECT_GT(metric_value(m->body, "batch_steps_total"), 0.0);
  EXPECT_GE(metric_value(m->body, "queue_waits_total"), 4.0);
  EXPECT_GE(metric_value(m->body, "queue_wait_seconds_avg"), 0.0);
  EXPECT_NE(m->body.find("llamacpp:batch_size "), std::string::npos);
  EXPECT_NE(m->body.find("llamacpp:tokens_per_step "), std::string::npos);

  for (size_t i = 0; i < bodies.size(); ++i) {
    const json alone = post_json(c, "/completion", bodies[i]);
    ASSERT_TRUE(together[i].contains("content")) << together[i].dump();
    EXPECT_EQ(together[i]["content"], alone["content"]) << "request " << i;
    EXPECT_EQ(together[i]["stop_type"], alone["stop_type"]) << "request " << i;
  }
  protocol::ValidateOptions vo;
  vo.locked_cast = {"Hana", "Mio"};
  auto rep = protocol::validate_beat(together[0]["content"].get<std::string>(), protocol::Manifest::default_manifest(), vo);
  EXPECT_TRUE(rep.valid) << together[0]["content"].get<std::string>();
  const std::string banned_out = together[1]["content"].get<std::string>();
  EXPECT_EQ(banned_out.find(" the "), std::string::npos) << banned_out;
}

}  // namespace
}  // namespace fabula::server_test
