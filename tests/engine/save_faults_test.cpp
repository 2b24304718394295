// Save-store faults: a scripted playthrough (turns, a save slot, regenerate-as-branch, branch switch, rollback,
// export, import) runs once per write, sync and lock it makes, with that one failing (an I/O error or a full disk)
// or the power cut there (every unsynced write lost). After each run the save is reopened: every beat the player
// saw completed is there and identical, every import that succeeded is whole, PRAGMA integrity_check and
// foreign_key_check pass, and every failure reached the player as an error naming the save.
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/game.h"
#include "engine/scripted_narrator.h"
#include "faulty_vfs.h"

namespace fabula::engine {
namespace {

using nlohmann::json;
using test_support::FaultOp;
using test_support::FaultPlan;
using test_support::FaultyVfs;

const char* kBeatA =
    "[TOOL: background name=\"classroom\"]\n[TOOL: sprite character=\"Hana\" expression=\"smile\"]\n"
    "[Hana]: \"You came.\"\n[TOOL: choices choices='[\"Go to the park\", \"Stay\"]']\n";
const char* kBeatB =
    "[TOOL: background name=\"park\"]\n[TOOL: sprite character=\"Mio\" expression=\"sad\"]\n"
    "[Mio]: \"Here again.\"\n[TOOL: choices choices='[\"Wait\", \"Leave\"]']\n";

// What the player was told had completed, to find again after the fault.
struct Outcome {
  std::map<int64_t, BeatSummary> beats;                // beat id -> the beat as the player saw it end
  std::vector<std::pair<int64_t, json>> imports;       // session id -> the document it was imported from
  std::vector<std::string> errors;                     // what the player was told went wrong
  bool fired_in_play = false;  // the fault came during play (not while closing the save, where SQLite's
                               // final checkpoint may fail with nothing lost: the WAL keeps every commit)
};

std::string scratch_dir() {
  // Fault runs fsync hundreds of times: on /dev/shm that costs nothing.
  std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : testing::TempDir();
  std::filesystem::path dir = base / ("fabula_save_faults_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void remove_save(const std::string& path) {
  for (const char* ext : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + ext);
}

// The playthrough. Steps go on after a failed one, as a player would keep clicking.
Outcome play(const Story& story, const std::string& path, const FaultyVfs& vfs) {
  Outcome out;
  auto store = SaveStore::open(path);
  if (!store) {
    out.errors.push_back(store.error().to_string());
    out.fired_in_play = vfs.fired();
    return out;
  }
  ScriptedOptions options;
  options.loop = true;
  ScriptedNarrator narrator({kBeatA, kBeatB}, options);
  {
    Game game(story, narrator, **store);
    auto step = [&](const Status& st) {
      if (!st) out.errors.push_back(st.error().to_string());
      game.wait_idle();
    };
    step(game.open());
    step(game.start());
    step(game.choose(0));
    step(game.save_slot("before the branch"));
    step(game.regenerate());
    step(game.switch_branch(-1));
    // Roll back to the first beat.
    auto session = (*store)->session(game.session_id());
    if (!session) out.errors.push_back(session.error().to_string());
    if (session && session->head_beat) {
      auto path_now = (*store)->path_to(session->head_beat);
      if (!path_now) out.errors.push_back(path_now.error().to_string());
      if (path_now && !path_now->empty()) step(game.go_to(path_now->front().id));
    }
    step(game.choose(1));
    auto doc = (*store)->export_session(game.session_id());
    if (!doc) out.errors.push_back(doc.error().to_string());
    if (doc) {
      auto imported = game.import_session(*doc);
      if (imported) out.imports.emplace_back(*imported, *doc);
      else out.errors.push_back(imported.error().to_string());
    }
    step(game.choose(0));
    game.wait_idle();
    for (const auto& [seq, event] : game.events_after(0, 0)) {
      if (const auto* end = std::get_if<BeatEndEvent>(&event)) out.beats[end->beat.id] = end->beat;
      if (const auto* error = std::get_if<ErrorEvent>(&event)) out.errors.push_back(error->message);
    }
    out.fired_in_play = vfs.fired();
  }
  return out;
}

// PRAGMA results as one string per row.
std::vector<std::string> pragma(const std::string& path, const char* sql) {
  std::vector<std::string> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return {"cannot open"};
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        auto text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row += c ? "|" : "";
        row += text ? text : "NULL";
      }
      rows.push_back(row);
    }
  } else {
    rows.push_back(std::string("cannot prepare: ") + sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// Reopens the save and checks it against what the player was told. Returns the number of lost beats.
int check_save(const std::string& path, const Outcome& out, const std::string& label) {
  EXPECT_EQ(pragma(path, "PRAGMA integrity_check"), std::vector<std::string>{"ok"}) << label;
  EXPECT_EQ(pragma(path, "PRAGMA foreign_key_check"), std::vector<std::string>{}) << label;
  auto store = SaveStore::open(path);
  EXPECT_TRUE(store.ok()) << label << ": " << (store ? "" : store.error().to_string());
  if (!store) return static_cast<int>(out.beats.size());
  int lost = 0;
  for (const auto& [id, seen] : out.beats) {
    auto beat = (*store)->beat(id);
    bool same = beat && beat->parent_id == seen.parent_id && beat->player_choice == seen.player_choice &&
                beat->events == seen.events && beat->choices == seen.choices && beat->ended == seen.ended &&
                SceneState::from_json(beat->state).ok() && *SceneState::from_json(beat->state) == seen.state;
    EXPECT_TRUE(same) << label << ": beat " << id << " is " << (beat ? "changed" : "missing");
    lost += !same;
  }
  // An import that succeeded is whole: its beats come back as they were imported (play may have added more).
  for (const auto& [sid, doc] : out.imports) {
    auto again = (*store)->export_session(sid);
    size_t whole = 0;
    for (size_t i = 0; again && i < doc["beats"].size() && i < (*again)["beats"].size(); ++i)
      whole += (*again)["beats"][i] == doc["beats"][i];
    EXPECT_EQ(whole, doc["beats"].size()) << label << ": imported session " << sid << " is not whole";
    lost += static_cast<int>(doc["beats"].size() - whole);
  }
  return lost;
}

struct Tally {
  int runs = 0, fired = 0, at_close = 0, lost = 0;
  int dropped = 0;  // unsynced writes a power cut undid
};

class SaveFaults : public testing::Test {
 protected:
  void SetUp() override {
    auto s = load_story(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka");
    ASSERT_TRUE(s.ok());
    story_ = std::move(*s);
    dir_ = scratch_dir();
    vfs_ = &FaultyVfs::install();
  }
  void TearDown() override {
    vfs_->arm(FaultPlan{});
    std::filesystem::remove_all(dir_);
  }

  // How many operations of each kind a clean playthrough makes.
  int clean_count(FaultOp op) {
    std::string path = dir_ + "/clean.sqlite";
    remove_save(path);
    vfs_->arm(FaultPlan{});
    Outcome out = play(story_, path, *vfs_);
    EXPECT_TRUE(out.errors.empty()) << out.errors.front();
    EXPECT_GE(out.beats.size(), 5u);
    EXPECT_EQ(out.imports.size(), 1u);
    return vfs_->count(op);
  }

  // One run with `plan`: play, (power cut: drop what was not synced), reopen, check.
  void run(const FaultPlan& plan, Tally& tally) {
    std::string path = dir_ + "/save.sqlite";
    remove_save(path);
    vfs_->arm(plan);
    Outcome out = play(story_, path, *vfs_);
    bool fired = vfs_->fired();
    if (plan.power_cut) tally.dropped += vfs_->drop_unsynced_writes();
    vfs_->arm(FaultPlan{});
    std::string label = std::string(test_support::fault_op_name(plan.op)) + " #" + std::to_string(plan.at) +
                        (plan.power_cut ? " (power cut)" : " (error " + std::to_string(plan.code) + ")");
    ++tally.runs;
    tally.fired += fired;
    tally.at_close += fired && !out.fired_in_play;
    tally.lost += check_save(path, out, label);
    if (!out.fired_in_play) return;
    // The player heard about it, in words that name the save.
    bool named = false;
    for (const auto& e : out.errors) named |= e.find("save") != std::string::npos;
    EXPECT_TRUE(named) << label << ": no error named the save: " << (out.errors.empty() ? "(none)" : out.errors.front());
  }

  Story story_;
  std::string dir_;
  FaultyVfs* vfs_ = nullptr;
};

TEST_F(SaveFaults, EveryFailedWriteSyncOrLockLosesNoCompletedBeat) {
  std::map<std::string, Tally> tallies;
  for (FaultOp op : {FaultOp::kWrite, FaultOp::kSync, FaultOp::kLock}) {
    const int total = clean_count(op);
    ASSERT_GT(total, 0) << test_support::fault_op_name(op);
    std::vector<int> codes;
    if (op == FaultOp::kWrite) codes = {SQLITE_IOERR_WRITE, SQLITE_FULL};
    if (op == FaultOp::kSync) codes = {SQLITE_IOERR_FSYNC, SQLITE_FULL};
    if (op == FaultOp::kLock) codes = {SQLITE_IOERR_LOCK};
    for (int code : codes) {
      Tally& t = tallies[std::string(test_support::fault_op_name(op)) + (code == SQLITE_FULL ? " (disk full)" : " (I/O error)")];
      for (int at = 1; at <= total; ++at) run(FaultPlan{op, at, code, false}, t);
    }
  }
  for (const auto& [kind, t] : tallies) {
    std::printf("save faults: %-24s %4d runs, %4d faults injected (%d while closing), %d lost beats\n", kind.c_str(),
                t.runs, t.fired, t.at_close, t.lost);
    EXPECT_EQ(t.lost, 0) << kind;
    EXPECT_GT(t.fired, 0) << kind;
  }
}

TEST_F(SaveFaults, APowerCutLosesNoCompletedBeat) {
  std::map<std::string, Tally> tallies;
  for (FaultOp op : {FaultOp::kWrite, FaultOp::kSync}) {
    const int total = clean_count(op);
    Tally& t = tallies[std::string("power cut at a ") + test_support::fault_op_name(op)];
    for (int at = 1; at <= total; ++at) run(FaultPlan{op, at, SQLITE_IOERR, true}, t);
  }
  for (const auto& [kind, t] : tallies) {
    std::printf("save faults: %-24s %4d runs, %4d faults injected (%d while closing), %d unsynced writes dropped, "
                "%d lost beats\n", kind.c_str(), t.runs, t.fired, t.at_close, t.dropped, t.lost);
    EXPECT_GT(t.dropped, 0) << kind << ": the power cuts dropped nothing";
    EXPECT_EQ(t.lost, 0) << kind;
    EXPECT_GT(t.fired, 0) << kind;
  }
}

}  // namespace
}  // namespace fabula::engine
