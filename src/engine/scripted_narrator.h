// ScriptedNarrator: replays beats from a JSONL fixture (one {"beat": "..."} per line) as a stream, for tests and offline play.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/narrator.h"

namespace fabula::engine {

struct ScriptedOptions {
  size_t chunk_bytes = 7;  // stream granularity (small, so lines complete mid-stream as with a model)
  int chunk_delay_ms = 0;  // pause between chunks (the player's "writing…" state is visible in demos)
  bool loop = false;       // start over when the fixture runs out (else an error)
};

class ScriptedNarrator : public Narrator {
 public:
  // Fixture lines: {"beat": "<text>"} with optional "delay_ms" overriding chunk_delay_ms; blank lines and
  // lines starting with // are skipped.
  static Result<std::unique_ptr<ScriptedNarrator>> load(const std::string& path, ScriptedOptions options = {});
  ScriptedNarrator(std::vector<std::string> beats, ScriptedOptions options, std::string source = "inline");

  Result<NarratorResult> write(const NarratorRequest& request, const TextCallback& on_text) override;
  std::string describe() const override;

  size_t calls() const;                       // write() calls so far
  const std::vector<NarratorRequest>& requests() const { return requests_; }  // recorded (tests)
  const std::vector<std::string>& beats() const { return beats_; }  // the fixture's beats (bench --kv-quality)

 private:
  std::vector<std::string> beats_;
  std::vector<int> delays_;
  ScriptedOptions options_;
  std::string source_;
  mutable std::mutex mu_;
  size_t next_ = 0;
  std::vector<NarratorRequest> requests_;
};

}  // namespace fabula::engine
