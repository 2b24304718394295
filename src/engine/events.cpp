// Event JSON: each struct lists its fields once (describe()); one writer and one checking reader walk that list.
#include "engine/events.h"

#include <limits>
#include <set>
#include <utility>

#include <fmt/format.h>

namespace fabula::engine {

using nlohmann::json;

namespace {

// ---- values ----

std::string quoted_field(std::string_view where, std::string_view key) {
  return fmt::format("{}: field \"{}\"", where, key);
}

Status decode(const json& v, std::string& out, const std::string& where) {
  if (!v.is_string()) return make_error(ErrorCode::kParse, "{}: expected a string", where);
  out = v.get<std::string>();
  return ok_status();
}
Status decode(const json& v, bool& out, const std::string& where) {
  if (!v.is_boolean()) return make_error(ErrorCode::kParse, "{}: expected true or false", where);
  out = v.get<bool>();
  return ok_status();
}
template <typename Int>
Status decode_integer(const json& v, Int& out, const std::string& where) {
  if (!v.is_number_integer()) return make_error(ErrorCode::kParse, "{}: expected an integer", where);
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Int>::max());
  bool fits;
  if (v.is_number_unsigned()) {
    fits = v.get<uint64_t>() <= kMax;
  } else {
    int64_t x = v.get<int64_t>();
    fits = x >= 0 ? static_cast<uint64_t>(x) <= kMax
                  : std::numeric_limits<Int>::is_signed && x >= static_cast<int64_t>(std::numeric_limits<Int>::min());
  }
  if (!fits) return make_error(ErrorCode::kParse, "{}: {} is out of range", where, v.dump());
  out = v.get<Int>();
  return ok_status();
}
Status decode(const json& v, int& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const json& v, int64_t& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const json& v, uint64_t& out, const std::string& where) { return decode_integer(v, out, where); }
Status decode(const json& v, StageSprite& out, const std::string& where);
Status decode(const json& v, SceneState& out, const std::string& where);
Status decode(const json& v, SceneEvent& out, const std::string& where);
Status decode(const json& v, BeatSummary& out, const std::string& where);
template <typename T>
Status decode(const json& v, std::vector<T>& out, const std::string& where) {
  if (!v.is_array()) return make_error(ErrorCode::kParse, "{}: expected an array", where);
  out.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    T item{};
    FABULA_TRY(decode(v[i], item, fmt::format("{}[{}]", where, i)));
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

class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  template <typename T>
  void field(const char* key, T& v) {
    if (status_.ok() && !j_.contains(key))
      status_ = make_error(ErrorCode::kParse, "{}: missing", quoted_field(where_, key));
    read(key, v);
  }
  template <typename T>
  void optional(const char* key, std::optional<T>& v) {
    if (!j_.contains(key)) return;
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
    for (const auto& [key, value] : j_.items())
      if (!seen_.count(key))
        return make_error(ErrorCode::kParse, "{}: unknown field \"{}\"", where_, key);
    return ok_status();
  }

 private:
  template <typename T>
  void read(const char* key, T& v) {
    seen_.insert(key);
    if (!status_.ok() || !j_.contains(key)) return;
    status_ = decode(j_[key], v, quoted_field(where_, key));
  }
  const json& j_;
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
Status read_struct(const json& v, T& out, const std::string& where) {
  if (!v.is_object()) return make_error(ErrorCode::kParse, "{}: expected an object", where);
  Reader r(v, where);
  describe(r, out);
  return r.finish();
}
template <typename T>
json write_struct(const T& v) {
  Writer w;
  describe(w, v);
  return std::move(w.j);
}

Status decode(const json& v, StageSprite& out, const std::string& where) { return read_struct(v, out, where); }
Status decode(const json& v, SceneState& out, const std::string& where) {
  FABULA_TRY(read_struct(v, out, where));
  if (out.place.empty()) return make_error(ErrorCode::kParse, "{}: must not be empty", quoted_field(where, "place"));
  return ok_status();
}
Status decode(const json& v, BeatSummary& out, const std::string& where) { return read_struct(v, out, where); }
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
Result<Variant> read_event(const json& j, const std::string& where, std::index_sequence<I...>) {
  const std::string at = where.empty() ? std::string("event") : where;
  if (!j.is_object()) return make_error(ErrorCode::kParse, "{}: expected an object", at);
  if (!j.contains("type") || !j["type"].is_string())
    return make_error(ErrorCode::kParse, "{}: field \"type\": expected a string naming the event type", at);
  std::string type = j["type"].get<std::string>();
  std::optional<Result<Variant>> out;
  auto try_one = [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (out || T::kType != type) return;
    T ev{};
    Reader r(j, where.empty() ? type : fmt::format("{}: {}", where, type));
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
Result<Variant> read_event(const json& j, const std::string& where) {
  return read_event<Variant>(j, where, std::make_index_sequence<std::variant_size_v<Variant>>{});
}

Status decode(const json& v, SceneEvent& out, const std::string& where) {
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
  FABULA_TRY(decode(j, s, "scene state"));
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

Result<Event> event_from_json(const json& j) { return read_event<Event>(j, ""); }
Result<SceneEvent> scene_event_from_json(const json& j) { return read_event<SceneEvent>(j, ""); }
Result<std::vector<SceneEvent>> scene_events_from_json(const json& j) {
  std::vector<SceneEvent> out;
  FABULA_TRY(decode(j, out, "events"));
  return out;
}
Result<BeatSummary> beat_summary_from_json(const json& j) {
  BeatSummary b;
  FABULA_TRY(read_struct(j, b, "beat"));
  return b;
}

}  // namespace fabula::engine
