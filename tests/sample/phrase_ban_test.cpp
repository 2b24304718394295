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

TEST(PhraseBan, OneTokenCompletingTwoWordsChecksBoth) {
  PhraseMatcher m({"hold her"});
  // " breath." completes "her" and "breath" at once: the phrase ending at "her" still counts.
  EXPECT_EQ(m.find_completed("to hold her breath.", 7), std::optional<size_t>(3));
  EXPECT_EQ(m.find_completed("to hold her", 0), std::nullopt);
  EXPECT_EQ(m.find_completed("to hold her", 0, /*text_ends=*/true), std::optional<size_t>(3));
}

TEST(PhraseBan, DashesSeparateWordsWholly) {
  PhraseMatcher m({"hold her breath"});
  // The em dash's continuation bytes are not the start of the next word.
  EXPECT_TRUE(m.find_completed("waited\xE2\x80\x94hold her breath.").has_value());
  auto w = phrase_words("a\xE2\x80\x94" "b");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[1].word, "b");
}

TEST(PhraseBan, StableLagsByTwicePhraseLengthAndNeverRewindsBelowIt) {
  PhraseMatcher m({"red fox"});  // 2 words: stable lags 5 words
  PhraseBacktracker bt(m, 4);
  const char* words[] = {"one", " two", " three", " four", " five", " six", " seven", " eight"};
  for (int i = 0; i < 8; ++i) ASSERT_FALSE(bt.on_token(i, words[i]).has_value());
  // 8 words, the last incomplete: tokens before word 8 - 5 = 3 ("four") are stable.
  EXPECT_EQ(bt.stable(), 3u);
  EXPECT_FALSE(bt.on_token(8, " red").has_value());
  EXPECT_EQ(bt.stable(), 4u);
  auto keep = bt.on_token(9, " fox.");
  ASSERT_TRUE(keep.has_value());
  EXPECT_EQ(*keep, 8u);
  EXPECT_EQ(bt.stable(), 4u);  // never decreases, never rewound below
  // At the end of the text, a phrase ending with the last word completes too.
  EXPECT_FALSE(bt.on_token(10, " red").has_value());
  EXPECT_FALSE(bt.on_token(11, " fox").has_value());
  auto end = bt.on_end();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(*end, 8u);
  EXPECT_EQ(bt.banned(8).count(10), 1u);
  EXPECT_EQ(bt.banned(8).count(8), 1u);  // bans at one position accumulate
  EXPECT_EQ(bt.backtracks(), 2);
}

}  // namespace
}  // namespace fabula
