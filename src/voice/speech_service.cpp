// SpeechService: LRU cache of synthesized lines in front of a TtsEngine.
#include "voice/speech_service.h"

namespace fabula::voice {

SpeechService::SpeechService(std::unique_ptr<TtsEngine> engine, StoryVoices voices, size_t max_bytes)
    : engine_(std::move(engine)), voices_(std::move(voices)), max_bytes_(max_bytes) {}

SpeechStats SpeechService::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<Speech> SpeechService::speak(const std::string& speaker, const std::string& text) {
  if (text.empty()) return make_error(ErrorCode::kInvalidArgument, "voice: the line is empty");
  if (text.size() > kMaxChars)
    return make_error(ErrorCode::kInvalidArgument, "voice: the line has {} bytes (at most {})", text.size(), kMaxChars);
  auto voice = voices_.find(speaker);
  if (!voice && (speaker.empty() || speaker == "narration"))
    return make_error(ErrorCode::kNotFound, "voice: this story gives narration no voice (narration_tts)");
  if (!voice) return make_error(ErrorCode::kNotFound, "voice: \"{}\" is not in the story's cast", speaker);
  std::string key = voice->key() + '\n' + text;
  auto lookup = [&]() -> std::shared_ptr<const std::string> {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    ++stats_.hits;
    return it->second.wav;
  };
  if (auto wav = lookup()) return Speech{wav, true};
  std::lock_guard synth(synth_mu_);
  if (auto wav = lookup()) return Speech{wav, true};  // synthesized while we waited
  {
    std::lock_guard lock(mu_);
    ++stats_.misses;
  }
  FABULA_ASSIGN(std::string bytes, engine_->synthesize(text, *voice, speaker == "narration" ? "" : speaker));
  auto wav = std::make_shared<const std::string>(std::move(bytes));
  std::lock_guard lock(mu_);
  lru_.push_front(key);
  cache_[key] = Entry{wav, lru_.begin()};
  stats_.cached_bytes += wav->size();
  while (stats_.cached_bytes > max_bytes_ && lru_.size() > 1) {
    auto old = cache_.find(lru_.back());
    stats_.cached_bytes -= old->second.wav->size();
    cache_.erase(old);
    lru_.pop_back();
  }
  stats_.cached_lines = cache_.size();
  return Speech{wav, false};
}

}  // namespace fabula::voice
