// LineSplitter: logical lines per docs/PROTOCOL.md §1, identical for whole, byte-at-a-time and random-chunk input.
#include <gtest/gtest.h>

#include <random>

#include "protocol/line_splitter.h"

namespace fabula::protocol {
namespace {

std::vector<std::string> texts(const std::vector<LogicalLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.text);
  return out;
}

std::vector<LogicalLine> by_bytes(std::string_view s) {
  LineSplitter sp;
  std::vector<LogicalLine> out;
  for (char c : s) sp.feed(std::string_view(&c, 1), out);
  if (auto last = sp.finish()) out.push_back(*last);
  return out;
}

using V = std::vector<std::string>;

TEST(Splitter, PlainLines) {
  EXPECT_EQ(texts(split_lines("a\nb\n\nc")), (V{"a", "b", "", "c"}));
  EXPECT_EQ(texts(split_lines("a\r\nb\r\n")), (V{"a", "b"}));
  EXPECT_TRUE(split_lines("").empty());
}

TEST(Splitter, MultiLineJsonStaysOneLine) {
  std::string beat = "x\n[TOOL: choices choices='[\n  \"A\",\n  \"B\"\n]']\ny";
  auto lines = split_lines(beat);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].text, "[TOOL: choices choices='[\n  \"A\",\n  \"B\"\n]']");
  EXPECT_EQ(lines[1].line, 2);
  EXPECT_EQ(lines[2].text, "y");
  EXPECT_EQ(lines[2].line, 6);  // physical line numbers keep counting inside the logical line
}

TEST(Splitter, ApostrophesInsideJsonStringsDoNotCloseTheValue) {
  // A naive "up to the next '" scan would close at didn't and then see "[" open again.
  std::string beat = "[TOOL: choices choices='[\"Pretend you didn't hear\",\n\"Don't\"]']\nnext";
  EXPECT_EQ(texts(split_lines(beat)), (V{"[TOOL: choices choices='[\"Pretend you didn't hear\",\n\"Don't\"]']", "next"}));
}

TEST(Splitter, BracketsInsideStringsDoNotCount) {
  std::string beat = "[TOOL: choices choices='[\"a ] b\",\n\"c\"]' prompt=\"[x\"]\nnext";
  EXPECT_EQ(split_lines(beat).size(), 2u);
  EXPECT_EQ(texts(split_lines("[Mio]: \"a [b\"\nnext")), (V{"[Mio]: \"a [b\"", "next"}));
}

TEST(Splitter, NewlineInsideQuotedToolValueDoesNotSplit) {
  EXPECT_EQ(texts(split_lines("[TOOL: choices choices='[\"a\",\"b\"]' prompt=\"two\nlines\"]\nz")),
            (V{"[TOOL: choices choices='[\"a\",\"b\"]' prompt=\"two\nlines\"]", "z"}));
}

TEST(Splitter, UnclosedDialogueQuoteDoesNotMergeLines) {
  EXPECT_EQ(texts(split_lines("[Hana]: \"Race you!\nShe runs.")), (V{"[Hana]: \"Race you!", "She runs."}));
}

TEST(Splitter, NarrationWithStrayBracketOrQuoteDoesNotMerge) {
  EXPECT_EQ(texts(split_lines("She drew a [ shape.\nNext \"line\nLast")), (V{"She drew a [ shape.", "Next \"line", "Last"}));
}

TEST(Splitter, MissingQuoteWithClosingBracketRecovers) {
  EXPECT_EQ(texts(split_lines("[TOOL: music track=\"calm]\nThe room.")), (V{"[TOOL: music track=\"calm]", "The room."}));
}

TEST(Splitter, UnclosedToolEndsAtTheLineBreak) {
  // Only the tool's own '[' is open: one broken line, and the rest of the beat reads as it was written.
  LineSplitter sp;
  auto out = sp.feed("[TOOL: music track=\"calm\"\nmore\n");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].text, "[TOOL: music track=\"calm\"");
  EXPECT_EQ(out[1].text, "more");
  EXPECT_EQ(out[1].line, 2);
  EXPECT_FALSE(sp.finish().has_value());
}

TEST(Splitter, AnOpenQuoteOrJsonBracketHoldsTheLine) {
  EXPECT_EQ(texts(split_lines("[TOOL: choices choices='[\"Sit\",\n\"Walk\"]']\nNext")),
            (V{"[TOOL: choices choices='[\"Sit\",\n\"Walk\"]']", "Next"}));
  EXPECT_EQ(texts(split_lines("[TOOL: choices prompt=\"Two\nlines\" choices='[\"a\", \"b\"]']\nNext")),
            (V{"[TOOL: choices prompt=\"Two\nlines\" choices='[\"a\", \"b\"]']", "Next"}));
  // A line that opens with '{' keeps going until it balances.
  EXPECT_EQ(texts(split_lines("{\"a\":\n1}\nNext")), (V{"{\"a\":\n1}", "Next"}));
  // A held line still ends at the finish.
  LineSplitter sp;
  EXPECT_TRUE(sp.feed("[TOOL: choices choices='[\"Sit\",\n").empty());
  auto last = sp.finish();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->text, "[TOOL: choices choices='[\"Sit\",\n");
}

TEST(Splitter, EmitsEachLineAsSoonAsComplete) {
  LineSplitter sp;
  EXPECT_TRUE(sp.feed("[TOOL: background name=\"park\"").empty());
  auto out = sp.feed("]\nWind");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "[TOOL: background name=\"park\"]");
  EXPECT_EQ(sp.pending(), "Wind");
  EXPECT_EQ(sp.feed("\n").at(0).text, "Wind");
}

TEST(Splitter, ChunkingNeverChangesTheOutput) {
  const std::vector<std::string> inputs = {
      "[TOOL: choices choices='[\n\"It's\", \"{x}\"\n]' prompt=\"a\\\"b\nc\"]\n[Ren]: \"Hi\"\nend",
      "[TOOL: a b='[{\"k\": \"]'\"}]'\n'x'\n]\ny\r\nz\n",
      "\n\n  [ \n ] \n{\n}\n\"\n'[\n",
      "[TOOL: x y=\"q]\nz\"]\n[Name]: \"u\nv\"\n",
  };
  std::mt19937 rng(7);
  for (const auto& in : inputs) {
    auto whole = split_lines(in);
    auto bytes = by_bytes(in);
    ASSERT_EQ(texts(bytes), texts(whole)) << in;
    for (int t = 0; t < 50; ++t) {
      LineSplitter sp;
      std::vector<LogicalLine> out;
      size_t pos = 0;
      while (pos < in.size()) {
        size_t n = std::uniform_int_distribution<size_t>(0, 9)(rng);
        sp.feed(std::string_view(in).substr(pos, n), out);
        pos += n;
      }
      if (auto last = sp.finish()) out.push_back(*last);
      ASSERT_EQ(texts(out), texts(whole)) << in;
      for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].line, whole[i].line);
    }
  }
}

TEST(Splitter, ConcatenatedTextIsPreserved) {
  // Joining the logical lines with '\n' gives back the input (minus \r before newlines).
  std::string in = "[TOOL: c c='[\n\"a\"]']\nx\n\ny";
  std::string joined;
  auto lines = split_lines(in);
  for (size_t i = 0; i < lines.size(); ++i) joined += (i ? "\n" : "") + lines[i].text;
  EXPECT_EQ(joined, in);
}

}  // namespace
}  // namespace fabula::protocol
