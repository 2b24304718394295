// The demo narrator's real sampled beats (tests/data/protocol/samples.txt, copied from fabula-demo-v1) validate.
#include <gtest/gtest.h>

#include <regex>

#include "base/file.h"
#include "protocol/validator.h"

namespace fabula::protocol {
namespace {

struct Sample {
  std::vector<std::string> cast;
  std::string beat;
};

// samples.txt: "=== sample N ok=True", "--- user" (with "Cast: A, B. Place: ..."), "--- model" + output.
// The model turn ends at the stop token <turn|> (README: stops <turn|>, <eos>); the engine never sees it.
std::vector<Sample> load_samples() {
  auto text = read_file_text(std::string(FABULA_TEST_DATA) + "/protocol/samples.txt");
  EXPECT_TRUE(text.ok());
  std::vector<Sample> out;
  if (!text.ok()) return out;
  const std::string& t = *text;
  size_t pos = 0;
  while ((pos = t.find("--- user\n", pos)) != std::string::npos) {
    size_t model = t.find("--- model\n", pos);
    std::string user = t.substr(pos, model - pos);
    size_t end = t.find("\n=== sample", model);
    std::string beat = t.substr(model + 10, (end == std::string::npos ? t.size() : end) - model - 10);
    size_t stop = beat.find("<turn|>");
    if (stop != std::string::npos) beat.resize(stop);
    Sample s;
    std::smatch m;
    if (std::regex_search(user, m, std::regex("Cast: (.*?)\\. Place"))) {
      std::string names = m[1];
      size_t b = 0;
      while (b <= names.size()) {
        size_t e = names.find(", ", b);
        s.cast.push_back(names.substr(b, e == std::string::npos ? std::string::npos : e - b));
        if (e == std::string::npos) break;
        b = e + 2;
      }
    }
    s.beat = beat;
    out.push_back(std::move(s));
    pos = model;
  }
  return out;
}

TEST(Samples, AllEightDemoBeatsAreValid) {
  auto samples = load_samples();
  ASSERT_EQ(samples.size(), 8u);
  Manifest m = Manifest::default_manifest();
  for (size_t i = 0; i < samples.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_GE(samples[i].cast.size(), 2u);
    ValidateOptions o;
    o.locked_cast = samples[i].cast;
    BeatReport r = validate_beat(samples[i].beat, m, o);
    for (const auto& e : r.errors) ADD_FAILURE() << code_name(e.code) << " line " << e.line << ": " << e.message;
    EXPECT_TRUE(r.valid);
    EXPECT_FALSE(r.needed_repair());
    // Every sample shows sprites, has dialogue or narration and ends with choices.
    ASSERT_FALSE(r.lines.empty());
    EXPECT_TRUE(std::holds_alternative<Tool>(r.lines.back().content));
  }
}

TEST(Samples, StoryManifestFromRepoMatchesBuiltIn) {
  auto story = Manifest::load(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka/story.json");
  ASSERT_TRUE(story.ok()) << story.error().to_string();
  Manifest builtin = Manifest::default_manifest();
  ASSERT_EQ(story->tools().size(), builtin.tools().size());
  for (size_t i = 0; i < builtin.tools().size(); ++i) {
    const auto& a = story->tools()[i];
    const auto& b = builtin.tools()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.ends_beat, b.ends_beat);
    EXPECT_EQ(a.role, b.role) << a.name;
    ASSERT_EQ(a.args.size(), b.args.size()) << a.name;
    for (size_t k = 0; k < a.args.size(); ++k) {
      EXPECT_EQ(a.args[k].name, b.args[k].name);
      EXPECT_EQ(a.args[k].required, b.args[k].required);
      EXPECT_EQ(a.args[k].kind, b.args[k].kind);
      EXPECT_EQ(a.args[k].value_set, b.args[k].value_set);
      EXPECT_EQ(a.args[k].also, b.args[k].also);
    }
  }
  for (std::string set : {"cast", "locations", "music", "sounds", "expressions", "positions", "transitions"}) {
    ASSERT_NE(story->value_set(set), nullptr) << set;
    EXPECT_EQ(*story->value_set(set), *builtin.value_set(set)) << set;
  }
  // And the samples are valid under the story file too.
  for (const auto& s : load_samples()) {
    ValidateOptions o;
    o.locked_cast = s.cast;
    EXPECT_TRUE(validate_beat(s.beat, *story, o).valid);
  }
}

}  // namespace
}  // namespace fabula::protocol
