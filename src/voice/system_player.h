// Plays WAV through the system's command-line player (paplay, pw-play or aplay), for the terminal player.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "voice/speech_service.h"

namespace fabula::voice {

// The first of paplay, pw-play, aplay found on PATH ("" when none: sound is then silently absent).
std::string find_system_player();

// Plays sound effects in the background, each in its own player process (effects may overlap).
class EffectPlayer {
 public:
  explicit EffectPlayer(std::string player);
  ~EffectPlayer();
  void play(std::string name);

 private:
  void run();
  std::string player_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread worker_;
};

// Speaks lines in the background: synthesis and playback run on a worker, so the terminal never waits on them.
// A new line interrupts the one playing (as a visual novel does when the reader moves on).
class LineSpeaker {
 public:
  LineSpeaker(SpeechService& speech, std::string player);
  ~LineSpeaker();
  void say(std::string speaker, std::string text);
  const std::string& player() const { return player_; }

 private:
  void run();
  SpeechService& speech_;
  std::string player_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;
  int playing_pid_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace fabula::voice
