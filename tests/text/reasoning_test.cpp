// Reasoning splitter on demo-tokenizer ids: thought channels, the label, stray and unclosed markers, streaming parity.
#include <gtest/gtest.h>

#include "text/reasoning.h"

namespace fabula {
namespace {

const std::string kData = FABULA_TEST_DATA;

const Tokenizer& demo() {
  static Tokenizer tok = *Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  return tok;
}

// Feeds the ids of `text` (special tokens parsed) one by one; returns the concatenated deltas.
ReasoningDelta split_ids(const std::string& text, bool start_in_reasoning = false, bool* unclosed = nullptr) {
  ReasoningSplitter s(demo(), start_in_reasoning);
  ReasoningDelta all;
  for (int32_t id : demo().encode(text, false)) {
    const ReasoningDelta d = s.feed(id);
    EXPECT_EQ(d.content.find("<|channel>"), std::string::npos);
    EXPECT_EQ(d.content.find("<channel|>"), std::string::npos);
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  const ReasoningDelta f = s.finish();
  all.reasoning += f.reasoning;
  all.content += f.content;
  if (unclosed) *unclosed = s.unclosed();
  return all;
}

TEST(ReasoningSplitter, MarkerIdsComeFromTheVocab) {
  ReasoningSplitter s(demo());
  EXPECT_EQ(s.channel_open_id(), 7);
  EXPECT_EQ(s.channel_close_id(), 8);
}

TEST(ReasoningSplitter, SplitsThoughtFromContent) {
  const auto d = split_ids("<|channel>thought\nMio is shy.<channel|>[Mio]: \"Hi.\"<turn|>");
  EXPECT_EQ(d.reasoning, "Mio is shy.");
  EXPECT_EQ(d.content, "[Mio]: \"Hi.\"");
}

TEST(ReasoningSplitter, EmptyThoughtChannelLeavesNothing) {
  const auto d = split_ids("<|channel>thought\n<channel|>Hello there");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "Hello there");
  const auto e = split_ids("<|channel>thought<channel|>Hi");
  EXPECT_EQ(e.reasoning, "");
  EXPECT_EQ(e.content, "Hi");
}

TEST(ReasoningSplitter, StrayLeadingCloseIsDropped) {
  const auto d = split_ids("<channel|>The rooftop is quiet.");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "The rooftop is quiet.");
}

TEST(ReasoningSplitter, ChannelLeftOpenKeepsReasoning) {
  bool unclosed = false;
  const auto d = split_ids("Intro <|channel>thought\nstill thinking", false, &unclosed);
  EXPECT_EQ(d.content, "Intro ");
  EXPECT_EQ(d.reasoning, "still thinking");
  EXPECT_TRUE(unclosed);
}

TEST(ReasoningSplitter, PrefilledOpenChannel) {
  const auto d = split_ids("thought\nplan<channel|>text", /*start_in_reasoning=*/true);
  EXPECT_EQ(d.reasoning, "plan");
  EXPECT_EQ(d.content, "text");
}

TEST(ReasoningSplitter, NoLabelIsStillReasoning) {
  const auto d = split_ids("<|channel>plan<channel|>text");
  EXPECT_EQ(d.reasoning, "plan");
  EXPECT_EQ(d.content, "text");
}

TEST(ReasoningSplitter, TextMarkersMatchAcrossChunks) {
  // A remote backend streams text: markers may be cut anywhere.
  const std::string text = "<|channel>thought\nA<channel|>B <chan no marker";
  for (size_t cut = 1; cut < text.size(); ++cut) {
    ReasoningSplitter s(demo());
    ReasoningDelta all;
    s.feed_text(text.substr(0, cut), all);
    s.feed_text(text.substr(cut), all);
    const auto f = s.finish();
    all.reasoning += f.reasoning;
    all.content += f.content;
    EXPECT_EQ(all.reasoning, "A") << "cut " << cut;
    EXPECT_EQ(all.content, "B <chan no marker") << "cut " << cut;
  }
}

// Text-only splitting of streamed chunks (what RemoteNarrator does); returns the content.
std::string split_chunks(const std::vector<std::string>& chunks, std::string* reasoning = nullptr,
                         bool* unclosed = nullptr) {
  ReasoningSplitter s;
  ReasoningDelta all;
  for (const auto& c : chunks) s.feed_text(c, all);
  const auto f = s.finish();
  if (reasoning) *reasoning = all.reasoning + f.reasoning;
  if (unclosed) *unclosed = s.unclosed();
  return all.content + f.content;
}

TEST(ReasoningSplitter, TextOnlyEdgeCases) {
  std::string r;
  bool unclosed = false;
  EXPECT_EQ(split_chunks({"<|channel>thought\nplan it<channel|>Hello"}, &r), "Hello");
  EXPECT_EQ(r, "plan it");
  EXPECT_EQ(split_chunks({"<|channel>thought\n<channel|>Text"}), "Text");  // empty block with thinking "off"
  EXPECT_EQ(split_chunks({"<channel|>Stray closer"}), "Stray closer");
  EXPECT_EQ(split_chunks({"A <chan", "nel|>B"}), "A B");
  EXPECT_EQ(split_chunks({"<|channel>thought\nonly thinking"}, &r, &unclosed), "");  // whole answer in the channel
  EXPECT_EQ(r, "only thinking");
  EXPECT_TRUE(unclosed);
  EXPECT_EQ(split_chunks({"Before <|channel>x"}), "Before ");  // content came first: the open tail is reasoning
  EXPECT_EQ(split_chunks({"a < b <| c"}), "a < b <| c");  // lookalikes pass through
  // Every split point of a block gives the same text.
  const std::string whole = "<channel|>[Sakura]: \"Hi.\"<|channel>thought\nhm<channel|>\n[TOOL: bg id=\"x\"]";
  for (size_t i = 0; i <= whole.size(); ++i)
    for (size_t j = i; j <= whole.size(); j += 7)
      EXPECT_EQ(split_chunks({whole.substr(0, i), whole.substr(i, j - i), whole.substr(j)}),
                "[Sakura]: \"Hi.\"\n[TOOL: bg id=\"x\"]");
}

TEST(ReasoningSplitter, ContentStreamsWithoutWaitingForTheEnd) {
  ReasoningSplitter s(demo());
  std::string seen;
  for (int32_t id : demo().encode("<|channel>thought\n<channel|>Hello world, friend", false)) seen += s.feed(id).content;
  // Everything but a possible marker prefix is out before finish().
  EXPECT_EQ(seen, "Hello world, friend");
}

}  // namespace
}  // namespace fabula
