// Terminal player: backdrop name, who is on stage with expressions, one line at a time (Enter), numbered choices.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "engine/game.h"

namespace fabula::present {

struct TuiOptions {
  bool wait_each_line = true;  // Enter advances each line (off: lines flow as they arrive)
  // Called with each line as it is shown (speaker "" for narration): voices through the system player.
  std::function<void(const std::string& speaker, const std::string& text)> on_line = nullptr;
  // Called with each sound effect's name (sound through the system player).
  std::function<void(const std::string& name)> on_sound = nullptr;
};

// Plays until the player types q (or input ends). Commands at the choice prompt: a number, r (regenerate),
// b (roll back one beat), n / p (next / previous branch), s (save slot "tui"), q (quit).
int run_tui(engine::Game& game, std::FILE* in, std::FILE* out, TuiOptions options = {});

}  // namespace fabula::present
