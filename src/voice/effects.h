// Sound effects rendered to PCM for the terminal player (the web player synthesizes the same sounds in Web Audio).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace fabula::voice {

// The manifest's sounds: door_slide, school_bell, footsteps, train (one-shots) and rain, crowd, wind (ambient:
// a few seconds that fade in and out, as a terminal cannot keep a loop going). Any other name: a soft blip.
std::vector<int16_t> render_effect(std::string_view name, int sample_rate = 22050);

}  // namespace fabula::voice
