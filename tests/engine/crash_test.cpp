// Crash test: `fabula play --scripted` is killed with SIGKILL in the middle of a beat; on restart every completed beat is there.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

struct Player {
  pid_t pid = -1;
  int port = 0;
  std::string token;
  FILE* out = nullptr;

  // Starts the binary and reads the URL it prints.
  bool start(const std::string& save, bool fresh, const char* delay_ms = "25") {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      std::string fixture = std::string(FABULA_TEST_DATA) + "/engine/play_fixture.jsonl";
      std::vector<const char*> argv = {FABULA_BINARY, "-q", "play", "--scripted", fixture.c_str(),
                                       "--scripted-delay-ms", delay_ms, "--save", save.c_str(), "--port", "0"};
      if (fresh) argv.push_back("--new");
      argv.push_back(nullptr);
      execv(FABULA_BINARY, const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    close(fds[1]);
    out = fdopen(fds[0], "r");
    char line[512];
    if (!fgets(line, sizeof line, out)) return false;
    std::string s(line);
    auto colon = s.rfind(':');
    port = std::atoi(s.c_str() + colon + 1);
    // The printed link ends in #token=T: the game API wants it with every request.
    const auto at = s.find("#token=");
    if (at != std::string::npos) token = s.substr(at + 7, s.find_first_of("\r\n", at) - at - 7);
    return port > 0;
  }
  json get(const std::string& path) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get(path.c_str(), httplib::Headers{{"X-Fabula-Token", token}});
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  json post(const std::string& path, const json& body) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Post(path.c_str(), httplib::Headers{{"X-Fabula-Token", token}}, body.dump(), "application/json");
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  // Waits until the game is idle with `beats` beats committed.
  bool wait_beats(int beats) {
    for (int i = 0; i < 600; ++i) {
      json s = get("/api/state");
      if (s.is_object() && s.value("status", "") == "idle" && s.value("beat_count", 0) == beats) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void kill9() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
    if (out) fclose(out), out = nullptr;
  }
  ~Player() { kill9(); }
};

TEST(CrashTest, KillDuringABeatKeepsEveryCompletedBeat) {
  // Named by process: two checkouts running the suite at once would share one save.
  std::string save = testing::TempDir() + "/fabula_crash_test_" + std::to_string(::getpid()) + ".sqlite";
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(save + ext);

  Player p;
  ASSERT_TRUE(p.start(save, true));
  ASSERT_EQ(p.post("/api/start", json::object()).value("ok", false), true);
  ASSERT_TRUE(p.wait_beats(1));
  ASSERT_EQ(p.post("/api/choose", {{"index", 0}}).value("ok", false), true);
  ASSERT_TRUE(p.wait_beats(2));
  json before = p.get("/api/state");
  int64_t head_before = before["beat"]["id"];
  // Start beat 3 and kill the process once its first lines are out (mid-beat).
  ASSERT_EQ(p.post("/api/choose", {{"index", 1}}).value("ok", false), true);
  bool mid_beat = false;
  for (int i = 0; i < 400 && !mid_beat; ++i) {
    json s = p.get("/api/state");
    mid_beat = s.value("status", "") == "writing";
    if (!mid_beat) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(mid_beat);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::printf("crash test: before kill -9: %d completed beats (head %lld), beat 3 being written\n",
              before.value("beat_count", 0), static_cast<long long>(head_before));
  p.kill9();

  Player q;
  ASSERT_TRUE(q.start(save, false));
  json after = q.get("/api/state");
  std::printf("crash test: after restart: %d beats (head %lld), status %s\n", after.value("beat_count", 0),
              static_cast<long long>(after["beat"].value("id", int64_t{0})), after.value("status", "").c_str());
  EXPECT_EQ(after.value("beat_count", 0), 2);
  EXPECT_EQ(after["beat"]["id"], head_before);
  EXPECT_EQ(after["path"].size(), 2u);
  EXPECT_EQ(after["beat"]["choices"], before["beat"]["choices"]);
  EXPECT_EQ(after["beat"]["events"], before["beat"]["events"]);
  // The game goes on from there.
  ASSERT_EQ(q.post("/api/choose", {{"index", 1}}).value("ok", false), true);
  EXPECT_TRUE(q.wait_beats(3));
}

// PRAGMA integrity_check and foreign_key_check of a save, as one string ("ok" when both pass).
std::string check_integrity(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  std::string out;
  for (const char* sql : {"PRAGMA integrity_check", "PRAGMA foreign_key_check"}) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) out += std::string(sql) + ": cannot prepare; ";
    while (st && sqlite3_step(st) == SQLITE_ROW) {
      auto text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      if (std::string(text ? text : "") != "ok") out += std::string(sql) + ": " + (text ? text : "NULL") + "; ";
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out.empty() ? "ok" : out;
}

// 200 kill -9 at random moments of scripted play (mid-beat, between beats, right after a request): after each,
// the save passes its integrity and foreign-key checks and every beat completed before the kill comes back
// identical, and play goes on.
TEST(CrashTest, SlowTwoHundredKillsAtRandomMomentsLoseNoBeat) {
  std::string save = testing::TempDir() + "/fabula_crash_200_" + std::to_string(::getpid()) + ".sqlite";
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(save + ext);
  std::mt19937 rng(16);
  const int kRuns = 200;
  int lost = 0, mid_beat = 0;
  json before;  // the export before the last kill: every beat completed by then
  for (int run = 0; run <= kRuns; ++run) {  // the last start only checks the last kill
    Player p;
    ASSERT_TRUE(p.start(save, run == 0, "5")) << "run " << run;
    // After a restart: everything completed before the kill is there, unchanged.
    json now = p.get("/api/export");
    ASSERT_TRUE(now.is_object()) << "run " << run;
    if (before.is_object()) {
      const json& old_beats = before["beats"];
      for (size_t i = 0; i < old_beats.size(); ++i) {
        bool same = i < now["beats"].size() && now["beats"][i] == old_beats[i];
        EXPECT_TRUE(same) << "run " << run << ": beat " << i + 1 << " lost or changed";
        lost += !same;
      }
    }
    json state = p.get("/api/state");
    ASSERT_EQ(state.value("status", ""), "idle") << "run " << run;
    if (run == kRuns) break;
    before = now;
    // One request, then kill -9 at a random moment: a beat takes about a second to write.
    const json& beat = state["beat"];
    int pick = static_cast<int>(rng() % 4);
    json reply;
    bool adds_beat = true;
    if (beat.is_null()) {
      reply = p.post("/api/start", json::object());
    } else if (pick == 3) {
      reply = p.post("/api/regenerate", json::object());
    } else if (pick == 2 && beat.value("parent_id", int64_t{0}) != 0) {
      reply = p.post("/api/rollback", {{"beat_id", beat.value("parent_id", int64_t{0})}});
      adds_beat = false;
    } else {
      int n = static_cast<int>(beat["choices"].size());
      reply = p.post("/api/choose", {{"index", n == 0 ? 0 : static_cast<int>(rng() % n)}});
    }
    EXPECT_EQ(reply.value("ok", false), true) << "run " << run << ": " << reply.dump();
    // A beat takes about half a second here. Every third kill waits for it to be committed and comes right after.
    if (run % 3 == 2) p.wait_beats(static_cast<int>(now["beats"].size()) + (adds_beat ? 1 : 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (run % 3 == 2 ? 20 : 700)));
    mid_beat += p.get("/api/state").value("status", "") == "writing";
    p.kill9();
    EXPECT_EQ(check_integrity(save), "ok") << "run " << run;
  }
  std::printf("crash test: %d kill -9 runs (%d while a beat was being written), %zu beats in the save, %d lost\n",
              kRuns, mid_beat, before["beats"].size(), lost);
  EXPECT_EQ(lost, 0);
  EXPECT_GT(mid_beat, kRuns / 4);                // the kills did land mid-beat
  EXPECT_GT(before["beats"].size(), kRuns / 10u);  // and beats did complete between them
}

}  // namespace
