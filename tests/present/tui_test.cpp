// The terminal player as a library: typed events printed as a script, the choice menu, rollback, bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "present/tui.h"

namespace fabula::present {
namespace {

const char* kOpening =
    "[TOOL: background name=\"classroom\" transition=\"fade\"]\n"
    "[TOOL: music track=\"calm\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "Afternoon light slanted across the desks.\n"
    "[Hana]: \"You're finally here!\"\n"
    "[TOOL: sfx name=\"footsteps\"]\n"
    "[TOOL: choices choices='[\"Go to the park\", \"Stay\"]']\n";
const char* kPark =
    "[TOOL: background name=\"park\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"sad\"]\n"
    "Mio waved, then left.\n"
    "[TOOL: hide character=\"Mio\"]\n"
    "[TOOL: end_scene]\n";

// Plays `input` (one command per line) through run_tui; returns what it printed.
std::string play(const std::string& input, int& exit_code) {
  auto story = engine::load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
  EXPECT_TRUE(story.ok());
  engine::ScriptedNarrator narrator({kOpening, kPark}, engine::ScriptedOptions{});
  auto store = engine::SaveStore::open(":memory:");
  EXPECT_TRUE(store.ok());
  engine::Game game(*story, narrator, **store);
  EXPECT_TRUE(game.open().ok());
  std::string in_text = input;
  FILE* in = fmemopen(in_text.data(), in_text.size(), "r");
  char* out_buf = nullptr;
  size_t out_size = 0;
  FILE* out = open_memstream(&out_buf, &out_size);
  exit_code = run_tui(game, in, out, TuiOptions{false});
  std::fclose(in);
  std::fclose(out);
  std::string printed(out_buf, out_size);
  std::free(out_buf);
  return printed;
}

TEST(Tui, PrintsTheSceneFromTypedEventsAndFollowsTheMenu) {
  int code = -1;
  std::string out = play("99999999999999999999\n1\nb\nq\n", code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("== Classroom ==  on stage: nobody"), std::string::npos) << out;
  EXPECT_NE(out.find("   [music] calm"), std::string::npos) << out;
  EXPECT_NE(out.find("   [stage] Hana (smile, left)"), std::string::npos) << out;
  EXPECT_NE(out.find("Afternoon light slanted across the desks."), std::string::npos) << out;
  EXPECT_NE(out.find("Hana: \u201cYou're finally here!\u201d"), std::string::npos) << out;
  EXPECT_NE(out.find("   [sound] footsteps"), std::string::npos) << out;
  EXPECT_NE(out.find("  1. Go to the park\n  2. Stay\n"), std::string::npos) << out;
  // A number too big for an int is refused, not a crash.
  EXPECT_NE(out.find("  (no such choice)"), std::string::npos) << out;
  // Choice 1: the park beat (a new place: an empty stage), Mio comes and goes, the scene ends.
  EXPECT_NE(out.find("== Park ==  on stage: nobody"), std::string::npos) << out;
  EXPECT_NE(out.find("   [stage] Mio (sad, center)"), std::string::npos) << out;
  EXPECT_LT(out.find("   [stage] Mio (sad, center)"), out.find("   [stage] nobody")) << out;
  EXPECT_NE(out.find("  -- the scene ends --\n  1. Continue\n"), std::string::npos) << out;
  // b: back to the first beat, whose stage is shown again.
  EXPECT_NE(out.find("(now at beat 1)"), std::string::npos) << out;
  EXPECT_LT(out.find("-- the scene ends --"), out.rfind("  1. Go to the park"));
}

TEST(Tui, EndOfInputQuits) {
  int code = -1;
  std::string out = play("", code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("Choose [1-2]"), std::string::npos) << out;
}

}  // namespace
}  // namespace fabula::present
