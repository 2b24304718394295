// Lines to speech with a cache: each (voice, text) is synthesized once; replays and backlog lines are hits.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "voice/tts.h"
#include "voice/voice_spec.h"

namespace fabula::voice {

struct SpeechStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // = syntheses started
  size_t cached_lines = 0;
  size_t cached_bytes = 0;
};

struct Speech {
  std::shared_ptr<const std::string> wav;
  bool cache_hit = false;
};

class SpeechService {
 public:
  // max_bytes bounds the cache (least recently used lines leave first).
  SpeechService(std::unique_ptr<TtsEngine> engine, StoryVoices voices, size_t max_bytes = 64u << 20);

  // The line in the speaker's voice ("" / "narration": the narration voice). kNotFound when the speaker has no
  // voice (not in the cast, or narration unvoiced); kInvalidArgument for empty or over-long text.
  Result<Speech> speak(const std::string& speaker, const std::string& text);

  bool speaks(const std::string& speaker) const { return voices_.find(speaker).has_value(); }
  bool narration_voiced() const { return voices_.narration.has_value(); }
  SpeechStats stats() const;
  std::string describe() const { return engine_->describe(); }

  static constexpr size_t kMaxChars = 2000;

 private:
  using Lru = std::list<std::string>;
  struct Entry {
    std::shared_ptr<const std::string> wav;
    Lru::iterator lru;
  };
  std::unique_ptr<TtsEngine> engine_;
  StoryVoices voices_;
  size_t max_bytes_;
  mutable std::mutex mu_;    // guards the cache and stats
  std::mutex synth_mu_;      // one synthesis at a time (a second request for the same line waits, then hits)
  std::map<std::string, Entry> cache_;
  Lru lru_;  // front: most recent
  SpeechStats stats_;
};

}  // namespace fabula::voice
