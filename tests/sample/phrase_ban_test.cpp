// Phrase-ban matching on word boundaries and the backtracker's rewind bookkeeping.
#include <gtest/gtest.h>

#include "sample/phrase_ban.h"

namespace fabula {
namespace {

TEST(PhraseBan, MatchesCompletedPhrasesOnWordBoundaries) {
  PhraseMatcher m({"the air hung heavy", "a mix of"});
  EXPECT_EQ(m.find_completed("Then The air hung heavy."), std::optional<size_t>(5));
  EXPECT_EQ(m.find_completed("Then the air hung heavy"), std::nullopt);   // last word not complete yet
  EXPECT_EQ(m.find_completed("the air hung heavyset."), std::nullopt);   // word boundary
  EXPECT_EQ(m.find_completed("It was A MIX OF joy"), std::optional<size_t>(7));  // "of " completed before "joy"
  EXPECT_EQ(m.find_completed("It was a mix of joy", 16), std::nullopt);  // completed before `from`
  auto w = phrase_words("Don’t stop-start, ok");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].word, "don't");
  EXPECT_EQ(w[1].word, "stop-start");
}

TEST(PhraseBan, BacktrackerRewindsToThePhraseStartAndBansThatToken) {
  PhraseMatcher m({"air hung heavy"});
  PhraseBacktracker bt(m, 2);
  const char* pieces[] = {"The", " air", " hung", " heavy", "."};
  std::optional<size_t> keep;
  for (int i = 0; i < 5 && !keep; ++i) keep = bt.on_token(100 + i, pieces[i]);
  ASSERT_TRUE(keep.has_value());
  EXPECT_EQ(*keep, 1u);              // " air" (token 1) started the phrase
  EXPECT_EQ(bt.text(), "The");
  EXPECT_EQ(bt.banned(1).count(101), 1u);
  EXPECT_TRUE(bt.banned(0).empty());
  // A different continuation is fine.
  EXPECT_FALSE(bt.on_token(200, " sky").has_value());
  EXPECT_FALSE(bt.on_token(201, " was").has_value());
  EXPECT_EQ(bt.text(), "The sky was");
  // The budget bounds backtracks: after two, phrases pass.
  bt.reset();
  int rewinds = 0;
  for (int round = 0; round < 4; ++round) {
    for (const char* p : {" air", " hung", " heavy", " "}) {
      if (bt.on_token(1, p)) {
        ++rewinds;
        break;
      }
    }
  }
  EXPECT_EQ(rewinds, 2);
  EXPECT_EQ(bt.backtracks(), 2);
}

TEST(PhraseBan, TellListLoads) {
  auto m = PhraseMatcher::load_tells(std::string(FABULA_SOURCE_DIR) + "/data/slop-tells-v1.txt");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_GT(m->size(), 10u);
  EXPECT_TRUE(m->find_completed("And the air hung heavy with unspoken words.").has_value());
  EXPECT_FALSE(PhraseMatcher::load("/nonexistent/ban.txt").ok());
}

}  // namespace
}  // namespace fabula
