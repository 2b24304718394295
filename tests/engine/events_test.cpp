// Event structs and their JSON: every type round-trips, and bad input is an error naming the field, never a throw.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "base/file.h"
#include "engine/events.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

SceneState sample_state() {
  SceneState s;
  s.place = "rooftop";
  s.time = "after school";
  s.cast = {"Hana", "Mio"};
  s.scene_index = 2;
  s.ended = true;
  s.background = "rooftop";
  s.transition = "dissolve";
  s.stage = {{"Hana", "smile", "left"}, {"Mio", "sad", "right"}};
  s.music = "calm";
  return s;
}

// One instance of every type with every optional field set, plus the variants with optionals absent.
std::vector<Event> samples() {
  BeatSummary beat{12, 11, "Stay", {DialogueEvent{"Hana", "Hi"}, EndSceneEvent{}}, sample_state(),
                   {"A", "B"}, true, false, 1234567890123ull, 3};
  return {NarrationEvent{"Wind.", std::nullopt},
          NarrationEvent{"\u201cNoted.\u201d", "Ren"},
          DialogueEvent{"Hana", "Race you!"},
          BackgroundEvent{"rooftop", "Rooftop", "art/bg/rooftop.svg", "fade"},
          BackgroundEvent{"void", "Void", "", "cut"},
          SpriteEvent{"Mio", "laugh", "center", "art/sprites/mio/laugh.svg"},
          HideEvent{"Mio"},
          MusicEvent{"none"},
          SfxEvent{"footsteps"},
          ChoicesEvent{{"Agree", "Disagree"}, std::nullopt, false},
          ChoicesEvent{{"Continue"}, "Now what?", true},
          EndSceneEvent{},
          BeatStartEvent{0, "Ask around", sample_state()},
          AttemptEvent{3, true, sample_state()},
          BeatEndEvent{beat},
          ErrorEvent{"scripted narrator: all 2 beats used"},
          ResetEvent{std::nullopt},
          ResetEvent{42}};
}

TEST(Events, EveryTypeRoundTripsThroughJson) {
  std::set<std::string_view> covered;
  for (const Event& e : samples()) {
    json j = to_json(e);
    EXPECT_EQ(j["type"], std::string(event_type(e)));
    auto back = event_from_json(j);
    ASSERT_TRUE(back.ok()) << j.dump() << ": " << back.error().to_string();
    EXPECT_TRUE(*back == e) << j.dump();
    EXPECT_EQ(to_json(*back), j);
    covered.insert(event_type(e));
  }
  EXPECT_EQ(covered.size(), event_type_names().size());
}

TEST(Events, TypeNamesAreTheSchemaTags) {
  EXPECT_EQ(event_type_names(),
            (std::vector<std::string_view>{"narration", "dialogue", "background", "sprite", "hide", "music", "sfx",
                                           "choices", "end_scene", "beat_start", "attempt", "beat_end", "error",
                                           "reset"}));
}

TEST(Events, OptionalFieldsAreOmittedWhenUnset) {
  EXPECT_EQ(to_json(Event(NarrationEvent{"x", std::nullopt})), (json{{"type", "narration"}, {"text", "x"}}));
  EXPECT_EQ(to_json(Event(ChoicesEvent{{"a"}, std::nullopt, false})), (json{{"type", "choices"}, {"choices", {"a"}}}));
  EXPECT_EQ(to_json(Event(ChoicesEvent{{"a"}, std::nullopt, true}))["fallback"], true);
  EXPECT_EQ(to_json(Event(ResetEvent{})), (json{{"type", "reset"}}));
  EXPECT_EQ(to_json(Event(EndSceneEvent{})), (json{{"type", "end_scene"}}));
}

std::string error_of(const json& j) {
  auto r = event_from_json(j);
  EXPECT_FALSE(r.ok()) << j.dump();
  return r.ok() ? std::string() : r.error().message;
}

TEST(Events, BadInputIsAnErrorNamingTheField) {
  EXPECT_EQ(error_of(json{{"type", "dialogue"}, {"text", "x"}}), "dialogue: field \"speaker\": missing");
  EXPECT_EQ(error_of(json{{"type", "dialogue"}, {"speaker", 3}, {"text", "x"}}),
            "dialogue: field \"speaker\": expected a string");
  EXPECT_EQ(error_of(json{{"type", "dialogue"}, {"speaker", "Hana"}, {"text", "x"}, {"mood", "y"}}),
            "dialogue: unknown field \"mood\"");
  EXPECT_EQ(error_of(json{{"type", "warp"}}), "event: unknown event type \"warp\"");
  EXPECT_EQ(error_of(json{{"text", "x"}}), "event: field \"type\": expected a string naming the event type");
  EXPECT_EQ(error_of(json::array({1})), "event: expected an object");
  EXPECT_EQ(error_of(json{{"type", "choices"}, {"choices", {"a", 2}}}), "choices: field \"choices\"[1]: expected a string");
  EXPECT_EQ(error_of(json{{"type", "choices"}, {"choices", {"a"}}, {"fallback", "yes"}}),
            "choices: field \"fallback\": expected true or false");
  EXPECT_EQ(error_of(json{{"type", "reset"}, {"beat_id", 1.5}}), "reset: field \"beat_id\": expected an integer");
  EXPECT_EQ(error_of(json{{"type", "attempt"}, {"attempt", int64_t{1} << 40}, {"restart", true},
                          {"state", sample_state().to_json()}}),
            "attempt: field \"attempt\": 1099511627776 is out of range");

  json start = to_json(Event(BeatStartEvent{0, "x", sample_state()}));
  start["state"]["stage"][1].erase("character");
  EXPECT_EQ(error_of(start), "beat_start: field \"state\": field \"stage\"[1]: field \"character\": missing");
  start["state"] = json{{"place", ""}};
  EXPECT_EQ(error_of(start), "beat_start: field \"state\": field \"place\": must not be empty");

  json end = to_json(Event(BeatEndEvent{}));
  end["beat"]["state"] = sample_state().to_json();
  end["beat"]["events"] = json::array({json{{"type", "end_scene"}}, json{{"type", "beat_start"}}});
  EXPECT_EQ(error_of(end), "beat_end: field \"beat\": field \"events\"[1]: unknown event type \"beat_start\"");
  end["beat"]["events"] = json::array({json{{"type", "music"}, {"track", false}}});
  EXPECT_EQ(error_of(end), "beat_end: field \"beat\": field \"events\"[0]: music: field \"track\": expected a string");
  end["beat"]["seed"] = -1;
  end["beat"]["events"] = json::array();
  EXPECT_EQ(error_of(end), "beat_end: field \"beat\": field \"seed\": -1 is out of range");
}

TEST(Events, SceneEventsExcludeStreamEvents) {
  EXPECT_TRUE(scene_event_from_json(json{{"type", "hide"}, {"character", "Mio"}}).ok());
  auto r = scene_event_from_json(json{{"type", "reset"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "event: unknown event type \"reset\"");
}

TEST(Events, SceneStateKeepsDefaultsForOlderSavesButChecksTypes) {
  auto s = SceneState::from_json(json{{"place", "classroom"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->place, "classroom");
  EXPECT_TRUE(s->stage.empty());
  auto bad = SceneState::from_json(json{{"place", "classroom"}, {"cast", "Hana"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "scene state: field \"cast\": expected an array");
  auto round = SceneState::from_json(sample_state().to_json());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(*round, sample_state());
}

TEST(Events, ArbitraryJsonNeverThrows) {
  std::vector<json> odd = {json(),
                           json(1),
                           json("dialogue"),
                           json::array(),
                           json::object(),
                           json{{"type", nullptr}},
                           json{{"type", "beat_end"}, {"beat", json::array()}},
                           json{{"type", "beat_end"}, {"beat", {{"events", {{{"type", 7}}}}}}},
                           json{{"type", "sprite"}, {"character", json::object()}},
                           json{{"type", "reset"}, {"beat_id", 18446744073709551615ull}},
                           json{{"type", "beat_start"}, {"parent_id", -3.0}, {"state", nullptr}}};
  for (const auto& j : odd) {
    EXPECT_NO_THROW({
      auto r = event_from_json(j);
      EXPECT_FALSE(r.ok()) << j.dump();
    });
  }
}

TEST(Events, FuzzSeedCorpusParsesAndRoundTrips) {
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(FABULA_SOURCE_DIR) + "/fuzz/corpus/events")) {
    auto text = read_file_text(entry.path().string());
    ASSERT_TRUE(text.ok());
    auto e = event_from_json(json::parse(*text));
    ASSERT_TRUE(e.ok()) << entry.path() << ": " << e.error().to_string();
    auto back = event_from_json(to_json(*e));
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == *e) << entry.path();
    ++seeds;
  }
  EXPECT_GE(seeds, 8);
}

}  // namespace
}  // namespace fabula::engine
