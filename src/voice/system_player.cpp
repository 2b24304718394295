// LineSpeaker: a worker thread that synthesizes lines and hands each WAV to paplay / pw-play / aplay.
#include "voice/system_player.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "base/ascii.h"
#include "base/file.h"
#include "base/log.h"
#include "voice/effects.h"
#include "voice/wav.h"

extern char** environ;

namespace fabula::voice {

std::string find_system_player() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  for (const char* name : {"paplay", "pw-play", "aplay"}) {
    for (const std::string_view dir : split(path, ':')) {
      std::string p = (std::filesystem::path(dir.empty() ? "." : dir) / name).string();
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
}

namespace {

// Starts the player on a WAV file (stdout/stderr to /dev/null); the pid, or -1 when it cannot start.
int spawn_player(const std::string& player, const std::string& file) {
  // Quiet players: their progress output would garble the terminal.
  std::string prog = player, quiet = "-q", path = file;
  std::vector<char*> argv = {prog.data()};
  if (std::filesystem::path(player).filename() == "aplay") argv.push_back(quiet.data());
  argv.push_back(path.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  bool started = posix_spawn(&pid, player.c_str(), &fa, nullptr, argv.data(), environ) == 0;
  posix_spawn_file_actions_destroy(&fa);
  return started ? pid : -1;
}

}  // namespace

EffectPlayer::EffectPlayer(std::string player) : player_(std::move(player)), worker_([this] { run(); }) {}

EffectPlayer::~EffectPlayer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void EffectPlayer::play(std::string name) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(name));
  cv_.notify_all();
}

void EffectPlayer::run() {
  std::string dir = std::filesystem::temp_directory_path().string();
  std::vector<int> running;
  int n = 0;
  for (;;) {
    std::string name;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      if (!queue_.empty()) {
        name = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    // Reap the effects that finished.
    std::erase_if(running, [](int pid) { int st = 0; return ::waitpid(pid, &st, WNOHANG) == pid; });
    if (name.empty()) continue;
    // A file per effect in flight (a player may still be reading the previous one).
    std::string file = fmt::format("{}/fabula-sfx-{}-{}.wav", dir, ::getpid(), n++ % 8);
    if (!write_file_atomic(file, wav_from_pcm16(render_effect(name), 22050))) continue;
    if (int pid = spawn_player(player_, file); pid > 0) running.push_back(pid);
  }
  for (int pid : running) {
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
  for (int i = 0; i < 8; ++i) {
    std::error_code ec;
    std::filesystem::remove(fmt::format("{}/fabula-sfx-{}-{}.wav", dir, ::getpid(), i), ec);
  }
}

LineSpeaker::LineSpeaker(SpeechService& speech, std::string player)
    : speech_(speech), player_(std::move(player)), worker_([this] { run(); }) {}

LineSpeaker::~LineSpeaker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (playing_pid_ > 0) ::kill(playing_pid_, SIGTERM);
  }
  cv_.notify_all();
  worker_.join();
}

void LineSpeaker::say(std::string speaker, std::string text) {
  std::lock_guard lock(mu_);
  queue_.clear();
  queue_.emplace_back(std::move(speaker), std::move(text));
  if (playing_pid_ > 0) ::kill(playing_pid_, SIGTERM);  // the reader moved on
  cv_.notify_all();
}

void LineSpeaker::run() {
  std::string file = (std::filesystem::temp_directory_path() / ("fabula-line-" + std::to_string(::getpid()) + ".wav")).string();
  for (;;) {
    std::pair<std::string, std::string> line;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      line = std::move(queue_.front());
      queue_.pop_front();
    }
    auto speech = speech_.speak(line.first, line.second);
    if (!speech) {
      FABULA_LOG_DEBUG("voice: {}", speech.error().to_string());
      continue;
    }
    if (player_.empty() || !write_file_atomic(file, *speech->wav)) continue;
    std::unique_lock lock(mu_);
    if (stop_) break;
    int pid = spawn_player(player_, file);
    if (pid <= 0) continue;
    playing_pid_ = pid;
    lock.unlock();
    int status = 0;
    ::waitpid(pid, &status, 0);
    lock.lock();
    playing_pid_ = 0;
  }
  std::error_code ec;
  std::filesystem::remove(file, ec);
}

}  // namespace fabula::voice
