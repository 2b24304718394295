// LineSpeaker: a worker thread that synthesizes lines and hands each WAV to paplay / pw-play / aplay.
#include "voice/system_player.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/file.h"
#include "base/log.h"

extern char** environ;

namespace fabula::voice {

std::string find_system_player() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  for (const char* name : {"paplay", "pw-play", "aplay"}) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      std::string p = (std::filesystem::path(dir.empty() ? "." : dir) / name).string();
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
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
    // Quiet players: their progress output would garble the terminal.
    std::string quiet = std::filesystem::path(player_).filename() == "aplay" ? "-q" : "";
    std::vector<char*> argv = {player_.data()};
    if (!quiet.empty()) argv.push_back(quiet.data());
    argv.push_back(file.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    std::unique_lock lock(mu_);
    if (stop_) break;
    bool started = posix_spawn(&pid, player_.c_str(), &fa, nullptr, argv.data(), environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    if (!started) continue;
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
