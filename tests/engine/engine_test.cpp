// The turn loop over a scripted narrator: streaming application, regenerate-then-fallback, cast-lock, repairs.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/scripted_narrator.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

Story sakuragaoka() {
  auto s = load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
  EXPECT_TRUE(s.ok());
  return std::move(*s);
}

const char* kValid =
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"sad\"]\n"
    "Wind tugged at the fence on the rooftop.\n"
    "[Hana]: \"Race you to the rooftop!\"\n"
    "[TOOL: sprite character=\"Mio\" expression=\"laugh\"]\n"
    "[TOOL: music track=\"upbeat\"]\n"
    "[TOOL: choices choices='[\"Pretend you didn't hear\", \"Laugh along with Hana\"]']\n"
    "This line comes after the choices and must be ignored.\n";

const char* kNoChoices =
    "[TOOL: background name=\"park\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"angry\" position=\"right\"]\n"
    "[Hana]: \"Where did my choices go?\"\n";

struct Recorder {
  std::vector<json> events;
  EventSink sink() {
    return [this](const Event& e) { events.push_back(to_json(e)); };
  }
  std::vector<std::string> types() const {
    std::vector<std::string> t;
    for (const auto& e : events) t.push_back(e.value("type", ""));
    return t;
  }
};

TEST(Engine, AppliesEachLineAsItCompletesAndStopsAtChoices) {
  Story s = sakuragaoka();
  ScriptedNarrator narrator({kValid}, ScriptedOptions{5, 0, false});
  Engine engine(s, narrator);
  Recorder rec;
  size_t bytes_seen_at_first_dialogue = 0;
  std::string streamed;
  auto sink = [&](const Event& ev) {
    json e = to_json(ev);
    if (e.value("type", "") == "dialogue" && !bytes_seen_at_first_dialogue) bytes_seen_at_first_dialogue = 1;
    rec.events.push_back(e);
  };
  auto out = engine.play_beat(opening_scene(s), {}, "Ask what everyone is doing after school", 42, sink);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(rec.types(), (std::vector<std::string>{"background", "sprite", "sprite", "narration", "dialogue", "sprite",
                                                   "music", "choices"}));
  EXPECT_EQ(out->choices, (std::vector<std::string>{"Pretend you didn't hear", "Laugh along with Hana"}));
  EXPECT_EQ(out->attempts, 1);
  EXPECT_EQ(out->seed, 42u);
  EXPECT_FALSE(out->fallback);
  EXPECT_EQ(out->state.background, "rooftop");
  EXPECT_EQ(out->state.music, "upbeat");
  ASSERT_EQ(out->state.stage.size(), 2u);
  EXPECT_EQ(out->state.stage[0].character, "Hana");
  EXPECT_EQ(out->state.stage[0].position, "left");
  EXPECT_EQ(out->state.stage[1].character, "Mio");
  EXPECT_EQ(out->state.stage[1].expression, "laugh");
  EXPECT_EQ(out->state.stage[1].position, "center");  // auto-placed next to Hana
  // The narrator was stopped once the choices line completed: the trailing line never arrived.
  EXPECT_EQ(out->text.find("must be ignored"), std::string::npos);
  EXPECT_EQ(rec.events[4]["speaker"], "Hana");
  EXPECT_EQ(rec.events[4]["text"], "Race you to the rooftop!");
  EXPECT_EQ(rec.events[1]["image"], "art/sprites/hana/smile.svg");
  EXPECT_EQ(narrator.requests().size(), 1u);
  EXPECT_EQ(narrator.requests()[0].seed, 42u);
}

TEST(Engine, FirstLineArrivesWhileTheNarratorIsStillWriting) {
  Story s = sakuragaoka();
  ScriptedNarrator narrator({kValid}, ScriptedOptions{3, 0, false});
  Engine engine(s, narrator);
  size_t chunks_before_first_line = 0, chunks = 0;
  // Wrap the narrator's stream count through the sink: the engine calls the sink from inside on_text.
  struct Counting : Narrator {
    ScriptedNarrator& inner;
    size_t& chunks;
    Counting(ScriptedNarrator& n, size_t& c) : inner(n), chunks(c) {}
    Result<NarratorResult> write(const NarratorRequest& r, const TextCallback& cb) override {
      return inner.write(r, [&](std::string_view p) { ++chunks; return cb(p); });
    }
    std::string describe() const override { return "counting"; }
  } counting(narrator, chunks);
  Engine e2(s, counting);
  auto out = e2.play_beat(opening_scene(s), {}, "x", 1, [&](const Event& e) {
    if (std::holds_alternative<NarrationEvent>(e) && !chunks_before_first_line) chunks_before_first_line = chunks;
  });
  ASSERT_TRUE(out.ok());
  EXPECT_GT(chunks_before_first_line, 0u);
  EXPECT_LT(chunks_before_first_line, chunks);
}

TEST(Engine, RegeneratesWithTheNextSeedThenAcceptsAValidBeat) {
  Story s = sakuragaoka();
  ScriptedNarrator narrator({kNoChoices, kNoChoices, kValid}, ScriptedOptions{});
  Engine engine(s, narrator);
  Recorder rec;
  auto out = engine.play_beat(opening_scene(s), {}, "x", 100, rec.sink());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->attempts, 3);
  EXPECT_EQ(out->seed, 102u);
  EXPECT_FALSE(out->fallback);
  ASSERT_EQ(narrator.requests().size(), 3u);
  EXPECT_EQ(narrator.requests()[1].seed, 101u);
  int restarts = 0;
  for (const auto& e : rec.events)
    if (e.value("type", "") == "attempt" && e.value("restart", false)) {
      ++restarts;
      EXPECT_EQ(e["state"]["stage"].size(), 0u);  // back to the scene as it was before the beat
    }
  EXPECT_EQ(restarts, 2);
  EXPECT_EQ(out->state.background, "rooftop");  // the invalid attempts' park never sticks
  ASSERT_TRUE(std::holds_alternative<BackgroundEvent>(out->events.front()));
  EXPECT_EQ(std::get<BackgroundEvent>(out->events.front()).name, "rooftop");
}

TEST(Engine, FallsBackToContinueAfterMaxRegenerations) {
  Story s = sakuragaoka();
  ScriptedNarrator narrator({kNoChoices}, ScriptedOptions{7, 0, true});
  EngineOptions opt;
  opt.max_regenerations = 3;
  Engine engine(s, narrator, opt);
  Recorder rec;
  auto out = engine.play_beat(opening_scene(s), {}, "x", 9, rec.sink());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(narrator.calls(), 4u);  // 1 + 3 regenerations
  EXPECT_EQ(out->attempts, 4);
  EXPECT_TRUE(out->fallback);
  EXPECT_EQ(out->choices, std::vector<std::string>{"Continue"});
  EXPECT_EQ(rec.events.back()["type"], "choices");
  EXPECT_EQ(rec.events.back()["fallback"], true);
  EXPECT_EQ(out->state.background, "park");  // the last attempt's stage is kept
}

TEST(Engine, CastLockTurnsOutsiderDialogueIntoNarrationAndDropsTheirSprites) {
  Story s = sakuragaoka();
  const char* beat =
      "[TOOL: sprite character=\"Ren\" expression=\"neutral\" position=\"center\"]\n"
      "[TOOL: sprite character=\"Hana\" expression=\"smile\"]\n"
      "[Ren]: \"Noted. Filed. Ignored.\"\n"
      "[Yuki]: \"\"\n"
      "[Hana]: \"Ren isn't even here!\"\n"
      "[TOOL: choices choices='[\"Agree\", \"Disagree\"]']\n";
  ScriptedNarrator narrator({beat}, ScriptedOptions{});
  Engine engine(s, narrator);
  Recorder rec;
  SceneState scene = opening_scene(s);  // cast: Hana, Mio
  auto out = engine.play_beat(scene, {}, "x", 1, rec.sink());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->cast_lock_violations, 3);
  ASSERT_EQ(out->state.stage.size(), 1u);
  EXPECT_EQ(out->state.stage[0].character, "Hana");
  EXPECT_EQ(rec.types(), (std::vector<std::string>{"sprite", "narration", "dialogue", "choices"}));
  EXPECT_EQ(rec.events[1]["text"], "\u201cNoted. Filed. Ignored.\u201d");
  EXPECT_EQ(rec.events[1]["cast_lock"], "Ren");
  int logged = 0;
  for (const auto& n : out->notes) logged += n.find("cast-lock") != std::string::npos;
  EXPECT_EQ(logged, 3);
}

TEST(Engine, LenientRepairsAreAppliedAndLogged) {
  Story s = sakuragaoka();
  const char* beat =
      "[tool: background name=cafe]\n"
      "[TOOL: sprite character=\"Mio\" expression=\"grumpy\" position=\"left\"]\n"
      "[Mio]: \"Um... hello\n"
      "[TOOL: hide character=\"Hana\"]\n"
      "[TOOL: choices choices='[\"Order a parfait\", \"Order a parfait\", \"Leave\"]']\n";
  ScriptedNarrator narrator({beat}, ScriptedOptions{});
  Engine engine(s, narrator);
  Recorder rec;
  auto out = engine.play_beat(opening_scene(s), {}, "x", 1, rec.sink());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->state.background, "cafe");
  ASSERT_EQ(out->state.stage.size(), 1u);
  EXPECT_EQ(out->state.stage[0].expression, "neutral");  // unknown expression -> neutral
  EXPECT_EQ(rec.events[2]["type"], "dialogue");
  EXPECT_EQ(rec.events[2]["text"], "Um... hello");
  EXPECT_EQ(out->choices, (std::vector<std::string>{"Order a parfait", "Leave"}));  // duplicate dropped
  std::string notes;
  for (const auto& n : out->notes) notes += n + "\n";
  EXPECT_NE(notes.find("repaired"), std::string::npos) << notes;
  EXPECT_NE(notes.find("grumpy"), std::string::npos) << notes;
  EXPECT_NE(notes.find("hide of Hana who is not on stage"), std::string::npos) << notes;
}

TEST(Engine, ReplaysTheDemoNarratorsRealSamples) {
  Story s = sakuragaoka();
  auto narrator = ScriptedNarrator::load(std::string(FABULA_TEST_DATA) + "/engine/demo_samples.jsonl");
  ASSERT_TRUE(narrator.ok());
  Engine engine(s, **narrator);
  for (int i = 0; i < 8; ++i) {
    SceneState scene = opening_scene(s);
    scene.cast = {"Hana", "Ren", "Mio", "Kaito"};  // the samples use varying casts; lock to the whole story
    auto out = engine.play_beat(scene, {}, "x", static_cast<uint64_t>(i), [](const Event&) {});
    ASSERT_TRUE(out.ok()) << i;
    EXPECT_EQ(out->attempts, 1) << i;
    EXPECT_EQ(out->cast_lock_violations, 0) << i;
    EXPECT_GE(out->choices.size(), 2u) << i;
    EXPECT_FALSE(out->state.background.empty()) << i;
    EXPECT_FALSE(out->state.stage.empty()) << i;
  }
}

}  // namespace
}  // namespace fabula::engine
