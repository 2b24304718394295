// --tts-cmd: any local TTS engine as a shell command (text on stdin, WAV on stdout or in {out}).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/ascii.h"
#include "base/file.h"
#include "voice/tts.h"
#include "voice/wav.h"

extern char** environ;

namespace fabula::voice {
namespace {

namespace fs = std::filesystem;

// A private temp folder removed on scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fabula-tts-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

class CommandTts : public TtsEngine {
 public:
  CommandTts(std::string command, int timeout_s) : command_(std::move(command)), timeout_s_(timeout_s) {}

  Result<std::string> synthesize(std::string_view text, const VoiceSpec& voice, std::string_view speaker) override {
    TempDir dir;
    if (dir.path.empty()) return make_error(ErrorCode::kIo, "--tts-cmd: cannot create a temporary folder");
    fs::path in = dir.path / "line.txt", out = dir.path / "line.wav", err = dir.path / "stderr.txt";
    FABULA_TRY(write_file_atomic(in.string(), std::string(text)));
    const bool to_file = command_.find("{out}") != std::string::npos;
    // Our own temp path: no quotes inside.
    const std::string cmd = replace_all(command_, "{out}", fmt::format("'{}'", out.string()));

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, to_file ? err.c_str() : out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    std::vector<std::string> env_s;
    for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
    env_s.push_back("FABULA_SPEAKER=" + std::string(speaker));
    env_s.push_back("FABULA_VOICE=" + voice.espeak_name());
    env_s.push_back("FABULA_LANGUAGE=" + voice.language);
    env_s.push_back("FABULA_VARIANT=" + voice.variant);
    env_s.push_back(fmt::format("FABULA_PITCH={}", voice.pitch));
    env_s.push_back(fmt::format("FABULA_RATE={}", voice.rate));
    std::vector<char*> envp;
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return make_error(ErrorCode::kIo, "--tts-cmd: cannot start /bin/sh ({})", std::strerror(rc));

    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s_);
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return make_error(ErrorCode::kCancelled, "--tts-cmd \"{}\" took longer than {} s", command_, timeout_s_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto stderr_text = [&] {
      auto e = read_file_text(err.string());
      std::string s = e ? *e : "";
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      return s.size() > 300 ? s.substr(0, 300) + "..." : s;
    };
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return make_error(ErrorCode::kIo, "--tts-cmd \"{}\" failed (exit {}): {}", command_,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, stderr_text());
    auto wav = read_file_text(out.string());
    if (!wav) return make_error(ErrorCode::kIo, "--tts-cmd \"{}\" wrote no {}", command_, to_file ? "{out} file" : "output");
    if (auto info = parse_wav(*wav); !info)
      return make_error(ErrorCode::kCorrupt, "--tts-cmd \"{}\" did not write a WAV: {}", command_, info.error().message);
    return std::move(*wav);
  }
  std::string describe() const override { return "command: " + command_; }

 private:
  std::string command_;
  int timeout_s_;
};

}  // namespace

std::unique_ptr<TtsEngine> make_command_tts(std::string command, int timeout_s) {
  return std::make_unique<CommandTts>(std::move(command), timeout_s);
}

}  // namespace fabula::voice
