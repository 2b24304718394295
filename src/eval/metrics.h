// Metrics of docs/PROTOCOL.md §4 (validity, slop density, TTR, cross-scene trigram reuse, MATTR, MTLD, rep-3) and eval helpers.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/tells.h"
#include "eval/words.h"
#include "protocol/manifest.h"

namespace fabula::eval {

// One scene: one generated beat for one (scene prompt, seed) pair.
struct SceneSample {
  std::string scene;
  int64_t seed = 0;
  std::string beat;
  std::vector<std::string> cast;  // locked cast; empty = the story's cast
};

// "open up / deflect / stay silent": a keyword classifier of choice texts (see metrics.cpp).
enum class ChoiceStance { kOpenUp, kDeflect, kStaySilent, kOther };
ChoiceStance classify_choice(std::string_view text);

struct MetricsReport {
  // The four headline metrics plus the length-robust ones (docs/PROTOCOL.md §4).
  double validity = 0;       // valid beats / beats
  double slop_density = 0;   // 1000 * tell matches / prose words, pooled
  double ttr = 0;            // mean over scenes of distinct / words
  double trigram_reuse = 0;  // distinct trigrams seen in >= 2 scenes / distinct trigrams
  double mattr50 = 0;        // mean over scenes of MATTR (window 50)
  double mattr100 = 0;       // mean over scenes of MATTR (window 100)
  double mtld = 0;           // mean over scenes of MTLD (factor 0.72)
  double rep3 = 0;           // mean over scenes of 1 - distinct trigrams / trigrams
  int64_t words = 0;         // prose words, all scenes
  int64_t scenes = 0;
  // Extras for the eval harness.
  int64_t valid_beats = 0;
  int64_t tell_matches = 0;
  double pov_slip_rate = 0;   // first-person narration lines / narration lines
  double choice_variety = 0;  // distinct choice texts (normalised) / choices offered
  int64_t choices_offered = 0;
  std::map<std::string, double> stance_share;  // stance name -> share of offered choices
  double repair_rate = 0;     // beats the lenient reader had to repair / beats
  std::map<std::string, int64_t> error_counts;  // E_* code -> count over all beats
  std::map<std::string, int64_t> tell_counts;   // pattern source -> matches
};

// Computes every metric. `manifest` supplies the cast (tell exclusion, cast lock) and the tools.
MetricsReport compute_metrics(std::span<const SceneSample> scenes, const protocol::Manifest& manifest,
                              const TellList& tells);
// Every field of the report, under its own name (fabula metrics --json, the eval report).
nlohmann::json to_json(const MetricsReport& r);

// Building blocks (exposed for tests and the harness). All take words_of() output.
double type_token_ratio(const std::vector<std::string>& words);           // 0 for no words
double mattr(const std::vector<std::string>& words, size_t window);       // TTR if fewer words than window
double mtld(const std::vector<std::string>& words, double factor = 0.72);  // see metrics.cpp
double rep_n(const std::vector<std::vector<std::string>>& lines, int n);  // 0 if no n-grams
// Cross-scene reuse of the given per-scene n-gram lists.
double cross_scene_reuse(const std::vector<std::vector<std::string>>& scene_ngrams);

// Reads metrics input rows ({"scene","seed","beat", optional "cast"}) from JSONL text.
Result<std::vector<SceneSample>> parse_scene_rows(std::string_view jsonl, const std::string& where);

}  // namespace fabula::eval
