// Stop strings across token boundaries, held-back partial matches, EOG ids.
#include <gtest/gtest.h>

#include "sample/stop.h"

namespace fabula {
namespace {

TEST(StopMatcher, MatchAcrossChunksReleasesTextBefore) {
  StopMatcher m({"<turn|>"});
  EXPECT_EQ(m.feed("Hello Wor"), "Hello Wor");
  EXPECT_EQ(m.feed("ld<tu"), "ld");
  EXPECT_EQ(m.held(), "<tu");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.feed("rn|>xyz"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "<turn|>");
  EXPECT_EQ(m.feed("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FalseStartIsReleased) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.feed("a<"), "a");
  EXPECT_EQ(m.feed("/b"), "</b");
  EXPECT_EQ(m.feed("<"), "");
  EXPECT_EQ(m.flush(), "<");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EveryCutPositionGivesTheSameResult) {
  const std::string text = "[Mio]: \"Hi.\"\nEND\n[Ren]: \"No.\"";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    StopMatcher m({"\nEND\n", "zzz"});
    std::string out;
    m.feed(text.substr(0, cut), out);
    m.feed(text.substr(cut), out);
    out += m.flush();
    EXPECT_EQ(out, "[Mio]: \"Hi.\"") << "cut " << cut;
    EXPECT_EQ(m.matched(), "\nEND\n");
  }
}

TEST(StopMatcher, EarliestStopWins) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.feed("abcd"), "a");
  EXPECT_EQ(m.matched(), "b");
}

TEST(StopMatcher, OneCharacterAtATime) {
  StopMatcher m({"STOP"});
  std::string out;
  for (char ch : std::string("xxSTOyySTOPzz")) {
    if (m.feed(std::string(1, ch), out)) break;
  }
  EXPECT_EQ(out, "xxSTOyy");
  EXPECT_TRUE(m.stopped());
}

TEST(StopCondition, EogIds) {
  StopCondition s({1, 106}, {"\n\n\n"});
  EXPECT_TRUE(s.is_eog(106));
  EXPECT_TRUE(s.is_eog(1));
  EXPECT_FALSE(s.is_eog(2));
  EXPECT_EQ(s.text().feed("a\n\n\nb"), "a");
}

}  // namespace
}  // namespace fabula
