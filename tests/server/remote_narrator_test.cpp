// RemoteNarrator against a scripted in-test httplib server (reasoning-channel edge cases, retries, cancel, API key)
// and against `fabula serve` itself (both APIs).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "backend/narrators.h"
#include "backend/remote_narrator.h"
#include "server_test_util.h"

namespace fabula::server_test {
namespace {

using backend::RemoteApi;
using backend::RemoteNarrator;
using backend::RemoteOptions;

// A scripted llama-server / OpenAI server on a free port.
class FakeServer {
 public:
  std::atomic<int> completion_calls{0};
  std::atomic<int> fail_first{0};  // answer 503 this many times
  std::string last_auth;
  std::vector<std::string> completion_chunks;  // /completion content pieces
  std::vector<std::string> chat_chunks;        // chat delta contents
  bool has_props = true;
  // What llama-server's /props reports: the model's chat template (here a Gemma 4 one) and its eos token.
  json props = {{"chat_template", "{{ bos_token }}{% for m in messages %}<|turn>{{ m.role }}\n{{ m.content | trim }}"
                                  "<turn|>\n{% endfor %}<|turn>model\n<|channel>thought\n<channel|>"},
                {"eos_token", "<eos>"}};
  json last_completion;  // the last /completion request body

  FakeServer() {
    http_.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
      if (has_props) res.set_content(props.dump(), "application/json");
      else res.status = 404;
    });
    http_.Post("/completion", [this](const httplib::Request& req, httplib::Response& res) {
      last_auth = req.get_header_value("Authorization");
      last_completion = json::parse(req.body, nullptr, false);
      if (completion_calls++ < fail_first) {
        res.status = 503;
        res.set_content(R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})", "application/json");
        return;
      }
      std::string body;
      for (const auto& c : completion_chunks) body += "data: " + json{{"content", c}, {"stop", false}}.dump() + "\n\n";
      body += ": ping\n\n";
      body += "data: " + json{{"content", ""}, {"stop", true}, {"stop_type", "eos"}, {"tokens_predicted", 9}}.dump() + "\n\n";
      res.set_content(body, "text/event-stream");
    });
    http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      last_auth = req.get_header_value("Authorization");
      json b = json::parse(req.body);
      std::string body;
      body += "data: " + json{{"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}}}}}}}.dump() + "\n\n";
      body += "data: " + json{{"choices", {{{"index", 0}, {"delta", {{"reasoning_content", "secret"}}}}}}}.dump() + "\n\n";
      for (const auto& c : chat_chunks)
        body += "data: " + json{{"choices", {{{"index", 0}, {"delta", {{"content", c}}}, {"finish_reason", nullptr}}}}}.dump() + "\r\n\r\n";
      body += "data: " + json{{"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "length"}}}},
                              {"usage", {{"completion_tokens", 5}}}}.dump() + "\n\n";
      body += "data: [DONE]\n\n";
      res.set_content(body, "text/event-stream");
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~FakeServer() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

engine::NarratorRequest beat_request() {
  engine::NarratorRequest r;
  r.messages = {{"user", "Go."}};
  r.sampling.max_tokens = 16;
  r.seed = 3;
  return r;
}

TEST(RemoteNarrator, CompletionStreamWithChannelEdgeCases) {
  FakeServer fake;
  fake.completion_chunks = {"<channel|>", "<|chan", "nel>thought\nI should", " be brief<channel", "|>[Sakura]: ", "\"Hello.\""};
  RemoteOptions o;
  o.url = fake.url();
  o.api_key = "k123";
  RemoteNarrator n(o);
  std::string streamed;
  auto r = n.write(beat_request(), [&](std::string_view t) {
    EXPECT_EQ(t.find("channel"), std::string_view::npos) << t;
    streamed += t;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(n.api(), RemoteApi::kCompletion);
  EXPECT_EQ(r->text, "[Sakura]: \"Hello.\"");
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->stop_reason, "eos");
  EXPECT_EQ(r->tokens, 9);
  EXPECT_EQ(fake.last_auth, "Bearer k123");
  // The raw prompt is the messages through the template /props reported; the stops are its end of turn and eos.
  EXPECT_EQ(fake.last_completion["prompt"], "<bos><|turn>user\nGo.<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  EXPECT_EQ(fake.last_completion["stop"], json::array({"<turn|>", "<eos>"}));
}

TEST(RemoteNarrator, CompletionUsesTheServersTemplateFamily) {
  FakeServer fake;
  fake.props = {{"chat_template", "{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' }}"}, {"eos_token", "<eos>"}};
  fake.completion_chunks = {"Hi."};
  RemoteNarrator n(fake.url());
  engine::NarratorRequest req = beat_request();
  req.messages = {{"system", "Be brief."}, {"user", "Go."}};
  req.sampling.stop = {"THE END"};
  auto r = n.write(req, [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(n.api(), RemoteApi::kCompletion);
  EXPECT_EQ(fake.last_completion["prompt"], "<bos><start_of_turn>user\nBe brief.\n\nGo.<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(fake.last_completion["stop"], json::array({"THE END", "<end_of_turn>", "<eos>"}));
}

TEST(RemoteNarrator, PropsWithoutAChatTemplateMeansTheChatApi) {
  FakeServer fake;
  fake.props = json::object();  // answers /props but reports no template: the prompt cannot be rendered here
  fake.chat_chunks = {"Hana waves."};
  RemoteNarrator n(fake.url());
  auto r = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(n.api(), RemoteApi::kChat);
  EXPECT_EQ(r->text, "Hana waves.");
  EXPECT_EQ(fake.completion_calls.load(), 0);

  RemoteOptions o;  // asked for /completion explicitly: a clear error instead of a guessed template
  o.url = fake.url();
  o.api = RemoteApi::kCompletion;
  RemoteNarrator forced(o);
  auto e = forced.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(e.error().message.find("chat template"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("/v1"), std::string::npos) << e.error().message;
}

TEST(RemoteNarrator, ChatStreamIgnoresReasoningAndStopsAtDone) {
  FakeServer fake;
  fake.has_props = false;  // auto-detect falls back to the OpenAI API
  fake.chat_chunks = {"<|channel>thought\n", "<channel|>", "Hana smiles", "."};
  RemoteOptions o;
  o.url = fake.url();
  RemoteNarrator n(o);
  auto r = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(n.api(), RemoteApi::kChat);
  EXPECT_EQ(r->text, "Hana smiles.");
  EXPECT_EQ(r->stop_reason, "length");
  EXPECT_EQ(r->tokens, 5);
}

TEST(RemoteNarrator, WholeReplyInsideAnUnclosedChannelFallsBackToItsText) {
  FakeServer fake;
  fake.completion_chunks = {"<|channel>thought\n", "[Ren]: \"Fine.\""};
  RemoteNarrator n(fake.url());
  auto r = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "[Ren]: \"Fine.\"");
}

TEST(RemoteNarrator, RetriesServerErrorsWithBackoff) {
  FakeServer fake;
  fake.fail_first = 2;
  fake.completion_chunks = {"ok"};
  RemoteOptions o;
  o.url = fake.url();
  o.api = RemoteApi::kCompletion;
  o.backoff_ms = 10;
  RemoteNarrator n(o);
  auto r = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->text, "ok");
  EXPECT_EQ(fake.completion_calls.load(), 3);
  fake.fail_first = 100;
  fake.completion_calls = 0;
  auto bad = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("503"), std::string::npos) << bad.error().message;
  EXPECT_EQ(fake.completion_calls.load(), 1 + o.max_retries);
}

TEST(RemoteNarrator, ConnectErrorsFailAfterRetries) {
  // A port that was free a moment ago and now has nothing bound to it.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  RemoteOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.api = RemoteApi::kCompletion;
  o.backoff_ms = 5;
  o.max_retries = 2;
  RemoteNarrator n(o);
  auto r = n.write(beat_request(), [](std::string_view) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
}

TEST(RemoteNarrator, CallbackCancels) {
  FakeServer fake;
  fake.completion_chunks = {"one ", "two ", "three"};
  RemoteNarrator n(fake.url());
  int calls = 0;
  auto r = n.write(beat_request(), [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_EQ(r->stop_reason, "cancelled");
  EXPECT_EQ(r->text, "one two ");
}

class RemoteAgainstServe : public DemoServerSuite<RemoteAgainstServe> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_ctx = 1024;
    o.n_threads = 2;
    o.api_key = "secret";
    return o;
  }
};

TEST_F(RemoteAgainstServe, BothApisStreamTheSameBeat) {
  engine::NarratorRequest req;
  req.messages = {{"system", "You narrate a slice-of-life visual novel. Use only the listed cast. Drive the stage with [TOOL: ...] lines."},
                  {"user", "Sakura arrives late."}};
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 20;
  req.seed = 1;

  RemoteOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(rs_->port);
  o.api_key = "secret";
  o.max_retries = 8;
  RemoteNarrator completion(o);
  std::string streamed;
  auto a = completion.write(req, [&](std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(completion.api(), RemoteApi::kCompletion);
  EXPECT_FALSE(a->text.empty());
  EXPECT_EQ(streamed, a->text);
  EXPECT_GT(a->tokens, 0);

  o.url += "/v1";
  RemoteNarrator chat(o);
  auto b = chat.write(req, [](std::string_view) { return true; });
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(chat.api(), RemoteApi::kChat);
  // Greedy: /completion with the prompt rendered from /props's template and the server's own chat rendering
  // give the same text.
  EXPECT_EQ(b->text, a->text);

  o.api_key = "wrong";
  RemoteNarrator denied(o);
  auto d = denied.write(req, [](std::string_view) { return true; });
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("401"), std::string::npos) << d.error().message;
}

TEST(RemoteNarrator, RefusesConstrainedDecodingAndPhraseBansInsteadOfIgnoringThem) {
  RemoteNarrator remote("http://127.0.0.1:1");  // never contacted: the request is refused first
  engine::NarratorRequest req;
  req.messages = {{"user", "Hello"}};
  req.sampling.constrained = true;
  auto r = remote.write(req, [](std::string_view) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  req.sampling.constrained = false;
  req.sampling.banned_phrases = std::make_shared<const PhraseMatcher>(std::vector<std::string>{"a b"});
  r = remote.write(req, [](std::string_view) { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
}

TEST(RemoteNarrator, EachPlayerStaysOnOneServer) {
  const std::vector<std::string> servers = {"http://a.example:8080", "http://b.example:8080"};
  for (int player = 0; player < 5; ++player) {
    auto n = backend::make_player_narrator(backend::NarratorSpec{}, servers, player);
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    const std::string want = servers[static_cast<size_t>(player) % 2];
    EXPECT_NE((*n)->describe().find(want), std::string::npos) << (*n)->describe();
  }
}

}  // namespace
}  // namespace fabula::server_test
