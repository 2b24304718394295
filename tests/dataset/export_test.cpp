// `fabula dataset export` on a save store played by a scripted narrator: 3 sessions with branches, regenerations,
// invalid, short and duplicate beats. The rows, the reasons they were removed, the split, both formats (the text
// format tokenized against the prompt the narrator received) and `fabula eval` on the held-out scenes file.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/loaded_model.h"
#include "base/file.h"
#include "common/scratch_dir.h"
#include "dataset/export.h"
#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "eval/harness.h"

namespace fabula::dataset {
namespace {

using nlohmann::json;

// Beats in the order the narrator is asked for them (see PlayedSaves::play for who asks).
const char* kOpening =  // classroom: valid
    "[TOOL: background name=\"classroom\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"neutral\" position=\"right\"]\n"
    "Afternoon light slanted across the rows of empty desks.\n"
    "[Hana]: \"You finally made it. I was about to send a search party after you.\"\n"
    "[Mio]: \"We were talking about where to go before the sun sets.\"\n"
    "[TOOL: choices choices='[\"Go to the park\", \"Climb to the rooftop\"]']\n";
const char* kPark =  // park: valid
    "[TOOL: background name=\"park\" transition=\"dissolve\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"laugh\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"smile\" position=\"right\"]\n"
    "The park was quiet except for the wind moving through the cherry trees by the pond.\n"
    "[Hana]: \"Race you to the fountain! Loser buys the crepes on the way home, no excuses this time.\"\n"
    "[Mio]: \"I will just walk behind you both and sketch the ducks while you argue about the rules.\"\n"
    "Hana was already running before anyone agreed to anything at all.\n"
    "[TOOL: choices choices='[\"Visit the library\", \"Stay\"]']\n";
const char* kParkAgain =  // park, regenerated: a near duplicate of kPark (one word added)
    "[TOOL: background name=\"park\" transition=\"dissolve\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"laugh\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"smile\" position=\"right\"]\n"
    "The park was quiet except for the wind moving through the cherry trees by the pond.\n"
    "[Hana]: \"Race you to the fountain! Loser buys the crepes on the way home, no excuses this time.\"\n"
    "[Mio]: \"I will just walk behind you both and sketch the ducks while you argue about the rules.\"\n"
    "Hana was already running before anyone agreed to anything at all today.\n"
    "[TOOL: choices choices='[\"Visit the library\", \"Stay\"]']\n";
const char* kLibrary =  // library: valid, ends the scene
    "[TOOL: background name=\"library\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"smile\" position=\"center\"]\n"
    "The library smelled of old paper and floor polish, and the clock ticked too loudly.\n"
    "[Mio]: \"This is my favourite table. Nobody comes here after the last bell.\"\n"
    "[TOOL: end_scene]\n";
const char* kRooftopKaito =  // rooftop: Kaito speaks in a scene locked to Hana and Mio (E_CAST_LOCK)
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "Wind tugged at the fence as the city spread out below the rooftop.\n"
    "[Kaito]: \"Yo! Did you two bring any snacks up here, or did I climb all those stairs for nothing?\"\n"
    "[TOOL: choices choices='[\"Visit the library\", \"Stay\"]']\n";
const char* kRooftopCamera =  // rooftop: a tool the story does not have (E_TOOL_UNKNOWN)
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "[TOOL: camera zoom=\"in\"]\n"
    "Wind tugged at the fence while the clouds drifted slowly over the distant station.\n"
    "[Hana]: \"The view from up here always makes the homework feel a little smaller.\"\n"
    "[TOOL: choices choices='[\"Visit the library\", \"Stay\"]']\n";
const char* kRooftop =  // rooftop: valid
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"surprised\" position=\"right\"]\n"
    "Up on the rooftop the evening bell sounded faint and far away from everything.\n"
    "[Mio]: \"I did not know the door up here was unlocked. Are we even allowed?\"\n"
    "[Hana]: \"Probably not. That is what makes it the best spot in the whole school.\"\n"
    "[TOOL: choices choices='[\"Visit the library\", \"Stay\"]']\n";
const char* kShort =  // rooftop: valid, two prose words
    "[Mio]: \"Okay then.\"\n"
    "[TOOL: choices choices='[\"Go home\", \"Wait\"]']\n";
const char* kOpeningOther =  // classroom: valid
    "[TOOL: background name=\"classroom\" transition=\"fade\"]\n"
    "[TOOL: sprite character=\"Mio\" expression=\"embarrassed\" position=\"right\"]\n"
    "Chalk dust still hung in the air above the teacher's desk as the others packed up.\n"
    "[Mio]: \"Um, I brought two umbrellas today, in case somebody forgot theirs again.\"\n"
    "[TOOL: choices choices='[\"Go to the park\", \"Climb to the rooftop\"]']\n";
const char* kToolsOnly =  // park: no prose, no ending: the engine falls back (E_EMPTY, E_FLOW)
    "[TOOL: music track=\"calm\"]\n";

// Beat k of the save is kBeats[k - 1].
const std::vector<std::string> kBeats = {kOpening,       kPark,     kParkAgain, kLibrary,      kOpening,  kRooftopKaito,
                                         kRooftopCamera, kRooftop, kShort,     kOpeningOther, kToolsOnly};

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  auto text = read_file_text(path);
  EXPECT_TRUE(text.ok()) << path;
  if (!text.ok()) return rows;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    std::string line = text->substr(pos, end - pos);
    pos = end == std::string::npos ? text->size() : end + 1;
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << ": not JSON: " << line;
    rows.push_back(std::move(j));
  }
  return rows;
}

std::string run_cli(const std::string& args, int* status) {
  const char* env = std::getenv("FABULA_BINARY");
  std::string cmd = "cd '" + std::string(FABULA_SOURCE_DIR) + "' && '" + (env ? env : FABULA_BINARY) + "' " + args +
                    " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

class PlayedSaves : public testing::Test {
 protected:
  void SetUp() override {
    auto story = stories_.get("sakuragaoka");
    ASSERT_TRUE(story.ok()) << story.error().to_string();
    auto store = engine::SaveStore::open(save_path_);
    ASSERT_TRUE(store.ok());
    engine::GameOptions options;
    options.engine.max_regenerations = 0;  // one narrator call per beat: beat id k used request k - 1
    engine::Game game(**story, narrator_, **store, options);
    auto step = [&](Status st) {
      ASSERT_TRUE(st.ok()) << st.error().to_string();
      game.wait_idle();
      ASSERT_EQ(game.last_error(), "");
    };
    // Session 1: opening (1), the park (2), regenerated (3, kept: the player went on from it), the library (4).
    ASSERT_TRUE(game.open().ok());
    step(game.start());
    step(game.choose(0));
    step(game.regenerate());
    step(game.choose(0));
    // Session 2: opening (5, the same text as 1), the rooftop three times (6 Kaito, 7 camera, 8 valid, kept),
    // a short beat in the same scene (9).
    ASSERT_TRUE(game.new_session().ok());
    step(game.start());
    step(game.choose(1));
    step(game.regenerate());
    step(game.regenerate());
    step(game.choose(1));
    // Session 3: another opening (10), then the park with a beat the engine replaced by its fallback (11).
    ASSERT_TRUE(game.new_session().ok());
    step(game.start());
    step(game.choose(0));
    ASSERT_EQ(narrator_.calls(), 11u);
  }

  Result<std::vector<TurnRow>> turns() {
    SourceReport report;
    return read_save_turns(save_path_, stories_.lookup(), {}, report);
  }

  test_support::ScratchDir dir_{"dataset"};
  std::string save_path_ = dir_ / "saves.sqlite";
  StoryCache stories_;
  engine::ScriptedNarrator narrator_{{kBeats.begin(), kBeats.end()}, engine::ScriptedOptions{}};
};

TEST_F(PlayedSaves, EveryBeatBecomesARowWithItsSceneAndWhetherItWasKept) {
  auto rows = turns();
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  ASSERT_EQ(rows->size(), 11u);
  const std::vector<std::string> scene = {"", "classroom", "park", "park", "library", "classroom", "rooftop",
                                          "rooftop", "rooftop", "rooftop", "classroom", "park"};
  const std::set<int64_t> regenerated = {2, 6, 7};
  for (size_t i = 0; i < rows->size(); ++i) {
    const TurnRow& r = (*rows)[i];
    const int64_t id = static_cast<int64_t>(i) + 1;
    ASSERT_EQ(r.beat_id, id);
    EXPECT_EQ(r.session, id <= 4 ? 1 : id <= 9 ? 2 : 3) << id;
    EXPECT_EQ(r.scene(), "sakuragaoka/" + scene[id] + "/after school") << id;
    EXPECT_EQ(r.kept, !regenerated.count(id)) << id;
    const engine::NarratorRequest& sent = narrator_.requests()[i];
    ASSERT_EQ(r.messages.size(), sent.messages.size());
    for (size_t m = 0; m < sent.messages.size(); ++m) EXPECT_EQ(r.messages[m].content, sent.messages[m].content);
    EXPECT_EQ(r.prompt_source, "recorded");
    EXPECT_EQ(r.seed, sent.seed);
    EXPECT_EQ(r.cast, sent.cast);
    EXPECT_EQ(r.model, narrator_.describe());
    EXPECT_EQ(r.profile, "demo");
    EXPECT_EQ(r.sampling["temperature"], 1.1);
  }
  EXPECT_TRUE((*rows)[10].fallback);
  EXPECT_EQ((*rows)[10].beat, kToolsOnly);
}

struct Exported {
  ExportSummary summary;
  std::map<int64_t, std::string> reason;  // beat id -> reject reason ("" = exported)
  std::map<int64_t, json> rejected;
  std::vector<json> train, held_out, train_text, held_out_text;
};

class ExportFixture : public PlayedSaves {
 protected:
  Exported run_export(FilterOptions filters, const std::string& tell_list = "") {
    Exported e;
    auto rows = turns();
    EXPECT_TRUE(rows.ok());
    if (!rows.ok()) return e;
    auto loaded = backend::load_model(std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf");
    EXPECT_TRUE(loaded.ok());
    if (!loaded.ok()) return e;
    model_ = std::make_unique<backend::LoadedModel>(std::move(*loaded));
    ExportOptions options;
    options.out_dir = out_;
    options.filters = filters;
    options.held_out = 0.25;
    options.text = TextFormat{[this](std::span<const ChatMessage> m) { return model_->render_chat(m); },
                              std::string(model_->chat_template.end_of_turn())};
    auto tells = tell_list.empty() ? eval::load_default_tells() : eval::TellList::parse(tell_list, "test tells");
    EXPECT_TRUE(tells.ok());
    auto summary = export_dataset(std::move(*rows), stories_.lookup(), *tells, options);
    EXPECT_TRUE(summary.ok()) << summary.error().to_string();
    if (!summary.ok()) return e;
    e.summary = *summary;
    for (int64_t id = 1; id <= 11; ++id) e.reason[id] = "";
    auto beat_of = [](const std::string& row_id) { return std::stoll(row_id.substr(row_id.rfind('/') + 1)); };
    for (auto& r : read_jsonl(out_ + "/rejected.jsonl")) {
      int64_t id = beat_of(r["id"]);
      e.reason[id] = r["reason"];
      e.rejected[id] = r;
    }
    e.train = read_jsonl(out_ + "/train.jsonl");
    e.held_out = read_jsonl(out_ + "/heldout.jsonl");
    e.train_text = read_jsonl(out_ + "/train.text.jsonl");
    e.held_out_text = read_jsonl(out_ + "/heldout.text.jsonl");
    return e;
  }

  std::string out_ = dir_ / "out";
  std::unique_ptr<backend::LoadedModel> model_;
};

TEST_F(ExportFixture, RemovesInvalidShortAndDuplicateRowsWithCountedReasons) {
  Exported e = run_export({});
  const std::map<int64_t, std::string> expected = {
      {1, ""},          {2, ""},     {3, "near_duplicate"}, {4, ""},      {5, "duplicate"}, {6, "cast"},
      {7, "invalid"},   {8, ""},     {9, "short"},          {10, ""},     {11, "invalid"}};
  EXPECT_EQ(e.reason, expected);
  EXPECT_EQ(e.summary.rows_in, 11);
  EXPECT_EQ(e.summary.rows_out, 5);
  const std::map<std::string, int64_t> removed = {{"no_prompt", 0}, {"not_kept", 0}, {"invalid", 2}, {"cast", 1},
                                                  {"short", 1},     {"slop", 0},     {"duplicate", 1},
                                                  {"near_duplicate", 1}};
  EXPECT_EQ(e.summary.removed, removed);
  const std::map<std::string, int64_t> codes = {{"E_CAST_LOCK", 1}, {"E_TOOL_UNKNOWN", 1}, {"E_EMPTY", 1},
                                                {"E_FLOW", 1}};
  EXPECT_EQ(e.summary.error_codes, codes);
  // Each rejected row names what removed it.
  ASSERT_TRUE(e.rejected[7].contains("errors"));
  EXPECT_EQ(e.rejected[7]["errors"][0].get<std::string>().rfind("E_TOOL_UNKNOWN", 0), 0u) << e.rejected[7];
  EXPECT_EQ(e.rejected[6]["errors"][0].get<std::string>().rfind("E_CAST_LOCK", 0), 0u) << e.rejected[6];
  EXPECT_TRUE(e.rejected[5]["duplicate_of"].get<std::string>().ends_with("#1/1"));
  EXPECT_TRUE(e.rejected[3]["duplicate_of"].get<std::string>().ends_with("#1/2"));
  EXPECT_GT(e.rejected[3]["similarity"].get<double>(), 0.9);
  EXPECT_LT(e.rejected[3]["similarity"].get<double>(), 1.0);
  EXPECT_LT(e.rejected[9]["words"].get<int64_t>(), 8);

  // The split: 4 scenes, one held out, none in both; every exported row in exactly one split.
  std::set<std::string> train_scenes, held_scenes;
  std::set<int64_t> out_ids;
  for (const auto& r : e.train) {
    train_scenes.insert(r["meta"]["scene"].get<std::string>());
    out_ids.insert(r["meta"]["beat"].get<int64_t>());
  }
  for (const auto& r : e.held_out) {
    held_scenes.insert(r["meta"]["scene"].get<std::string>());
    out_ids.insert(r["meta"]["beat"].get<int64_t>());
  }
  EXPECT_EQ(out_ids, (std::set<int64_t>{1, 2, 4, 8, 10}));
  EXPECT_EQ(e.train.size() + e.held_out.size(), 5u);
  EXPECT_EQ(held_scenes.size(), 1u);
  EXPECT_EQ(train_scenes.size(), 3u);
  for (const auto& s : held_scenes) EXPECT_FALSE(train_scenes.count(s)) << s << " is in both splits";
  EXPECT_EQ(e.summary.train.scenes + e.summary.held_out.scenes, 4);
  EXPECT_EQ(e.summary.train.rows, static_cast<int64_t>(e.train.size()));
  EXPECT_GT(e.summary.train.words, 0);
  EXPECT_GT(e.summary.train.ttr, 0.0);
}

TEST_F(ExportFixture, ChatRowsAreDatasetsMessagesWithAlternatingRoles) {
  Exported e = run_export({});
  std::vector<json> all = e.train;
  all.insert(all.end(), e.held_out.begin(), e.held_out.end());
  ASSERT_EQ(all.size(), 5u);
  for (const auto& row : all) {
    ASSERT_TRUE(row.contains("messages") && row["messages"].is_array()) << row;
    const json& ms = row["messages"];
    ASSERT_EQ(ms.size(), 3u);
    const std::vector<std::string> roles = {"system", "user", "assistant"};
    for (size_t i = 0; i < ms.size(); ++i) {
      ASSERT_TRUE(ms[i].is_object() && ms[i].size() == 2) << ms[i];
      ASSERT_TRUE(ms[i]["role"].is_string() && ms[i]["content"].is_string()) << ms[i];
      EXPECT_EQ(ms[i]["role"], roles[i]);
      EXPECT_FALSE(ms[i]["content"].get<std::string>().empty());
    }
    EXPECT_TRUE(check_chat_row(row).ok());
    const size_t beat = row["meta"]["beat"];
    EXPECT_EQ(ms[1]["content"], narrator_.requests()[beat - 1].messages[1].content);
  }
  // The checker refuses what datasets' chat templates would: two user turns, no assistant at the end, extra keys.
  json bad = all[0];
  bad["messages"][2]["role"] = "user";
  EXPECT_FALSE(check_chat_row(bad).ok());
  bad = all[0];
  bad["messages"].erase(2);
  EXPECT_FALSE(check_chat_row(bad).ok());
  bad = all[0];
  bad["messages"][0]["name"] = "x";
  EXPECT_FALSE(check_chat_row(bad).ok());
}

TEST_F(ExportFixture, TextRowsTokenizeToExactlyThePromptTheNarratorReceived) {
  Exported e = run_export({});
  std::vector<json> all = e.train_text;
  all.insert(all.end(), e.held_out_text.begin(), e.held_out_text.end());
  ASSERT_EQ(all.size(), 5u);
  for (const auto& row : all) {
    const size_t beat = row["meta"]["beat"];
    auto received = model_->encode_chat(narrator_.requests()[beat - 1].messages);
    ASSERT_TRUE(received.ok());
    const std::string prompt = row["prompt"];
    EXPECT_EQ(model_->tokenizer.encode(prompt, /*add_bos=*/false, /*parse_special=*/true), *received) << beat;
    EXPECT_TRUE(prompt.ends_with("<|turn>model\n<|channel>thought\n<channel|>")) << "thinking off, empty thought";
    std::string beat_text = kBeats[beat - 1];
    beat_text.pop_back();  // the fixture's final newline (contents are trimmed)
    EXPECT_EQ(row["completion"], beat_text + "<turn|>");
    EXPECT_EQ(row["text"], prompt + row["completion"].get<std::string>());
  }
  // The opening prompt is the demo narrator's training prompt, byte for byte.
  auto golden = read_file_text(std::string(FABULA_TEST_DATA) + "/engine/demo_prompt_opening.txt");
  ASSERT_TRUE(golden.ok());
  bool saw_opening = false;
  for (const auto& row : all)
    if (row["meta"]["beat"] == 1) {
      saw_opening = true;
      EXPECT_EQ(row["prompt"], *golden);
    }
  EXPECT_TRUE(saw_opening);
}

TEST_F(ExportFixture, KeptOnlyDropsRegeneratedVersions) {
  FilterOptions filters;
  filters.kept_only = true;
  Exported e = run_export(filters);
  const std::map<int64_t, std::string> expected = {
      {1, ""},          {2, "not_kept"}, {3, ""},  {4, ""}, {5, "duplicate"}, {6, "not_kept"},
      {7, "not_kept"},  {8, ""},         {9, "short"}, {10, ""}, {11, "invalid"}};
  EXPECT_EQ(e.reason, expected);
  EXPECT_EQ(e.summary.rows_out, 5);
  EXPECT_EQ(e.summary.removed["not_kept"], 3);
}

TEST_F(ExportFixture, SlopLimitAndNearDuplicateThresholdAreHonoured) {
  FilterOptions filters;
  filters.near_duplicate = 1.01;  // off: the regenerated park beat is no longer a near duplicate
  filters.max_slop = 0;           // no tell at all
  Exported e = run_export(filters, "# version: test\nsketch the ducks\n");  // both park beats say it
  EXPECT_EQ(e.reason[2], "slop");
  EXPECT_EQ(e.reason[3], "slop");
  EXPECT_GT(e.rejected[2]["slop"].get<double>(), 0.0);
  EXPECT_EQ(e.summary.removed["near_duplicate"], 0);
  EXPECT_EQ(e.summary.removed["slop"], 2);
  filters.max_slop.reset();
  e = run_export(filters, "# version: test\nsketch the ducks\n");
  EXPECT_EQ(e.reason[2], "");
  EXPECT_EQ(e.reason[3], "");  // near-duplicate removal off
  EXPECT_GT(e.summary.train.slop_density + e.summary.held_out.slop_density, 0.0);
}

TEST_F(PlayedSaves, CliExportsAndEvalRunsOnTheHeldOutScenes) {
  const std::string out = dir_ / "cli";
  int status = -1;
  std::string log = run_cli("dataset export '" + save_path_ + "' -o '" + out + "' --held-out 0.25", &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find("rows in                11"), std::string::npos) << log;
  EXPECT_NE(log.find("rows out                5"), std::string::npos) << log;
  EXPECT_NE(log.find("E_TOOL_UNKNOWN 1"), std::string::npos) << log;
  auto scenes_text = read_file_text(out + "/heldout-scenes.jsonl");
  ASSERT_TRUE(scenes_text.ok());
  auto scenes = eval::parse_eval_scenes(*scenes_text, "heldout-scenes.jsonl");
  ASSERT_TRUE(scenes.ok()) << scenes.error().to_string();
  ASSERT_FALSE(scenes->empty());
  const std::string eval_out = dir_ / "eval";
  log = run_cli("eval --model models/fabula-demo-v1.gguf --scenes '" + out + "/heldout-scenes.jsonl' --out '" + eval_out +
                    "' --seeds 1 --n-predict 48",
                &status);
  ASSERT_EQ(status, 0) << log;
  auto beats = eval::read_beat_rows(eval_out + "/beats.jsonl");
  ASSERT_TRUE(beats.ok());
  EXPECT_EQ(beats->size(), scenes->size());
  for (const auto& b : *beats) EXPECT_EQ(b.profile, "demo");
  EXPECT_TRUE(std::filesystem::exists(eval_out + "/report.json"));

  // An eval run is an input too: its prompts are rebuilt from the scenes file it ran.
  log = run_cli("dataset export '" + eval_out + "' -o '" + (dir_ / "from-eval") + "' --format chat", &status);
  EXPECT_EQ(status, 1) << log;
  EXPECT_NE(log.find("pass --scenes"), std::string::npos) << log;
  log = run_cli("dataset export '" + eval_out + "' --scenes '" + out + "/heldout-scenes.jsonl' -o '" +
                    (dir_ / "from-eval") + "' --format chat --min-words 0 --held-out 0",
                &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_NE(log.find(fmt::format("eval, {} rows", beats->size())), std::string::npos) << log;
  auto rows = read_jsonl(dir_ / "from-eval/train.jsonl");
  std::set<std::string> choices;
  for (const auto& sc : *scenes) choices.insert(sc.player_choice);
  for (const auto& r : rows) {
    EXPECT_EQ(r["meta"]["prompt_source"], "re-rendered");
    EXPECT_TRUE(choices.count(r["meta"]["player_choice"].get<std::string>()));
    EXPECT_TRUE(check_chat_row(r).ok()) << r;
  }
}

TEST(DatasetExport, AnOldSaveSaysWhatItLacksAndCanBeReRendered) {
  test_support::ScratchDir dir("dataset_v1");
  const std::string path = dir / "save_v1.sqlite";
  std::filesystem::copy_file(std::string(FABULA_TEST_DATA) + "/engine/save_v1.sqlite", path);
  StoryCache stories;
  SourceReport report;
  auto rows = read_save_turns(path, stories.lookup(), {}, report);
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  EXPECT_EQ(report.schema_version, 1);
  EXPECT_EQ(report.without_prompt, 3);
  EXPECT_EQ(report.without_sampling, 3);
  ASSERT_FALSE(report.notes.empty());
  EXPECT_NE(report.notes[0].find("3 beats were saved before fabula recorded each beat's prompt"), std::string::npos)
      << report.notes[0];
  for (const auto& r : *rows) EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ((*rows)[1].kept, false);  // beat 2 was regenerated as beat 3, the session's head
  EXPECT_EQ((*rows)[2].kept, true);

  SourceReport again;
  auto rerendered = read_save_turns(path, stories.lookup(), {.rerender_profile = "demo"}, again);
  ASSERT_TRUE(rerendered.ok());
  EXPECT_EQ(again.rerendered, 3);
  ASSERT_EQ((*rerendered)[0].messages.size(), 2u);
  EXPECT_EQ((*rerendered)[0].prompt_source, "re-rendered");
  // Re-rendered as the engine builds it: the demo narrator's training prompt for the opening scene.
  auto model = backend::load_model(std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf");
  ASSERT_TRUE(model.ok());
  auto golden = read_file_text(std::string(FABULA_TEST_DATA) + "/engine/demo_prompt_opening.txt");
  ASSERT_TRUE(golden.ok());
  EXPECT_EQ(*model->render_chat((*rerendered)[0].messages), *golden);
}

TEST(DatasetExport, SplitHoldsOutAShareOfScenesStably) {
  std::vector<std::string> scenes;
  for (int i = 0; i < 10; ++i) scenes.push_back("s/place" + std::to_string(i) + "/t");
  auto held = held_out_scenes(scenes, 0.2, 1);
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(held_out_scenes(scenes, 0.2, 1), held);        // stable
  EXPECT_NE(held_out_scenes(scenes, 0.2, 2), held);        // the seed picks others (for these ten)
  EXPECT_EQ(held_out_scenes({"a", "b"}, 0.01, 1).size(), 1u);  // at least one when there are two
  EXPECT_EQ(held_out_scenes({"a", "b"}, 1.0, 1).size(), 1u);   // and train keeps one
  EXPECT_TRUE(held_out_scenes({"a"}, 0.5, 1).empty());
  EXPECT_TRUE(held_out_scenes(scenes, 0.0, 1).empty());
}

TEST(DatasetExport, BeatsWithoutProseTrigramsAreNotNearDuplicates) {
  StoryCache stories;
  auto tells = eval::load_default_tells();
  ASSERT_TRUE(tells.ok());
  std::vector<TurnRow> turns(2);
  const char* beats[] = {"[Hana]: \"Hi there.\"\n[TOOL: choices choices='[\"Wave\", \"Wait\"]']",
                         "[Mio]: \"Okay.\"\n[TOOL: choices choices='[\"Nod\", \"Leave\"]']"};
  for (int i = 0; i < 2; ++i) {
    turns[i].id = "t" + std::to_string(i);
    turns[i].story = "sakuragaoka";
    turns[i].cast = {"Hana", "Mio"};
    turns[i].messages = {{"system", "s"}, {"user", "u"}};
    turns[i].beat = beats[i];
  }
  FilterOptions options;
  options.min_words = 0;
  auto judged = filter_turns(turns, stories.lookup(), *tells, options);
  ASSERT_TRUE(judged.ok()) << judged.error().to_string();
  for (const auto& f : *judged) EXPECT_FALSE(f.rejected.has_value()) << f.turn.id << ": " << f.errors.size();
}

TEST(DatasetExport, ShinglesAndJaccard) {
  auto a = prose_shingles("[Hana]: \"one two three four\"\nfive six seven.");
  EXPECT_EQ(a, (std::vector<std::string>{"five six seven", "one two three", "two three four"}));
  EXPECT_DOUBLE_EQ(jaccard(a, a), 1.0);
  auto b = prose_shingles("[Hana]: \"one two three four\"");
  EXPECT_DOUBLE_EQ(jaccard(a, b), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(jaccard(a, {}), 0.0);
}

}  // namespace
}  // namespace fabula::dataset
