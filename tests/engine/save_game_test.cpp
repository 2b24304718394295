// Saves (SQLite beat trees, export/import, persistence) and Game: rollback, regenerate as a branch, branch switching.
#include <filesystem>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "base/file.h"
#include "engine/game.h"
#include "engine/scripted_narrator.h"

namespace fabula::engine {
namespace {

using nlohmann::json;

BeatRecord make_beat(int64_t session, int64_t parent, const std::string& choice, const std::string& place) {
  BeatRecord b;
  b.session_id = session;
  b.parent_id = parent;
  b.player_choice = choice;
  b.text = "[Hana]: \"at " + place + "\"";
  b.events = {DialogueEvent{"Hana", "at " + place}};
  b.state = {{"place", place}, {"cast", {"Hana"}}};
  b.choices = {"Go left", "Go right"};
  b.seed = 7;
  return b;
}

TEST(SaveStore, BeatTreePathsSiblingsAndHead) {
  auto store = SaveStore::open(":memory:");
  ASSERT_TRUE(store.ok());
  SaveStore& s = **store;
  auto sid = s.create_session("sakuragaoka", "T", "scripted", json{{"place", "classroom"}});
  ASSERT_TRUE(sid.ok());
  int64_t a = *s.add_beat(make_beat(*sid, 0, "open", "classroom"));
  int64_t b = *s.add_beat(make_beat(*sid, a, "Go left", "park"));
  int64_t c = *s.add_beat(make_beat(*sid, a, "Go left", "beach"));  // a regenerated sibling of b
  int64_t d = *s.add_beat(make_beat(*sid, b, "Go right", "cafe"));
  EXPECT_EQ(s.session(*sid)->head_beat, d);
  EXPECT_EQ(s.session(*sid)->beat_count, 4);
  auto path = s.path_to(d);
  ASSERT_TRUE(path.ok());
  ASSERT_EQ(path->size(), 3u);
  EXPECT_EQ((*path)[0].id, a);
  EXPECT_EQ((*path)[1].id, b);
  EXPECT_EQ((*path)[2].state["place"], "cafe");
  EXPECT_EQ((*path)[2].choices, (std::vector<std::string>{"Go left", "Go right"}));
  auto sib = s.siblings(c);
  ASSERT_TRUE(sib.ok());
  ASSERT_EQ(sib->size(), 2u);
  EXPECT_EQ((*sib)[0].id, b);
  ASSERT_TRUE(s.set_head(*sid, c).ok());
  EXPECT_EQ(s.session(*sid)->head_beat, c);
  EXPECT_EQ(s.beats(*sid)->size(), 4u);  // rollback keeps every beat
  auto other = s.create_session("sakuragaoka", "T2", "scripted", json::object());
  EXPECT_FALSE(s.set_head(*other, c).ok());  // a beat of another session
  EXPECT_FALSE(s.beat(999).ok());
}

TEST(SaveStore, ExportImportRoundTripRemapsIds) {
  auto store = SaveStore::open(":memory:");
  ASSERT_TRUE(store.ok());
  SaveStore& s = **store;
  int64_t sid = *s.create_session("sakuragaoka", "T", "scripted", json{{"place", "classroom"}});
  int64_t a = *s.add_beat(make_beat(sid, 0, "open", "classroom"));
  int64_t b = *s.add_beat(make_beat(sid, a, "Go left", "park"));
  ASSERT_TRUE(s.save_slot(sid, "before park", a).ok());
  ASSERT_TRUE(s.set_head(sid, a).ok());
  (void)b;
  auto doc = s.export_session(sid);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["format"], "fabula-save/1");
  EXPECT_EQ((*doc)["beats"].size(), 2u);
  auto imported = s.import_session(json::parse(doc->dump()));
  ASSERT_TRUE(imported.ok()) << imported.error().to_string();
  EXPECT_NE(*imported, sid);
  auto again = s.export_session(*imported);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)["beats"].size(), 2u);
  EXPECT_EQ((*again)["beats"][1]["text"], (*doc)["beats"][1]["text"]);
  EXPECT_EQ((*again)["beats"][1]["parent_id"], (*again)["beats"][0]["id"]);
  EXPECT_EQ((*again)["session"]["head_beat"], (*again)["beats"][0]["id"]);
  EXPECT_EQ((*again)["slots"][0]["name"], "before park");
  EXPECT_FALSE(s.import_session(json{{"format", "other"}}).ok());
  json bad = *doc;
  bad["beats"][1]["parent_id"] = 12345;
  EXPECT_FALSE(s.import_session(bad).ok());
  EXPECT_EQ((*again)["beats"][1]["events"], (*doc)["beats"][1]["events"]);

  // An event that breaks docs/events.schema.json is refused before anything is written.
  size_t sessions_before = s.sessions()->size();
  json broken = *doc;
  broken["beats"][1]["events"][0].erase("speaker");
  auto refused = s.import_session(broken);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "import: beats[1].events: events[0]: dialogue: field \"speaker\": missing");
  EXPECT_EQ(s.sessions()->size(), sessions_before);
}

TEST(SaveStore, PersistsAcrossReopen) {
  std::string path = testing::TempDir() + "/fabula_save_reopen.sqlite";
  std::filesystem::remove(path);
  int64_t sid, head;
  {
    auto store = SaveStore::open(path);
    ASSERT_TRUE(store.ok());
    sid = *(*store)->create_session("sakuragaoka", "T", "scripted", json{{"place", "classroom"}});
    int64_t a = *(*store)->add_beat(make_beat(sid, 0, "open", "classroom"));
    head = *(*store)->add_beat(make_beat(sid, a, "Go left", "park"));
  }
  auto store = SaveStore::open(path);
  ASSERT_TRUE(store.ok());
  auto latest = (*store)->latest_session();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id, sid);
  EXPECT_EQ((*latest)->head_beat, head);
  EXPECT_EQ((*latest)->beat_count, 2);
}

const char* kBeat1 =
    "[TOOL: background name=\"classroom\"]\n[TOOL: sprite character=\"Hana\" expression=\"smile\"]\n"
    "[Hana]: \"One.\"\n[TOOL: choices choices='[\"Go to the park\", \"Stay\"]']\n";
const char* kBeat2 =
    "[TOOL: background name=\"park\"]\n[TOOL: sprite character=\"Mio\" expression=\"sad\"]\n"
    "[Mio]: \"Two.\"\n[TOOL: choices choices='[\"Wait\", \"Leave\"]']\n";
const char* kBeat2b =
    "[TOOL: background name=\"park\"]\n[TOOL: sprite character=\"Mio\" expression=\"laugh\"]\n"
    "[Mio]: \"Two, again.\"\n[TOOL: choices choices='[\"Wait\", \"Leave\"]']\n";

struct GameFixture : testing::Test {
  void SetUp() override {
    auto s = load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    ASSERT_TRUE(s.ok());
    story = std::move(*s);
    auto st = SaveStore::open(":memory:");
    ASSERT_TRUE(st.ok());
    store = std::move(*st);
  }
  Story story;
  std::unique_ptr<SaveStore> store;
};

TEST_F(GameFixture, PlayRollbackRegenerateAndSwitchBranches) {
  ScriptedNarrator narrator({kBeat1, kBeat2, kBeat2b, kBeat2}, ScriptedOptions{});
  Game game(story, narrator, *store);
  ASSERT_TRUE(game.open().ok());
  ASSERT_TRUE(game.start().ok());
  game.wait_idle();
  json snap = game.snapshot();
  ASSERT_FALSE(snap["beat"].is_null()) << game.last_error();
  int64_t first = snap["beat"]["id"];
  EXPECT_EQ(snap["beat"]["player_choice"], story.opening.player_choice);
  ASSERT_TRUE(game.choose(0).ok());
  game.wait_idle();
  snap = game.snapshot();
  int64_t second = snap["beat"]["id"];
  EXPECT_EQ(snap["beat"]["player_choice"], "Go to the park");
  EXPECT_EQ(snap["beat"]["state"]["place"], "park");  // the choice moved the scene
  EXPECT_EQ(snap["path"].size(), 2u);
  EXPECT_EQ(narrator.requests()[1].messages[1].content.find("Place: park"), 17u);

  // Regenerate: a sibling branch, the old beat kept.
  ASSERT_TRUE(game.regenerate().ok());
  game.wait_idle();
  snap = game.snapshot();
  int64_t third = snap["beat"]["id"];
  EXPECT_NE(third, second);
  EXPECT_EQ(snap["beat"]["parent_id"], first);
  EXPECT_EQ(snap["beat"]["events"][2]["text"], "Two, again.");
  EXPECT_EQ(snap["branches"]["count"], 2);
  EXPECT_EQ(snap["branches"]["index"], 1);
  EXPECT_NE(narrator.requests()[2].seed, narrator.requests()[1].seed);

  // Switch back to the first branch.
  ASSERT_TRUE(game.switch_branch(-1).ok());
  snap = game.snapshot();
  EXPECT_EQ(snap["beat"]["id"], second);
  EXPECT_EQ(snap["branches"]["index"], 0);

  // Roll back to the first beat and choose differently: a third child.
  ASSERT_TRUE(game.go_to(first).ok());
  snap = game.snapshot();
  EXPECT_EQ(snap["beat"]["id"], first);
  EXPECT_EQ(snap["path"].size(), 1u);
  ASSERT_TRUE(game.choose(1).ok());
  game.wait_idle();
  snap = game.snapshot();
  EXPECT_EQ(snap["beat"]["player_choice"], "Stay");
  EXPECT_EQ(snap["beat"]["parent_id"], first);
  EXPECT_EQ(snap["beat_count"], 4);
  EXPECT_EQ(game.tree().size(), 4u);
  EXPECT_FALSE(game.choose(7).ok());  // out of range

  // Events were published for live viewers, in order.
  auto events = game.events_after(0, 0);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(event_type(events.front().second), "beat_start");
  for (size_t i = 1; i < events.size(); ++i) EXPECT_EQ(events[i].first, events[i - 1].first + 1);
}

TEST_F(GameFixture, EveryBeatRecordsTheRequestTheNarratorReceived) {
  ScriptedNarrator narrator({kBeat1, kBeat2, kBeat2b}, ScriptedOptions{});
  GameOptions options;
  options.engine.sampling.temperature = 0.7f;
  options.engine.sampling.top_k = 40;
  Game game(story, narrator, *store, options);
  ASSERT_TRUE(game.open().ok());
  ASSERT_TRUE(game.start().ok());
  game.wait_idle();
  ASSERT_TRUE(game.choose(0).ok());
  game.wait_idle();
  ASSERT_TRUE(game.regenerate().ok());  // a regenerated branch records its own request too
  game.wait_idle();
  auto beats = store->beats(game.session_id());
  ASSERT_TRUE(beats.ok());
  ASSERT_EQ(beats->size(), 3u);
  ASSERT_EQ(narrator.requests().size(), 3u);
  for (size_t i = 0; i < beats->size(); ++i) {
    auto b = store->beat((*beats)[i].id);
    ASSERT_TRUE(b.ok()) << b.error().to_string();
    const NarratorRequest& sent = narrator.requests()[i];
    ASSERT_TRUE(b->has_request());
    ASSERT_EQ(b->prompt.size(), sent.messages.size());
    for (size_t m = 0; m < sent.messages.size(); ++m) {
      EXPECT_EQ(b->prompt[m].role, sent.messages[m].role);
      EXPECT_EQ(b->prompt[m].content, sent.messages[m].content);
    }
    EXPECT_EQ(b->seed, sent.seed);
    EXPECT_EQ(b->sampling["temperature"], 0.7);  // the shortest decimal of 0.7f
    EXPECT_EQ(b->sampling["top_k"], 40);
    EXPECT_EQ(b->model, narrator.describe());
    EXPECT_EQ(b->profile, "demo");
  }
  // Export and import keep the request.
  auto doc = store->export_session(game.session_id());
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["beats"][2]["prompt"][1]["content"], narrator.requests()[2].messages[1].content);
  auto imported = store->import_session(*doc);
  ASSERT_TRUE(imported.ok()) << imported.error().to_string();
  auto again = store->export_session(*imported);
  ASSERT_TRUE(again.ok());
  for (const char* key : {"prompt", "sampling", "model", "profile"})
    EXPECT_EQ((*again)["beats"][2][key], (*doc)["beats"][2][key]) << key;
}

TEST(SaveStore, OpensASaveOfTheFirstSchemaAndMigratesIt) {
  // tests/data/engine/save_v1.sqlite: written before beats recorded their prompt (make_save_v1.py beside it).
  std::string path = testing::TempDir() + "/fabula_save_v1.sqlite";
  std::filesystem::copy_file(std::string(FABULA_TEST_DATA) + "/engine/save_v1.sqlite", path,
                             std::filesystem::copy_options::overwrite_existing);
  {
    auto store = SaveStore::open(path);
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    EXPECT_EQ((*store)->opened_schema_version(), 1);
    auto beats = (*store)->beats(1);
    ASSERT_TRUE(beats.ok());
    ASSERT_EQ(beats->size(), 3u);
    auto b = (*store)->beat(3);
    ASSERT_TRUE(b.ok()) << b.error().to_string();
    EXPECT_FALSE(b->has_request());  // what it lacks, said plainly
    EXPECT_TRUE(b->sampling.is_null());
    EXPECT_EQ(b->model, "");
    ASSERT_EQ(b->events.size(), 2u);
    EXPECT_EQ(std::get<DialogueEvent>(b->events[0]).text, "It is the view from the roof.");
    // New beats in the migrated file record their request.
    BeatRecord next = make_beat(1, 3, "Continue", "park");
    next.prompt = {{"system", "s"}, {"user", "u"}};
    next.model = "scripted";
    int64_t id = *(*store)->add_beat(next);
    EXPECT_TRUE((*store)->beat(id)->has_request());
  }
  auto reopened = SaveStore::open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->opened_schema_version(), kSaveSchemaVersion);
  EXPECT_EQ((*reopened)->beats(1)->size(), 4u);
}

// The seeds of fuzz_save_import: each imports, and export -> import -> export gives the same document.
TEST(SaveStore, FuzzSeedsImportAndRoundTrip) {
  int seen = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(FABULA_SOURCE_DIR) + "/fuzz/corpus/save_import")) {
    ++seen;
    auto text = read_file_text(entry.path().string());
    ASSERT_TRUE(text.ok());
    auto store = SaveStore::open(":memory:");
    ASSERT_TRUE(store.ok());
    auto sid = (*store)->import_session(json::parse(*text));
    ASSERT_TRUE(sid.ok()) << entry.path() << ": " << sid.error().to_string();
    auto first = (*store)->export_session(*sid);
    ASSERT_TRUE(first.ok());
    auto again = (*store)->import_session(*first);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*store)->export_session(*again)->dump(), first->dump()) << entry.path();
    EXPECT_EQ((*first)["beats"][0]["prompt"][1]["content"], "Cast: Hana, Mio. Place: classroom.");
    EXPECT_FALSE((*first)["beats"][1].contains("prompt"));  // a beat saved before prompts were recorded
  }
  EXPECT_GE(seen, 1);
}

TEST(SaveStore, ImportRefusesAPromptThatIsNotMessages) {
  auto store = SaveStore::open(":memory:");
  ASSERT_TRUE(store.ok());
  auto text = read_file_text(std::string(FABULA_SOURCE_DIR) + "/fuzz/corpus/save_import/session.json");
  ASSERT_TRUE(text.ok());
  json doc = json::parse(*text);
  doc["beats"][0]["prompt"] = json::array({{{"role", "user"}}});
  auto sid = (*store)->import_session(doc);
  ASSERT_FALSE(sid.ok());
  EXPECT_NE(sid.error().message.find("prompt"), std::string::npos) << sid.error().message;
  EXPECT_TRUE((*store)->sessions()->empty());  // nothing half-imported
}

TEST(SaveStore, RefusesASaveFromANewerSchema) {
  std::string path = testing::TempDir() + "/fabula_save_future.sqlite";
  std::filesystem::remove(path);
  { ASSERT_TRUE(SaveStore::open(path).ok()); }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = SaveStore::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("schema version 99"), std::string::npos) << store.error().message;
}

TEST_F(GameFixture, ResumesTheLatestSessionOfTheStory) {
  ScriptedNarrator narrator({kBeat1, kBeat2}, ScriptedOptions{});
  int64_t session;
  {
    Game game(story, narrator, *store);
    ASSERT_TRUE(game.open().ok());
    session = game.session_id();
    ASSERT_TRUE(game.start().ok());
    game.wait_idle();
  }
  Game again(story, narrator, *store);
  ASSERT_TRUE(again.open().ok());
  EXPECT_EQ(again.session_id(), session);
  EXPECT_EQ(again.snapshot()["beat_count"], 1);
  GameOptions fresh;
  fresh.resume = false;
  Game other(story, narrator, *store, fresh);
  ASSERT_TRUE(other.open().ok());
  EXPECT_NE(other.session_id(), session);
}

}  // namespace
}  // namespace fabula::engine
