// Eval harness: scripted narrator -> beats.jsonl -> report numbers equal metrics computed directly; resume; table format.
#include "eval/harness.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/local_narrator.h"
#include "base/file.h"
#include "engine/scripted_narrator.h"
#include "eval/report.h"

namespace fabula::eval {
namespace {

// Known beats: two valid ones (two-person casts), one that breaks the cast lock and one without a choices line.
const std::vector<std::string> kBeats = {
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "Wind tugged at the fence on the roof.\n"
    "[Hana]: \"You brought melon bread? You are my favourite person today.\"\n"
    "[Ren]: \"Statistically, sharing bread improves morale by a small margin.\"\n"
    "[TOOL: choices choices='[\"Tell Hana how you feel\", \"Change the subject to the festival\", \"Stay quiet and listen\"]']",
    "[TOOL: background name=\"library\" transition=\"cut\"]\n"
    "[TOOL: sprite character=\"Ren\" expression=\"neutral\" position=\"center\"]\n"
    "Dust drifted through the slanted light between the shelves.\n"
    "[Ren]: \"Advice costs one canned coffee. Payment up front.\"\n"
    "I wonder if Mio heard that.\n"
    "[TOOL: choices choices='[\"Pay Ren in coffee\", \"Stay quiet and listen\"]']",
    "[TOOL: background name=\"school_gate\" transition=\"cut\"]\n"
    "Rain hammered on the umbrellas at the gate.\n"
    "[Yuki]: \"Nobody invited me, but here I am.\"\n"
    "[TOOL: choices choices='[\"Walk Mio home\", \"Walk Mio home\"]']",
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "The city hummed far below the rooftop.\n"
    "[Hana]: \"Race you to the stairs!\"\n",
};

const char* kScenes =
    "{\"id\": \"rooftop-lunch\", \"story\": \"sakuragaoka\", \"place\": \"rooftop\", \"time\": \"lunch break\", "
    "\"cast\": [\"Hana\", \"Ren\"], \"player_choice\": \"Offer to share your melon bread\", \"tags\": [\"food\", \"two\"]}\n"
    "\n"
    "{\"id\": \"library-study\", \"place\": \"library\", \"time\": \"after school\", "
    "\"cast\": [\"Ren\", \"Mio\"], \"player_choice\": \"Ask Ren for advice\", \"tags\": [\"two\"]}\n";

class HarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto story = engine::load_story("sakuragaoka");
    ASSERT_TRUE(story.ok()) << story.error().message;
    stories_.emplace("sakuragaoka", std::move(*story));
    auto scenes = parse_eval_scenes(kScenes, "inline");
    ASSERT_TRUE(scenes.ok()) << scenes.error().message;
    scenes_ = *scenes;
    auto tells = load_default_tells();
    ASSERT_TRUE(tells.ok()) << tells.error().message;
    tells_ = *tells;
    // The process id too: two checkouts (or two suites) may run the same test at the same moment.
    dir_ = std::filesystem::temp_directory_path() /
           ("fabula-harness-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  EvalNarrator narrator(engine::Narrator* backend, std::string label, std::vector<uint64_t> seeds) {
    EvalNarrator n;
    n.label = std::move(label);
    n.profile = "demo";
    n.seeds = std::move(seeds);
    n.workers = {backend};
    return n;
  }

  std::map<std::string, engine::Story> stories_;
  std::vector<EvalScene> scenes_;
  TellList tells_;
  std::filesystem::path dir_;
};

TEST_F(HarnessTest, ParsesScenesAndSeeds) {
  ASSERT_EQ(scenes_.size(), 2u);
  EXPECT_EQ(scenes_[1].story, "sakuragaoka");  // default
  EXPECT_EQ(scenes_[0].tags, (std::vector<std::string>{"food", "two"}));
  auto seeds = parse_seed_list("1-3,7,10-11");
  ASSERT_TRUE(seeds.ok());
  EXPECT_EQ(*seeds, (std::vector<uint64_t>{1, 2, 3, 7, 10, 11}));
  EXPECT_FALSE(parse_seed_list("3-1").ok());
  EXPECT_FALSE(parse_seed_list("x").ok());
  auto bad = parse_eval_scenes("{\"id\": \"a\", \"place\": \"rooftop\", \"time\": \"t\", \"player_choice\": \"p\"}", "s.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("s.jsonl:1"), std::string::npos);
}

TEST_F(HarnessTest, ReportMatchesMetricsComputedDirectly) {
  engine::ScriptedNarrator scripted(kBeats, {});
  std::vector<EvalNarrator> ns = {narrator(&scripted, "demo", {1, 2})};
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  auto stats = run_harness(stories_, scenes_, ns, ho);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->generated, 4);
  EXPECT_EQ(scripted.calls(), 4u);
  // The prompt is the demo profile's, naming the scene.
  ASSERT_FALSE(scripted.requests().empty());
  ASSERT_EQ(scripted.requests()[0].messages.size(), 2u);
  const std::string& user = scripted.requests()[0].messages[1].content;
  EXPECT_NE(user.find("Offer to share your melon bread"), std::string::npos);
  EXPECT_NE(user.find("Cast: Hana, Ren"), std::string::npos);
  EXPECT_EQ(scripted.requests()[1].seed, 1u);  // seed-major: seed 1 for both scenes first

  auto rows = read_beat_rows(ho.beats_path);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 4u);

  // Direct computation from the same beats in the order the scripted narrator handed them out.
  std::vector<SceneSample> direct;
  size_t k = 0;
  for (uint64_t seed : {1, 2}) {
    for (const auto& s : scenes_) {
      direct.push_back({s.id, static_cast<int64_t>(seed), kBeats[k++], s.cast});
    }
  }
  const auto& manifest = stories_.at("sakuragaoka").manifest;
  MetricsReport want = compute_metrics(direct, manifest, tells_);
  EvalReport report = build_report(*rows, {"demo"}, manifest, tells_);
  ASSERT_EQ(report.narrators.size(), 1u);
  const MetricsReport& got = report.narrators[0].metrics;
  EXPECT_EQ(got.valid_beats, want.valid_beats);
  EXPECT_EQ(got.scenes, 4);
  EXPECT_LT(got.valid_beats, 4);  // the cast-lock and the no-choices beats fail
  EXPECT_DOUBLE_EQ(got.validity, want.validity);
  EXPECT_DOUBLE_EQ(got.slop_density, want.slop_density);
  EXPECT_DOUBLE_EQ(got.ttr, want.ttr);
  EXPECT_DOUBLE_EQ(got.trigram_reuse, want.trigram_reuse);
  EXPECT_DOUBLE_EQ(got.mattr50, want.mattr50);
  EXPECT_DOUBLE_EQ(got.mtld, want.mtld);
  EXPECT_DOUBLE_EQ(got.rep3, want.rep3);
  EXPECT_DOUBLE_EQ(got.pov_slip_rate, want.pov_slip_rate);
  EXPECT_GT(got.pov_slip_rate, 0.0);  // "I wonder ..." narration
  EXPECT_DOUBLE_EQ(got.choice_variety, want.choice_variety);
  EXPECT_EQ(got.choices_offered, want.choices_offered);
  EXPECT_EQ(got.stance_share, want.stance_share);
  EXPECT_DOUBLE_EQ(got.repair_rate, want.repair_rate);

  // Row validity is the strict validator's, and agrees with the metrics' count.
  int64_t row_valid = 0;
  for (const auto& r : *rows) row_valid += r.valid ? 1 : 0;
  EXPECT_EQ(row_valid, want.valid_beats);
  for (const auto& r : *rows) {
    EXPECT_EQ(r.valid, r.errors.empty()) << r.id;
    EXPECT_EQ(r.id, "demo/" + r.scene + "/" + std::to_string(r.seed));
  }

  // Tags: "food" covers rooftop-lunch only (2 beats), "two" both scenes.
  ASSERT_EQ(report.tags, (std::vector<std::string>{"food", "two"}));
  EXPECT_EQ(report.narrators[0].by_tag.at("food").scenes, 2);
  EXPECT_EQ(report.narrators[0].by_tag.at("two").scenes, 4);
  std::vector<SceneSample> food = {direct[0], direct[2]};
  EXPECT_DOUBLE_EQ(report.narrators[0].by_tag.at("food").ttr, compute_metrics(food, manifest, tells_).ttr);
}

TEST_F(HarnessTest, SecondRunGeneratesNothing) {
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  engine::ScriptedOptions loop;
  loop.loop = true;
  {
    engine::ScriptedNarrator scripted(kBeats, loop);
    std::vector<EvalNarrator> ns = {narrator(&scripted, "a", {1, 2, 3})};
    auto stats = run_harness(stories_, scenes_, ns, ho);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    EXPECT_EQ(stats->generated, 6);
  }
  auto first = read_file_text(ho.beats_path);
  ASSERT_TRUE(first.ok());
  engine::ScriptedNarrator again(kBeats, loop);
  std::vector<EvalNarrator> ns = {narrator(&again, "a", {1, 2, 3})};
  auto stats = run_harness(stories_, scenes_, ns, ho);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->generated, 0);
  EXPECT_EQ(stats->skipped, 6);
  EXPECT_EQ(again.calls(), 0u);
  EXPECT_EQ(*read_file_text(ho.beats_path), *first);

  // A new seed and a torn last line (killed mid-write): only the missing beats are generated.
  {
    std::FILE* f = std::fopen(ho.beats_path.c_str(), "ab");
    std::fputs("{\"narrator\": \"a\", \"scene\": \"rooftop-l", f);
    std::fclose(f);
  }
  auto torn = read_beat_rows(ho.beats_path);
  ASSERT_TRUE(torn.ok()) << torn.error().message;
  EXPECT_EQ(torn->size(), 6u);
  ns[0].seeds = {1, 2, 3, 4};
  stats = run_harness(stories_, scenes_, ns, ho);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->generated, 2);
  EXPECT_EQ(again.calls(), 2u);
}

TEST_F(HarnessTest, MarkdownTableHasTheCardForm) {
  engine::ScriptedOptions loop;
  loop.loop = true;
  engine::ScriptedNarrator one({kBeats[1]}, loop);            // Ren only: valid in both scenes
  engine::ScriptedNarrator two({kBeats[1], kBeats[2]}, loop);  // every other beat invalid
  std::vector<EvalNarrator> ns = {narrator(&one, "base", {1, 2, 3}), narrator(&two, "tune", {1, 2, 3})};
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  ASSERT_TRUE(run_harness(stories_, scenes_, ns, ho).ok());
  auto rows = read_beat_rows(ho.beats_path);
  ASSERT_TRUE(rows.ok());
  EvalReport report = build_report(*rows, {"base", "tune"}, stories_.at("sakuragaoka").manifest, tells_);
  std::string md = report_markdown(report);
  EXPECT_NE(md.find("| Metric | base | tune |\n|---|---|---|\n"), std::string::npos) << md;
  EXPECT_NE(md.find("| Protocol validity ↑ | 100% (6/6) | 50% (3/6) |\n"), std::string::npos) << md;
  for (const char* row : {"| Slop-tell density /1k words ↓ |", "| Type-token ratio ↑ |", "| Cross-scene trigram reuse ↓ |",
                          "| Choice variety ↑ |", "| POV-slip rate (first person) ↓ |", "| Tokens/s ↑ |"}) {
    EXPECT_NE(md.find(row), std::string::npos) << row;
  }
  // Every table line has one cell per narrator plus the metric.
  size_t pos = md.find("| Metric");
  while (pos < md.size() && md[pos] == '|') {
    size_t end = md.find('\n', pos);
    std::string line = md.substr(pos, end - pos);
    EXPECT_EQ(std::count(line.begin(), line.end(), '|'), 4) << line;
    pos = end + 1;
  }
  EXPECT_NE(md.find("### food"), std::string::npos);
  EXPECT_EQ(format_validity(47, 48), "97.9% (47/48)");
  std::string svg = report_svg(report);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find(">tune</text>"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST_F(HarnessTest, SeveralWorkersShareOneNarratorsWork) {
  engine::ScriptedOptions loop;
  loop.loop = true;
  engine::ScriptedNarrator w1({kBeats[1]}, loop), w2({kBeats[1]}, loop);
  EvalNarrator n = narrator(&w1, "spread", {1, 2, 3, 4, 5});
  n.workers.push_back(&w2);
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  auto stats = run_harness(stories_, scenes_, {n}, ho);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->generated, 10);
  EXPECT_EQ(w1.calls() + w2.calls(), 10u);  // each job taken exactly once
  auto rows = read_beat_rows(ho.beats_path);
  ASSERT_TRUE(rows.ok());
  std::set<std::string> keys;
  for (const auto& r : *rows) keys.insert(beat_key(r.narrator, r.scene, r.seed));
  EXPECT_EQ(keys.size(), 10u);
}

TEST_F(HarnessTest, RequestsCarryTheManifestAndSceneCastForConstrainedDecoding) {
  engine::ScriptedNarrator scripted(kBeats, {});
  std::vector<EvalNarrator> ns = {narrator(&scripted, "demo", {1})};
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  ASSERT_TRUE(run_harness(stories_, scenes_, ns, ho).ok());
  ASSERT_EQ(scripted.requests().size(), 2u);
  EXPECT_EQ(scripted.requests()[0].manifest, &stories_.at("sakuragaoka").manifest);
  EXPECT_EQ(scripted.requests()[0].cast, (std::vector<std::string>{"Hana", "Ren"}));
  EXPECT_EQ(scripted.requests()[1].cast, (std::vector<std::string>{"Ren", "Mio"}));
}

TEST_F(HarnessTest, BacktracksRoundTripAndAddUpInTheReport) {
  BeatRow row;
  row.narrator = "demo";
  row.scene = "rooftop-lunch";
  row.beat = kBeats[0];
  row.backtracks = 3;
  auto back = beat_row_from_json(beat_row_json(row), "inline");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->backtracks, 3);
  BeatRow none = row;
  none.backtracks = 0;
  EXPECT_FALSE(beat_row_json(none).contains("backtracks"));  // rows without bans are unchanged
  const auto& manifest = stories_.at("sakuragaoka").manifest;
  EvalReport with = build_report({row, *back}, {"demo"}, manifest, tells_);
  EXPECT_EQ(with.narrators[0].backtracks, 6);
  EXPECT_EQ(report_to_json(with)["narrators"][0]["backtracks"], 6);
  EXPECT_NE(report_markdown(with).find("| Phrase-ban backtracks | 6 |"), std::string::npos) << report_markdown(with);
  EXPECT_EQ(report_markdown(build_report({none}, {"demo"}, manifest, tells_)).find("Phrase-ban"), std::string::npos);
}

// The demo narrator through the harness at a hot temperature with the constraint and the tell bans: all valid.
TEST_F(HarnessTest, ConstrainedDemoNarratorBeatsAreAllValid) {
  const std::string model = std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf";
  if (!std::filesystem::exists(model)) FAIL() << "no " << model;
  backend::LocalNarratorOptions lo;
  lo.n_ctx = 2048;
  lo.n_threads = 2;
  auto local = backend::LocalNarrator::load(model, lo);
  ASSERT_TRUE(local.ok()) << local.error().message;
  EvalNarrator n = narrator(local->get(), "demo-constrained", {1, 2});
  n.sampling.temperature = 1.5f;
  n.sampling.constrained = true;
  auto bans = load_phrase_bans("", true);
  ASSERT_TRUE(bans.ok()) << bans.error().message;
  n.sampling.banned_phrases = *bans;
  HarnessOptions ho;
  ho.beats_path = (dir_ / "beats.jsonl").string();
  ho.progress = false;
  auto stats = run_harness(stories_, scenes_, {n}, ho);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats->failed, 0) << (stats->failures.empty() ? "" : stats->failures[0]);
  auto rows = read_beat_rows(ho.beats_path);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  for (const auto& r : *rows) {
    EXPECT_TRUE(r.valid) << (r.errors.empty() ? "" : r.errors[0]) << "\n" << r.beat;
    EXPECT_FALSE((*bans)->find_completed(r.beat, 0, true).has_value()) << r.beat;
  }
}

}  // namespace
}  // namespace fabula::eval
