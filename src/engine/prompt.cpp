// The narrator request (profile texts filled in; vn26b: plus memory) and scene progression.
#include "engine/prompt.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "base/ascii.h"
namespace fabula::engine {
namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  return fmt::format("{}", fmt::join(v, sep));
}

// Word-boundary, case-insensitive containment.
bool mentions(const std::string& text, const std::string& word) {
  if (word.empty()) return false;
  std::string t = ascii_lower(text), w = ascii_lower(word);
  for (size_t pos = 0; (pos = t.find(w, pos)) != std::string::npos; ++pos) {
    bool left = pos == 0 || !std::isalnum(static_cast<unsigned char>(t[pos - 1]));
    size_t end = pos + w.size();
    bool right = end >= t.size() || !std::isalnum(static_cast<unsigned char>(t[end]));
    if (left && right) return true;
  }
  return false;
}

std::string clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
  return s.substr(0, cut) + "…";
}

const std::vector<std::string> kTimes = {"morning", "lunch break", "after school", "evening"};

}  // namespace

int estimate_tokens(std::string_view text) { return static_cast<int>((text.size() + 3) / 4); }

namespace {

// A beat rendered back into protocol text (dialogue and narration lines; stage tools omitted).
std::string beat_transcript(const std::vector<SceneEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    if (const auto* d = std::get_if<DialogueEvent>(&e)) out += fmt::format("[{}]: \"{}\"\n", d->speaker, d->text);
    else if (const auto* n = std::get_if<NarrationEvent>(&e)) out += n->text + "\n";
  }
  return out;
}

}  // namespace

static std::string summary_line(const MemoryBeat& b) {
  std::string line = fmt::format("- At the {}", replace_all(b.place, "_", " "));
  if (!b.player_choice.empty()) line += fmt::format(", after you chose \u201c{}\u201d", b.player_choice);
  line += ":";
  std::vector<std::string> seen;
  std::vector<std::string> offered;
  for (const auto& e : b.events) {
    if (const auto* d = std::get_if<DialogueEvent>(&e)) {
      if (std::find(seen.begin(), seen.end(), d->speaker) != seen.end()) continue;
      seen.push_back(d->speaker);
      line += fmt::format(" {} said \u201c{}\u201d;", d->speaker, clip(d->text, 60));
    } else if (const auto* c = std::get_if<ChoicesEvent>(&e)) {
      offered.insert(offered.end(), c->choices.begin(), c->choices.end());
    } else if (std::holds_alternative<EndSceneEvent>(e)) {
      line += " the scene ended;";
    }
  }
  if (seen.empty()) line += " (no one spoke);";
  if (!offered.empty()) line += " options were " + join(offered, " / ") + ".";
  return line;
}

Memory build_memory(const std::vector<MemoryBeat>& history, int budget_tokens, int summary_lines) {
  Memory m;
  // Newest first into the verbatim window until the budget is spent.
  int used = 0;
  size_t first_recent = history.size();
  std::vector<std::string> recent;
  for (size_t i = history.size(); i-- > 0;) {
    std::string block = history[i].player_choice.empty()
                            ? beat_transcript(history[i].events)
                            : fmt::format("(You chose: \u201c{}\u201d)\n{}", history[i].player_choice,
                                          beat_transcript(history[i].events));
    int cost = estimate_tokens(block);
    if (used + cost > budget_tokens && !recent.empty()) break;
    if (used + cost > budget_tokens) block = clip(block, static_cast<size_t>(budget_tokens) * 4), cost = budget_tokens;
    used += cost;
    recent.push_back(std::move(block));
    first_recent = i;
  }
  std::reverse(recent.begin(), recent.end());
  m.recent = join(recent, "\n");
  m.recent_beats = static_cast<int>(recent.size());
  // Everything older is summarised, one line per beat; the oldest lines collapse into a count.
  std::vector<std::string> lines;
  for (size_t i = 0; i < first_recent; ++i) lines.push_back(summary_line(history[i]));
  m.summarized_beats = static_cast<int>(first_recent);
  if (lines.size() > static_cast<size_t>(summary_lines)) {
    size_t drop = lines.size() - summary_lines;
    std::vector<std::string> places;
    for (size_t i = 0; i < drop; ++i) {
      std::string p = replace_all(history[i].place, "_", " ");
      if (std::find(places.begin(), places.end(), p) == places.end()) places.push_back(p);
    }
    lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(drop));
    lines.insert(lines.begin(), fmt::format("- Earlier: {} beats at the {}.", drop, join(places)));
  }
  m.summary = join(lines, "\n");
  return m;
}

NarratorRequest build_request(const Story& story, const NarratorProfile& profile, const SceneState& scene,
                              const std::string& player_choice, const std::vector<MemoryBeat>& history,
                              const Sampling& sampling, uint64_t seed) {
  std::string memory_block;
  if (profile.memory && !history.empty()) {
    Memory m = build_memory(history, profile.memory_tokens);
    if (!m.summary.empty()) memory_block += "Story so far:\n" + m.summary + "\n\n";
    if (!m.recent.empty()) memory_block += "Recent beats:\n" + m.recent + "\n";
  }
  std::vector<std::string> on_stage;
  for (const auto& s : scene.stage) on_stage.push_back(fmt::format("{} ({}, {})", s.character, s.expression, s.position));
  const Location* loc = story.find_location(scene.place);
  std::map<std::string, std::string> vars = {
      {"{cast}", join(scene.cast)},
      {"{place}", scene.place},
      {"{place_name}", loc ? loc->name : scene.place},
      {"{time}", scene.time},
      {"{expressions}", join(story.expressions)},
      {"{player_choice}", player_choice},
      {"{memory}", memory_block},
      {"{on_stage}", on_stage.empty() ? std::string("nobody") : join(on_stage)},
      {"{title}", story.title},
      {"{premise}", story.premise},
  };
  std::string user = profile.user, system = profile.system;
  for (const auto& [k, v] : vars) {
    user = replace_all(user, k, v);
    system = replace_all(system, k, v);
  }
  NarratorRequest req;
  req.messages = {{"system", system}, {"user", user}};
  req.sampling = sampling;
  req.seed = seed;
  req.manifest = &story.manifest;
  req.cast = scene.cast;
  return req;
}

SceneState advance_scene(const Story& story, const SceneState& last, const std::string& choice) {
  SceneState s = last;
  if (last.ended) {
    s.scene_index = last.scene_index + 1;
    s.ended = false;
    s.stage.clear();
    size_t here = 0;
    for (size_t i = 0; i < story.locations.size(); ++i)
      if (story.locations[i].id == last.place) here = i;
    s.place = story.locations[(here + 1) % story.locations.size()].id;
    auto t = std::find(kTimes.begin(), kTimes.end(), last.time);
    s.time = t == kTimes.end() ? kTimes[0] : kTimes[(t - kTimes.begin() + 1) % kTimes.size()];
  }
  for (const auto& loc : story.locations) {
    std::string spaced = replace_all(loc.id, "_", " ");
    if (mentions(choice, spaced) || mentions(choice, loc.name) || mentions(choice, loc.id)) {
      if (s.place != loc.id) s.stage.clear();
      s.place = loc.id;
      break;
    }
  }
  for (const auto& c : story.cast)
    if (mentions(choice, c.name) && std::find(s.cast.begin(), s.cast.end(), c.name) == s.cast.end() && s.cast.size() < 4)
      s.cast.push_back(c.name);
  return s;
}

}  // namespace fabula::engine
