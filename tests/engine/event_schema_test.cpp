// Every event the engine emits, over a scripted play-through that reaches every event type, validates against
// docs/events.schema.json (Ajv, a JSON Schema 2020-12 validator, run by node) and round-trips through its struct.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <set>

#include "base/file.h"
#include "engine/game.h"
#include "engine/scripted_narrator.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

const std::string kSource = FABULA_SOURCE_DIR;

// Opening beat: stage tools, prose, an outsider's line (cast-lock), a sound, a sprite leaving, choices with a prompt.
const char* kOpening =
    "[TOOL: background name=\"classroom\" transition=\"fade\"]\n"
    "[TOOL: music track=\"calm\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"sad\" position=\"right\"]\n"
    "Afternoon light slanted across the desks.\n"
    "[Hana]: \"You're finally here!\"\n"
    "[Ren]: \"Noted.\"\n"
    "[TOOL: sfx name=\"footsteps\"]\n"
    "[TOOL: hide character=\"Mio\"]\n"
    "[TOOL: choices choices='[\"Go to the park\", \"Stay\"]' prompt=\"Where now?\"]\n";
// A beat with no choices or end_scene: invalid, so the engine retries (attempt) or falls back (choices, fallback).
const char* kNoChoices =
    "[TOOL: background name=\"park\"]\n"
    "[Hana]: \"Where did my choices go?\"\n";
const char* kEndsScene =
    "[Hana]: \"That's enough for today.\"\n"
    "[TOOL: end_scene]\n";

// Runs a command, returning its exit status and what it printed.
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) output.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// node validate_events.js over the lines; exit status 0 when all are valid.
std::pair<int, std::string> validate(const std::vector<json>& lines, const std::string& name) {
  std::string path = testing::TempDir() + "/" + name + ".jsonl";
  std::ofstream out(path);
  for (const auto& j : lines) out << j.dump() << "\n";
  out.close();
  return run("node " + kSource + "/tests/scripts/validate_events.js " + kSource + "/docs/events.schema.json " + path);
}

std::set<std::string> schema_type_names() {
  auto text = read_file_text(kSource + "/docs/events.schema.json");
  EXPECT_TRUE(text.ok());
  json schema = json::parse(text.ok() ? *text : "{}", nullptr, false);
  std::set<std::string> names;
  for (const auto& [name, def] : schema["$defs"].items())
    if (def.contains("properties") && def["properties"].contains("type"))
      names.insert(def["properties"]["type"].value("const", ""));
  return names;
}

// Plays: opening beat; a beat that fails once then ends the scene; rollback; a beat whose every attempt fails
// (fallback); a beat the narrator cannot write (error); a new session.
std::vector<Event> play_through(json& last_snapshot) {
  Story story = *load_story(kSource + "/stories/sakuragaoka");
  ScriptedNarrator narrator({kOpening, kNoChoices, kEndsScene, kNoChoices, kNoChoices}, ScriptedOptions{});
  auto store = SaveStore::open(":memory:");
  EXPECT_TRUE(store.ok());
  GameOptions options;
  options.engine.max_regenerations = 1;
  Game game(story, narrator, **store, options);
  EXPECT_TRUE(game.open().ok());
  EXPECT_TRUE(game.start().ok());
  game.wait_idle();
  int64_t first = game.snapshot()["beat"].value("id", int64_t{0});
  EXPECT_TRUE(game.choose(0).ok());
  game.wait_idle();
  EXPECT_TRUE(game.go_to(first).ok());
  EXPECT_TRUE(game.choose(1).ok());
  game.wait_idle();
  last_snapshot = game.snapshot();
  EXPECT_TRUE(game.choose(0).ok());
  game.wait_idle();
  EXPECT_FALSE(game.last_error().empty());
  EXPECT_TRUE(game.new_session().ok());
  std::vector<Event> events;
  for (auto& [seq, ev] : game.events_after(0, 0)) events.push_back(std::move(ev));
  return events;
}

TEST(EventSchema, EveryEmittedEventValidatesAndEveryTypeIsReached) {
  json snapshot;
  std::vector<Event> events = play_through(snapshot);
  std::vector<json> wire;
  std::set<std::string> reached;
  for (const Event& e : events) {
    json j = to_json(e);  // what GET /api/events sends
    auto back = event_from_json(j);
    ASSERT_TRUE(back.ok()) << j.dump() << ": " << back.error().to_string();
    EXPECT_TRUE(*back == e) << j.dump();
    reached.insert(j["type"].get<std::string>());
    wire.push_back(std::move(j));
  }
  // The snapshot's beats (GET /api/state) are checked as the beat of a beat_end.
  ASSERT_EQ(snapshot["path"].size(), 2u);
  for (const auto& beat : snapshot["path"]) wire.push_back(json{{"type", "beat_end"}, {"beat", beat}});

  std::set<std::string> all(event_type_names().begin(), event_type_names().end());
  EXPECT_EQ(reached, all) << "the play-through must reach every event type";
  EXPECT_EQ(schema_type_names(), all) << "docs/events.schema.json and engine/events.h must name the same types";
  // Details that only some events of a type carry.
  bool cast_lock = false, prompt = false, fallback = false, reset_to_beat = false, reset_session = false;
  for (const auto& j : wire) {
    cast_lock |= j.contains("cast_lock");
    prompt |= j.contains("prompt");
    fallback |= j.value("fallback", false) && j["type"] == "choices";
    reset_to_beat |= j["type"] == "reset" && j.contains("beat_id");
    reset_session |= j["type"] == "reset" && !j.contains("beat_id");
  }
  EXPECT_TRUE(cast_lock && prompt && fallback && reset_to_beat && reset_session);

  auto [status, output] = validate(wire, "play_through_events");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find(fmt::format("{0} of {0} events valid", wire.size())), std::string::npos) << output;
}

TEST(EventSchema, TheValidatorRejectsEventsThatBreakTheSchema) {
  json state = opening_scene(*load_story(kSource + "/stories/sakuragaoka")).to_json();
  json no_place = state;
  no_place.erase("place");
  std::vector<json> bad = {
      json{{"type", "dialogue"}, {"text", "no speaker"}},
      json{{"type", "sprite"}, {"character", "Mio"}, {"expression", "smile"}, {"position", "left"}, {"image", "x.svg"},
           {"size", 2}},
      json{{"type", "beat_start"}, {"parent_id", 0}, {"player_choice", "x"}, {"state", no_place}},
      json{{"type", "choices"}, {"choices", json::array()}},
      json{{"type", "warp"}},
  };
  auto [status, output] = validate(bad, "bad_events");
  EXPECT_EQ(status, 1) << output;
  EXPECT_NE(output.find("0 of 5 events valid"), std::string::npos) << output;
  EXPECT_NE(output.find("speaker"), std::string::npos) << output;
  EXPECT_NE(output.find("size"), std::string::npos) << output;
  EXPECT_NE(output.find("place"), std::string::npos) << output;
}

}  // namespace
}  // namespace fabula::engine
