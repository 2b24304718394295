// Event JSON: each struct lists its fields once (describe()); one writer and one checking reader walk that list.
// The reader reads each value through JsonView and keeps its own messages ("dialogue: field \"speaker\": missing").
#include "engine/events.h"

#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "base/json_view.h"

namespace fabula::engine {

using nlohmann::json;

namespace {

// ---- values: JsonView's typed reads, under this reader's messages ("where: expected a string") ----

std::string quoted_field(std::string_view where, std::string_view key) {
  return fmt::format("{}: field \"{}\"", where, key);
}

Error expected(std::string_view where, std::string_view what) {
  return make_error(ErrorCode::kParse, "{}: expected {}", where, what);
}

template <typename T>
Status take(Result<T> read, T& out, std::string_view where, std::string_view what) {
  if (!read.ok()) return expected(where, what);
  out = std::move(*read);
  return ok_status();
}

Status decode(const JsonView& v, std::string& out, const std::string& where) {
  return take(v.string(), out, where, "a string");
}
Status decode(const JsonView& v, bool& out, const std::string& where) {
  return take(v.boolean(), out, where, "true or false");
}
// Events write integers as JSON integers, so a float (even 2.0, which JsonView::integer takes) is refused; a
// JsonView read that fails after that check failed on the range.
template <typename Int>
Status decode_integer(const JsonView& v, Int& out, const std::string& where) {
  if (!v.raw().is_number_integer()) return expected(where, "an integer");
  auto x = [&] {
    if constexpr (std::is_same_v<Int, uint64_t>) return v.unsigned_integer();
    else return v.integer(std::numeric_limits<Int>::min(), std::numeric_limits<Int>::max());
  }();
  if (!x.ok()) return make_error(ErrorCode::kParse, "{}: {} is out of range", where, dump_json(v.raw()));
  out = static_cast<Int>(*x);
  return ok_status();
}
Status decode(const JsonView& v, int& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const JsonView& v, int64_t& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const JsonView& v, uint64_t& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const JsonView& v, StageSprite& out, const std::string& where);
Status decode(const JsonView& v, SceneState& out, const std::string& where);
Status decode(const JsonView& v, SceneEvent& out, const std::string& where);
Status decode(const JsonView& v, BeatSummary& out, const std::string& where);
template <typename T>
Status decode(const JsonView& v, std::vector<T>& out, const std::string& where) {
  auto items = v.elements();
  if (!items.ok()) return expected(where, "an array");
  out.clear();
  for (size_t i = 0; i < items->size(); ++i) {
    T item{};
    FABULA_TRY(decode((*items)[i], item, fmt::format("{}[{}]", where, i)));
    out.push_back(std::move(item));
  }
  return ok_status();
}

json encode(const std::string& v) { return v; }
json encode(bool v) { return v; }
json encode(int v) { return v; }
json encode(int64_t v) { return v; }
json encode(uint64_t v) { return v; }
json encode(const StageSprite& v);
json encode(const SceneState& v) { return v.to_json(); }
json encode(const SceneEvent& v) { return to_json(v); }
json encode(const BeatSummary& v) { return to_json(v); }
template <typename T>
json encode(const std::vector<T>& v) {
  json a = json::array();
  for (const auto& x : v) a.push_back(encode(x));
  return a;
}

// ---- the two walkers over a struct's field list ----

class Writer {
 public:
  template <typename T>
  void field(const char* key, const T& v) { j[key] = encode(v); }
  template <typename T>
  void optional(const char* key, const std::optional<T>& v) {
    if (v) j[key] = encode(*v);
  }
  // Written only when true (absent reads as false).
  void flag(const char* key, const bool& v) {
    if (v) j[key] = true;
  }
  // Read when present, always written.
  template <typename T>
  void defaulted(const char* key, const T& v) { field(key, v); }
  json j = json::object();
};

// An object's members, null ones included: a null field is a wrong type here, not an absent one as for
// JsonView::find.
using Members = std::vector<std::pair<std::string, JsonView>>;

class Reader {
 public:
  Reader(const Members& members, std::string where) : members_(members), where_(std::move(where)) {}
  template <typename T>
  void field(const char* key, T& v) {
    if (status_.ok() && !lookup(key))
      status_ = make_error(ErrorCode::kParse, "{}: missing", quoted_field(where_, key));
    read(key, v);
  }
  template <typename T>
  void optional(const char* key, std::optional<T>& v) {
    if (!lookup(key)) return;
    v.emplace();
    read(key, *v);
  }
  void flag(const char* key, bool& v) { read(key, v); }
  template <typename T>
  void defaulted(const char* key, T& v) { read(key, v); }
  // Marks a key read elsewhere (the "type" tag).
  void known(const char* key) { seen_.insert(key); }
  Status finish() {
    if (!status_.ok()) return status_;
    for (const auto& [key, value] : members_)
      if (!seen_.count(key))
        return make_error(ErrorCode::kParse, "{}: unknown field \"{}\"", where_, key);
    return ok_status();
  }

 private:
  const JsonView* lookup(std::string_view key) const {
    for (const auto& [k, v] : members_)
      if (k == key) return &v;
    return nullptr;
  }
  template <typename T>
  void read(const char* key, T& v) {
    seen_.insert(key);
    const JsonView* value = lookup(key);
    if (!status_.ok() || !value) return;
    status_ = decode(*value, v, quoted_field(where_, key));
  }
  const Members& members_;
  std::string where_;
  std::set<std::string> seen_;
  Status status_ = ok_status();
};

// ---- field lists: the one place each struct's JSON shape is written down ----

template <typename W, typename S>
void describe(W& w, S& s) requires std::is_same_v<std::remove_const_t<S>, StageSprite> {
  w.field("character", s.character);
  w.defaulted("expression", s.expression);
  w.defaulted("position", s.position);
}
template <typename W, typename S>
void describe(W& w, S& s) requires std::is_same_v<std::remove_const_t<S>, SceneState> {
  w.field("place", s.place);
  w.defaulted("time", s.time);
  w.defaulted("cast", s.cast);
  w.defaulted("scene_index", s.scene_index);
  w.defaulted("ended", s.ended);
  w.defaulted("background", s.background);
  w.defaulted("transition", s.transition);
  w.defaulted("stage", s.stage);
  w.defaulted("music", s.music);
}
template <typename W, typename S>
void describe(W& w, S& s) requires std::is_same_v<std::remove_const_t<S>, BeatSummary> {
  w.field("id", s.id);
  w.field("parent_id", s.parent_id);
  w.field("player_choice", s.player_choice);
  w.field("events", s.events);
  w.field("state", s.state);
  w.field("choices", s.choices);
  w.field("ended", s.ended);
  w.field("fallback", s.fallback);
  w.field("seed", s.seed);
  w.field("attempts", s.attempts);
}

template <typename W, typename E>
void describe_event(W& w, E& e) {
  using T = std::remove_const_t<E>;
  if constexpr (std::is_same_v<T, NarrationEvent>) {
    w.field("text", e.text);
    w.optional("cast_lock", e.cast_lock);
  } else if constexpr (std::is_same_v<T, DialogueEvent>) {
    w.field("speaker", e.speaker);
    w.field("text", e.text);
  } else if constexpr (std::is_same_v<T, BackgroundEvent>) {
    w.field("name", e.name);
    w.field("label", e.label);
    w.field("image", e.image);
    w.field("transition", e.transition);
  } else if constexpr (std::is_same_v<T, SpriteEvent>) {
    w.field("character", e.character);
    w.field("expression", e.expression);
    w.field("position", e.position);
    w.field("image", e.image);
  } else if constexpr (std::is_same_v<T, HideEvent>) {
    w.field("character", e.character);
  } else if constexpr (std::is_same_v<T, MusicEvent>) {
    w.field("track", e.track);
  } else if constexpr (std::is_same_v<T, SfxEvent>) {
    w.field("name", e.name);
  } else if constexpr (std::is_same_v<T, ChoicesEvent>) {
    w.field("choices", e.choices);
    w.optional("prompt", e.prompt);
    w.flag("fallback", e.fallback);
  } else if constexpr (std::is_same_v<T, EndSceneEvent>) {
  } else if constexpr (std::is_same_v<T, BeatStartEvent>) {
    w.field("parent_id", e.parent_id);
    w.field("player_choice", e.player_choice);
    w.field("state", e.state);
  } else if constexpr (std::is_same_v<T, AttemptEvent>) {
    w.field("attempt", e.attempt);
    w.field("restart", e.restart);
    w.field("state", e.state);
  } else if constexpr (std::is_same_v<T, BeatEndEvent>) {
    w.field("beat", e.beat);
  } else if constexpr (std::is_same_v<T, ErrorEvent>) {
    w.field("message", e.message);
  } else if constexpr (std::is_same_v<T, ResetEvent>) {
    w.optional("beat_id", e.beat_id);
  } else {
    static_assert(sizeof(T) == 0, "an event type without a field list");
  }
}

template <typename T>
Status read_struct(const JsonView& v, T& out, const std::string& where) {
  auto members = v.members();
  if (!members.ok()) return expected(where, "an object");
  Reader r(*members, where);
  describe(r, out);
  return r.finish();
}
template <typename T>
json write_struct(const T& v) {
  Writer w;
  describe(w, v);
  return std::move(w.j);
}

Status decode(const JsonView& v, StageSprite& out, const std::string& where) { return read_struct(v, out, where); }
Status decode(const JsonView& v, SceneState& out, const std::string& where) {
  FABULA_TRY(read_struct(v, out, where));
  if (out.place.empty()) return make_error(ErrorCode::kParse, "{}: must not be empty", quoted_field(where, "place"));
  return ok_status();
}
Status decode(const JsonView& v, BeatSummary& out, const std::string& where) { return read_struct(v, out, where); }
json encode(const StageSprite& v) { return write_struct(v); }

template <typename Variant>
json write_event(const Variant& e) {
  return std::visit(
      [](const auto& ev) {
        Writer w;
        w.j["type"] = std::string(ev.kType);
        describe_event(w, ev);
        return std::move(w.j);
      },
      e);
}

template <typename Variant, size_t... I>
Result<Variant> read_event(const JsonView& v, const std::string& where, std::index_sequence<I...>) {
  const std::string at = where.empty() ? std::string("event") : where;
  auto members = v.members();
  if (!members.ok()) return expected(at, "an object");
  std::optional<JsonView> tag = v.find("type");
  if (!tag || !tag->is_string())
    return make_error(ErrorCode::kParse, "{}: field \"type\": expected a string naming the event type", at);
  FABULA_ASSIGN(const std::string type, tag->string());
  std::optional<Result<Variant>> out;
  auto try_one = [&](auto alternative) {
    using T = typename decltype(alternative)::type;
    if (out || T::kType != type) return;
    T ev{};
    Reader r(*members, where.empty() ? type : fmt::format("{}: {}", where, type));
    r.known("type");
    describe_event(r, ev);
    Status st = r.finish();
    out.emplace(st.ok() ? Result<Variant>(Variant(std::move(ev))) : Result<Variant>(st.take_error()));
  };
  (try_one(std::type_identity<std::variant_alternative_t<I, Variant>>{}), ...);
  if (!out) return make_error(ErrorCode::kParse, "{}: unknown event type \"{}\"", at, type);
  return std::move(*out);
}

template <typename Variant>
Result<Variant> read_event(const JsonView& v, const std::string& where) {
  return read_event<Variant>(v, where, std::make_index_sequence<std::variant_size_v<Variant>>{});
}

Status decode(const JsonView& v, SceneEvent& out, const std::string& where) {
  FABULA_ASSIGN(out, read_event<SceneEvent>(v, where));
  return ok_status();
}

}  // namespace

// ---- SceneState ----

const StageSprite* SceneState::on_stage(std::string_view character) const {
  for (const auto& s : stage)
    if (s.character == character) return &s;
  return nullptr;
}

json SceneState::to_json() const { return write_struct(*this); }

Result<SceneState> SceneState::from_json(const json& j) {
  SceneState s;
  FABULA_TRY(decode(JsonView(j, "scene state"), s, "scene state"));
  return s;
}

// ---- events ----

const std::vector<std::string_view>& event_type_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> n;
    [&]<size_t... I>(std::index_sequence<I...>) {
      (n.push_back(std::variant_alternative_t<I, Event>::kType), ...);
    }(std::make_index_sequence<std::variant_size_v<Event>>{});
    return n;
  }();
  return names;
}

Event to_event(const SceneEvent& e) {
  return std::visit([](const auto& ev) { return Event(ev); }, e);
}
std::string_view event_type(const Event& e) {
  return std::visit([](const auto& ev) { return std::string_view(ev.kType); }, e);
}
std::string_view event_type(const SceneEvent& e) {
  return std::visit([](const auto& ev) { return std::string_view(ev.kType); }, e);
}
bool is_line(const SceneEvent& e) {
  return std::holds_alternative<DialogueEvent>(e) || std::holds_alternative<NarrationEvent>(e);
}

json to_json(const Event& e) { return write_event(e); }
json to_json(const SceneEvent& e) { return write_event(e); }
json to_json(const std::vector<SceneEvent>& events) { return encode(events); }
json to_json(const BeatSummary& b) { return write_struct(b); }

Result<Event> event_from_json(const json& j) { return read_event<Event>(JsonView(j, "event"), ""); }
Result<SceneEvent> scene_event_from_json(const json& j) { return read_event<SceneEvent>(JsonView(j, "event"), ""); }
Result<std::vector<SceneEvent>> scene_events_from_json(const json& j) {
  std::vector<SceneEvent> out;
  FABULA_TRY(decode(JsonView(j, "events"), out, "events"));
  return out;
}
Result<BeatSummary> beat_summary_from_json(const json& j) {
  BeatSummary b;
  FABULA_TRY(read_struct(JsonView(j, "beat"), b, "beat"));
  return b;
}

}  // namespace fabula::engine
