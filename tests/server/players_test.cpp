// Several players (`fabula play --players N`): each browser gets its own game, saves and history, all sharing one
// narrator model through the batched scheduler; one player's bad requests or leaving mid-beat never touch another.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/scratch_dir.h"
#include "engine/game.h"
#include "engine/save_store.h"
#include "server/game_api.h"
#include "server/shared_narrator.h"
#include "server_test_util.h"

namespace fabula::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct OnePlayer final : PlayerGame {
  std::unique_ptr<engine::SaveStore> store;
  std::unique_ptr<engine::Narrator> narrator;
  std::unique_ptr<engine::Game> play;
  engine::Game& game() override { return *play; }
};

class Players : public testing::Test {
 protected:
  void SetUp() override {
    FABULA_REQUIRE_DEMO_MODEL();
    auto s = engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    story_ = std::make_unique<engine::Story>(std::move(*s));
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  void serve(int players) {
    SharedNarratorOptions o;
    o.players = players;
    o.n_ctx = 4096;
    o.n_threads = 2;
    auto shared = SharedNarrator::load(server_test::demo_model(), o);
    ASSERT_TRUE(shared.ok()) << shared.error().to_string();
    shared_ = std::move(*shared);
    auto factory = [this](const std::string& id) -> Result<std::unique_ptr<PlayerGame>> {
      auto p = std::make_unique<OnePlayer>();
      p->narrator = shared_->narrator_for(joined_++);
      FABULA_ASSIGN(p->store, engine::SaveStore::open((dir_ / (id + ".sqlite")).string()));
      engine::GameOptions go;
      go.engine.profile = "demo";
      p->play = std::make_unique<engine::Game>(*story_, *p->narrator, *p->store, go);
      FABULA_TRY(p->play->open());
      return std::unique_ptr<PlayerGame>(std::move(p));
    };
    GameServerOptions so;
    so.access_key = "table-key";
    server_ = std::make_unique<GameServer>(*story_, factory, players, std::string(FABULA_SOURCE_DIR) + "/web", so);
    auto port = server_->bind("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.error().to_string();
    port_ = *port;
    thread_ = std::thread([this] { server_->run(); });
  }


 public:
  // One simulated browser: its own connection, the access key and its player id on every request.
  struct Client {
    httplib::Client http;
    std::string player;
    explicit Client(int port) : http("127.0.0.1", port) {
      http.set_connection_timeout(10, 0);
      http.set_read_timeout(120, 0);
    }
    httplib::Headers headers() const {
      httplib::Headers h{{"X-Fabula-Token", "table-key"}};
      if (!player.empty()) h.emplace("X-Fabula-Player", player);
      return h;
    }
    json post(const std::string& path, const json& body, int* status = nullptr) {
      auto r = http.Post(path, headers(), body.dump(), "application/json");
      if (status) *status = r ? r->status : -1;
      return r ? json::parse(r->body, nullptr, false) : json();
    }
    json get(const std::string& path, int* status = nullptr) {
      auto r = http.Get(path, headers());
      if (status) *status = r ? r->status : -1;
      return r ? json::parse(r->body, nullptr, false) : json();
    }
    bool join() {
      json r = post("/api/session", json::object());
      player = r.value("player", "");
      return !player.empty();
    }
    // Waits until no beat is being written; the state then.
    json wait_idle() {
      for (auto until = Clock::now() + std::chrono::seconds(120); Clock::now() < until;) {
        json s = get("/api/state");
        if (s.is_object() && s.value("status", "") == "idle") return s;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      return json();
    }
  };

 protected:
  test_support::ScratchDir scratch_{"players"};
  std::filesystem::path dir_ = scratch_.path();
  std::unique_ptr<engine::Story> story_;
  std::unique_ptr<SharedNarrator> shared_;
  std::atomic<int> joined_{0};
  std::unique_ptr<GameServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// Plays `turns` beats as one player; returns the errors it met (empty: none). Every third turn it also sends a
// bad request first (an index out of range), which must be refused without touching anyone's game.
std::vector<std::string> play_turns(int port, int turns, int seat, json* beats_seen) {
  std::vector<std::string> errors;
  Players::Client c(port);
  if (!c.join()) return {"no player id"};
  int status = 0;
  c.post("/api/start", json::object(), &status);
  if (status != 200) errors.push_back("start: " + std::to_string(status));
  int64_t last = 0;
  for (int turn = 0; turn < turns && errors.size() < 3; ++turn) {
    json s = c.wait_idle();
    if (!s.is_object() || s["beat"].is_null()) {
      errors.push_back("turn " + std::to_string(turn) + ": no beat");
      break;
    }
    const int64_t id = s["beat"].value("id", int64_t{0});
    if (id == last) errors.push_back("turn " + std::to_string(turn) + ": the beat did not advance (" +
                                     s.value("error", std::string()) + ")");
    last = id;
    beats_seen->push_back(s["beat"]["events"]);
    if (turn + 1 == turns) break;
    if (turn % 3 == seat % 3) {
      c.post("/api/choose", json{{"index", 99}}, &status);
      if (status != 400) errors.push_back("a bad index got " + std::to_string(status));
    }
    const size_t n_choices = s["beat"]["choices"].size();
    const int index = n_choices > 0 ? (seat + turn) % static_cast<int>(n_choices) : 0;
    c.post("/api/choose", json{{"index", index}}, &status);
    if (status != 200) errors.push_back("choose: " + std::to_string(status));
  }
  c.post("/api/save", json{{"name", "mine"}}, &status);
  if (status != 200) errors.push_back("save: " + std::to_string(status));
  // The player's own save file holds exactly the beats it saw, nobody else's.
  json exported = c.get("/api/export", &status);
  if (status != 200 || !exported.contains("beats")) {
    errors.push_back("export: " + std::to_string(status));
  } else {
    if (exported["beats"].size() != beats_seen->size())
      errors.push_back("export holds " + std::to_string(exported["beats"].size()) + " beats, the player saw " +
                       std::to_string(beats_seen->size()));
    for (const json& b : exported["beats"]) {
      bool mine = false;
      for (const json& seen : *beats_seen) mine |= seen == b["events"];
      if (!mine) errors.push_back("the export holds a beat this player never saw");
    }
  }
  return errors;
}

void play_table(int port, int players, int turns) {
  std::vector<std::vector<std::string>> errors(static_cast<size_t>(players));
  std::vector<json> seen(static_cast<size_t>(players), json::array());
  std::vector<std::thread> threads;
  for (int p = 0; p < players; ++p)
    threads.emplace_back([&, p] { errors[p] = play_turns(port, turns, p, &seen[p]); });
  for (auto& t : threads) t.join();
  size_t total = 0;
  for (int p = 0; p < players; ++p) {
    for (const auto& e : errors[p]) ADD_FAILURE() << "player " << p << ": " << e;
    EXPECT_EQ(seen[p].size(), static_cast<size_t>(turns)) << "player " << p;
    total += errors[p].size();
  }
  std::printf("%d players x %d turns: %zu errors\n", players, turns, total);
}

TEST_F(Players, EightPlayersTakeThreeTurnsEachWithoutErrors) {
  serve(8);
  play_table(port_, 8, 3);
  const SchedulerMetrics m = shared_->scheduler().metrics();
  EXPECT_GT(double(m.step_sequences_total) / double(m.steps_total), 1.0) << "the players' beats never shared a step";
  EXPECT_EQ(m.requests_failed, 0u);
}

TEST_F(Players, SlowEightPlayersTakeTwentyTurnsEachWithoutErrors) {
  serve(8);
  play_table(port_, 8, 20);
  const SchedulerMetrics m = shared_->scheduler().metrics();
  std::printf("steps %llu, average batch %.2f sequences, %.1f tokens per step\n",
              static_cast<unsigned long long>(m.steps_total), double(m.step_sequences_total) / double(m.steps_total),
              double(m.step_tokens_total) / double(m.steps_total));
  EXPECT_EQ(m.requests_failed, 0u);
}

TEST_F(Players, SeatsAreLimitedAndEachPlayerKeepsItsId) {
  serve(2);
  Client a(port_), b(port_), c(port_);
  ASSERT_TRUE(a.join());
  ASSERT_TRUE(b.join());
  EXPECT_NE(a.player, b.player);
  int status = 0;
  c.post("/api/session", json::object(), &status);
  EXPECT_EQ(status, 503);
  // Coming back with its id keeps the same game; a request without any id is refused.
  const std::string id = a.player;
  ASSERT_TRUE(a.join());
  EXPECT_EQ(a.player, id);
  c.player.clear();
  c.get("/api/state", &status);
  EXPECT_EQ(status, 401);
  c.player = "../../etc/passwd";
  c.get("/api/state", &status);
  EXPECT_EQ(status, 401);
  EXPECT_NE(a.get("/api/state")["session"], json());
}

TEST_F(Players, APlayerWhoLeavesMidBeatFreesTheSlotAndTheOthersPlayOn) {
  serve(2);
  Client leaver(port_), stayer(port_);
  ASSERT_TRUE(leaver.join());
  ASSERT_TRUE(stayer.join());
  // The leaver watches its event stream; the beat starts; the stream closes while the beat is being written.
  std::atomic<bool> leave{false};
  std::atomic<int> chunks{0};
  std::thread stream([&] {
    httplib::Client s("127.0.0.1", port_);
    s.set_read_timeout(60, 0);
    s.Get("/api/events", leaver.headers(), [&](const char*, size_t) {
      ++chunks;
      return !leave.load();
    });
  });
  while (chunks.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int status = 0;
  stayer.post("/api/start", json::object(), &status);
  ASSERT_EQ(status, 200);
  leaver.post("/api/start", json::object(), &status);
  ASSERT_EQ(status, 200);
  // Leave once the leaver's beat is under way in the scheduler.
  const int before = chunks.load();
  while (chunks.load() < before + 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  leave = true;
  stream.join();

  json left = leaver.wait_idle();
  ASSERT_TRUE(left.is_object());
  json after = stayer.wait_idle();
  ASSERT_TRUE(after.is_object());
  EXPECT_FALSE(after["beat"].is_null()) << "the other player's beat was disturbed";
  EXPECT_TRUE(left["beat"].is_null()) << "the leaver's beat was written to the end";
  const SchedulerMetrics m = shared_->scheduler().metrics();
  EXPECT_EQ(m.requests_cancelled, 1u);
  EXPECT_EQ(m.requests_failed, 0u);
  for (const SlotInfo& s : shared_->scheduler().slots()) EXPECT_FALSE(s.busy) << "slot " << s.id;
  // The leaver can come back and play.
  leaver.post("/api/start", json::object(), &status);
  EXPECT_EQ(status, 200);
  json back = leaver.wait_idle();
  EXPECT_FALSE(back["beat"].is_null());
}

}  // namespace
}  // namespace fabula::server
