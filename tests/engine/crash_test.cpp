// Crash test: `fabula play --scripted` is killed with SIGKILL in the middle of a beat; on restart every completed beat is there.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
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
  bool start(const std::string& save, bool fresh) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      std::string fixture = std::string(FABULA_TEST_DATA) + "/engine/play_fixture.jsonl";
      std::vector<const char*> argv = {FABULA_BINARY, "-q", "play", "--scripted", fixture.c_str(),
                                       "--scripted-delay-ms", "25", "--save", save.c_str(), "--port", "0"};
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
  std::string save = testing::TempDir() + "/fabula_crash_test.sqlite";
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

}  // namespace
