// The game API (`fabula play`) against the attacks of a hostile web page and a hostile LAN client: cross-site
// POSTs, DNS rebinding, requests without the launch token; and the player's own path (token -> cookie) still works.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "server/game_api.h"

namespace fabula::server {
namespace {

using nlohmann::json;

const char* kBeat =
    "[TOOL: background name=\"classroom\"]\n[Hana]: \"Hello.\"\n[TOOL: choices choices='[\"Wave\", \"Leave\"]']\n";

class GameApiSecurity : public testing::Test {
 protected:
  void SetUp() override {
    auto s = engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    ASSERT_TRUE(s.ok());
    story_ = std::move(*s);
    auto st = engine::SaveStore::open(":memory:");
    ASSERT_TRUE(st.ok());
    store_ = std::move(*st);
    narrator_ = std::make_unique<engine::ScriptedNarrator>(std::vector<std::string>{kBeat}, engine::ScriptedOptions{});
    game_ = std::make_unique<engine::Game>(story_, *narrator_, *store_);
    ASSERT_TRUE(game_->open().ok());
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  void serve(const std::string& host = "127.0.0.1", GameServerOptions options = {}) {
    server_ = std::make_unique<GameServer>(*game_, std::string(FABULA_SOURCE_DIR) + "/web", options);
    auto port = server_->bind(host, 0);
    ASSERT_TRUE(port.ok()) << port.error().to_string();
    port_ = *port;
    thread_ = std::thread([this] { server_->run(); });
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(10, 0);
    c.set_read_timeout(30, 0);
    return c;
  }
  // A beat to save, so that a save that got through would show in the slots.
  void play_first_beat() {
    ASSERT_TRUE(game_->start().ok());
    game_->wait_idle();
    ASSERT_FALSE(game_->snapshot()["beat"].is_null()) << game_->last_error();
  }
  std::string self() const { return "127.0.0.1:" + std::to_string(port_); }
  httplib::Headers with_token(httplib::Headers h = {}) const {
    h.emplace("X-Fabula-Token", server_->token());
    return h;
  }
  static std::string error_of(const httplib::Result& r) {
    json j = json::parse(r->body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r->body;
  }

  engine::Story story_;
  std::unique_ptr<engine::SaveStore> store_;
  std::unique_ptr<engine::ScriptedNarrator> narrator_;
  std::unique_ptr<engine::Game> game_;
  std::unique_ptr<GameServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(GameApiSecurity, PlayerUrlCarriesAFreshToken) {
  serve();
  const std::string url = server_->player_url();
  EXPECT_EQ(url, "http://" + self() + "/#token=" + server_->token());
  EXPECT_EQ(server_->token().size(), 64u);
  GameServer other(*game_, std::string(FABULA_SOURCE_DIR) + "/web");
  EXPECT_NE(other.token(), server_->token());
}

TEST_F(GameApiSecurity, NoTokenIs401ButThePlayerPageLoads) {
  play_first_beat();
  serve();
  auto c = client();
  for (const char* path : {"/api/state", "/api/story", "/api/export", "/api/events", "/story/story.json"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
  }
  auto wrong = c.Get("/api/state", httplib::Headers{{"X-Fabula-Token", std::string(64, '0')}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_NE(error_of(wrong).find("#token="), std::string::npos) << error_of(wrong);
  auto save = c.Post("/api/save", R"({"name":"x"})", "application/json");
  ASSERT_TRUE(save);
  EXPECT_EQ(save->status, 401);
  EXPECT_TRUE(store_->slots(game_->session_id())->empty());
  // The page itself and its script are public: they are what asks for the token.
  for (const char* path : {"/web/index.html", "/web/player.js"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
  }
  auto ok = c.Get("/api/state", with_token());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(json::parse(ok->body).contains("status"));
}

TEST_F(GameApiSecurity, ForeignOriginPostIs403EvenWithoutPreflight) {
  play_first_beat();
  serve();
  auto c = client();
  // What any web page can send without a preflight: a text/plain POST. Refused for its Origin before all else.
  auto r = c.Post("/api/save", httplib::Headers{{"Origin", "http://evil.example"}}, R"({"name":"pwned"})", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  // Even with the token (say, leaked), another page's request is refused.
  for (const char* origin : {"http://evil.example", "http://127.0.0.1:1", "null", "http://localhost:1"}) {
    auto t = c.Post("/api/new", with_token({{"Origin", origin}}), "{}", "application/json");
    ASSERT_TRUE(t) << origin;
    EXPECT_EQ(t->status, 403) << origin;
  }
  auto site = c.Post("/api/new", with_token({{"Sec-Fetch-Site", "cross-site"}}), "{}", "application/json");
  ASSERT_TRUE(site);
  EXPECT_EQ(site->status, 403);
  EXPECT_TRUE(store_->slots(game_->session_id())->empty());
  // The player's own origin passes.
  auto mine = c.Post("/api/save", with_token({{"Origin", "http://" + self()}}), R"({"name":"mine"})", "application/json");
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->status, 200) << mine->body;
  EXPECT_EQ(store_->slots(game_->session_id())->size(), 1u);
}

TEST_F(GameApiSecurity, NonJsonPostIs415) {
  play_first_beat();
  serve();
  auto c = client();
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
    auto r = c.Post("/api/save", with_token(), R"({"name":"x"})", type);
    ASSERT_TRUE(r) << type;
    EXPECT_EQ(r->status, 415) << type;
  }
  EXPECT_TRUE(store_->slots(game_->session_id())->empty());
  auto json_ok = c.Post("/api/save", with_token(), R"({"name":"x"})", "application/json; charset=utf-8");
  ASSERT_TRUE(json_ok);
  EXPECT_EQ(json_ok->status, 200) << json_ok->body;
}

TEST_F(GameApiSecurity, RebindingHostIs421) {
  serve();
  auto c = client();
  for (const char* host : {"evil.example", "evil.example:8765", "127.0.0.1.evil.example"}) {
    auto r = c.Get("/api/state", with_token({{"Host", host}}));
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 421) << host;
    EXPECT_NE(error_of(r).find("--allow-host"), std::string::npos);
  }
  for (const std::string& host : {"localhost:" + std::to_string(port_), self()}) {
    auto r = c.Get("/api/state", with_token({{"Host", host}}));
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 200) << host;
  }
}

TEST_F(GameApiSecurity, AllowedHostNamesPass) {
  GameServerOptions o;
  o.allowed_hosts = {"vn.example"};
  serve("127.0.0.1", o);
  auto c = client();
  auto r = c.Get("/api/state", with_token({{"Host", "vn.example"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(GameApiSecurity, TokenBecomesAStrictHttpOnlyCookie) {
  serve();
  auto c = client();
  auto r = c.Post("/api/session", with_token({{"Origin", "http://" + self()}}), "{}", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string cookie = r->get_header_value("Set-Cookie");
  const std::string name = "fabula_" + std::to_string(port_);
  EXPECT_EQ(cookie.rfind(name + "=" + server_->token() + ";", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  // The cookie alone lets the player in, the event stream included.
  auto state = c.Get("/api/state", httplib::Headers{{"Cookie", name + "=" + server_->token()}});
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
  auto other_port = c.Get("/api/state", httplib::Headers{{"Cookie", "fabula_1=" + server_->token()}});
  ASSERT_TRUE(other_port);
  EXPECT_EQ(other_port->status, 401);
  // The session route without the token sets nothing.
  auto none = c.Post("/api/session", "{}", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("Set-Cookie"), "");
}

TEST_F(GameApiSecurity, GameStillPlaysWithTheToken) {
  serve();
  auto c = client();
  auto start = c.Post("/api/start", with_token(), "{}", "application/json");
  ASSERT_TRUE(start);
  EXPECT_EQ(start->status, 200) << start->body;
  game_->wait_idle();
  auto state = c.Get("/api/state", with_token());
  ASSERT_TRUE(state);
  json snap = json::parse(state->body);
  ASSERT_FALSE(snap["beat"].is_null()) << state->body;
  EXPECT_EQ(snap["beat"]["choices"], json::array({"Wave", "Leave"}));
}

TEST_F(GameApiSecurity, OffLoopbackNeedsAnAccessKey) {
  GameServer open(*game_, std::string(FABULA_SOURCE_DIR) + "/web");
  auto refused = open.bind("0.0.0.0", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--access-key"), std::string::npos) << refused.error().message;

  GameServerOptions o;
  o.access_key = "correct-horse-battery-staple";
  serve("0.0.0.0", o);
  EXPECT_EQ(server_->token(), o.access_key);
  EXPECT_EQ(server_->player_url(), "http://" + self() + "/#token=correct-horse-battery-staple");
  auto c = client();
  EXPECT_EQ(c.Get("/api/state")->status, 401);
  EXPECT_EQ(c.Get("/api/state", httplib::Headers{{"Authorization", "Bearer " + o.access_key}})->status, 200);
  EXPECT_EQ(c.Get("/api/state", with_token({{"Host", "evil.example"}}))->status, 421);
}

}  // namespace
}  // namespace fabula::server
