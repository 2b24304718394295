// `fabula dataset export`: turns -> validity-filtered, de-duplicated training data split by scene, as chat-messages
// JSONL (HF datasets / TRL SFTTrainer) and as text pre-rendered through the model's chat template.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "dataset/turns.h"
#include "eval/tells.h"

namespace fabula::dataset {

// The filters, in the order a row meets them; a row is counted under the first it fails.
enum class Reject {
  kNoPrompt,       // "no_prompt": the messages were not recorded (an old save) and not re-rendered
  kNotKept,        // "not_kept": --kept-only and the player regenerated this beat
  kInvalid,        // "invalid": the strict validator found errors other than the cast lock
  kCast,           // "cast": the only errors are E_CAST_LOCK (a speaker outside the scene's locked cast)
  kShort,          // "short": fewer prose words than --min-words
  kSlop,           // "slop": tell matches per 1,000 prose words above --max-slop
  kDuplicate,      // "duplicate": the same beat text as an earlier row
  kNearDuplicate,  // "near_duplicate": prose trigram shingles this close (Jaccard) to an earlier row's (beats
                   // with no prose trigram are never near duplicates)
};
inline constexpr int kRejectKinds = 8;
std::string_view reject_name(Reject reason);

struct FilterOptions {
  bool kept_only = false;
  int64_t min_words = 8;                 // prose words (docs/PROTOCOL.md §4 words)
  std::optional<double> max_slop;        // tells per 1,000 prose words
  double near_duplicate = 0.8;           // Jaccard similarity of prose word-trigram sets; > 1 turns it off
};

struct FilteredRow {
  TurnRow turn;
  std::optional<Reject> rejected;
  std::vector<std::string> errors;  // validator errors ("E_CODE line N: message") of a rejected row
  std::string duplicate_of;         // the earlier row's id (duplicates)
  double similarity = 0;            // near duplicates: Jaccard with that row
  int64_t words = 0;                // prose words
  double slop = 0;                  // tells per 1,000 prose words
};

// Judges every row: the strict validator with the scene's locked cast, the story's manifest and the tell list.
// Rows keep their order; the first of two duplicates is kept.
Result<std::vector<FilteredRow>> filter_turns(std::vector<TurnRow> turns, const StoryLookup& stories,
                                              const eval::TellList& tells, const FilterOptions& options);

// Word-trigram shingles of a beat's prose (eval::extract_prose, words_of, ngrams), and their Jaccard similarity.
std::vector<std::string> prose_shingles(const std::string& beat);
double jaccard(const std::vector<std::string>& sorted_a, const std::vector<std::string>& sorted_b);

// Scenes (TurnRow::scene()) to hold out: a share of the distinct scenes, at least one when there are two or more
// and the share is above 0, chosen by a seeded hash so the choice is stable as rows are added.
std::vector<std::string> held_out_scenes(const std::vector<std::string>& scenes, double share, uint64_t seed);

// Checks a datasets-style row: "messages" of {role, content} strings, an optional system first, then user and
// assistant alternating, ending with the assistant. kParse naming the first problem.
Status check_chat_row(const nlohmann::json& row);

// Renders messages through the model's chat template with the generation prompt and thinking off, exactly what
// the local narrator tokenizes (backend::LoadedModel::render_chat).
using PromptRenderer = std::function<Result<std::string>(std::span<const ChatMessage>)>;
struct TextFormat {
  PromptRenderer render;
  std::string end_of_turn;  // appended to the beat: the marker the narrator stops on ("<turn|>")
};

struct SplitSummary {
  int64_t rows = 0, scenes = 0, words = 0;
  double ttr = 0, slop_density = 0;
};
struct ExportSummary {
  int64_t rows_in = 0, rows_out = 0;
  std::map<std::string, int64_t> removed;      // reject name -> rows (every filter listed, zeros included)
  std::map<std::string, int64_t> error_codes;  // E_* -> rejected rows carrying it
  SplitSummary train, held_out;
};

struct ExportOptions {
  std::string out_dir;
  FilterOptions filters;
  double held_out = 0.2;   // share of scenes
  uint64_t split_seed = 1;
  bool chat = true;        // train.jsonl, heldout.jsonl
  std::optional<TextFormat> text;  // train.text.jsonl, heldout.text.jsonl
};

// Filters, splits and writes OUT: train.jsonl / heldout.jsonl (chat), *.text.jsonl (pre-rendered), rejected.jsonl
// (every removed row with its reason and error codes), heldout-scenes.jsonl (for `fabula eval --scenes`),
// summary.json. Files are written atomically.
Result<ExportSummary> export_dataset(std::vector<TurnRow> turns, const StoryLookup& stories,
                                     const eval::TellList& tells, const ExportOptions& options);

// The summary as a table (rows in, removed per filter with error codes, words, TTR, slop density, scenes per split).
std::string summary_table(const ExportSummary& summary);
nlohmann::json summary_json(const ExportSummary& summary);

}  // namespace fabula::dataset
