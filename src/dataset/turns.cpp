// Turns from saves and eval runs. A save's beat tree becomes rows in session and beat order; which branch the player
// kept is read from the tree (see kept_beats).
#include "dataset/turns.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/file.h"
#include "engine/game.h"
#include "engine/prompt.h"
#include "engine/save_store.h"
#include "eval/harness.h"

namespace fabula::dataset {
namespace {

// Versions of one turn share a parent and a player choice (regenerate writes another). The kept versions are those
// the player went on from (a child) or is looking at (on the path to the session's head); when the player left the
// whole group behind, the newest version, the last one shown, counts as kept. Every other version was regenerated.
std::set<int64_t> kept_beats(const std::vector<engine::BeatRecord>& beats, const std::set<int64_t>& head_path) {
  std::set<int64_t> has_child;
  for (const auto& b : beats)
    if (b.parent_id) has_child.insert(b.parent_id);
  std::map<std::pair<int64_t, std::string>, std::vector<int64_t>> versions;
  for (const auto& b : beats) versions[{b.parent_id, b.player_choice}].push_back(b.id);
  std::set<int64_t> kept;
  for (const auto& [key, ids] : versions) {
    bool any = false;
    for (int64_t id : ids)
      if (has_child.count(id) || head_path.count(id)) {
        kept.insert(id);
        any = true;
      }
    if (!any) kept.insert(*std::max_element(ids.begin(), ids.end()));
  }
  return kept;
}

}  // namespace

Result<const engine::Story*> StoryCache::get(const std::string& id) {
  if (auto it = stories_.find(id); it != stories_.end()) return &it->second;
  FABULA_ASSIGN(engine::Story story, engine::load_story(id));
  return &stories_.emplace(id, std::move(story)).first->second;
}

Result<std::vector<TurnRow>> read_save_turns(const std::string& path, const StoryLookup& stories,
                                             const ReadOptions& options, SourceReport& report) {
  report.path = path;
  report.kind = "save";
  FABULA_ASSIGN(auto store, engine::SaveStore::open(path));
  report.schema_version = store->opened_schema_version();
  FABULA_ASSIGN(auto sessions, store->sessions());
  std::sort(sessions.begin(), sessions.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<TurnRow> rows;
  for (const auto& s : sessions) {
    auto story = stories(s.story);
    if (!story) {
      report.notes.push_back(fmt::format("session {}: {}; its {} beats are left out", s.id, story.error().message,
                                         s.beat_count));
      continue;
    }
    ++report.sessions;
    FABULA_ASSIGN(auto beats, store->beats(s.id));
    std::set<int64_t> head_path;
    if (s.head_beat) {
      FABULA_ASSIGN(auto path_beats, store->path_to(s.head_beat));
      for (const auto& b : path_beats) head_path.insert(b.id);
    }
    const std::set<int64_t> kept = kept_beats(beats, head_path);
    for (const auto& shallow : beats) {
      FABULA_ASSIGN(engine::BeatRecord b, store->beat(shallow.id));
      FABULA_ASSIGN(engine::BeatContext context,
                    engine::beat_context(*store, **story, s, b.parent_id, b.player_choice));
      TurnRow row;
      row.id = fmt::format("{}#{}/{}", path, s.id, b.id);
      row.source = path;
      row.story = s.story;
      row.place = context.scene.place;
      row.time = context.scene.time;
      row.cast = context.scene.cast;
      row.player_choice = b.player_choice;
      row.seed = b.seed;
      row.model = b.model.empty() ? s.narrator : b.model;
      row.profile = b.profile;
      row.sampling = b.sampling;
      row.beat = b.text;
      row.kept = kept.count(b.id) > 0;
      row.fallback = b.fallback;
      row.session = s.id;
      row.beat_id = b.id;
      row.parent_id = b.parent_id;
      if (b.has_request()) {
        row.messages = b.prompt;
        row.prompt_source = "recorded";
      } else if (!options.rerender_profile.empty()) {
        FABULA_ASSIGN(engine::NarratorProfile profile, (*story)->profile(options.rerender_profile));
        row.messages = engine::build_request(**story, profile, context.scene, b.player_choice, context.history, {},
                                             b.seed)
                           .messages;
        row.profile = options.rerender_profile;
        row.prompt_source = "re-rendered";
        ++report.rerendered;
      } else {
        ++report.without_prompt;
      }
      if (row.sampling.is_null()) ++report.without_sampling;
      rows.push_back(std::move(row));
    }
  }
  report.rows = static_cast<int64_t>(rows.size());
  if (report.without_prompt > 0)
    report.notes.push_back(fmt::format(
        "{} beats were saved before fabula recorded each beat's prompt (save schema {}): they are left out; "
        "--rerender-profile demo|vn26b rebuilds their prompts from the saved scenes with today's story files",
        report.without_prompt, report.schema_version));
  if (report.rerendered > 0)
    report.notes.push_back(fmt::format("{} prompts re-rendered with profile {} (not recorded in the save)",
                                       report.rerendered, options.rerender_profile));
  if (report.without_sampling > 0)
    report.notes.push_back(
        fmt::format("{} beats have no recorded sampling settings or profile (saved before schema 2; their model is "
                    "the session's narrator)",
                    report.without_sampling));
  return rows;
}

Result<std::vector<TurnRow>> read_eval_turns(const std::string& path, const std::string& scenes_path,
                                             const StoryLookup& stories, SourceReport& report) {
  report.path = path;
  report.kind = "eval";
  if (scenes_path.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: an eval run's beats.jsonl records no prompts; pass --scenes with the scenes file the eval "
                      "ran, so each prompt is rebuilt as the harness built it",
                      path);
  FABULA_ASSIGN(std::string scenes_text, read_file_text(scenes_path));
  FABULA_ASSIGN(auto scenes, eval::parse_eval_scenes(scenes_text, scenes_path));
  std::map<std::string, const eval::EvalScene*> by_id;
  for (const auto& sc : scenes) by_id[sc.id] = &sc;
  FABULA_ASSIGN(auto beat_rows, eval::read_beat_rows(path));
  std::vector<TurnRow> rows;
  int64_t unknown_scene = 0;
  for (const auto& r : beat_rows) {
    auto it = by_id.find(r.scene);
    if (it == by_id.end()) {
      ++unknown_scene;
      continue;
    }
    const eval::EvalScene& sc = *it->second;
    FABULA_ASSIGN(const engine::Story* story, stories(sc.story));
    FABULA_ASSIGN(engine::NarratorProfile profile, story->profile(r.profile));
    TurnRow row;
    row.id = fmt::format("{}#{}", path, r.id);
    row.source = path;
    row.story = sc.story;
    row.place = sc.place;
    row.time = sc.time;
    row.cast = sc.cast;
    row.player_choice = sc.player_choice;
    row.seed = r.seed;
    row.model = r.narrator;
    row.profile = r.profile;
    row.messages = eval::scene_request(*story, profile, sc, {}, r.seed).messages;
    row.prompt_source = "re-rendered";
    row.beat = r.beat;
    rows.push_back(std::move(row));
    ++report.without_sampling;
  }
  report.rows = static_cast<int64_t>(rows.size());
  report.rerendered = report.rows;
  if (unknown_scene > 0)
    report.notes.push_back(fmt::format("{} rows name a scene that {} does not have: left out", unknown_scene,
                                       scenes_path));
  if (report.rows > 0)
    report.notes.push_back(fmt::format("{} prompts rebuilt from {} (eval rows record none) and no sampling settings",
                                       report.rows, scenes_path));
  return rows;
}

}  // namespace fabula::dataset
