// Game: background beat generation, committed beat by beat, with an in-memory event log for live viewers (SSE).
#include "engine/game.h"

#include <chrono>

#include <fmt/format.h>

#include "base/json_view.h"
#include "base/log.h"

namespace fabula::engine {

using nlohmann::json;

namespace {

BeatSummary summary_of(const BeatRecord& b, SceneState state) {
  return BeatSummary{b.id,      b.parent_id, b.player_choice, b.events, std::move(state),
                     b.choices, b.ended,     b.fallback,      b.seed,   b.attempts};
}

Result<BeatSummary> summary_of(const BeatRecord& b) {
  auto state = SceneState::from_json(b.state);
  if (!state) return make_error(ErrorCode::kCorrupt, "save: beat {}: {}", b.id, state.error().message);
  return summary_of(b, std::move(*state));
}

// The place of a saved scene state ("" when it names none).
std::string place_of(const json& state) {
  auto place = JsonView(state, "save").string_or("place", "");
  return place ? *place : std::string();
}

constexpr size_t kMaxEvents = 4096;  // live log kept for late SSE subscribers

constexpr const char* kBusy = "a beat is being written; try again when it is done";
Error busy() { return Error{ErrorCode::kInvalidArgument, kBusy}; }

}  // namespace

Result<BeatContext> beat_context(SaveStore& store, const Story& story, const SessionInfo& session, int64_t parent_id,
                                 const std::string& player_choice) {
  BeatContext out;
  if (!parent_id) {
    FABULA_ASSIGN(out.scene, SceneState::from_json(session.initial_state));
    return out;
  }
  FABULA_ASSIGN(auto path, store.path_to(parent_id));
  FABULA_ASSIGN(SceneState last, SceneState::from_json(path.back().state));
  for (const auto& b : path) out.history.push_back({place_of(b.state), b.player_choice, b.events});
  out.scene = advance_scene(story, last, player_choice);
  return out;
}

Game::Game(const Story& story, Narrator& narrator, SaveStore& store, GameOptions options)
    : story_(story), narrator_(narrator), store_(store), options_(options), engine_(story, narrator, options.engine) {}

bool Game::refused_while_writing(const Error& e) { return e.code == ErrorCode::kInvalidArgument && e.message == kBusy; }

Game::~Game() {
  cancel_ = true;
  join_worker();
}

void Game::join_worker() {
  if (worker_.joinable()) worker_.join();
}

Status Game::open() {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.resume) {
    FABULA_ASSIGN(auto all, store_.sessions());
    for (const auto& s : all) {
      if (s.story == story_.id) {
        session_id_ = s.id;
        FABULA_LOG_INFO("resumed session {} ({} beats, current beat {})", s.id, s.beat_count, s.head_beat);
        return ok_status();
      }
    }
  }
  FABULA_ASSIGN(session_id_, store_.create_session(story_.id, story_.title, narrator_.describe(),
                                                   opening_scene(story_).to_json()));
  return ok_status();
}

Status Game::new_session() {
  if (writing_) return busy();
  join_worker();
  std::lock_guard<std::mutex> lock(mu_);
  FABULA_ASSIGN(session_id_, store_.create_session(story_.id, story_.title, narrator_.describe(),
                                                   opening_scene(story_).to_json()));
  publish(ResetEvent{});
  return ok_status();
}

Result<int64_t> Game::import_session(const json& doc) {
  if (writing_) return busy();
  join_worker();
  std::lock_guard<std::mutex> lock(mu_);
  JsonView root(doc, "import");
  FABULA_ASSIGN(JsonView session, root.field("session"));
  FABULA_ASSIGN(std::string story, session.string("story"));
  if (story != story_.id)
    return session.error(ErrorCode::kInvalidArgument, "story is \"{}\", but this game plays \"{}\"", story, story_.id);
  FABULA_ASSIGN(session_id_, store_.import_session(doc));
  publish(ResetEvent{});
  return session_id_;
}

void Game::publish(Event event) {
  // Caller holds mu_.
  events_.emplace_back(++seq_, std::move(event));
  if (events_.size() > kMaxEvents) events_.pop_front();
  cv_.notify_all();
}

std::vector<std::pair<uint64_t, Event>> Game::events_after(uint64_t after, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return seq_ > after; });
  std::vector<std::pair<uint64_t, Event>> out;
  for (const auto& e : events_)
    if (e.first > after) out.push_back(e);
  return out;
}

uint64_t Game::last_seq() {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

std::string Game::last_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void Game::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !writing_.load(); });
}

Status Game::start() {
  if (writing_) return busy();
  {
    std::lock_guard<std::mutex> lock(mu_);
    FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
    if (s.head_beat != 0)
      return make_error(ErrorCode::kInvalidArgument, "the story has begun already (beat {}): choose a choice", s.head_beat);
  }
  return start_beat(0, story_.opening.player_choice, -1);
}

Status Game::choose(int64_t index) {
  if (writing_) return busy();
  std::string choice;
  int64_t parent = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
    if (s.head_beat == 0)
      return make_error(ErrorCode::kInvalidArgument, "no choices are open: the story has not begun (start it first)");
    FABULA_ASSIGN(BeatRecord head, store_.beat(s.head_beat));
    if (head.ended && head.choices.empty()) {
      if (index != 0)
        return make_error(ErrorCode::kOutOfRange, "choice {} out of range: the scene ended, 0 (Continue) is the only one",
                          index);
      choice = options_.engine.fallback_choice;  // next scene
      index = -1;
    } else if (index < 0 || static_cast<uint64_t>(index) >= head.choices.size()) {
      return make_error(ErrorCode::kOutOfRange, "choice {} out of range: beat {} offers {} (0 to {})", index, head.id,
                        head.choices.size(), head.choices.size() - 1);
    } else {
      choice = head.choices[static_cast<size_t>(index)];
    }
    parent = head.id;
  }
  return start_beat(parent, choice, static_cast<int>(index));
}

Status Game::regenerate() {
  if (writing_) return busy();
  int64_t parent;
  std::string choice;
  int index;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
    if (s.head_beat == 0) return make_error(ErrorCode::kInvalidArgument, "no beat to regenerate yet");
    FABULA_ASSIGN(BeatRecord head, store_.beat(s.head_beat));
    parent = head.parent_id;
    choice = head.player_choice;
    index = head.choice_index;
  }
  return start_beat(parent, choice, index);
}

Status Game::start_beat(int64_t parent_id, const std::string& choice, int choice_index) {
  join_worker();
  std::lock_guard<std::mutex> lock(mu_);
  FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
  FABULA_ASSIGN(BeatContext context, beat_context(store_, story_, s, parent_id, choice));
  // Seeds differ per beat and per branch, so a regenerated beat never repeats its sibling.
  uint64_t seed =
      options_.seed + 16 * static_cast<uint64_t>(s.beat_count) + 7 * static_cast<uint64_t>(context.history.size());
  writing_ = true;
  cancel_ = false;
  publish(BeatStartEvent{parent_id, choice, context.scene});
  worker_ = std::thread(&Game::run_beat, this, parent_id, choice, choice_index, context.scene,
                        std::move(context.history), seed);
  return ok_status();
}

void Game::run_beat(int64_t parent_id, std::string choice, int choice_index, SceneState scene,
                    std::vector<MemoryBeat> history, uint64_t seed) {
  auto sink = [&](const Event& ev) {
    std::lock_guard<std::mutex> lock(mu_);
    publish(ev);
  };
  auto outcome = engine_.play_beat(scene, history, choice, seed, sink, &cancel_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!outcome) {
    last_error_ = outcome.error().to_string();
    FABULA_LOG_ERROR("beat failed: {}", last_error_);
    publish(ErrorEvent{last_error_});
  } else {
    for (const auto& n : outcome->notes) FABULA_LOG_INFO("{}", n);
    BeatRecord rec;
    rec.session_id = session_id_;
    rec.parent_id = parent_id;
    rec.player_choice = choice;
    rec.choice_index = choice_index;
    rec.text = outcome->text;
    rec.events = outcome->events;
    SceneState after = outcome->state;
    after.ended = outcome->ended;
    rec.state = after.to_json();
    rec.choices = outcome->choices;
    rec.ended = outcome->ended;
    rec.fallback = outcome->fallback;
    rec.seed = outcome->seed;
    rec.attempts = outcome->attempts;
    rec.prompt = outcome->prompt;
    rec.sampling = sampling_to_json(options_.engine.sampling);
    rec.model = narrator_.describe();
    rec.profile = options_.engine.profile;
    auto id = store_.add_beat(rec);
    if (!id) {
      last_error_ = id.error().to_string();
      publish(ErrorEvent{last_error_});
    } else {
      rec.id = *id;
      publish(BeatEndEvent{summary_of(rec, after)});
    }
  }
  writing_ = false;
  cv_.notify_all();
}

Result<int64_t> Game::newest_leaf(int64_t beat_id) {
  FABULA_ASSIGN(auto all, store_.beats(session_id_));
  for (bool moved = true; moved;) {
    moved = false;
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (it->parent_id == beat_id) {
        beat_id = it->id;
        moved = true;
        break;
      }
  }
  return beat_id;
}

Status Game::go_to(int64_t beat_id) {
  if (writing_) return busy();
  join_worker();
  std::lock_guard<std::mutex> lock(mu_);
  auto beat = store_.beat(beat_id);
  if (!beat && beat.error().code != ErrorCode::kNotFound) return beat.take_error();
  if (!beat || beat->session_id != session_id_)
    return make_error(ErrorCode::kInvalidArgument, "beat {} is not a beat of this session", beat_id);
  FABULA_TRY(store_.set_head(session_id_, beat_id));
  publish(ResetEvent{beat_id});
  return ok_status();
}

Status Game::switch_branch(int64_t offset) {
  if (writing_) return busy();
  join_worker();
  std::lock_guard<std::mutex> lock(mu_);
  FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
  if (!s.head_beat) return make_error(ErrorCode::kInvalidArgument, "no beat yet");
  // The branch point is the deepest beat on the path that has siblings.
  FABULA_ASSIGN(auto path, store_.path_to(s.head_beat));
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    FABULA_ASSIGN(auto sib, store_.siblings(it->id));
    if (sib.size() < 2) continue;
    size_t at = 0;
    for (size_t i = 0; i < sib.size(); ++i)
      if (sib[i].id == it->id) at = i;
    int64_t n = static_cast<int64_t>(sib.size());
    if (offset == 0 || offset <= -n || offset >= n)
      return make_error(ErrorCode::kOutOfRange, "branch offset {} out of range: {} branches here (-{} to {}, not 0)",
                        offset, n, n - 1, n - 1);
    int64_t target = sib[static_cast<size_t>(((static_cast<int64_t>(at) + offset) % n + n) % n)].id;
    FABULA_ASSIGN(int64_t leaf, newest_leaf(target));
    FABULA_TRY(store_.set_head(session_id_, leaf));
    publish(ResetEvent{leaf});
    return ok_status();
  }
  return make_error(ErrorCode::kInvalidArgument, "no other branch on this path");
}

Status Game::save_slot(const std::string& name) {
  if (name.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error(ErrorCode::kInvalidArgument, "a save slot needs a name");
  if (name.size() > 200) return make_error(ErrorCode::kOutOfRange, "slot name of {} bytes (at most 200)", name.size());
  std::lock_guard<std::mutex> lock(mu_);
  FABULA_ASSIGN(SessionInfo s, store_.session(session_id_));
  if (!s.head_beat) return make_error(ErrorCode::kInvalidArgument, "nothing to save yet");
  return store_.save_slot(session_id_, name, s.head_beat);
}

Result<int64_t> Game::load_slot(const std::string& name) {
  int64_t beat = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FABULA_ASSIGN(auto sl, store_.slots(session_id_));
    for (const auto& [n, id] : sl)
      if (n == name) beat = id;
  }
  if (!beat) return make_error(ErrorCode::kNotFound, "no save slot \"{}\"", name);
  FABULA_TRY(go_to(beat));
  return beat;
}

json Game::snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  json out = {{"session", session_id_}, {"story", story_.id}, {"title", story_.title},
              {"narrator", narrator_.describe()}, {"status", writing_ ? "writing" : "idle"}, {"seq", seq_},
              {"beat", nullptr}, {"path", json::array()}, {"slots", json::array()},
              {"branches", {{"index", 0}, {"count", 1}}}, {"error", last_error_}};
  auto s = store_.session(session_id_);
  if (!s) return out;
  out["beat_count"] = s->beat_count;
  out["initial_state"] = s->initial_state;
  if (auto sl = store_.slots(session_id_))
    for (const auto& [n, id] : *sl) out["slots"].push_back({{"name", n}, {"beat_id", id}});
  if (!s->head_beat) return out;
  auto path = store_.path_to(s->head_beat);
  if (!path) return out;
  for (const auto& b : *path) {
    auto summary = summary_of(b);
    if (!summary) {
      out["error"] = summary.error().to_string();
      out["path"] = json::array();
      return out;
    }
    out["path"].push_back(to_json(*summary));
  }
  out["beat"] = out["path"].back();  // json-ok: the path built just above has a beat
  // Branch counter of the deepest branch point on the path.
  for (auto it = path->rbegin(); it != path->rend(); ++it) {
    auto sib = store_.siblings(it->id);
    if (!sib || sib->size() < 2) continue;
    for (size_t i = 0; i < sib->size(); ++i)
      if ((*sib)[i].id == it->id) out["branches"] = {{"index", i}, {"count", sib->size()}, {"at", it->id}};
    break;
  }
  return out;
}

json Game::tree() {
  std::lock_guard<std::mutex> lock(mu_);
  json out = json::array();
  auto s = store_.session(session_id_);
  auto all = store_.beats(session_id_);
  if (!s || !all) return out;
  std::vector<int64_t> on_path;
  if (s->head_beat)
    if (auto p = store_.path_to(s->head_beat))
      for (const auto& b : *p) on_path.push_back(b.id);
  for (const auto& b : *all)
    out.push_back({{"id", b.id}, {"parent_id", b.parent_id}, {"player_choice", b.player_choice},
                   {"place", place_of(b.state)}, {"current", b.id == s->head_beat},
                   {"on_path", std::find(on_path.begin(), on_path.end(), b.id) != on_path.end()}});
  return out;
}

}  // namespace fabula::engine
