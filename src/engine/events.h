// Player-visible events, one struct per type, and their JSON (the wire format of docs/events.schema.json).
// Scene events come from the narrator's lines and are saved with each beat; stream events tell a live viewer
// where a beat starts, restarts, ends or fails. The engine, the game, the game API, the web player and the
// terminal player all speak these types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/scene_state.h"

namespace fabula::engine {

// ---- scene events (saved with the beat) ----

// Unattributed prose. cast_lock names the speaker whose dialogue became narration (not in the locked cast).
struct NarrationEvent {
  static constexpr std::string_view kType = "narration";
  std::string text;
  std::optional<std::string> cast_lock;
  bool operator==(const NarrationEvent&) const = default;
};

struct DialogueEvent {
  static constexpr std::string_view kType = "dialogue";
  std::string speaker;
  std::string text;
  bool operator==(const DialogueEvent&) const = default;
};

// name: location id; label: its display name; image: backdrop path relative to the story ("" when none).
struct BackgroundEvent {
  static constexpr std::string_view kType = "background";
  std::string name;
  std::string label;
  std::string image;
  std::string transition;
  bool operator==(const BackgroundEvent&) const = default;
};

// A character enters, moves or changes expression. image: sprite path relative to the story.
struct SpriteEvent {
  static constexpr std::string_view kType = "sprite";
  std::string character;
  std::string expression;
  std::string position;
  std::string image;
  bool operator==(const SpriteEvent&) const = default;
};

struct HideEvent {
  static constexpr std::string_view kType = "hide";
  std::string character;
  bool operator==(const HideEvent&) const = default;
};

// track: one of the story's music ids ("none": silence).
struct MusicEvent {
  static constexpr std::string_view kType = "music";
  std::string track;
  bool operator==(const MusicEvent&) const = default;
};

struct SfxEvent {
  static constexpr std::string_view kType = "sfx";
  std::string name;
  bool operator==(const SfxEvent&) const = default;
};

// Ends the beat. fallback: every attempt was invalid and the engine offered a neutral choice.
struct ChoicesEvent {
  static constexpr std::string_view kType = "choices";
  std::vector<std::string> choices;
  std::optional<std::string> prompt;
  bool fallback = false;
  bool operator==(const ChoicesEvent&) const = default;
};

// Ends the beat and the scene.
struct EndSceneEvent {
  static constexpr std::string_view kType = "end_scene";
  bool operator==(const EndSceneEvent&) const = default;
};

using SceneEvent = std::variant<NarrationEvent, DialogueEvent, BackgroundEvent, SpriteEvent, HideEvent, MusicEvent,
                                SfxEvent, ChoicesEvent, EndSceneEvent>;

// ---- stream events (live only) ----

// A beat is being written for player_choice, from `state` (the scene already advanced for the choice).
struct BeatStartEvent {
  static constexpr std::string_view kType = "beat_start";
  int64_t parent_id = 0;  // 0: the first beat
  std::string player_choice;
  SceneState state;
  bool operator==(const BeatStartEvent&) const = default;
};

// The previous attempt was invalid: with restart, drop what it showed and restore `state`.
struct AttemptEvent {
  static constexpr std::string_view kType = "attempt";
  int attempt = 2;  // 1-based number of the attempt now starting
  bool restart = true;
  SceneState state;
  bool operator==(const AttemptEvent&) const = default;
};

// A saved beat, as the game API shows it (beat_end, and the snapshot's path).
struct BeatSummary {
  int64_t id = 0;
  int64_t parent_id = 0;
  std::string player_choice;
  std::vector<SceneEvent> events;
  SceneState state;  // after the beat
  std::vector<std::string> choices;
  bool ended = false;
  bool fallback = false;
  uint64_t seed = 0;
  int attempts = 1;
  bool operator==(const BeatSummary&) const = default;
};

struct BeatEndEvent {
  static constexpr std::string_view kType = "beat_end";
  BeatSummary beat;
  bool operator==(const BeatEndEvent&) const = default;
};

// The beat failed (narrator error, save error); nothing was saved.
struct ErrorEvent {
  static constexpr std::string_view kType = "error";
  std::string message;
  bool operator==(const ErrorEvent&) const = default;
};

// The session's current beat changed outside the stream (rollback, branch switch, new game, import): reload.
struct ResetEvent {
  static constexpr std::string_view kType = "reset";
  std::optional<int64_t> beat_id;
  bool operator==(const ResetEvent&) const = default;
};

using Event = std::variant<NarrationEvent, DialogueEvent, BackgroundEvent, SpriteEvent, HideEvent, MusicEvent,
                           SfxEvent, ChoicesEvent, EndSceneEvent, BeatStartEvent, AttemptEvent, BeatEndEvent,
                           ErrorEvent, ResetEvent>;

// Every "type" name, scene events first (the order of Event's alternatives).
const std::vector<std::string_view>& event_type_names();

Event to_event(const SceneEvent& e);
std::string_view event_type(const Event& e);
std::string_view event_type(const SceneEvent& e);
// Dialogue and narration: the lines the player advances through.
bool is_line(const SceneEvent& e);

nlohmann::json to_json(const Event& e);
nlohmann::json to_json(const SceneEvent& e);
nlohmann::json to_json(const std::vector<SceneEvent>& events);
nlohmann::json to_json(const BeatSummary& b);

// Parsers never throw: a bad value is an error naming the event type and the field ("dialogue: field \"speaker\":
// expected a string"). Fields not in the schema are rejected too, so a typo cannot pass silently.
Result<Event> event_from_json(const nlohmann::json& j);
Result<SceneEvent> scene_event_from_json(const nlohmann::json& j);
Result<std::vector<SceneEvent>> scene_events_from_json(const nlohmann::json& j);
Result<BeatSummary> beat_summary_from_json(const nlohmann::json& j);

}  // namespace fabula::engine
