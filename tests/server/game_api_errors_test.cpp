// The game API answers bad requests with a status and an error naming the field: 400 for a wrong type or an
// out-of-range choice, branch or slot, 404 for an unknown slot, 409 only while a beat is being written; imports
// are all or nothing and export -> import -> export gives the same bytes.
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

class GameApiErrors : public testing::Test {
 protected:
  void SetUp() override { open_with(engine::ScriptedOptions{}); }
  void open_with(engine::ScriptedOptions options) {
    auto s = engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    ASSERT_TRUE(s.ok());
    story_ = std::move(*s);
    auto st = engine::SaveStore::open(":memory:");
    ASSERT_TRUE(st.ok());
    store_ = std::move(*st);
    options.loop = true;
    narrator_ = std::make_unique<engine::ScriptedNarrator>(std::vector<std::string>{kBeat}, options);
    game_ = std::make_unique<engine::Game>(story_, *narrator_, *store_);
    ASSERT_TRUE(game_->open().ok());
    server_ = std::make_unique<GameServer>(*game_, std::string(FABULA_SOURCE_DIR) + "/web", GameServerOptions{});
    auto port = server_->bind("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().to_string();
    port_ = *port;
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  struct Reply {
    int status = 0;
    json body;
  };
  Reply post(const std::string& path, const std::string& body) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Post(path.c_str(), httplib::Headers{{"X-Fabula-Token", server_->token()}}, body, "application/json");
    if (!r) return {};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::string get(const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get(path.c_str(), httplib::Headers{{"X-Fabula-Token", server_->token()}});
    return r ? r->body : "";
  }
  void play_first_beat() {
    ASSERT_EQ(post("/api/start", "{}").status, 200);
    game_->wait_idle();
    ASSERT_FALSE(game_->snapshot()["beat"].is_null()) << game_->last_error();
  }
  // The reply is a 400 naming `field`, and the server still answers afterwards.
  void expect_400(const Reply& r, const std::string& field) {
    EXPECT_EQ(r.status, 400) << r.body.dump();
    ASSERT_TRUE(r.body.is_object()) << "the reply is JSON";
    EXPECT_EQ(r.body.value("ok", true), false);
    EXPECT_EQ(r.body.value("field", ""), field) << r.body.dump();
    EXPECT_NE(r.body.value("error", "").find(field), std::string::npos) << r.body.dump();
    EXPECT_EQ(post("/api/regenerate", "{\"bogus\": 1}").status, 400);  // still up
  }

  engine::Story story_;
  std::unique_ptr<engine::SaveStore> store_;
  std::unique_ptr<engine::ScriptedNarrator> narrator_;
  std::unique_ptr<engine::Game> game_;
  std::unique_ptr<GameServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// Two requests that once slipped through: a string index was a 500 with an empty body; {"choice": 5} before any
// choice was open was a 200.
TEST_F(GameApiErrors, ChooseWithAStringIndexIs400NamingIndex) {
  play_first_beat();
  Reply r = post("/api/choose", R"({"index": "x"})");
  expect_400(r, "index");
  EXPECT_NE(r.body.value("error", "").find("expected an integer, got the string \"x\""), std::string::npos)
      << r.body.dump();
}

TEST_F(GameApiErrors, ChooseWithNoChoicesOpenIs400) {
  expect_400(post("/api/choose", R"({"choice": 5})"), "choice");  // not a field of /api/choose
  Reply r = post("/api/choose", R"({"index": 5})");
  expect_400(r, "index");
  EXPECT_NE(r.body.value("error", "").find("no choices are open"), std::string::npos) << r.body.dump();
  EXPECT_EQ(game_->snapshot()["beat_count"], 0);  // nothing started
}

TEST_F(GameApiErrors, OutOfRangeAndWrongTypesAre400) {
  play_first_beat();
  expect_400(post("/api/choose", R"({"index": 2})"), "index");  // the beat offers 2
  expect_400(post("/api/choose", R"({"index": -1})"), "index");
  expect_400(post("/api/choose", R"({"index": 1.5})"), "index");
  expect_400(post("/api/choose", R"({})"), "index");
  expect_400(post("/api/branch", R"({"offset": 1})"), "offset");  // no other branch
  expect_400(post("/api/branch", R"({"offset": "next"})"), "offset");
  expect_400(post("/api/rollback", R"({"beat_id": 999})"), "beat_id");
  expect_400(post("/api/rollback", R"({"beat_id": [1]})"), "beat_id");
  expect_400(post("/api/save", R"({"name": 7})"), "name");
  expect_400(post("/api/save", R"({"name": ""})"), "name");
  EXPECT_EQ(post("/api/choose", "not json").status, 400);
  EXPECT_EQ(post("/api/choose", "[1]").status, 400);
  EXPECT_EQ(post("/api/choose", R"({"index": 1})").status, 200);
  game_->wait_idle();
  EXPECT_EQ(game_->snapshot()["beat_count"], 2);
}

TEST_F(GameApiErrors, UnknownSlotIs404) {
  play_first_beat();
  Reply r = post("/api/load", R"({"name": "never saved"})");
  EXPECT_EQ(r.status, 404) << r.body.dump();
  EXPECT_NE(r.body.value("error", "").find("never saved"), std::string::npos);
  ASSERT_EQ(post("/api/save", R"({"name": "a"})").status, 200);
  EXPECT_EQ(post("/api/load", R"({"name": "a"})").status, 200);
}

TEST_F(GameApiErrors, ConflictOnlyWhileABeatIsWritten) {
  TearDown();
  engine::ScriptedOptions slow;
  slow.chunk_delay_ms = 40;  // a beat takes a while, so the requests below land while it is written
  open_with(slow);
  ASSERT_EQ(post("/api/start", "{}").status, 200);
  ASSERT_TRUE(game_->writing());
  for (const char* path : {"/api/regenerate", "/api/new"}) EXPECT_EQ(post(path, "{}").status, 409) << path;
  EXPECT_EQ(post("/api/choose", R"({"index": 0})").status, 409);
  game_->wait_idle();
  EXPECT_EQ(post("/api/choose", R"({"index": 0})").status, 200);
  game_->wait_idle();
  EXPECT_EQ(post("/api/regenerate", "{}").status, 200);
  game_->wait_idle();
}

TEST_F(GameApiErrors, ExportImportExportIsByteIdentical) {
  play_first_beat();
  ASSERT_EQ(post("/api/choose", R"({"index": 0})").status, 200);
  game_->wait_idle();
  ASSERT_EQ(post("/api/save", R"({"name": "here"})").status, 200);
  std::string first = get("/api/export");
  Reply imported = post("/api/import", first);
  ASSERT_EQ(imported.status, 200) << imported.body.dump();
  EXPECT_NE(imported.body.value("session", 0), 1);
  std::string second = get("/api/export");
  EXPECT_EQ(second, first);
}

TEST_F(GameApiErrors, AFailedImportChangesNothing) {
  play_first_beat();
  ASSERT_EQ(post("/api/choose", R"({"index": 1})").status, 200);
  game_->wait_idle();
  json doc = json::parse(get("/api/export"));
  auto sessions_before = store_->sessions()->size();
  int64_t session_before = game_->session_id();

  // A bad field in the last beat: the beats before it would have been written by a non-transactional import.
  json bad = doc;
  bad["beats"][1]["attempts"] = "two";
  Reply r = post("/api/import", bad.dump());
  EXPECT_EQ(r.status, 400) << r.body.dump();
  EXPECT_NE(r.body.value("error", "").find("beats[1].attempts"), std::string::npos) << r.body.dump();
  // A slot pointing nowhere, checked after the beats.
  bad = doc;
  bad["slots"] = json::array({{{"name", "x"}, {"beat_id", 99}}});
  EXPECT_EQ(post("/api/import", bad.dump()).status, 400);
  // Another story's save.
  bad = doc;
  bad["session"]["story"] = "another-story";
  r = post("/api/import", bad.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.value("error", "").find("session"), std::string::npos) << r.body.dump();
  EXPECT_EQ(post("/api/import", "{\"format\": \"fabula-save/1\"").status, 400);  // cut off

  EXPECT_EQ(store_->sessions()->size(), sessions_before);
  EXPECT_EQ(game_->session_id(), session_before);
}

}  // namespace
}  // namespace fabula::server
