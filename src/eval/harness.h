// Eval harness: every narrator × seed × scene through the engine's prompt builder, beats appended to beats.jsonl (resumable).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "engine/narrator.h"
#include "engine/story.h"

namespace fabula::eval {

// One row of eval/scenes-*.jsonl.
struct EvalScene {
  std::string id;
  std::string story = "sakuragaoka";
  std::string place;
  std::string time;
  std::vector<std::string> cast;
  std::string player_choice;
  std::vector<std::string> tags;  // optional; the report breaks metrics down per tag
};
Result<std::vector<EvalScene>> parse_eval_scenes(std::string_view jsonl, const std::string& where);
// The request a beat of `scene` is written from (the harness; dataset export renders its prompt again with it).
engine::NarratorRequest scene_request(const engine::Story& story, const engine::NarratorProfile& profile,
                                      const EvalScene& scene, const engine::Sampling& sampling, uint64_t seed);

// "1-6", "42", "1-3,7,10-11" -> seeds in the order written. Errors name the bad part.
Result<std::vector<uint64_t>> parse_seed_list(std::string_view text);

// One narrator under evaluation: a label, its prompt profile and sampling, and one or more backends that share
// its work (several servers of the same model, each taking the next job).
struct EvalNarrator {
  std::string label;
  std::string profile = "vn26b";  // story narrator profile ("demo" for the demo narrator)
  engine::Sampling sampling;
  std::vector<uint64_t> seeds;
  std::vector<engine::Narrator*> workers;  // not owned; at least one
};

// One generated beat. Its JSON form is readable by `fabula validate` (beat, id, cast) and `fabula metrics`
// (scene, seed, beat, cast) as it is.
struct BeatRow {
  std::string narrator;
  std::string scene;
  uint64_t seed = 0;
  std::string id;  // "<narrator>/<scene>/<seed>"
  std::string profile;
  std::string beat;
  std::vector<std::string> cast;
  std::vector<std::string> tags;
  bool valid = false;
  std::vector<std::string> errors;  // "E_CODE line N: message"
  bool repaired = false;            // the lenient reader had to repair something
  int tokens = 0;
  double ms = 0;
  double tok_s = 0;
  std::string stop_reason;
  int backtracks = 0;  // phrase-ban rewinds while writing the beat (JSON only when > 0)
};
nlohmann::json beat_row_json(const BeatRow& row);
Result<BeatRow> beat_row_from_json(const nlohmann::json& j, const std::string& where);
// Rows of a beats.jsonl; a missing file is no rows. A torn last line (a run killed mid-write) is skipped.
Result<std::vector<BeatRow>> read_beat_rows(const std::string& path);
std::string beat_key(std::string_view narrator, std::string_view scene, uint64_t seed);

struct HarnessOptions {
  std::string beats_path;     // DIR/beats.jsonl; appended to, one flushed line per beat
  bool progress = true;       // progress bar on stderr (silent when not a terminal anyway)
};

struct HarnessStats {
  int64_t planned = 0;
  int64_t skipped = 0;    // already in beats.jsonl
  int64_t generated = 0;
  int64_t failed = 0;     // backend errors (the beat is not recorded, so a rerun retries it)
  std::vector<std::string> failures;
};

// Generates every missing (narrator, scene, seed) beat. `stories` maps a scene's story id to the loaded story.
Result<HarnessStats> run_harness(const std::map<std::string, engine::Story>& stories,
                                 const std::vector<EvalScene>& scenes, const std::vector<EvalNarrator>& narrators,
                                 const HarnessOptions& options);

}  // namespace fabula::eval
