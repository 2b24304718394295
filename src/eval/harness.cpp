// Eval harness: scenes file, seed lists, beat rows (beats.jsonl) and the generation loop over narrators × seeds × scenes.
#include "eval/harness.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "base/ascii.h"
#include "base/file.h"
#include "base/json_view.h"
#include "base/jsonl.h"
#include "base/lines.h"
#include "base/progress.h"
#include "engine/prompt.h"
#include "engine/scene.h"
#include "protocol/unicode.h"
#include "protocol/validator.h"

namespace fabula::eval {

using nlohmann::json;

Result<std::vector<EvalScene>> parse_eval_scenes(std::string_view jsonl, const std::string& where) {
  std::vector<EvalScene> out;
  std::set<std::string> ids;
  FABULA_TRY(for_each_jsonl_object(jsonl, where, [&](const JsonView& j) -> Status {
    const std::string& at = j.where();
    EvalScene s;
    FABULA_ASSIGN(s.id, j.string("id"));
    FABULA_ASSIGN(std::string story, j.string_or("story", ""));
    if (!story.empty()) s.story = story;
    FABULA_ASSIGN(s.place, j.string("place"));
    FABULA_ASSIGN(s.time, j.string("time"));
    FABULA_ASSIGN(s.player_choice, j.string("player_choice"));
    FABULA_ASSIGN(s.cast, j.strings_or_empty("cast"));
    FABULA_ASSIGN(s.tags, j.strings_or_empty("tags"));
    if (s.cast.empty()) return make_error(ErrorCode::kParse, "{}: scene \"{}\" needs a non-empty \"cast\"", at, s.id);
    if (!ids.insert(s.id).second) return make_error(ErrorCode::kParse, "{}: duplicate scene id \"{}\"", at, s.id);
    out.push_back(std::move(s));
    return ok_status();
  }));
  if (out.empty()) return make_error(ErrorCode::kParse, "{}: no scenes", where);
  return out;
}

Result<std::vector<uint64_t>> parse_seed_list(std::string_view text) {
  std::vector<uint64_t> out;
  auto number = [&](std::string_view s, uint64_t& v) {
    s = ascii_trim(s);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
  };
  for (const std::string_view part : split(text, ',')) {
    size_t dash = part.find('-');
    uint64_t a = 0, b = 0;
    if (dash == std::string_view::npos) {
      if (!number(part, a)) return make_error(ErrorCode::kInvalidArgument, "seeds: \"{}\" is not a number or range A-B", part);
      out.push_back(a);
    } else {
      if (!number(part.substr(0, dash), a) || !number(part.substr(dash + 1), b) || b < a || b - a > 100000) {
        return make_error(ErrorCode::kInvalidArgument, "seeds: \"{}\" is not a range A-B with A <= B", part);
      }
      for (uint64_t s = a; s <= b; ++s) out.push_back(s);
    }
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "seeds: empty list");
  return out;
}

std::string beat_key(std::string_view narrator, std::string_view scene, uint64_t seed) {
  return fmt::format("{}\x1f{}\x1f{}", narrator, scene, seed);
}

json beat_row_json(const BeatRow& r) {
  json j{{"narrator", r.narrator}, {"scene", r.scene},     {"seed", r.seed},
         {"id", r.id},             {"profile", r.profile}, {"cast", r.cast},
         {"tags", r.tags},         {"valid", r.valid},     {"errors", r.errors},
         {"repaired", r.repaired}, {"tokens", r.tokens},   {"ms", r.ms},
         {"tok_s", r.tok_s},       {"stop_reason", r.stop_reason}, {"beat", r.beat}};
  if (r.backtracks > 0) j["backtracks"] = r.backtracks;
  return j;
}

engine::NarratorRequest scene_request(const engine::Story& story, const engine::NarratorProfile& profile,
                                      const EvalScene& scene, const engine::Sampling& sampling, uint64_t seed) {
  engine::SceneState state;
  state.place = scene.place;
  state.time = scene.time;
  state.cast = scene.cast;
  return engine::build_request(story, profile, state, scene.player_choice, {}, sampling, seed);
}

Result<BeatRow> beat_row_from_json(const json& doc, const std::string& where) {
  JsonView j(doc, where);
  FABULA_TRY(j.expect_object());
  BeatRow r;
  FABULA_ASSIGN(r.narrator, j.string("narrator"));
  FABULA_ASSIGN(r.scene, j.string("scene"));
  FABULA_ASSIGN(r.beat, j.string("beat"));
  FABULA_ASSIGN(r.id, j.string_or("id", ""));
  FABULA_ASSIGN(r.profile, j.string_or("profile", ""));
  FABULA_ASSIGN(r.stop_reason, j.string_or("stop_reason", ""));
  FABULA_ASSIGN(JsonView seed, j.field("seed"));
  FABULA_ASSIGN(r.seed, seed.unsigned_integer());
  FABULA_ASSIGN(r.cast, j.strings_or_empty("cast"));
  FABULA_ASSIGN(r.tags, j.strings_or_empty("tags"));
  FABULA_ASSIGN(r.errors, j.strings_or_empty("errors"));
  FABULA_ASSIGN(r.valid, j.boolean_or("valid", false));
  FABULA_ASSIGN(r.repaired, j.boolean_or("repaired", false));
  FABULA_ASSIGN(int64_t tokens, j.integer_or("tokens", 0, 0, std::numeric_limits<int>::max()));
  r.tokens = static_cast<int>(tokens);
  FABULA_ASSIGN(r.ms, j.number_or("ms", 0.0));
  FABULA_ASSIGN(r.tok_s, j.number_or("tok_s", 0.0));
  FABULA_ASSIGN(int64_t backtracks, j.integer_or("backtracks", 0, 0, std::numeric_limits<int>::max()));
  r.backtracks = static_cast<int>(backtracks);
  return r;
}

Result<std::vector<BeatRow>> read_beat_rows(const std::string& path) {
  std::vector<BeatRow> rows;
  if (!file_exists(path)) return rows;
  FABULA_ASSIGN(std::string text, read_file_text(path));
  FABULA_TRY(for_each_line(text, [&](std::string_view line, int line_no, bool last) -> Status {
    std::string at = fmt::format("{}:{}", path, line_no);
    auto j = parse_json(line, at);
    // A run killed while writing leaves at most one torn line, at the end; it is regenerated.
    if (!j && last) return ok_status();
    if (!j) return j.take_error();
    FABULA_ASSIGN(BeatRow row, beat_row_from_json(*j, at));
    rows.push_back(std::move(row));
    return ok_status();
  }));
  return rows;
}

namespace {

// Judges one beat (strict validator with the scene's cast locked) into `row`.
void judge_beat(BeatRow& row, const protocol::Manifest& manifest) {
  protocol::ValidateOptions vo;
  vo.locked_cast = row.cast;
  protocol::BeatReport report = protocol::validate_beat(row.beat, manifest, vo);
  row.valid = report.valid;
  row.repaired = report.needed_repair();
  row.errors.clear();
  for (const auto& e : report.errors) {
    row.errors.push_back(fmt::format("{} line {}: {}", protocol::code_name(e.code), e.line, e.message));
  }
}

struct Job {
  const EvalScene* scene;
  uint64_t seed;
};

}  // namespace

Result<HarnessStats> run_harness(const std::map<std::string, engine::Story>& stories,
                                 const std::vector<EvalScene>& scenes, const std::vector<EvalNarrator>& narrators,
                                 const HarnessOptions& options) {
  HarnessStats stats;
  FABULA_ASSIGN(std::vector<BeatRow> existing, read_beat_rows(options.beats_path));
  std::set<std::string> done;
  for (const auto& r : existing) done.insert(beat_key(r.narrator, r.scene, r.seed));

  // Validate everything before generating anything.
  std::set<std::string> labels;
  for (const auto& n : narrators) {
    if (n.workers.empty()) return make_error(ErrorCode::kInvalidArgument, "narrator {}: no backend", n.label);
    if (!labels.insert(n.label).second) {
      return make_error(ErrorCode::kInvalidArgument, "two narrators are labelled \"{}\" (use label=)", n.label);
    }
    for (const auto& s : scenes) {
      auto st = stories.find(s.story);
      if (st == stories.end()) return make_error(ErrorCode::kNotFound, "scene {}: story \"{}\" not loaded", s.id, s.story);
      if (auto p = st->second.profile(n.profile); !p) return p.error();
    }
  }

  std::vector<std::vector<Job>> todo(narrators.size());
  uint64_t total = 0;
  for (size_t i = 0; i < narrators.size(); ++i) {
    for (uint64_t seed : narrators[i].seeds) {
      for (const auto& s : scenes) {
        ++stats.planned;
        if (done.count(beat_key(narrators[i].label, s.id, seed))) {
          ++stats.skipped;
          continue;
        }
        todo[i].push_back({&s, seed});
        ++total;
      }
    }
  }
  if (total == 0) return stats;

  std::FILE* out = std::fopen(options.beats_path.c_str(), "ab");
  if (!out) return make_error(ErrorCode::kIo, "{}: cannot open for appending", options.beats_path);
  std::mutex mu;  // guards `out`, `stats`, the progress bar
  ProgressBar bar("eval", total, "beats");
  Status write_status = ok_status();

  for (size_t i = 0; i < narrators.size(); ++i) {
    const EvalNarrator& n = narrators[i];
    std::atomic<size_t> next{0};
    auto work = [&](engine::Narrator* backend) {
      for (;;) {
        size_t k = next.fetch_add(1);
        if (k >= todo[i].size()) return;
        const Job& job = todo[i][k];
        const engine::Story& story = stories.find(job.scene->story)->second;  // loaded above for every scene
        auto profile = story.profile(n.profile);  // checked above
        engine::NarratorRequest req = scene_request(story, *profile, *job.scene, n.sampling, job.seed);
        auto t0 = std::chrono::steady_clock::now();
        auto res = backend->write(req, [](std::string_view) { return true; });
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mu);
        bar.advance();
        if (!res) {
          ++stats.failed;
          stats.failures.push_back(fmt::format("{} {} seed {}: {}", n.label, job.scene->id, job.seed, res.error().message));
          continue;
        }
        BeatRow row;
        row.narrator = n.label;
        row.scene = job.scene->id;
        row.seed = job.seed;
        row.id = fmt::format("{}/{}/{}", n.label, job.scene->id, job.seed);
        row.profile = n.profile;
        row.beat = res->text;
        row.cast = job.scene->cast;
        row.tags = job.scene->tags;
        row.tokens = res->tokens;
        row.ms = ms;
        row.tok_s = ms > 0 ? 1000.0 * res->tokens / ms : 0;
        row.stop_reason = res->stop_reason;
        row.backtracks = res->backtracks;
        judge_beat(row, story.manifest);
        std::string line = dump_json(beat_row_json(row)) + "\n";
        if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
          write_status = make_error(ErrorCode::kIo, "{}: write failed", options.beats_path);
          return;
        }
        ++stats.generated;
      }
    };
    if (n.workers.size() == 1) {
      work(n.workers[0]);
    } else {
      std::vector<std::thread> threads;
      for (auto* w : n.workers) threads.emplace_back(work, w);
      for (auto& t : threads) t.join();
    }
    if (!write_status.ok()) break;
  }
  bar.finish();
  std::fclose(out);
  if (!write_status.ok()) return write_status.error();
  return stats;
}

}  // namespace fabula::eval
