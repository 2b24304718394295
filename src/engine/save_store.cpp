// SaveStore on SQLite: WAL journal, synchronous=FULL, one transaction per completed beat, so kill -9 loses no finished beat.
#include "engine/save_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>

namespace fabula::engine {
namespace {

using nlohmann::json;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY,
  story TEXT NOT NULL,
  title TEXT NOT NULL,
  narrator TEXT NOT NULL DEFAULT '',
  head_beat INTEGER,
  initial_state TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE IF NOT EXISTS beats (
  id INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  parent_id INTEGER REFERENCES beats(id),
  player_choice TEXT NOT NULL,
  choice_index INTEGER NOT NULL,
  text TEXT NOT NULL,
  events TEXT NOT NULL,
  ended INTEGER NOT NULL,
  fallback INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX IF NOT EXISTS beats_by_parent ON beats(session_id, parent_id);
CREATE TABLE IF NOT EXISTS choices (
  beat_id INTEGER NOT NULL REFERENCES beats(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (beat_id, idx)
);
CREATE TABLE IF NOT EXISTS snapshots (
  beat_id INTEGER PRIMARY KEY REFERENCES beats(id) ON DELETE CASCADE,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  beat_id INTEGER NOT NULL REFERENCES beats(id),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (session_id, name)
);
)sql";

// RAII prepared statement with positional binds.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_null(int i) { sqlite3_bind_null(s_, i); return *this; }
  int step() { return sqlite3_step(s_); }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, sqlite3_column_bytes(s_, c)) : std::string();
  }
  sqlite3_stmt* raw() { return s_; }
  Error error(const char* what) const { return make_error(ErrorCode::kIo, "save: {}: {}", what, sqlite3_errmsg(db_)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

json parse_or_null(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json() : j;
}

constexpr const char* kBeatColumns =
    "b.id, b.session_id, b.parent_id, b.player_choice, b.choice_index, b.text, b.events, b.ended, b.fallback, "
    "b.seed, b.attempts, b.created_at, s.state";

}  // namespace

Result<std::unique_ptr<SaveStore>> SaveStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return make_error(ErrorCode::kIo, "save {}: cannot open: {}", path, msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SaveStore> store(new SaveStore(db));
  // FULL sync in WAL mode makes each commit durable, not just atomic: a completed beat survives power loss too.
  FABULA_TRY(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  FABULA_TRY(store->exec(kSchema));
  return store;
}

SaveStore::~SaveStore() { sqlite3_close(db_); }

Status SaveStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return make_error(ErrorCode::kIo, "save: {}", msg);
  }
  return ok_status();
}

Result<int64_t> SaveStore::create_session(const std::string& story, const std::string& title,
                                          const std::string& narrator, const json& initial_state) {
  Stmt st(db_, "INSERT INTO sessions(story, title, narrator, initial_state) VALUES (?, ?, ?, ?)");
  st.bind(1, story).bind(2, title).bind(3, narrator).bind(4, initial_state.dump());
  if (!st.ok() || st.step() != SQLITE_DONE) return st.error("create session");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

static SessionInfo read_session(Stmt& st) {
  SessionInfo s;
  s.id = st.i64(0);
  s.story = st.text(1);
  s.title = st.text(2);
  s.narrator = st.text(3);
  s.head_beat = st.is_null(4) ? 0 : st.i64(4);
  s.initial_state = parse_or_null(st.text(5));
  s.created_at = st.text(6);
  s.updated_at = st.text(7);
  s.beat_count = st.i64(8);
  return s;
}

#define FABULA_SESSION_SELECT                                                                              \
  "SELECT id, story, title, narrator, head_beat, initial_state, created_at, updated_at, "                 \
  "(SELECT COUNT(*) FROM beats WHERE session_id = sessions.id) FROM sessions "

Result<SessionInfo> SaveStore::session(int64_t id) {
  Stmt st(db_, FABULA_SESSION_SELECT "WHERE id = ?");
  st.bind(1, id);
  if (!st.ok()) return st.error("read session");
  if (st.step() != SQLITE_ROW) return make_error(ErrorCode::kNotFound, "save: no session {}", id);
  return read_session(st);
}

Result<std::vector<SessionInfo>> SaveStore::sessions() {
  Stmt st(db_, FABULA_SESSION_SELECT "ORDER BY updated_at DESC, id DESC");
  if (!st.ok()) return st.error("list sessions");
  std::vector<SessionInfo> out;
  while (st.step() == SQLITE_ROW) out.push_back(read_session(st));
  return out;
}

Result<std::optional<SessionInfo>> SaveStore::latest_session() {
  FABULA_ASSIGN(auto all, sessions());
  if (all.empty()) return std::optional<SessionInfo>();
  return std::optional<SessionInfo>(all.front());
}

Result<int64_t> SaveStore::add_beat(const BeatRecord& b) {
  FABULA_TRY(exec("BEGIN IMMEDIATE"));
  auto fail = [&](Error e) -> Result<int64_t> {
    (void)exec("ROLLBACK");
    return e;
  };
  Stmt st(db_,
          "INSERT INTO beats(session_id, parent_id, player_choice, choice_index, text, events, ended, fallback, "
          "seed, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind(1, b.session_id);
  if (b.parent_id) st.bind(2, b.parent_id); else st.bind_null(2);
  st.bind(3, b.player_choice).bind(4, int64_t{b.choice_index}).bind(5, b.text).bind(6, to_json(b.events).dump());
  st.bind(7, int64_t{b.ended}).bind(8, int64_t{b.fallback}).bind(9, static_cast<int64_t>(b.seed));
  st.bind(10, int64_t{b.attempts});
  if (!st.ok() || st.step() != SQLITE_DONE) return fail(st.error("insert beat"));
  int64_t id = sqlite3_last_insert_rowid(db_);
  for (size_t i = 0; i < b.choices.size(); ++i) {
    Stmt c(db_, "INSERT INTO choices(beat_id, idx, text) VALUES (?, ?, ?)");
    c.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, b.choices[i]);
    if (!c.ok() || c.step() != SQLITE_DONE) return fail(c.error("insert choice"));
  }
  Stmt snap(db_, "INSERT INTO snapshots(beat_id, state) VALUES (?, ?)");
  snap.bind(1, id).bind(2, b.state.dump());
  if (!snap.ok() || snap.step() != SQLITE_DONE) return fail(snap.error("insert snapshot"));
  Stmt head(db_, "UPDATE sessions SET head_beat = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?");
  head.bind(1, id).bind(2, b.session_id);
  if (!head.ok() || head.step() != SQLITE_DONE) return fail(head.error("move head"));
  FABULA_TRY(exec("COMMIT"));
  return id;
}

Result<BeatRecord> SaveStore::read_beat_row(void* raw, bool with_text) {
  Stmt& st = *static_cast<Stmt*>(raw);
  BeatRecord b;
  b.id = st.i64(0);
  b.session_id = st.i64(1);
  b.parent_id = st.is_null(2) ? 0 : st.i64(2);
  b.player_choice = st.text(3);
  b.choice_index = static_cast<int>(st.i64(4));
  if (with_text) {
    b.text = st.text(5);
    auto events = scene_events_from_json(parse_or_null(st.text(6)));
    if (!events) return make_error(ErrorCode::kCorrupt, "save: beat {}: {}", b.id, events.error().message);
    b.events = std::move(*events);
  }
  b.ended = st.i64(7) != 0;
  b.fallback = st.i64(8) != 0;
  b.seed = static_cast<uint64_t>(st.i64(9));
  b.attempts = static_cast<int>(st.i64(10));
  b.created_at = st.text(11);
  b.state = parse_or_null(st.text(12));
  Stmt c(db_, "SELECT text FROM choices WHERE beat_id = ? ORDER BY idx");
  c.bind(1, b.id);
  while (c.step() == SQLITE_ROW) b.choices.push_back(c.text(0));
  return b;
}

Result<BeatRecord> SaveStore::beat(int64_t id) {
  std::string sql = std::string("SELECT ") + kBeatColumns +
                    " FROM beats b LEFT JOIN snapshots s ON s.beat_id = b.id WHERE b.id = ?";
  Stmt st(db_, sql.c_str());
  st.bind(1, id);
  if (!st.ok()) return st.error("read beat");
  if (st.step() != SQLITE_ROW) return make_error(ErrorCode::kNotFound, "save: no beat {}", id);
  return read_beat_row(&st, true);
}

Result<std::vector<BeatRecord>> SaveStore::path_to(int64_t beat_id) {
  std::vector<BeatRecord> out;
  for (int64_t id = beat_id; id != 0;) {
    FABULA_ASSIGN(BeatRecord b, beat(id));
    id = b.parent_id;
    out.push_back(std::move(b));
    if (out.size() > 1000000) return make_error(ErrorCode::kCorrupt, "save: beat {} has a parent cycle", beat_id);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<BeatRecord>> SaveStore::beats(int64_t session_id) {
  std::string sql = std::string("SELECT ") + kBeatColumns +
                    " FROM beats b LEFT JOIN snapshots s ON s.beat_id = b.id WHERE b.session_id = ? ORDER BY b.id";
  Stmt st(db_, sql.c_str());
  st.bind(1, session_id);
  if (!st.ok()) return st.error("list beats");
  std::vector<BeatRecord> out;
  while (st.step() == SQLITE_ROW) {
    FABULA_ASSIGN(BeatRecord b, read_beat_row(&st, false));
    out.push_back(std::move(b));
  }
  return out;
}

Result<std::vector<BeatRecord>> SaveStore::siblings(int64_t beat_id) {
  FABULA_ASSIGN(BeatRecord me, beat(beat_id));
  FABULA_ASSIGN(auto all, beats(me.session_id));
  std::vector<BeatRecord> out;
  for (auto& b : all)
    if (b.parent_id == me.parent_id) out.push_back(std::move(b));
  return out;
}

Status SaveStore::set_head(int64_t session_id, int64_t beat_id) {
  FABULA_ASSIGN(BeatRecord b, beat(beat_id));
  if (b.session_id != session_id)
    return make_error(ErrorCode::kInvalidArgument, "save: beat {} belongs to session {}, not {}", beat_id,
                      b.session_id, session_id);
  Stmt st(db_, "UPDATE sessions SET head_beat = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?");
  st.bind(1, beat_id).bind(2, session_id);
  if (!st.ok() || st.step() != SQLITE_DONE) return st.error("set head");
  return ok_status();
}

Status SaveStore::save_slot(int64_t session_id, const std::string& name, int64_t beat_id) {
  Stmt st(db_, "INSERT OR REPLACE INTO slots(session_id, name, beat_id) VALUES (?, ?, ?)");
  st.bind(1, session_id).bind(2, name).bind(3, beat_id);
  if (!st.ok() || st.step() != SQLITE_DONE) return st.error("save slot");
  return ok_status();
}

Result<std::vector<std::pair<std::string, int64_t>>> SaveStore::slots(int64_t session_id) {
  Stmt st(db_, "SELECT name, beat_id FROM slots WHERE session_id = ? ORDER BY created_at, name");
  st.bind(1, session_id);
  if (!st.ok()) return st.error("list slots");
  std::vector<std::pair<std::string, int64_t>> out;
  while (st.step() == SQLITE_ROW) out.emplace_back(st.text(0), st.i64(1));
  return out;
}

Result<json> SaveStore::export_session(int64_t session_id) {
  FABULA_ASSIGN(SessionInfo s, session(session_id));
  FABULA_ASSIGN(auto list, beats(session_id));
  json beats_json = json::array();
  for (const auto& shallow : list) {
    FABULA_ASSIGN(BeatRecord b, beat(shallow.id));
    beats_json.push_back({{"id", b.id}, {"parent_id", b.parent_id}, {"player_choice", b.player_choice},
                          {"choice_index", b.choice_index}, {"text", b.text}, {"events", to_json(b.events)},
                          {"state", b.state}, {"choices", b.choices}, {"ended", b.ended},
                          {"fallback", b.fallback}, {"seed", b.seed}, {"attempts", b.attempts},
                          {"created_at", b.created_at}});
  }
  FABULA_ASSIGN(auto sl, slots(session_id));
  json slots_json = json::array();
  for (const auto& [name, id] : sl) slots_json.push_back({{"name", name}, {"beat_id", id}});
  return json{{"format", "fabula-save/1"},
              {"session",
               {{"story", s.story}, {"title", s.title}, {"narrator", s.narrator}, {"head_beat", s.head_beat},
                {"initial_state", s.initial_state}, {"created_at", s.created_at}}},
              {"beats", beats_json},
              {"slots", slots_json}};
}

Result<int64_t> SaveStore::import_session(const json& doc) {
  if (!doc.is_object() || doc.value("format", "") != "fabula-save/1" || !doc.contains("session") ||
      !doc["session"].is_object() || !doc.contains("beats") || !doc["beats"].is_array())
    return make_error(ErrorCode::kParse, "import: expected {{\"format\": \"fabula-save/1\", \"session\", \"beats\"}}");
  const json& s = doc["session"];
  if (!s.contains("story") || !s["story"].is_string())
    return make_error(ErrorCode::kParse, "import: session.story must be a string");
  std::map<int64_t, int64_t> remap;  // old id -> new id; parents precede children because ids grow
  std::vector<json> sorted(doc["beats"].begin(), doc["beats"].end());
  // Checked before anything is written, so a bad file leaves no half-imported session.
  for (size_t i = 0; i < sorted.size(); ++i) {
    const json& b = sorted[i];
    if (!b.is_object() || !b.contains("id") || !b["id"].is_number_integer())
      return make_error(ErrorCode::kParse, "import: beats[{}]: missing integer id", i);
    if (!b.contains("events")) continue;
    auto parsed = scene_events_from_json(b["events"]);
    if (!parsed) return make_error(ErrorCode::kParse, "import: beats[{}]: {}", i, parsed.error().message);
    sorted[i]["events"] = to_json(*parsed);
  }
  std::sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) { return a["id"] < b["id"]; });
  FABULA_ASSIGN(int64_t sid, create_session(s["story"].get<std::string>(), s.value("title", ""),
                                            s.value("narrator", ""), s.value("initial_state", json::object())));
  for (size_t i = 0; i < sorted.size(); ++i) {
    const json& b = sorted[i];
    BeatRecord r;
    r.session_id = sid;
    int64_t parent = b.value("parent_id", int64_t{0});
    if (parent) {
      auto it = remap.find(parent);
      if (it == remap.end())
        return make_error(ErrorCode::kParse, "import: beat {}: parent {} is not an earlier beat", b["id"].get<int64_t>(),
                          parent);
      r.parent_id = it->second;
    }
    r.player_choice = b.value("player_choice", "");
    r.choice_index = b.value("choice_index", -1);
    r.text = b.value("text", "");
    if (b.contains("events")) r.events = *scene_events_from_json(b["events"]);  // checked above
    r.state = b.value("state", json::object());
    if (b.contains("choices") && b["choices"].is_array())
      for (const auto& c : b["choices"])
        if (c.is_string()) r.choices.push_back(c.get<std::string>());
    r.ended = b.value("ended", false);
    r.fallback = b.value("fallback", false);
    r.seed = b.value("seed", uint64_t{0});
    r.attempts = b.value("attempts", 1);
    FABULA_ASSIGN(int64_t nid, add_beat(r));
    remap[b["id"].get<int64_t>()] = nid;
  }
  int64_t head = s.value("head_beat", int64_t{0});
  if (head && remap.count(head)) FABULA_TRY(set_head(sid, remap[head]));
  if (doc.contains("slots") && doc["slots"].is_array())
    for (const auto& sl : doc["slots"])
      if (sl.is_object() && sl.contains("beat_id") && remap.count(sl.value("beat_id", int64_t{0})))
        FABULA_TRY(save_slot(sid, sl.value("name", "slot"), remap[sl["beat_id"].get<int64_t>()]));
  return sid;
}

}  // namespace fabula::engine
