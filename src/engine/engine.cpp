// Turn loop: lines are applied the moment they complete, so the player sees the first line while the narrator still writes.
#include "engine/engine.h"

#include <fmt/format.h>

#include "base/log.h"
#include "protocol/line_splitter.h"
#include "protocol/parser.h"

namespace fabula::engine {

Engine::Engine(const Story& story, Narrator& narrator, EngineOptions options)
    : story_(story), narrator_(narrator), options_(std::move(options)) {}

Result<BeatOutcome> Engine::play_beat(const SceneState& scene, const std::vector<MemoryBeat>& history,
                                      const std::string& player_choice, uint64_t seed, const EventSink& sink,
                                      const std::atomic<bool>* cancel) {
  FABULA_ASSIGN(NarratorProfile profile, story_.profile(options_.profile));
  BeatOutcome out;
  std::vector<std::string> all_notes;
  for (int attempt = 0; attempt <= options_.max_regenerations; ++attempt) {
    uint64_t attempt_seed = seed + static_cast<uint64_t>(attempt);
    NarratorRequest req = build_request(story_, profile, scene, player_choice, history, options_.sampling, attempt_seed);
    if (attempt > 0) sink(AttemptEvent{attempt + 1, true, scene});

    BeatOutcome cur;
    cur.state = scene;
    cur.seed = attempt_seed;
    cur.prompt = req.messages;
    ApplyLog log;
    protocol::LineSplitter splitter;
    bool done = false, has_prose = false;
    auto handle = [&](const protocol::LogicalLine& ll) {
      if (done) return;  // anything after the beat-ending tool is ignored (E_FLOW)
      auto parsed = protocol::parse_line(ll.text, ll.line);
      if (!parsed) {
        log.notes.push_back(fmt::format("line {}: unparseable, dropped: {}", ll.line, parsed.error().message));
        return;
      }
      for (const auto& rep : parsed->repairs)
        log.notes.push_back(fmt::format("line {}: repaired ({}): {}", ll.line, protocol::repair_kind_name(rep.kind), rep.message));
      ApplyResult ar = apply_line(cur.state, story_, parsed->line, ll.line, log);
      for (auto& ev : ar.events) {
        if (is_line(ev)) has_prose = true;
        sink(to_event(ev));
        cur.events.push_back(std::move(ev));
      }
      if (ar.ends_beat) {
        done = true;
        cur.choices = ar.choices;
        cur.ended = ar.end_scene;
      }
    };
    std::vector<protocol::LogicalLine> lines;
    auto written = narrator_.write(req, [&](std::string_view piece) {
      if (cancel && cancel->load()) return false;
      cur.text += piece;
      lines.clear();
      splitter.feed(piece, lines);
      for (const auto& ll : lines) handle(ll);
      return !done;  // stop the narrator once the beat has ended
    });
    if (!written) return written.take_error();
    if (cancel && cancel->load()) return make_error(ErrorCode::kCancelled, "beat cancelled");
    if (!done)
      if (auto last = splitter.finish()) handle(*last);

    cur.attempts = attempt + 1;
    cur.cast_lock_violations = log.cast_lock_violations;
    for (auto& n : log.notes) all_notes.push_back(fmt::format("attempt {}: {}", attempt + 1, n));
    if (done && has_prose) {
      cur.notes = std::move(all_notes);
      return cur;
    }
    std::string why = !done ? "no choices or end_scene" : "no narration or dialogue";
    all_notes.push_back(fmt::format("attempt {} (seed {}) invalid: {}", attempt + 1, attempt_seed, why));
    FABULA_LOG_WARN("beat attempt {} (seed {}) invalid: {}", attempt + 1, attempt_seed, why);
    out = std::move(cur);
  }
  // Every attempt failed: keep the last one's stage and lines, and hand control back with a neutral choice.
  out.choices = {options_.fallback_choice};
  out.ended = false;
  out.fallback = true;
  ChoicesEvent ev{out.choices, std::nullopt, true};
  sink(ev);
  out.events.push_back(std::move(ev));
  all_notes.push_back(fmt::format("fallback: offered \"{}\" after {} attempts", options_.fallback_choice, out.attempts));
  out.notes = std::move(all_notes);
  return out;
}

}  // namespace fabula::engine
