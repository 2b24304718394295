// Metric tests with values worked out by hand (the arithmetic is in the comments).
#include <gtest/gtest.h>

#include "base/file.h"
#include "eval/metrics.h"

namespace fabula::eval {
namespace {

using Words = std::vector<std::string>;

const std::string kData = std::string(FABULA_TEST_DATA) + "/eval/";

TEST(Words, TokenisationKeepsInnerApostrophesAndHyphens) {
  // ‘quote’: U+2018 is not a joiner and the closing ’ has no letter after it.
  EXPECT_EQ(words_of("Hana's well-known ‘quote’ -- 3 cats, ÉCOLE!"),
            (Words{"hana's", "well-known", "quote", "3", "cats", "école"}));
  EXPECT_EQ(words_of("cats' -dash- don’t 2nd"), (Words{"cats", "dash", "don’t", "2nd"}));
  EXPECT_EQ(words_of("...  !!"), Words{});
}

TEST(Words, NfcAndCaseFolding) {
  // "Cafe" + combining acute (NFD) is the same word as precomposed "Café".
  EXPECT_EQ(words_of("Cafe\xCC\x81"), words_of("Café"));
  EXPECT_EQ(words_of("Café")[0], "café");
  // Full case folding: ß folds to ss.
  EXPECT_EQ(words_of("STRASSE Straße"), (Words{"strasse", "strasse"}));
  // A combining mark with no precomposed form stays inside the word.
  EXPECT_EQ(words_of("q\xCC\x81x y"), (Words{"q\xCC\x81x", "y"}));
  // CJK letters are letters (category Lo).
  EXPECT_EQ(words_of("美咲は 静か"), (Words{"美咲は", "静か"}));
}

TEST(Words, ProseDropsToolsTagsAndQuotes) {
  std::string beat =
      "[TOOL: background name=\"park\"]\n"
      "Wind in the trees.\n"
      "[Hana]: \"Race you!\"\n"
      "[TOOL: choices choices='[\"A\", \"B\"]']\n";
  EXPECT_EQ(extract_prose(beat), (Words{"Wind in the trees.", "Race you!"}));
}

TEST(Lexical, TypeTokenRatio) {
  EXPECT_DOUBLE_EQ(type_token_ratio({"a", "b", "a", "c"}), 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(type_token_ratio({}), 0.0);
}

TEST(Lexical, Mattr) {
  // Windows of 3 over a b a b c: {a,b,a} 2/3, {b,a,b} 2/3, {a,b,c} 3/3 -> mean 7/9.
  EXPECT_NEAR(mattr({"a", "b", "a", "b", "c"}, 3), 7.0 / 9.0, 1e-12);
  // Shorter than the window: the plain TTR (3/4).
  EXPECT_NEAR(mattr({"a", "b", "a", "c"}, 50), 0.75, 1e-12);
}

TEST(Lexical, Mtld) {
  // a a a a: forward, TTR 1/2 at word 2 -> factor, again at word 4 -> 2 factors, no remainder: 4/2 = 2.
  // Backward is the same, so MTLD = 2.
  EXPECT_NEAR(mtld({"a", "a", "a", "a"}), 2.0, 1e-12);
  // a b a c: forward: TTR 1, 1, 2/3 <= .72 -> 1 factor; remainder "c" has TTR 1 -> partial 0: 4/1 = 4.
  // backward c a b a: TTR 1, 1, 1, 3/4 > .72 -> remainder partial (1 - .75)/(1 - .72) = .892857:
  // 4/.892857 = 4.48. MTLD = (4 + 4.48)/2 = 4.24.
  EXPECT_NEAR(mtld({"a", "b", "a", "c"}), (4.0 + 4.0 / (0.25 / 0.28)) / 2.0, 1e-12);
  EXPECT_NEAR(mtld({"a", "b", "a", "c"}), 4.24, 1e-9);
  // All distinct: no factor at all -> the length (documented choice).
  EXPECT_NEAR(mtld({"x", "y", "z"}), 3.0, 1e-12);
}

TEST(Lexical, RepNDoesNotCrossLines) {
  // a b c a b c: trigrams abc bca cab abc -> 4 total, 3 distinct: 1 - 3/4.
  EXPECT_NEAR(rep_n({{"a", "b", "c", "a", "b", "c"}}, 3), 0.25, 1e-12);
  // Two lines "a b c": 2 trigrams, 1 distinct: 0.5.
  EXPECT_NEAR(rep_n({{"a", "b", "c"}, {"a", "b", "c"}}, 3), 0.5, 1e-12);
  // "a b" / "c d": no trigram may span the line break.
  EXPECT_EQ(ngrams({{"a", "b"}, {"c", "d"}}, 3).size(), 0u);
  EXPECT_DOUBLE_EQ(rep_n({{"a", "b"}, {"c", "d"}}, 3), 0.0);
}

TEST(Lexical, CrossSceneReuse) {
  auto tri = [](const std::string& text) { return ngrams({words_of(text)}, 3); };
  // Scene 1: the cat sat / cat sat on / sat on the / on the mat. Scene 2: the cat sat / cat sat down.
  // Scene 3: on the mat. Distinct: 5; in >= 2 scenes: "the cat sat", "on the mat" -> 2/5.
  std::vector<Words> scenes = {tri("the cat sat on the mat"), tri("the cat sat down"), tri("on the mat")};
  EXPECT_NEAR(cross_scene_reuse(scenes), 2.0 / 5.0, 1e-12);
  // Repeats inside one scene are not cross-scene reuse: x y z / y z x / z x y add 3 distinct -> 2/8.
  scenes.push_back(tri("x y z x y z"));
  EXPECT_NEAR(cross_scene_reuse(scenes), 2.0 / 8.0, 1e-12);
}

TEST(Stance, KeywordClassifier) {
  EXPECT_EQ(classify_choice("Stay quiet and listen"), ChoiceStance::kStaySilent);
  EXPECT_EQ(classify_choice("Change the subject to the festival"), ChoiceStance::kDeflect);
  EXPECT_EQ(classify_choice("Pretend you didn't hear"), ChoiceStance::kDeflect);
  EXPECT_EQ(classify_choice("Laugh along with Mio"), ChoiceStance::kDeflect);
  EXPECT_EQ(classify_choice("Walk away"), ChoiceStance::kDeflect);
  EXPECT_EQ(classify_choice("Ask Hana what is really wrong"), ChoiceStance::kOpenUp);
  EXPECT_EQ(classify_choice("Walk Ren home"), ChoiceStance::kOpenUp);
  EXPECT_EQ(classify_choice("Buy a melon bread"), ChoiceStance::kOther);
}

// tests/data/eval/scenes.jsonl with tells-test.txt, by hand:
//  Scene A (rooftop/1, cast Hana, Ren), prose lines:
//    "The air hung heavy with unspoken words." -> 7 words
//    "A mix of tea and toast, Ren."            -> 7 words (a mix of tea and toast ren)
//    14 words, all distinct: TTR 1. Tells: the card phrase (1), "a mix of {X} and {X}" (1);
//    re:\bren\b matches only the cast name Ren -> dropped. 2 matches.
//  Scene B (rooftop/2, cast Mio, Kaito):
//    "I sketched the rain, a mix of grey and silver and blue." -> 12 words
//    "Kaito said the name Elara twice."                      -> 6 words
//    "The rain is silver."                                   -> 4 words
//    22 words, 17 distinct (the x3, rain x2, and x2, silver x2): TTR 17/22.
//    Tells: mix (1), silver (2), elara (1); "kaito" is a cast word -> never matches. 4 matches.
//  Scene C (cafe/1): track=jazz -> E_TOOL_SYNTAX (unquoted) + E_ENUM + E_EMPTY; no prose; repaired.
//  validity 2/3; words 36; slop density 1000 * 6 / 36; TTR mean over scenes with words (A, B).
//  Trigrams: A 5 + 5, B 10 + 4 + 2, all distinct within a scene; "a mix of" is in both -> 1 / 25.
//  MTLD: A all distinct -> 14. B never reaches TTR <= .72 either way -> 22 / ((1 - 17/22) / .28).
//  POV: narration lines A1, B1 ("I sketched"), B2 -> 1/3. Choices: Ask Hana, Stay quiet, Ask Mio,
//  Stay quiet -> 3 distinct / 4; stances open_up 2/4, stay_silent 2/4. Repairs: scene C -> 1/3.
TEST(Metrics, HandWorkedScenes) {
  auto text = read_file_text(kData + "scenes.jsonl");
  ASSERT_TRUE(text.ok());
  auto rows = parse_scene_rows(*text, "scenes.jsonl");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[1].seed, 2);
  auto tells = TellList::load(kData + "tells-test.txt");
  ASSERT_TRUE(tells.ok()) << tells.error().to_string();
  EXPECT_EQ(tells->version, "test-1");

  MetricsReport r = compute_metrics(*rows, protocol::Manifest::default_manifest(), *tells);
  EXPECT_EQ(r.scenes, 3);
  EXPECT_EQ(r.valid_beats, 2);
  EXPECT_NEAR(r.validity, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(r.words, 36);
  EXPECT_EQ(r.tell_matches, 6);
  EXPECT_NEAR(r.slop_density, 1000.0 * 6.0 / 36.0, 1e-9);
  EXPECT_EQ(r.tell_counts.count("kaito"), 0u);
  EXPECT_EQ(r.tell_counts.count("re:\\bren\\b"), 0u);
  EXPECT_EQ(r.tell_counts["re:\\bsilver\\b"], 2);
  EXPECT_EQ(r.tell_counts["a mix of {X} and {X}"], 2);
  EXPECT_NEAR(r.ttr, (1.0 + 17.0 / 22.0) / 2.0, 1e-12);
  EXPECT_NEAR(r.mattr50, r.ttr, 1e-12);  // every scene is shorter than the window
  EXPECT_NEAR(r.mattr100, r.ttr, 1e-12);
  EXPECT_NEAR(r.trigram_reuse, 1.0 / 25.0, 1e-12);
  EXPECT_NEAR(r.rep3, 0.0, 1e-12);
  EXPECT_NEAR(r.mtld, (14.0 + 22.0 / ((1.0 - 17.0 / 22.0) / 0.28)) / 2.0, 1e-9);
  EXPECT_NEAR(r.pov_slip_rate, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(r.choices_offered, 4);
  EXPECT_NEAR(r.choice_variety, 0.75, 1e-12);
  EXPECT_NEAR(r.stance_share["open_up"], 0.5, 1e-12);
  EXPECT_NEAR(r.stance_share["stay_silent"], 0.5, 1e-12);
  EXPECT_NEAR(r.repair_rate, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(r.error_counts["E_TOOL_SYNTAX"], 1);
  EXPECT_EQ(r.error_counts["E_ENUM"], 1);
  EXPECT_EQ(r.error_counts["E_EMPTY"], 1);
}

TEST(Metrics, RowErrorsNameTheLine) {
  auto bad = parse_scene_rows("{\"scene\":\"a\",\"seed\":1,\"beat\":\"x\"}\n{\"scene\":\"b\"}\n", "in.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("in.jsonl:2"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(parse_scene_rows("not json\n", "x").ok());
  EXPECT_FALSE(parse_scene_rows("{\"scene\":\"a\",\"seed\":\"one\",\"beat\":\"x\"}", "x").ok());
}

TEST(Metrics, EmptyInputIsAllZero) {
  auto tells = TellList::parse("kaleidoscope\n", "t");
  ASSERT_TRUE(tells.ok());
  MetricsReport r = compute_metrics({}, protocol::Manifest::default_manifest(), *tells);
  EXPECT_EQ(r.scenes, 0);
  EXPECT_EQ(r.validity, 0.0);
  EXPECT_EQ(r.slop_density, 0.0);
}

}  // namespace
}  // namespace fabula::eval
