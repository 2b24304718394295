// Table-driven validator tests over the hand-written beats in tests/data/protocol/beats.txt.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "beat_cases.h"
#include "protocol/line_splitter.h"
#include "protocol/validator.h"

namespace fabula::protocol {
namespace {

const std::string kData = std::string(FABULA_TEST_DATA) + "/protocol/";

const Manifest& unicode_manifest() {
  static const Manifest m = [] {
    auto r = Manifest::load(kData + "unicode_story.json");
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? std::move(r).value() : Manifest::default_manifest();
  }();
  return m;
}

const Manifest& manifest_for(const test::BeatCase& c) {
  static const Manifest builtin = Manifest::default_manifest();
  return c.story == "unicode" ? unicode_manifest() : builtin;
}

std::set<std::string> as_set(const std::vector<Diagnostic>& list) {
  std::set<std::string> out;
  for (const auto& d : list) out.emplace(code_name(d.code));
  return out;
}

std::string describe(const BeatReport& r) {
  std::string s;
  for (const auto& d : r.errors) s += fmt::format("  {} line {}: {}\n", code_name(d.code), d.line, d.message);
  for (const auto& d : r.warnings) s += fmt::format("  {} line {}: {}\n", code_name(d.code), d.line, d.message);
  return s;
}

TEST(BeatCases, FileHasEnoughCasesCoveringEveryCode) {
  auto cases = test::load_beat_cases(kData + "beats.txt");
  ASSERT_GE(cases.size(), 80u);
  std::set<std::string> codes, repairs;
  size_t valid = 0;
  for (const auto& c : cases) {
    codes.insert(c.expect.begin(), c.expect.end());
    codes.insert(c.warn.begin(), c.warn.end());
    repairs.insert(c.repairs.begin(), c.repairs.end());
    if (c.expect.empty()) ++valid;
  }
  for (std::string code : {"E_TOOL_SYNTAX", "E_TOOL_UNKNOWN", "E_ARG_MISSING", "E_ARG_UNKNOWN", "E_ENUM",
                           "E_CHOICES_JSON", "E_CAST_LOCK", "E_FLOW", "E_EMPTY", "E_LEAK", "W_HIDE_OFFSTAGE",
                           "W_SPEAKER_OFFSTAGE", "W_UNCLOSED_QUOTE", "W_POV_SLIP"}) {
    EXPECT_TRUE(codes.count(code)) << "no case expects " << code;
  }
  for (auto kind : {RepairKind::kUnquotedValue, RepairKind::kTypographicQuotes, RepairKind::kMissingClosingQuote,
                    RepairKind::kPythonList, RepairKind::kTrailingText, RepairKind::kToolKeywordCase,
                    RepairKind::kSingleQuotedText, RepairKind::kDialogueUnquoted, RepairKind::kDialogueNoColon,
                    RepairKind::kDialogueUnclosedQuote, RepairKind::kBracketLine, RepairKind::kControlText,
                    RepairKind::kToolFragment}) {
    EXPECT_TRUE(repairs.count(std::string(repair_kind_name(kind)))) << "no case exercises " << repair_kind_name(kind);
  }
  EXPECT_GE(valid, 20u);
}

TEST(BeatCases, ValidatorGivesExpectedCodes) {
  for (const auto& c : test::load_beat_cases(kData + "beats.txt")) {
    SCOPED_TRACE(fmt::format("beats.txt:{} {}", c.header_line, c.id));
    ValidateOptions opts;
    opts.locked_cast = c.cast;
    BeatReport r = validate_beat(c.beat, manifest_for(c), opts);
    EXPECT_EQ(as_set(r.errors), c.expect) << describe(r);
    EXPECT_EQ(r.valid, c.expect.empty());
    if (c.has_warn) {
      EXPECT_EQ(as_set(r.warnings), c.warn) << describe(r);
    }
    if (c.has_repairs) {
      std::set<std::string> kinds;
      for (const auto& l : r.lines) {
        for (const auto& rep : l.repairs) kinds.emplace(repair_kind_name(rep.kind));
      }
      EXPECT_EQ(kinds, c.repairs);
      EXPECT_EQ(r.needed_repair(), !c.repairs.empty());
    }
    int physical_lines = 1 + static_cast<int>(std::count(c.beat.begin(), c.beat.end(), '\n'));
    for (const auto& d : r.errors) {
      EXPECT_GE(d.line, 1) << d.message;
      EXPECT_LE(d.line, physical_lines) << d.message;
      EXPECT_FALSE(d.message.empty());
    }
  }
}

// Error lines point at the offending line.
TEST(BeatCases, ErrorLinesAreExact) {
  const std::string beat =
      "[TOOL: background name=\"park\"]\n"       // 1
      "The park.\n"                              // 2
      "[TOOL: sprite character=\"Hana\" expression=\"happy\"]\n"  // 3
      "[TOOL: choices choices='[\n"              // 4
      "  \"A\"\n"                                // 5
      "]']\n"                                    // 6
      "[Yuki]: \"Hi\"\n";                        // 7
  BeatReport r = validate_beat(beat, Manifest::default_manifest());
  ASSERT_EQ(r.errors.size(), 4u) << describe(r);
  EXPECT_EQ(code_name(r.errors[0].code), "E_ENUM");
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(code_name(r.errors[1].code), "E_CHOICES_JSON");
  EXPECT_EQ(r.errors[1].line, 4);
  EXPECT_EQ(code_name(r.errors[2].code), "E_FLOW");
  EXPECT_EQ(r.errors[2].line, 7);
  EXPECT_EQ(code_name(r.errors[3].code), "E_CAST_LOCK");
  EXPECT_EQ(r.errors[3].line, 7);
}

TEST(BeatCases, SplitterIsChunkingInvariantOnEveryCase) {
  std::mt19937 rng(1234);
  for (const auto& c : test::load_beat_cases(kData + "beats.txt")) {
    SCOPED_TRACE(c.id);
    auto whole = split_lines(c.beat);
    LineSplitter bytes;
    std::vector<LogicalLine> by_byte;
    for (char ch : c.beat) bytes.feed(std::string_view(&ch, 1), by_byte);
    if (auto last = bytes.finish()) by_byte.push_back(*last);
    for (int trial = 0; trial < 5; ++trial) {
      LineSplitter chunks;
      std::vector<LogicalLine> by_chunk;
      size_t pos = 0;
      while (pos < c.beat.size()) {
        size_t n = std::uniform_int_distribution<size_t>(1, 17)(rng);
        chunks.feed(std::string_view(c.beat).substr(pos, n), by_chunk);
        pos += n;
      }
      if (auto last = chunks.finish()) by_chunk.push_back(*last);
      ASSERT_EQ(by_chunk.size(), whole.size());
      for (size_t i = 0; i < whole.size(); ++i) {
        EXPECT_EQ(by_chunk[i].text, whole[i].text);
        EXPECT_EQ(by_chunk[i].line, whole[i].line);
      }
    }
    ASSERT_EQ(by_byte.size(), whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(by_byte[i].text, whole[i].text);
      EXPECT_EQ(by_byte[i].line, whole[i].line);
    }
  }
}

TEST(BeatCases, LongLineWarns) {
  std::string narration(401, 'a');
  narration[0] = 'A';
  BeatReport r = validate_beat(narration + "\n[TOOL: end_scene]", Manifest::default_manifest());
  EXPECT_TRUE(r.valid);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(code_name(r.warnings[0].code), "W_LONG_LINE");
  // 400 characters is still fine, counted in code points not bytes (é is 2 bytes).
  std::string exact;
  for (int i = 0; i < 400; ++i) exact += "\xC3\xA9";
  r = validate_beat(exact + "\n[TOOL: end_scene]", Manifest::default_manifest());
  EXPECT_TRUE(r.warnings.empty());
}

TEST(BeatCases, CrlfLineEndingsAreValid) {
  std::string beat =
      "[TOOL: background name=\"cafe\"]\r\nSteam curled from the cups.\r\n"
      "[TOOL: choices choices='[\"Sip\", \"Wait\"]']\r\n";
  BeatReport r = validate_beat(beat, Manifest::default_manifest());
  EXPECT_TRUE(r.valid) << describe(r);
  EXPECT_FALSE(r.needed_repair());
}

TEST(BeatCases, OnStageOptionSuppressesSpeakerWarning) {
  std::string beat = "[Mio]: \"Still here.\"\n[TOOL: end_scene]";
  ValidateOptions opts;
  EXPECT_EQ(validate_beat(beat, Manifest::default_manifest(), opts).warnings.size(), 1u);
  opts.on_stage = {"Mio"};
  EXPECT_TRUE(validate_beat(beat, Manifest::default_manifest(), opts).warnings.empty());
}

}  // namespace
}  // namespace fabula::protocol
