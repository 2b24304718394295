// Prompt builder and memory: the narrator request for the next beat, and how a scene moves on after a choice.
#pragma once

#include <string>
#include <vector>

#include "engine/events.h"
#include "engine/narrator.h"
#include "engine/scene.h"
#include "engine/story.h"

namespace fabula::engine {

// One earlier beat as memory sees it.
struct MemoryBeat {
  std::string place;
  std::string player_choice;
  std::vector<SceneEvent> events;  // what the player saw (dialogue, narration, choices, ...)
};

// Memory for the vn26b profile (documented in docs of play; see prompt.cpp):
// - recent: the newest beats, verbatim in protocol form, as many as fit `budget_tokens` (estimate: bytes / 4);
// - summary: every older beat condensed extractively to one line — where it was, what the player chose, who
//   spoke (each speaker's first line, clipped), and the choices offered. Only the newest `summary_lines` lines
//   are kept; older ones collapse into a count of beats and places.
struct Memory {
  std::string summary;
  std::string recent;
  int recent_beats = 0;
  int summarized_beats = 0;
};
Memory build_memory(const std::vector<MemoryBeat>& history, int budget_tokens, int summary_lines = 12);
int estimate_tokens(std::string_view text);

// The narrator request for the next beat: the profile's system and user texts with the scene, the player's choice
// and (vn26b) memory filled in, as chat messages. Rendered through the demo model's template, the demo profile
// gives the demo narrator's training prompt byte for byte (tests/engine/story_prompt_test.cpp pins both profiles).
NarratorRequest build_request(const Story& story, const NarratorProfile& profile, const SceneState& scene,
                              const std::string& player_choice, const std::vector<MemoryBeat>& history,
                              const Sampling& sampling, uint64_t seed);

// The scene the next beat plays in, given the last beat's state and the player's choice: a choice naming a
// place moves the scene there; naming a story character adds them to the locked cast (at most 4); after
// end_scene a new scene starts at the next place and time of day.
SceneState advance_scene(const Story& story, const SceneState& after_last, const std::string& choice);

}  // namespace fabula::engine
