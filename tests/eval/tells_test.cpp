// Slop-tell list: file format, {X} wildcards, word boundaries, cast-name exclusion, the shipped list.
#include <gtest/gtest.h>

#include "base/file.h"
#include "eval/tells.h"
#include "eval/words.h"

namespace fabula::eval {
namespace {

size_t count(const std::string& list, const std::vector<std::string>& lines, const std::vector<std::string>& cast = {}) {
  auto tells = TellList::parse(list, "test");
  EXPECT_TRUE(tells.ok()) << tells.error().to_string();
  if (!tells.ok()) return 0;
  std::vector<std::string> cast_words;
  for (const auto& c : cast) {
    for (auto& w : words_of(c)) cast_words.push_back(w);
  }
  return match_tells(*tells, lines, cast_words).size();
}

TEST(Tells, PhrasesMatchOnWordBoundariesIgnoringCaseAndPunctuation) {
  EXPECT_EQ(count("barely above a whisper\n", {"Her voice was BARELY above a whisper."}), 1u);
  EXPECT_EQ(count("maybe, just maybe\n", {"Maybe just maybe, it works."}), 1u);
  EXPECT_EQ(count("tapestry\n", {"Tapestries hung there."}), 0u);      // a different word
  EXPECT_EQ(count("the air\n", {"the airport was busy"}), 0u);          // no partial words
  EXPECT_EQ(count("couldn't help but\n", {"She couldn’t help but laugh."}), 1u);  // ’ == '
}

TEST(Tells, WildcardTakesOneToThreeWords) {
  const std::string list = "a mix of {X} and {X}\n";
  EXPECT_EQ(count(list, {"a mix of fear and hope"}), 1u);
  EXPECT_EQ(count(list, {"a mix of deep dark fear and bright hope"}), 1u);  // 3 words, then 2
  EXPECT_EQ(count(list, {"a mix of one two three four and hope"}), 0u);    // 4 words: too many
  EXPECT_EQ(count(list, {"a mix of and hope"}), 0u);                        // {X} needs a word
  EXPECT_EQ(count(list, {"a mix of fear", "and hope"}), 0u);                // never across lines
}

TEST(Tells, NonOverlappingPerPatternAndCountedPerPattern) {
  EXPECT_EQ(count("maybe maybe\n", {"maybe maybe maybe"}), 1u);
  EXPECT_EQ(count("maybe maybe\n", {"maybe maybe maybe maybe"}), 2u);
  // Two different patterns over the same words both count.
  EXPECT_EQ(count("barely above a whisper\nabove a whisper\n", {"barely above a whisper"}), 2u);
}

TEST(Tells, RegexOverNormalisedProse) {
  EXPECT_EQ(count("re:\\bnot (just|only) [^.!?]{1,60}, but\\b\n", {"It was NOT just rain, but a storm."}), 1u);
  EXPECT_EQ(count("re:caf\xC3\xA9\n", {"CAFE\xCC\x81 time"}), 1u);  // NFD + upper case normalised first
}

TEST(Tells, CastNamesNeverMatch) {
  EXPECT_EQ(count("elara\n", {"Elara smiled."}), 1u);
  EXPECT_EQ(count("elara\n", {"Elara smiled."}, {"Elara"}), 0u);
  EXPECT_EQ(count("lyra sighed\n", {"Lyra sighed."}, {"Lyra Vance"}), 0u);
  EXPECT_EQ(count("re:\\blyra\\b\n", {"Lyra sighed."}, {"Lyra"}), 0u);
  // A regex hit with other words in it still counts.
  EXPECT_EQ(count("re:lyra sighed\n", {"Lyra sighed."}, {"Lyra"}), 1u);
}

TEST(Tells, ParseErrorsNameTheLine) {
  auto bad = TellList::parse("ok phrase\nre:([unclosed\n", "list.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("list.txt:2"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(TellList::parse("a {Y} b\n", "x").ok());
  EXPECT_FALSE(TellList::parse("{X}\n", "x").ok());
  EXPECT_FALSE(TellList::parse("# only comments\n", "x").ok());
}

TEST(Tells, ShippedListIsVersionedAndLargeEnough) {
  auto tells = TellList::load(std::string(FABULA_SOURCE_DIR) + "/data/slop-tells-v1.txt");
  ASSERT_TRUE(tells.ok()) << tells.error().to_string();
  EXPECT_EQ(tells->version, "slop-tells-v1");
  EXPECT_GE(tells->patterns.size(), 150u);
  bool card = false, mix = false;
  size_t wildcards = 0, regexes = 0;
  for (const auto& p : tells->patterns) {
    card = card || p.source == "the air hung heavy with unspoken words";
    mix = mix || p.source == "a mix of {X} and {X}";
    wildcards += p.source.find("{X}") != std::string::npos;
    regexes += p.is_regex;
  }
  EXPECT_TRUE(card);
  EXPECT_TRUE(mix);
  EXPECT_GE(wildcards, 10u);
  EXPECT_GE(regexes, 2u);
  auto text = read_file_text(std::string(FABULA_SOURCE_DIR) + "/data/slop-tells-v1.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("antislop-sampler"), std::string::npos);  // sources are cited
  // The card's own example is a hit.
  auto hits = match_tells(*tells, {"The air hung heavy with unspoken words."}, {});
  EXPECT_GE(hits.size(), 1u);
}

TEST(Tells, PlainPhrasesLoadAsBans) {
  auto m = load_phrase_bans("", /*ban_tells=*/true);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_GT((*m)->size(), 10u);
  EXPECT_TRUE((*m)->find_completed("And the air hung heavy with unspoken words.").has_value());
  EXPECT_FALSE(load_phrase_bans("/nonexistent/ban.txt", false).ok());
}

}  // namespace
}  // namespace fabula::eval
