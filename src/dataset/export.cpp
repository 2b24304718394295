// Export: filters in a fixed order, exact and near-duplicate removal, a split by scene, and the two row formats.
// Judging reuses the strict validator, the metrics (words, TTR, slop density) and the tell list of src/eval.
#include "dataset/export.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "base/ascii.h"
#include "base/file.h"
#include "eval/metrics.h"
#include "eval/words.h"
#include "protocol/validator.h"

namespace fabula::dataset {
namespace {

using nlohmann::json;

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

json meta_of(const TurnRow& t) {
  return json{{"id", t.id},
              {"story", t.story},
              {"scene", t.scene()},
              {"place", t.place},
              {"time", t.time},
              {"cast", t.cast},
              {"player_choice", t.player_choice},
              {"seed", t.seed},
              {"model", t.model},
              {"profile", t.profile},
              {"sampling", t.sampling},
              {"kept", t.kept},
              {"prompt_source", t.prompt_source},
              {"session", t.session},
              {"beat", t.beat_id}};
}

std::string jsonl(const std::vector<json>& rows) {
  std::string out;
  for (const auto& r : rows) out += r.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return out;
}

// Words, TTR and slop density of a set of rows, pooled over their stories (compute_metrics judges per manifest).
Result<SplitSummary> summarize(const std::vector<const TurnRow*>& rows, const StoryLookup& stories,
                               const eval::TellList& tells) {
  SplitSummary s;
  s.rows = static_cast<int64_t>(rows.size());
  std::set<std::string> scenes;
  std::map<std::string, std::vector<eval::SceneSample>> by_story;
  for (const TurnRow* t : rows) {
    scenes.insert(t->scene());
    by_story[t->story].push_back({t->id, static_cast<int64_t>(t->seed), t->beat, t->cast});
  }
  s.scenes = static_cast<int64_t>(scenes.size());
  double ttr_weighted = 0, tells_total = 0;
  for (const auto& [id, samples] : by_story) {
    FABULA_ASSIGN(const engine::Story* story, stories(id));
    eval::MetricsReport r = eval::compute_metrics(samples, story->manifest, tells);
    s.words += r.words;
    tells_total += static_cast<double>(r.tell_matches);
    ttr_weighted += r.ttr * static_cast<double>(samples.size());
  }
  if (s.rows > 0) s.ttr = ttr_weighted / static_cast<double>(s.rows);
  if (s.words > 0) s.slop_density = 1000.0 * tells_total / static_cast<double>(s.words);
  return s;
}

}  // namespace

std::string_view reject_name(Reject reason) {
  switch (reason) {
    case Reject::kNoPrompt: return "no_prompt";
    case Reject::kNotKept: return "not_kept";
    case Reject::kInvalid: return "invalid";
    case Reject::kCast: return "cast";
    case Reject::kShort: return "short";
    case Reject::kSlop: return "slop";
    case Reject::kDuplicate: return "duplicate";
    case Reject::kNearDuplicate: return "near_duplicate";
  }
  return "?";
}

std::vector<std::string> prose_shingles(const std::string& beat) {
  std::vector<std::string> out = eval::ngrams(eval::line_words(eval::extract_prose(beat)), 3);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t common = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    int c = a[i].compare(b[j]);
    if (c == 0) ++common, ++i, ++j;
    else if (c < 0) ++i;
    else ++j;
  }
  return static_cast<double>(common) / static_cast<double>(a.size() + b.size() - common);
}

Result<std::vector<FilteredRow>> filter_turns(std::vector<TurnRow> turns, const StoryLookup& stories,
                                              const eval::TellList& tells, const FilterOptions& options) {
  std::vector<FilteredRow> out;
  out.reserve(turns.size());
  std::map<std::string, std::string> first_with_text;  // trimmed beat -> id of the row kept with it
  std::vector<std::pair<std::vector<std::string>, size_t>> kept_shingles;  // (shingles, row index)
  for (auto& turn : turns) {
    FilteredRow f;
    f.turn = std::move(turn);
    const TurnRow& t = f.turn;
    auto reject = [&](Reject r) { f.rejected = r; };
    if (t.messages.empty()) {
      reject(Reject::kNoPrompt);
    } else if (options.kept_only && !t.kept) {
      reject(Reject::kNotKept);
    } else {
      FABULA_ASSIGN(const engine::Story* story, stories(t.story));
      protocol::ValidateOptions vo;
      vo.locked_cast = t.cast;
      protocol::BeatReport report = protocol::validate_beat(t.beat, story->manifest, vo);
      bool only_cast = !report.errors.empty();
      for (const auto& e : report.errors) {
        f.errors.push_back(fmt::format("{} line {}: {}", protocol::code_name(e.code), e.line, e.message));
        only_cast = only_cast && e.code == protocol::Code::kCastLock;
      }
      const eval::SceneSample sample{t.id, static_cast<int64_t>(t.seed), t.beat, t.cast};
      eval::MetricsReport m = eval::compute_metrics(std::span(&sample, 1), story->manifest, tells);
      f.words = m.words;
      f.slop = m.slop_density;
      const std::string text(ascii_trim(t.beat));
      std::vector<std::string> shingles = prose_shingles(t.beat);
      if (!report.valid) {
        reject(only_cast ? Reject::kCast : Reject::kInvalid);
      } else if (f.words < options.min_words) {
        reject(Reject::kShort);
      } else if (options.max_slop && f.slop > *options.max_slop) {
        reject(Reject::kSlop);
      } else if (auto it = first_with_text.find(text); it != first_with_text.end()) {
        reject(Reject::kDuplicate);
        f.duplicate_of = it->second;
        f.similarity = 1.0;
      } else if (!shingles.empty()) {  // a beat without a prose trigram cannot be judged similar
        for (const auto& [other, index] : kept_shingles) {
          double j = jaccard(shingles, other);
          if (j >= options.near_duplicate) {
            reject(Reject::kNearDuplicate);
            f.duplicate_of = out[index].turn.id;
            f.similarity = j;
            break;
          }
        }
      }
      if (!f.rejected) {
        first_with_text.emplace(text, t.id);
        if (!shingles.empty()) kept_shingles.emplace_back(std::move(shingles), out.size());
      }
    }
    if (!f.rejected || (*f.rejected != Reject::kInvalid && *f.rejected != Reject::kCast)) f.errors.clear();
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<std::string> held_out_scenes(const std::vector<std::string>& scenes, double share, uint64_t seed) {
  std::vector<std::string> distinct(scenes);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const size_t n = distinct.size();
  size_t take = static_cast<size_t>(std::llround(share * static_cast<double>(n)));
  if (share > 0 && n >= 2) take = std::clamp<size_t>(take, 1, n - 1);  // both splits get a scene
  if (n < 2) take = 0;
  const std::string salt = fmt::format("{}:", seed);
  std::sort(distinct.begin(), distinct.end(), [&](const std::string& a, const std::string& b) {
    uint64_t ha = fnv1a(a, fnv1a(salt)), hb = fnv1a(b, fnv1a(salt));
    return ha != hb ? ha < hb : a < b;
  });
  distinct.resize(take);
  std::sort(distinct.begin(), distinct.end());
  return distinct;
}

namespace {

// The chat-messages row: {"messages": [system, user, {"role": "assistant", "content": beat}], "meta": {...}}.
json chat_row(const TurnRow& t) {
  json messages = json::array();
  for (const auto& m : t.messages)
    messages.push_back({{"role", m.role}, {"content", std::string(ascii_trim(m.content))}});
  messages.push_back({{"role", "assistant"}, {"content", std::string(ascii_trim(t.beat))}});
  return json{{"messages", messages}, {"meta", meta_of(t)}};
}

}  // namespace

Status check_chat_row(const json& row) {
  if (!row.is_object() || !row.contains("messages") || !row["messages"].is_array() || row["messages"].empty())
    return make_error(ErrorCode::kParse, "row: expected {{\"messages\": [...]}} with at least one message");
  const json& ms = row["messages"];
  std::string expect = "user";
  for (size_t i = 0; i < ms.size(); ++i) {
    const json& m = ms[i];
    if (!m.is_object() || m.size() != 2 || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      return make_error(ErrorCode::kParse, "messages[{}]: expected exactly {{\"role\": string, \"content\": string}}",
                        i);
    const std::string role = m["role"].get<std::string>();
    if (i == 0 && role == "system") continue;
    if (role != expect)
      return make_error(ErrorCode::kParse, "messages[{}]: role \"{}\" where \"{}\" comes next", i, role, expect);
    expect = expect == "user" ? "assistant" : "user";
  }
  if (ms.back()["role"] != "assistant")
    return make_error(ErrorCode::kParse, "messages: the last message must be the assistant's");
  return ok_status();
}

namespace {

// {"prompt": rendered, "completion": beat + end_of_turn, "text": prompt + completion, "meta": {...}}.
Result<json> text_row(const TurnRow& t, const TextFormat& format) {
  FABULA_ASSIGN(std::string prompt, format.render(t.messages));
  std::string completion = std::string(ascii_trim(t.beat)) + format.end_of_turn;
  return json{{"prompt", prompt}, {"completion", completion}, {"text", prompt + completion}, {"meta", meta_of(t)}};
}

// The held-out rows as an eval scenes file (eval::parse_eval_scenes reads it): one scene per distinct (story, place,
// time, cast, player choice), ids "<place>-<n>".
std::string eval_scenes_jsonl(std::span<const TurnRow* const> rows) {
  std::set<std::tuple<std::string, std::string, std::string, std::vector<std::string>, std::string>> seen;
  std::map<std::string, int> per_place;
  std::vector<json> out;
  for (const TurnRow* t : rows) {
    if (!seen.insert({t->story, t->place, t->time, t->cast, t->player_choice}).second) continue;
    out.push_back({{"id", fmt::format("{}-{}", t->place, ++per_place[t->place])},
                   {"story", t->story},
                   {"place", t->place},
                   {"time", t->time},
                   {"cast", t->cast},
                   {"player_choice", t->player_choice},
                   {"tags", {"held-out"}}});
  }
  return jsonl(out);
}

}  // namespace

Result<ExportSummary> export_dataset(std::vector<TurnRow> turns, const StoryLookup& stories,
                                     const eval::TellList& tells, const ExportOptions& options) {
  ExportSummary summary;
  summary.rows_in = static_cast<int64_t>(turns.size());
  FABULA_ASSIGN(auto judged, filter_turns(std::move(turns), stories, tells, options.filters));
  for (int k = 0; k < kRejectKinds; ++k) summary.removed[std::string(reject_name(static_cast<Reject>(k)))] = 0;
  std::vector<json> rejected;
  std::vector<const TurnRow*> kept;
  for (const auto& f : judged) {
    if (!f.rejected) {
      kept.push_back(&f.turn);
      continue;
    }
    ++summary.removed[std::string(reject_name(*f.rejected))];
    std::set<std::string> codes;
    for (const auto& e : f.errors) codes.insert(e.substr(0, e.find(' ')));
    for (const auto& c : codes) ++summary.error_codes[c];
    json r = {{"id", f.turn.id}, {"reason", reject_name(*f.rejected)}, {"kept", f.turn.kept},
              {"words", f.words}, {"slop", f.slop}, {"beat", f.turn.beat}};
    if (!f.errors.empty()) r["errors"] = f.errors;
    if (!f.duplicate_of.empty()) r["duplicate_of"] = f.duplicate_of, r["similarity"] = f.similarity;
    rejected.push_back(std::move(r));
  }
  summary.rows_out = static_cast<int64_t>(kept.size());

  std::vector<std::string> scenes;
  for (const TurnRow* t : kept) scenes.push_back(t->scene());
  const std::vector<std::string> held = held_out_scenes(scenes, options.held_out, options.split_seed);
  std::vector<const TurnRow*> train, held_out;
  for (const TurnRow* t : kept)
    (std::binary_search(held.begin(), held.end(), t->scene()) ? held_out : train).push_back(t);
  FABULA_ASSIGN(summary.train, summarize(train, stories, tells));
  FABULA_ASSIGN(summary.held_out, summarize(held_out, stories, tells));

  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot create the directory: {}", options.out_dir, ec.message());
  auto path = [&](const char* name) { return (std::filesystem::path(options.out_dir) / name).string(); };
  for (auto [name, rows] : {std::pair{"train", &train}, std::pair{"heldout", &held_out}}) {
    if (options.chat) {
      std::vector<json> lines;
      for (const TurnRow* t : *rows) lines.push_back(chat_row(*t));
      FABULA_TRY(write_file_atomic(path(fmt::format("{}.jsonl", name).c_str()), jsonl(lines)));
    }
    if (options.text) {
      std::vector<json> lines;
      for (const TurnRow* t : *rows) {
        FABULA_ASSIGN(json row, text_row(*t, *options.text));
        lines.push_back(std::move(row));
      }
      FABULA_TRY(write_file_atomic(path(fmt::format("{}.text.jsonl", name).c_str()), jsonl(lines)));
    }
  }
  FABULA_TRY(write_file_atomic(path("heldout-scenes.jsonl"), eval_scenes_jsonl(held_out)));
  FABULA_TRY(write_file_atomic(path("rejected.jsonl"), jsonl(rejected)));
  FABULA_TRY(write_file_atomic(path("summary.json"), summary_json(summary).dump(2) + "\n"));
  return summary;
}

json summary_json(const ExportSummary& s) {
  auto split = [](const SplitSummary& p) {
    return json{{"rows", p.rows}, {"scenes", p.scenes}, {"words", p.words}, {"ttr", p.ttr},
                {"slop_density", p.slop_density}};
  };
  return json{{"rows_in", s.rows_in}, {"rows_out", s.rows_out}, {"removed", s.removed},
              {"error_codes", s.error_codes}, {"train", split(s.train)}, {"held_out", split(s.held_out)}};
}

std::string summary_table(const ExportSummary& s) {
  std::string out = fmt::format("{:<16} {:>8}\n{:<16} {:>8}\n", "rows in", s.rows_in, "removed by", "rows");
  for (int k = 0; k < kRejectKinds; ++k) {
    const std::string name(reject_name(static_cast<Reject>(k)));
    out += fmt::format("  {:<14} {:>8}\n", name, s.removed.at(name));
  }
  if (!s.error_codes.empty()) {
    std::string codes;
    for (const auto& [code, n] : s.error_codes) codes += fmt::format("{}{} {}", codes.empty() ? "" : ", ", code, n);
    out += "  (rows removed by the validator, per error code: " + codes + ")\n";
  }
  out += fmt::format("{:<16} {:>8}\n\n", "rows out", s.rows_out);
  out += fmt::format("{:<10} {:>6} {:>7} {:>8} {:>7} {:>9}\n", "split", "rows", "scenes", "words", "TTR", "slop/1k");
  for (auto [name, p] : {std::pair{"train", &s.train}, std::pair{"held-out", &s.held_out}})
    out += fmt::format("{:<10} {:>6} {:>7} {:>8} {:>7.3f} {:>9.2f}\n", name, p->rows, p->scenes, p->words, p->ttr,
                       p->slop_density);
  return out;
}

}  // namespace fabula::dataset
