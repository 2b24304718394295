// SaveStore on SQLite: WAL journal, synchronous=FULL, one transaction per completed beat, so kill -9 loses no finished beat.
#include "engine/save_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/json_view.h"
#include "engine/scene_state.h"

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
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  prompt TEXT,
  sampling TEXT,
  model TEXT,
  profile TEXT
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
  int step() { return step_rc_ = sqlite3_step(s_); }
  // After step() returned no row: whether the rows ran out (not an error).
  bool finished() const { return step_rc_ == SQLITE_DONE; }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, sqlite3_column_bytes(s_, c)) : std::string();
  }
  Error error(const char* what) const { return make_error(ErrorCode::kIo, "save: {}: {}", what, sqlite3_errmsg(db_)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
  int step_rc_ = SQLITE_OK;
};

// A transaction that nests: the outermost is BEGIN IMMEDIATE ... COMMIT, an inner one a savepoint. Dropped
// without commit() it rolls back, so an error anywhere inside leaves the store as it was.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db), outer_(sqlite3_get_autocommit(db) != 0) {}
  ~Transaction() {
    if (open_) (void)run(outer_ ? "ROLLBACK" : "ROLLBACK TO nested; RELEASE nested");
  }
  Status begin() {
    FABULA_TRY(run(outer_ ? "BEGIN IMMEDIATE" : "SAVEPOINT nested"));
    open_ = true;
    return ok_status();
  }
  Status commit() {
    FABULA_TRY(run(outer_ ? "COMMIT" : "RELEASE nested"));
    open_ = false;
    return ok_status();
  }

 private:
  Status run(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      // COMMIT may have failed after SQLite rolled the transaction back itself: nothing is left to undo then.
      if (sqlite3_get_autocommit(db_) && outer_) open_ = false;
      return make_error(ErrorCode::kIo, "save: {}: {}", sql, msg);
    }
    return ok_status();
  }
  sqlite3* db_;
  bool outer_;
  bool open_ = false;
};

json parse_or_null(const std::string& text) {
  auto j = parse_json(text, "save");
  return j ? std::move(*j) : json();
}

constexpr const char* kBeatColumns =
    "b.id, b.session_id, b.parent_id, b.player_choice, b.choice_index, b.text, b.events, b.ended, b.fallback, "
    "b.seed, b.attempts, b.created_at, s.state, b.prompt, b.sampling, b.model, b.profile";

// Columns schema 2 added to beats (NULL in beats written before).
constexpr const char* kRequestColumns[] = {"prompt", "sampling", "model", "profile"};

// Shortest decimal that reads back as the same float, so 1.1f is saved as 1.1, not 1.100000023841858.
double float_for_json(float v) { return std::stod(fmt::format("{}", v)); }

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
  FABULA_TRY(store->migrate());
  return store;
}

Status SaveStore::migrate() {
  int64_t version = 0;
  {
    Stmt v(db_, "PRAGMA user_version");
    if (!v.ok() || v.step() != SQLITE_ROW) return v.error("read schema version");
    version = v.i64(0);
  }
  if (version > kSaveSchemaVersion)
    return make_error(ErrorCode::kUnsupported,
                      "save: the file has schema version {}, written by a newer fabula; this one reads up to {}",
                      version, kSaveSchemaVersion);
  if (version == kSaveSchemaVersion) return ok_status();
  std::set<std::string> have;
  {
    Stmt cols(db_, "PRAGMA table_info(beats)");
    if (!cols.ok()) return cols.error("read beats columns");
    while (cols.step() == SQLITE_ROW) have.insert(cols.text(1));
  }
  Transaction tx(db_);
  FABULA_TRY(tx.begin());
  for (const char* column : kRequestColumns) {
    if (have.count(column)) continue;
    opened_version_ = 1;  // a file from before prompts were recorded (a new file has every column already)
    FABULA_TRY(exec(fmt::format("ALTER TABLE beats ADD COLUMN {} TEXT", column).c_str()));  // tx rolls back
  }
  FABULA_TRY(exec(fmt::format("PRAGMA user_version = {}", kSaveSchemaVersion).c_str()));
  return tx.commit();
}

json sampling_to_json(const Sampling& s) {
  return json{{"temperature", float_for_json(s.temperature)},
              {"top_p", float_for_json(s.top_p)},
              {"top_k", s.top_k},
              {"min_p", float_for_json(s.min_p)},
              {"repeat_penalty", float_for_json(s.repeat_penalty)},
              {"max_tokens", s.max_tokens},
              {"stop", s.stop},
              {"constrained", s.constrained},
              {"banned_phrases", s.banned_phrases ? s.banned_phrases->size() : 0}};
}

namespace {

json messages_to_json(const std::vector<ChatMessage>& messages) {
  json out = json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

// kParse naming the problem for anything but an array of {"role": string, "content": string}.
Result<std::vector<ChatMessage>> messages_from_json(const json& j) {
  JsonView v(j, "messages");
  if (!v.is_array()) return v.type_error("an array of {\"role\", \"content\"}");
  FABULA_ASSIGN(auto items, v.elements());
  std::vector<ChatMessage> out;
  for (const JsonView& m : items) {
    auto role = m.string("role");
    auto content = m.string("content");
    if (!role || !content) return m.error(ErrorCode::kParse, "expected {{\"role\": string, \"content\": string}}");
    out.push_back({std::move(*role), std::move(*content)});
  }
  return out;
}

}  // namespace

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
                                          const std::string& narrator, const json& initial_state,
                                          const std::string& created_at) {
  Stmt st(db_,
          "INSERT INTO sessions(story, title, narrator, initial_state, created_at) "
          "VALUES (?, ?, ?, ?, COALESCE(NULLIF(?, ''), strftime('%Y-%m-%dT%H:%M:%fZ','now')))");
  st.bind(1, story).bind(2, title).bind(3, narrator).bind(4, dump_json(initial_state)).bind(5, created_at);
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
  if (st.step() != SQLITE_ROW) {
    if (!st.finished()) return st.error("read session");
    return make_error(ErrorCode::kNotFound, "save: no session {}", id);
  }
  return read_session(st);
}

Result<std::vector<SessionInfo>> SaveStore::sessions() {
  Stmt st(db_, FABULA_SESSION_SELECT "ORDER BY updated_at DESC, id DESC");
  if (!st.ok()) return st.error("list sessions");
  std::vector<SessionInfo> out;
  while (st.step() == SQLITE_ROW) out.push_back(read_session(st));
  if (!st.finished()) return st.error("list sessions");
  return out;
}

Result<std::optional<SessionInfo>> SaveStore::latest_session() {
  FABULA_ASSIGN(auto all, sessions());
  if (all.empty()) return std::optional<SessionInfo>();
  return std::optional<SessionInfo>(all.front());
}

Result<int64_t> SaveStore::add_beat(const BeatRecord& b) {
  Transaction tx(db_);
  FABULA_TRY(tx.begin());
  Stmt st(db_,
          "INSERT INTO beats(session_id, parent_id, player_choice, choice_index, text, events, ended, fallback, "
          "seed, attempts, created_at, prompt, sampling, model, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "COALESCE(NULLIF(?, ''), strftime('%Y-%m-%dT%H:%M:%fZ','now')), ?, ?, ?, ?)");
  st.bind(1, b.session_id);
  if (b.parent_id) st.bind(2, b.parent_id); else st.bind_null(2);
  st.bind(3, b.player_choice).bind(4, int64_t{b.choice_index}).bind(5, b.text).bind(6, dump_json(to_json(b.events)));
  st.bind(7, int64_t{b.ended}).bind(8, int64_t{b.fallback}).bind(9, static_cast<int64_t>(b.seed));
  st.bind(10, int64_t{b.attempts}).bind(11, b.created_at);
  // A beat without a recorded request (an import of an old export) keeps NULLs, as a migrated file does.
  if (b.has_request()) st.bind(12, dump_json(messages_to_json(b.prompt))); else st.bind_null(12);
  if (!b.sampling.is_null()) st.bind(13, dump_json(b.sampling)); else st.bind_null(13);
  if (!b.model.empty()) st.bind(14, b.model); else st.bind_null(14);
  if (!b.profile.empty()) st.bind(15, b.profile); else st.bind_null(15);
  if (!st.ok() || st.step() != SQLITE_DONE) return st.error("insert beat");  // tx rolls back
  int64_t id = sqlite3_last_insert_rowid(db_);
  for (size_t i = 0; i < b.choices.size(); ++i) {
    Stmt c(db_, "INSERT INTO choices(beat_id, idx, text) VALUES (?, ?, ?)");
    c.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, b.choices[i]);
    if (!c.ok() || c.step() != SQLITE_DONE) return c.error("insert choice");  // tx rolls back
  }
  Stmt snap(db_, "INSERT INTO snapshots(beat_id, state) VALUES (?, ?)");
  snap.bind(1, id).bind(2, dump_json(b.state));
  if (!snap.ok() || snap.step() != SQLITE_DONE) return snap.error("insert snapshot");  // tx rolls back
  Stmt head(db_, "UPDATE sessions SET head_beat = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?");
  head.bind(1, id).bind(2, b.session_id);
  if (!head.ok() || head.step() != SQLITE_DONE) return head.error("move head");  // tx rolls back
  FABULA_TRY(tx.commit());
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
  if (with_text && !st.is_null(13)) {
    auto prompt = messages_from_json(parse_or_null(st.text(13)));
    if (!prompt) return make_error(ErrorCode::kCorrupt, "save: beat {}: prompt: {}", b.id, prompt.error().message);
    b.prompt = std::move(*prompt);
  }
  if (!st.is_null(14)) b.sampling = parse_or_null(st.text(14));
  b.model = st.text(15);
  b.profile = st.text(16);
  Stmt c(db_, "SELECT text FROM choices WHERE beat_id = ? ORDER BY idx");
  c.bind(1, b.id);
  while (c.step() == SQLITE_ROW) b.choices.push_back(c.text(0));
  if (!c.finished()) return c.error("read choices");
  return b;
}

Result<BeatRecord> SaveStore::beat(int64_t id) {
  std::string sql = std::string("SELECT ") + kBeatColumns +
                    " FROM beats b LEFT JOIN snapshots s ON s.beat_id = b.id WHERE b.id = ?";
  Stmt st(db_, sql.c_str());
  st.bind(1, id);
  if (!st.ok()) return st.error("read beat");
  if (st.step() != SQLITE_ROW) {
    if (!st.finished()) return st.error("read beat");
    return make_error(ErrorCode::kNotFound, "save: no beat {}", id);
  }
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
  if (!st.finished()) return st.error("list beats");
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
  if (!st.finished()) return st.error("list slots");
  return out;
}

// Beats are numbered 1..N in the order they were written, so an export does not depend on the store's row ids
// and export -> import -> export gives the same bytes.
Result<json> SaveStore::export_session(int64_t session_id) {
  FABULA_ASSIGN(SessionInfo s, session(session_id));
  FABULA_ASSIGN(auto list, beats(session_id));
  std::map<int64_t, int64_t> local;  // store id -> export id
  for (const auto& b : list) local.emplace(b.id, static_cast<int64_t>(local.size()) + 1);
  auto local_id = [&](int64_t id) -> int64_t {
    auto it = local.find(id);
    return it == local.end() ? 0 : it->second;
  };
  json beats_json = json::array();
  for (const auto& shallow : list) {
    FABULA_ASSIGN(BeatRecord b, beat(shallow.id));
    if (b.parent_id && !local.count(b.parent_id))
      return make_error(ErrorCode::kCorrupt, "save: beat {} has parent {} outside its session", b.id, b.parent_id);
    beats_json.push_back({{"id", local_id(b.id)}, {"parent_id", local_id(b.parent_id)},
                          {"player_choice", b.player_choice}, {"choice_index", b.choice_index}, {"text", b.text},
                          {"events", to_json(b.events)}, {"state", b.state}, {"choices", b.choices},
                          {"ended", b.ended}, {"fallback", b.fallback}, {"seed", b.seed}, {"attempts", b.attempts},
                          {"created_at", b.created_at}});
    if (b.has_request()) beats_json.back()["prompt"] = messages_to_json(b.prompt);
    if (!b.sampling.is_null()) beats_json.back()["sampling"] = b.sampling;
    if (!b.model.empty()) beats_json.back()["model"] = b.model;
    if (!b.profile.empty()) beats_json.back()["profile"] = b.profile;
  }
  FABULA_ASSIGN(auto sl, slots(session_id));
  std::sort(sl.begin(), sl.end());
  json slots_json = json::array();
  for (const auto& [name, id] : sl)
    if (local.count(id)) slots_json.push_back({{"name", name}, {"beat_id", local_id(id)}});
  int64_t head = local.count(s.head_beat) ? local_id(s.head_beat) : 0;
  return json{{"format", "fabula-save/1"},
              {"session",
               {{"story", s.story}, {"title", s.title}, {"narrator", s.narrator}, {"head_beat", head},
                {"initial_state", s.initial_state}, {"created_at", s.created_at}}},
              {"beats", beats_json},
              {"slots", slots_json}};
}

namespace {

struct ImportedBeat {
  int64_t id = 0;  // in the document
  BeatRecord record;  // parent_id in document ids
};

Status check_state(const JsonView& v) {
  auto state = SceneState::from_json(v.raw());
  if (!state) return v.error(ErrorCode::kParse, "not a scene state: {}", state.error().message);
  return ok_status();
}

Result<ImportedBeat> read_beat(const JsonView& b) {
  ImportedBeat out;
  BeatRecord& r = out.record;
  FABULA_ASSIGN(out.id, b.integer("id", 1));
  FABULA_ASSIGN(r.parent_id, b.integer_or("parent_id", 0, 0));
  FABULA_ASSIGN(r.player_choice, b.string_or("player_choice", ""));
  FABULA_ASSIGN(int64_t choice_index, b.integer_or("choice_index", -1, -1, 1 << 20));
  r.choice_index = static_cast<int>(choice_index);
  FABULA_ASSIGN(r.text, b.string_or("text", ""));
  if (auto events = b.find("events")) {
    auto parsed = scene_events_from_json(events->raw());
    if (!parsed) return events->error(ErrorCode::kParse, "{}", parsed.error().message);
    r.events = std::move(*parsed);
  }
  FABULA_ASSIGN(JsonView state, b.field("state"));
  FABULA_TRY(check_state(state));
  r.state = state.raw();
  FABULA_ASSIGN(r.choices, b.strings_or_empty("choices"));
  FABULA_ASSIGN(r.ended, b.boolean_or("ended", false));
  FABULA_ASSIGN(r.fallback, b.boolean_or("fallback", false));
  FABULA_ASSIGN(r.seed, b.unsigned_or("seed", 0));
  FABULA_ASSIGN(int64_t attempts, b.integer_or("attempts", 1, 1, 1 << 20));
  r.attempts = static_cast<int>(attempts);
  FABULA_ASSIGN(r.created_at, b.string_or("created_at", ""));
  if (auto prompt = b.find("prompt")) {
    auto messages = messages_from_json(prompt->raw());
    if (!messages) return prompt->error(ErrorCode::kParse, "{}", messages.error().message);
    r.prompt = std::move(*messages);
  }
  if (auto sampling = b.find("sampling")) {
    FABULA_TRY(sampling->expect_object());
    r.sampling = sampling->raw();
  }
  FABULA_ASSIGN(r.model, b.string_or("model", ""));
  FABULA_ASSIGN(r.profile, b.string_or("profile", ""));
  return out;
}

}  // namespace

Result<int64_t> SaveStore::import_session(const json& doc) {
  // Everything is read and checked before anything is written; the writes are one transaction.
  JsonView root(doc, "import");
  FABULA_ASSIGN(std::string format, root.string("format"));
  if (format != "fabula-save/1")
    return root.error(ErrorCode::kUnsupported, "format \"{}\" is not fabula-save/1", format);
  FABULA_ASSIGN(JsonView s, root.field("session"));
  FABULA_ASSIGN(std::string story, s.string("story"));
  FABULA_ASSIGN(std::string title, s.string_or("title", ""));
  FABULA_ASSIGN(std::string narrator, s.string_or("narrator", ""));
  FABULA_ASSIGN(std::string created_at, s.string_or("created_at", ""));
  FABULA_ASSIGN(JsonView initial, s.field("initial_state"));
  FABULA_TRY(check_state(initial));
  FABULA_ASSIGN(int64_t head, s.integer_or("head_beat", 0, 0));

  FABULA_ASSIGN(JsonView beats_view, root.field("beats"));
  FABULA_ASSIGN(auto beat_views, beats_view.elements());
  std::vector<ImportedBeat> beats;
  for (const JsonView& b : beat_views) {
    FABULA_ASSIGN(ImportedBeat ib, read_beat(b));
    beats.push_back(std::move(ib));
  }
  std::stable_sort(beats.begin(), beats.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (size_t i = 0; i < beats.size(); ++i) {
    if (i && beats[i].id == beats[i - 1].id)
      return beats_view.error(ErrorCode::kParse, "two beats have id {}", beats[i].id);
    int64_t parent = beats[i].record.parent_id;
    bool earlier = parent == 0;
    for (size_t k = 0; k < i && !earlier; ++k) earlier = beats[k].id == parent;
    if (!earlier)
      return beats_view.error(ErrorCode::kParse, "beat {}: parent_id {} is not an earlier beat", beats[i].id, parent);
  }
  auto known = [&](int64_t id) {
    return std::any_of(beats.begin(), beats.end(), [&](const auto& b) { return b.id == id; });
  };
  if (head && !known(head)) return s.error(ErrorCode::kParse, "head_beat {} is not one of the beats", head);
  std::vector<std::pair<std::string, int64_t>> slot_list;
  if (auto slots_view = root.find("slots")) {
    FABULA_ASSIGN(auto items, slots_view->elements());
    for (const JsonView& sl : items) {
      FABULA_ASSIGN(std::string name, sl.string("name"));
      FABULA_ASSIGN(int64_t beat_id, sl.integer("beat_id"));
      if (!known(beat_id)) return sl.error(ErrorCode::kParse, "beat_id {} is not one of the beats", beat_id);
      slot_list.emplace_back(std::move(name), beat_id);
    }
  }

  Transaction tx(db_);
  FABULA_TRY(tx.begin());
  FABULA_ASSIGN(int64_t sid, create_session(story, title, narrator, initial.raw(), created_at));
  std::map<int64_t, int64_t> remap;  // document id -> new id
  for (auto& b : beats) {
    b.record.session_id = sid;
    if (b.record.parent_id) b.record.parent_id = remap[b.record.parent_id];
    FABULA_ASSIGN(int64_t nid, add_beat(b.record));
    remap[b.id] = nid;
  }
  if (head) {
    FABULA_TRY(set_head(sid, remap[head]));
  } else {
    Stmt st(db_, "UPDATE sessions SET head_beat = NULL WHERE id = ?");
    st.bind(1, sid);
    if (!st.ok() || st.step() != SQLITE_DONE) return st.error("set head");
  }
  for (const auto& [name, beat_id] : slot_list) FABULA_TRY(save_slot(sid, name, remap[beat_id]));
  FABULA_TRY(tx.commit());
  return sid;
}

}  // namespace fabula::engine
