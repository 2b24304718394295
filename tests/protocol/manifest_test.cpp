// Manifest: the built-in default, story.json loading (value sets, tools, roles), errors and story lookup.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "protocol/manifest.h"

namespace fabula::protocol {
namespace {

TEST(Manifest, DefaultMatchesProtocolDoc) {
  Manifest m = Manifest::default_manifest();
  std::vector<std::string> names;
  for (const auto& t : m.tools()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"background", "sprite", "hide", "music", "sfx", "choices", "end_scene"}));
  EXPECT_EQ(m.cast(), (std::vector<std::string>{"Hana", "Ren", "Mio", "Kaito"}));
  EXPECT_EQ(m.value_set("expressions")->size(), 7u);
  EXPECT_EQ(m.value_set("locations")->size(), 10u);
  const ToolSpec* music = m.find_tool("music");
  ASSERT_NE(music, nullptr);
  EXPECT_TRUE(m.allows(*music->find_arg("track"), "none"));
  EXPECT_TRUE(m.allows(*music->find_arg("track"), "melancholy"));
  EXPECT_FALSE(m.allows(*music->find_arg("track"), "jazz"));
  EXPECT_EQ(m.find_tool("choices")->role, ToolRole::kChoices);
  EXPECT_TRUE(m.find_tool("end_scene")->ends_beat);
  EXPECT_EQ(m.find_tool("sprite")->role, ToolRole::kShow);
  EXPECT_EQ(m.find_tool("hide")->role, ToolRole::kHide);
  EXPECT_EQ(m.find_tool("nope"), nullptr);
  const ArgSpec* choices = m.find_tool("choices")->find_arg("choices");
  EXPECT_EQ(choices->kind, ArgKind::kChoicesJson);
  EXPECT_EQ(choices->min_items, 2);
  EXPECT_EQ(choices->max_items, 4);
  EXPECT_EQ(choices->max_item_chars, 120);
}

TEST(Manifest, UnicodeCastIsNfcAndExact) {
  auto m = Manifest::load(std::string(FABULA_TEST_DATA) + "/protocol/unicode_story.json");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->id(), "unicode-test");
  EXPECT_EQ(m->find_cast("Zoe\xCC\x88").value_or(""), "Zoë");  // NFD input finds the NFC name
  EXPECT_EQ(m->find_cast(" 美咲 ").value_or(""), "美咲");
  EXPECT_FALSE(m->find_cast("zoë").has_value());               // exact after NFC: case matters
  const ArgSpec* loc = m->find_tool("background")->find_arg("name");
  EXPECT_TRUE(m->allows(*loc, "cafe\xCC\x81"));  // café in NFD
  EXPECT_FALSE(m->allows(*loc, "cafe"));
  EXPECT_EQ(m->find_tool("choices")->find_arg("choices")->max_items, 3);
  EXPECT_EQ(m->find_tool("sfx"), nullptr);  // this story's manifest has no sfx tool
}

TEST(Manifest, StoryWithoutToolsGetsDefaultToolsBoundToItsSets) {
  auto j = nlohmann::json::parse(R"({"id":"mini","cast":[{"name":"Aoi"}],"locations":["lab"],"music":["lofi"],
    "sounds":["beep"],"expressions":["neutral"],"positions":["left"],"transitions":["cut"]})");
  auto m = Manifest::from_json(j, "mini.json");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->tools().size(), 7u);
  EXPECT_EQ(m->cast(), std::vector<std::string>{"Aoi"});
  EXPECT_TRUE(m->allows(*m->find_tool("background")->find_arg("name"), "lab"));
  EXPECT_FALSE(m->allows(*m->find_tool("background")->find_arg("name"), "classroom"));
}

TEST(Manifest, CustomToolsAndRoles) {
  auto j = nlohmann::json::parse(R"({"cast":["Aoi"],"moods":["calm"],"tools":[
    {"name":"enter","role":"show","args":[{"name":"who","required":true,"values":"cast"},
                                          {"name":"mood","values":"moods","also":["any"]}]},
    {"name":"menu","ends_beat":true,"args":[{"name":"options","required":true,"kind":"choices_json","max_items":6}]},
    {"name":"fin","ends_beat":true}]})");
  auto m = Manifest::from_json(j);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->find_tool("enter")->role, ToolRole::kShow);
  EXPECT_EQ(m->find_tool("menu")->role, ToolRole::kChoices);
  EXPECT_EQ(m->find_tool("fin")->role, ToolRole::kEndScene);
  EXPECT_EQ(m->find_tool("menu")->find_arg("options")->max_items, 6);
  EXPECT_TRUE(m->allows(*m->find_tool("enter")->find_arg("mood"), "any"));
  EXPECT_FALSE(m->find_tool("enter")->find_arg("mood")->required);
}

TEST(Manifest, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* needle;
  };
  for (const auto& c : std::vector<Case>{
           {R"([1,2])", "expected an object, got an array"},
           {R"({"cast":[1]})", "cast[0]"},
           {R"({"tools":{}})", "tools: expected an array, got an object"},
           {R"({"tools":[{"args":[]}]})", "tools[0]"},
           {R"({"tools":[{"name":"x","args":[{"name":"a","values":"nope"}]}]})", "value set \"nope\""},
           {R"({"tools":[{"name":"x","args":[{"name":"a","kind":"blob"}]}]})", "unknown \"kind\""},
           {R"({"tools":[{"name":"x","args":[{"name":"a","required":"yes"}]}]})", "tools[0].args[0].required: expected a boolean"},
           {R"({"tools":[{"name":"x","args":[{"name":"a","kind":"choices_json","max_items":"4"}]}]})", "tools[0].args[0].max_items: expected an integer, got the string \"4\""},
           {R"({"tools":[{"name":"x","role":"dance"}]})", "unknown \"role\""},
       }) {
    auto r = Manifest::from_json(nlohmann::json::parse(c.json), "s.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("s.json"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(Manifest::load("/nonexistent/story.json").ok());
}

TEST(Manifest, StoryLookupByIdDirectoryAndPath) {
  std::string src = FABULA_SOURCE_DIR;
  auto by_path = resolve_story_path(src + "/stories/sakuragaoka/story.json");
  ASSERT_TRUE(by_path.ok());
  auto by_dir = resolve_story_path(src + "/stories/sakuragaoka");
  ASSERT_TRUE(by_dir.ok());
  EXPECT_EQ(*by_dir, src + "/stories/sakuragaoka/story.json");
  // By id: found from the test binary's directory (build-*/tests) by walking up to the repository.
  auto by_id = load_story_manifest("sakuragaoka");
  ASSERT_TRUE(by_id.ok()) << by_id.error().to_string();
  EXPECT_EQ(by_id->id(), "sakuragaoka");
  auto built_in = load_story_manifest("");  // no --story
  ASSERT_TRUE(built_in.ok()) << built_in.error().to_string();
  EXPECT_EQ(built_in->cast(), Manifest::default_manifest().cast());
  auto missing = resolve_story_path("no_such_story");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(find_in_repo("data/slop-tells-v1.txt").has_value());
  EXPECT_FALSE(find_in_repo("data/no-such-file.txt").has_value());
}

// Sets an environment variable for one scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Manifest, StoryIdsAreLookedUpInFabulaStoriesFirst) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("fabula_stories_" + std::to_string(::getpid()));
  fs::create_directories(root / "b" / "mine");
  fs::create_directories(root / "b" / "sakuragaoka");
  std::ofstream(root / "b" / "mine" / "story.json")
      << R"({"id": "mine", "cast": ["A"], "locations": ["x"], "tools": []})";
  std::ofstream(root / "b" / "sakuragaoka" / "story.json")
      << R"({"id": "sakuragaoka", "cast": ["Z"], "locations": ["y"], "tools": []})";
  {
    // A missing directory and an empty entry are skipped.
    ScopedEnv env("FABULA_STORIES", (root / "a").string() + "::" + (root / "b").string());
    auto mine = resolve_story_path("mine");
    ASSERT_TRUE(mine.ok()) << mine.error().to_string();
    EXPECT_EQ(*mine, (root / "b" / "mine" / "story.json").string());
    auto shadow = load_story_manifest("sakuragaoka");  // $FABULA_STORIES wins over the checkout's stories/
    ASSERT_TRUE(shadow.ok()) << shadow.error().to_string();
    EXPECT_EQ(shadow->cast(), std::vector<std::string>{"Z"});
    EXPECT_FALSE(resolve_story_path("nobody").ok());
  }
  EXPECT_FALSE(resolve_story_path("mine").ok());  // not in the checkout
  {
    ScopedEnv env("FABULA_HOME", root.string());  // the project's files under $FABULA_HOME come first
    fs::create_directories(root / "data");
    std::ofstream(root / "data" / "only-here.txt") << "x";
    auto found = find_in_repo("data/only-here.txt");
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(*found, (root / "data" / "only-here.txt").string());
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace fabula::protocol
