// Story package loading, the prompts through the chat template (byte-exact for the demo and vn26b), memory and scenes.
#include <filesystem>

#include <gtest/gtest.h>

#include "base/file.h"
#include "engine/prompt.h"
#include "engine/story.h"
#include "text/chat_template.h"

namespace fabula::engine {
namespace {

Story sakuragaoka() {
  auto s = load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().to_string());
  return std::move(*s);
}

TEST(Story, LoadsSakuragaokaWithArtForEveryCharacterExpressionAndPlace) {
  Story s = sakuragaoka();
  EXPECT_EQ(s.id, "sakuragaoka");
  ASSERT_EQ(s.cast.size(), 4u);
  EXPECT_EQ(s.cast[1].name, "Ren");
  ASSERT_EQ(s.locations.size(), 10u);
  ASSERT_EQ(s.expressions.size(), 7u);
  int files = 0;
  for (const auto& c : s.cast)
    for (const auto& e : s.expressions) {
      std::string p = s.root + "/" + s.sprite_path(c.name, e);
      EXPECT_TRUE(std::filesystem::exists(p)) << p;
      auto text = read_file_text(p);
      ASSERT_TRUE(text.ok());
      EXPECT_NE(text->find("<svg"), std::string::npos);
      ++files;
    }
  EXPECT_EQ(files, 28);
  for (const auto& l : s.locations) EXPECT_TRUE(std::filesystem::exists(s.root + "/" + l.backdrop)) << l.backdrop;
  EXPECT_EQ(s.sprite_path("Mio", "pouting"), "art/sprites/mio/neutral.svg");  // unknown expression falls back
  EXPECT_TRUE(s.profile("demo").ok());
  auto vn = s.profile("vn26b");
  ASSERT_TRUE(vn.ok());
  EXPECT_TRUE(vn->memory);
  EXPECT_NE(vn->system.find("Kaito: class clown"), std::string::npos);
  EXPECT_NE(vn->system.find("[TOOL: choices"), std::string::npos);
  EXPECT_NE(vn->system.find("shopping_street"), std::string::npos);
  EXPECT_NE(vn->system.find("MUSIC: calm, upbeat"), std::string::npos);
  EXPECT_FALSE(s.profile("nope").ok());
}

TEST(Story, ErrorsNameTheFieldAndFile) {
  nlohmann::json j = sakuragaoka().raw;
  j["opening"]["place"] = "moon";
  auto r = story_from_json(j, "/tmp", "x/story.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("x/story.json: opening.place \"moon\""), std::string::npos) << r.error().message;
  j = sakuragaoka().raw;
  j["cast"][2].erase("name");
  r = story_from_json(j, "/tmp", "y.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cast[2]: missing field \"name\""), std::string::npos) << r.error().message;
  EXPECT_FALSE(load_story("/nonexistent/story").ok());
}

// A wrong-typed field is an error naming its JSON path: a profile's "memory": "yes" once ended `fabula play` with
// an uncaught nlohmann type_error.
TEST(Story, WrongTypesAreErrorsNamingTheJsonPath) {
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* message;
  };
  const Case cases[] = {
      {"/profiles/vn26b/memory", "yes", "y.json: profiles.vn26b.memory: expected a boolean (true or false), got the string \"yes\""},
      {"/profiles/vn26b/memory_tokens", "many", "y.json: profiles.vn26b.memory_tokens: expected an integer, got the string \"many\""},
      {"/profiles/vn26b/system", 3, "y.json: profiles.vn26b.system: expected a string, got the number 3"},
      {"/profiles", nlohmann::json::array(), "y.json: profiles: expected an object, got an array"},
      {"/title", nullptr, "y.json: missing field \"title\""},
      {"/cast/1/sprites", false, "y.json: cast[1].sprites: expected a string, got the boolean false"},
      {"/cast/0/sprites", "../../etc", "y.json: cast[0].sprites: \"../../etc\" must stay inside the package"},
      {"/locations/0", 7, "y.json: locations[0]: expected a string or an object, got the number 7"},
      {"/locations/2/backdrop", "/etc/passwd", "y.json: locations[2].backdrop: \"/etc/passwd\" must be relative"},
      {"/opening", "classroom", "y.json: opening: expected an object, got the string \"classroom\""},
      {"/music", nlohmann::json::array(), "y.json: music: is empty"},
      {"/sounds/1", 1, "y.json: sounds[1]: expected a string, got the number 1"},
  };
  for (const auto& c : cases) {
    nlohmann::json j = sakuragaoka().raw;
    j[nlohmann::json::json_pointer(c.pointer)] = c.value;
    auto r = story_from_json(j, "/tmp", "y.json");
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_EQ(r.error().message.substr(0, std::string(c.message).size()), c.message) << r.error().message;
  }
}

std::string golden(const std::string& name) {
  auto text = read_file_text(std::string(FABULA_TEST_DATA) + "/engine/" + name);
  EXPECT_TRUE(text.ok()) << name;
  return text.ok() ? *text : std::string();
}

// The prompt a request becomes: its messages through a chat template, as every narrator backend renders them.
std::string render(const ChatTemplate& tmpl, const NarratorRequest& req) {
  auto text = tmpl.render(req.messages);
  EXPECT_TRUE(text.ok()) << (text.ok() ? "" : text.error().to_string());
  return text.ok() ? *text : std::string();
}

ChatTemplate demo_template() {  // the template stored in the demo narrator's GGUF
  auto text = read_file_text(std::string(FABULA_TEST_DATA) + "/demo/chat_template.jinja");
  EXPECT_TRUE(text.ok());
  auto t = ChatTemplate::detect(text.ok() ? *text : std::string());
  EXPECT_TRUE(t.ok());
  return t.ok() ? *t : ChatTemplate::gemma4();
}

TEST(Prompt, DemoProfileReproducesTheTrainingPromptExactly) {
  Story s = sakuragaoka();
  auto req = build_request(s, *s.profile("demo"), opening_scene(s), s.opening.player_choice, {}, Sampling{}, 5);
  EXPECT_EQ(render(demo_template(), req), golden("demo_prompt_opening.txt"));
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_EQ(req.messages[0].role, "system");
  EXPECT_EQ(req.messages[1].role, "user");
  EXPECT_EQ(req.messages[1].content.substr(0, 28), "Cast: Hana, Mio. Place: clas");
  EXPECT_EQ(req.seed, 5u);
  // The engine's request holds no model markup; the template adds all of it.
  for (const auto& m : req.messages) EXPECT_EQ(m.content.find("<|turn>"), std::string::npos);
}

std::vector<MemoryBeat> history_of(int n);

// What the engine rendered by hand for vn26b before prompts went through the template, with the one difference the
// template makes: Gemma 4's template trims each message, so the system text's final newline is gone
// ("...train.\n<turn|>" becomes "...train.<turn|>", as the chat API already rendered it). Everything else is the
// same bytes.
std::string vn26b_golden_through_template(const std::string& name) {
  std::string text = golden(name);
  const std::string hand_end = "\n<turn|>\n<|turn>user\n";
  const size_t at = text.find(hand_end);
  EXPECT_NE(at, std::string::npos) << name;
  if (at != std::string::npos) text.erase(at, 1);
  EXPECT_EQ(text.find(hand_end), std::string::npos) << name;  // exactly one system turn
  return text;
}

TEST(Prompt, Vn26bProfileRendersTheHandRenderedBytesThroughTheTemplate) {
  Story s = sakuragaoka();
  const NarratorProfile vn = *s.profile("vn26b");
  auto opening = build_request(s, vn, opening_scene(s), s.opening.player_choice, {}, Sampling{}, 1);
  EXPECT_EQ(render(ChatTemplate::gemma4(), opening), vn26b_golden_through_template("vn26b_prompt_opening.txt"));

  SceneState scene = opening_scene(s);
  scene.stage.push_back({"Hana", "smile", "left"});
  auto later = build_request(s, vn, scene, "Tease Hana back", history_of(120), Sampling{}, 1);
  const std::string want = vn26b_golden_through_template("vn26b_prompt_memory.txt");
  EXPECT_EQ(render(ChatTemplate::gemma4(), later), want);
  EXPECT_NE(want.find("- Earlier: "), std::string::npos);  // the golden exercises summary and recent beats
  EXPECT_NE(want.find("Recent beats:"), std::string::npos);
}

std::vector<MemoryBeat> history_of(int n) {
  std::vector<MemoryBeat> h;
  for (int i = 0; i < n; ++i) {
    MemoryBeat b;
    b.place = i % 2 ? "rooftop" : "train_station";
    b.player_choice = "Choice " + std::to_string(i);
    b.events = {DialogueEvent{"Hana", "Line " + std::to_string(i)},
                NarrationEvent{"Wind " + std::to_string(i) + ".", std::nullopt},
                ChoicesEvent{{"A" + std::to_string(i), "B"}, std::nullopt, false}};
    h.push_back(b);
  }
  return h;
}

TEST(Prompt, MemoryKeepsRecentBeatsVerbatimAndSummarisesOlderOnes) {
  auto h = history_of(30);
  int per_beat = estimate_tokens(std::string("(You chose: \u201cChoice 10\u201d)\n[Hana]: \"Line 10\"\nWind 10.\n"));
  Memory m = build_memory(h, per_beat * 3, 5);
  EXPECT_EQ(m.recent_beats, 3);
  EXPECT_EQ(m.summarized_beats, 27);
  EXPECT_NE(m.recent.find("[Hana]: \"Line 29\""), std::string::npos);
  EXPECT_NE(m.recent.find("[Hana]: \"Line 27\""), std::string::npos);
  EXPECT_EQ(m.recent.find("Line 26\""), std::string::npos);
  // 27 older beats: the newest 5 as lines, the other 22 collapsed into one count line.
  EXPECT_NE(m.summary.find("- Earlier: 22 beats at the train station, rooftop."), std::string::npos) << m.summary;
  EXPECT_NE(m.summary.find("- At the rooftop, after you chose \u201cChoice 25\u201d: Hana said \u201cLine 25\u201d; options were A25 / B."),
            std::string::npos) << m.summary;
  EXPECT_EQ(m.summary.find("Choice 21\u201d"), std::string::npos);

  Story s = sakuragaoka();
  // 120 beats overflow vn26b's 1200-token window: the oldest are summarised.
  auto req = build_request(s, *s.profile("vn26b"), opening_scene(s), "Tease Hana back", history_of(120), Sampling{}, 1);
  ASSERT_EQ(req.messages.size(), 2u);
  const std::string& user = req.messages[1].content;
  EXPECT_EQ(user.rfind("Story so far:", 0), 0u);
  EXPECT_NE(user.find("Recent beats:"), std::string::npos);
  EXPECT_NE(user.find("The player chose: \"Tease Hana back\""), std::string::npos);
  EXPECT_TRUE(user.ends_with("Write the next beat."));
}

TEST(Prompt, SceneMovesWithChoicesAndAfterTheSceneEnds) {
  Story s = sakuragaoka();
  SceneState a = opening_scene(s);
  a.stage.push_back({"Hana", "smile", "left"});
  SceneState b = advance_scene(s, a, "Race Hana to the school gate");
  EXPECT_EQ(b.place, "school_gate");
  EXPECT_TRUE(b.stage.empty());  // a new place clears the stage
  SceneState c = advance_scene(s, b, "Share your dango with Kaito");
  EXPECT_EQ(c.place, "school_gate");
  EXPECT_EQ(c.cast, (std::vector<std::string>{"Hana", "Mio", "Kaito"}));
  c.ended = true;
  SceneState d = advance_scene(s, c, "Continue");
  EXPECT_EQ(d.place, "library");  // the location after school_gate
  EXPECT_EQ(d.scene_index, 1);
  EXPECT_EQ(d.time, "evening");
  EXPECT_FALSE(d.ended);
  EXPECT_EQ(advance_scene(s, a, "Ask Mio for advice").place, "classroom");
}

}  // namespace
}  // namespace fabula::engine
