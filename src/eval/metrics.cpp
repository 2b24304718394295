// Metrics of docs/PROTOCOL.md §4 over scenes (one beat per scene prompt x seed), plus choice/POV/repair helpers.
#include "eval/metrics.h"

#include <set>
#include <unordered_map>
#include <unordered_set>

#include "base/json_view.h"
#include "base/jsonl.h"
#include "protocol/unicode.h"
#include "protocol/validator.h"

namespace fabula::eval {

double type_token_ratio(const std::vector<std::string>& words) {
  if (words.empty()) return 0;
  std::unordered_set<std::string> types(words.begin(), words.end());
  return static_cast<double>(types.size()) / static_cast<double>(words.size());
}

// MATTR (Covington & McFall 2010): the mean TTR of every window of `window` consecutive words.
// A text shorter than the window has one window, itself.
double mattr(const std::vector<std::string>& words, size_t window) {
  if (words.empty() || window == 0) return 0;
  if (words.size() <= window) return type_token_ratio(words);
  std::unordered_map<std::string, int> counts;
  for (size_t i = 0; i < window; ++i) ++counts[words[i]];
  double sum = static_cast<double>(counts.size()) / static_cast<double>(window);
  for (size_t i = window; i < words.size(); ++i) {
    ++counts[words[i]];
    if (--counts[words[i - window]] == 0) counts.erase(words[i - window]);
    sum += static_cast<double>(counts.size()) / static_cast<double>(window);
  }
  return sum / static_cast<double>(words.size() - window + 1);
}

// One MTLD pass (McCarthy & Jarvis 2010, "MTLD, vocd-D, and HD-D", Behavior Research Methods 42(2)):
// walk the words keeping a running TTR; whenever it falls to the factor size (<= 0.72) a full factor
// is counted and the count restarts. The leftover segment adds a partial factor
// (1 - its TTR) / (1 - 0.72). The pass's value is words / factors.
static double mtld_pass(const std::vector<std::string>& words, double factor, bool reverse) {
  double factors = 0;
  std::unordered_set<std::string> types;
  size_t tokens = 0;
  double ttr = 1.0;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = reverse ? words[words.size() - 1 - i] : words[i];
    types.insert(w);
    ++tokens;
    ttr = static_cast<double>(types.size()) / static_cast<double>(tokens);
    if (ttr <= factor) {
      factors += 1;
      types.clear();
      tokens = 0;
      ttr = 1.0;
    }
  }
  if (tokens > 0) factors += (1.0 - ttr) / (1.0 - factor);
  // No factor at all (every word distinct): the text never lost diversity, so its MTLD is at least
  // its length; we report the length (implementations differ; koRpus leaves it undefined).
  if (factors == 0) return static_cast<double>(words.size());
  return static_cast<double>(words.size()) / factors;
}

// MTLD: the mean of the forward and the backward pass (the standard bidirectional MTLD).
double mtld(const std::vector<std::string>& words, double factor) {
  if (words.empty()) return 0;
  return (mtld_pass(words, factor, false) + mtld_pass(words, factor, true)) / 2.0;
}

double rep_n(const std::vector<std::vector<std::string>>& lines, int n) {
  auto grams = ngrams(lines, n);
  if (grams.empty()) return 0;
  std::unordered_set<std::string> distinct(grams.begin(), grams.end());
  return 1.0 - static_cast<double>(distinct.size()) / static_cast<double>(grams.size());
}

double cross_scene_reuse(const std::vector<std::vector<std::string>>& scene_ngrams) {
  struct Seen {
    size_t last_scene;
    int scenes;
  };
  std::unordered_map<std::string, Seen> seen;
  for (size_t s = 0; s < scene_ngrams.size(); ++s) {
    for (const auto& g : scene_ngrams[s]) {
      auto [it, inserted] = seen.try_emplace(g, Seen{s, 1});
      if (!inserted && it->second.last_scene != s) {
        it->second.last_scene = s;
        ++it->second.scenes;
      }
    }
  }
  if (seen.empty()) return 0;
  size_t reused = 0;
  for (const auto& [g, info] : seen) reused += info.scenes >= 2;
  return static_cast<double>(reused) / static_cast<double>(seen.size());
}

namespace {

std::string_view stance_name(ChoiceStance stance) {
  switch (stance) {
    case ChoiceStance::kOpenUp: return "open_up";
    case ChoiceStance::kDeflect: return "deflect";
    case ChoiceStance::kStaySilent: return "stay_silent";
    case ChoiceStance::kOther: return "other";
  }
  return "other";
}

}  // namespace

// The "open up / deflect / stay silent" reduction of a choice: keyword phrases over the choice's
// words, checked in this order (the first family with a hit wins):
//   stay_silent: the player holds back and says nothing (stay quiet, listen, nod, wait, watch...);
//   deflect:     the player dodges or lightens the moment (change the subject, pretend, tease, joke,
//                laugh along, ignore, shrug, leave...);
//   open_up:     the player engages or shows themselves (ask, tell, admit, share, offer, promise,
//                help, compliment, suggest, invite, take a side, walk someone home, challenge...).
// Anything else is "other". Small on purpose: it is a coarse variety signal, not a classifier.
ChoiceStance classify_choice(std::string_view text) {
  static const std::vector<std::pair<ChoiceStance, std::vector<std::string>>> families = {
      {ChoiceStance::kStaySilent,
       {"stay quiet", "stay silent", "keep quiet", "remain silent", "say nothing", "don't say anything",
        "hold your tongue", "keep it to yourself", "listen", "nod", "wait", "watch", "observe", "don't answer",
        "stay still", "just smile", "let it go", "let them talk"}},
      {ChoiceStance::kDeflect,
       {"change the subject", "pretend", "tease", "joke", "laugh it off", "laugh along", "ignore", "shrug",
        "avoid", "dodge", "deflect", "brush it off", "play dumb", "play it cool", "make an excuse", "excuse yourself",
        "walk away", "leave", "run away", "distract", "never mind", "later", "change topic", "sneak"}},
      {ChoiceStance::kOpenUp,
       {"ask", "tell", "admit", "confess", "share", "offer", "promise", "help", "compliment", "suggest", "invite",
        "apologize", "apologise", "thank", "comfort", "reassure", "agree", "open up", "hug", "take", "walk",
        "challenge", "join", "encourage", "praise", "explain", "talk", "stay with", "go with", "sit with"}},
  };
  std::string joined = " ";
  for (const auto& w : words_of(text)) joined += w + " ";
  for (const auto& [stance, phrases] : families) {
    for (const auto& p : phrases) {
      if (joined.find(" " + p + " ") != std::string::npos) return stance;
    }
  }
  return ChoiceStance::kOther;
}

MetricsReport compute_metrics(std::span<const SceneSample> scenes, const protocol::Manifest& manifest,
                              const TellList& tells) {
  MetricsReport r;
  r.scenes = static_cast<int64_t>(scenes.size());
  std::set<std::string> cast_set;
  for (const auto& name : manifest.cast()) {
    for (auto& w : words_of(name)) cast_set.insert(std::move(w));
  }
  for (const auto& s : scenes) {
    for (const auto& name : s.cast) {
      for (auto& w : words_of(name)) cast_set.insert(std::move(w));
    }
  }
  std::vector<std::string> cast_words(cast_set.begin(), cast_set.end());

  double ttr_sum = 0, mattr50_sum = 0, mattr100_sum = 0, mtld_sum = 0, rep3_sum = 0;
  int64_t lexical_scenes = 0, rep_scenes = 0, repaired = 0, narration = 0, pov = 0;
  std::vector<std::vector<std::string>> scene_trigrams;
  std::set<std::string> distinct_choices;
  std::map<std::string, int64_t> stance_counts;
  for (const auto& s : scenes) {
    protocol::ValidateOptions vo;
    vo.locked_cast = s.cast;
    protocol::BeatReport report = protocol::validate_beat(s.beat, manifest, vo);
    r.valid_beats += report.valid;
    repaired += report.needed_repair();
    for (const auto& e : report.errors) ++r.error_counts[std::string(protocol::code_name(e.code))];

    for (const auto& line : report.lines) {
      if (const auto* n = std::get_if<protocol::Narration>(&line.content)) {
        ++narration;
        pov += protocol::is_first_person(n->text);
      } else if (const auto* t = std::get_if<protocol::Tool>(&line.content)) {
        const protocol::ToolSpec* spec = manifest.find_tool(t->name);
        if (!spec || spec->role != protocol::ToolRole::kChoices) continue;
        for (const auto& arg : t->args) {
          const protocol::ArgSpec* as = spec->find_arg(arg.key);
          if (!as || as->kind != protocol::ArgKind::kChoicesJson || arg.kind != protocol::ValueKind::kJson) continue;
          for (const auto& item : protocol::check_choices(arg.value, *as).items) {
            if (item.empty()) continue;
            ++r.choices_offered;
            distinct_choices.insert(protocol::fold(item));
            ++stance_counts[std::string(stance_name(classify_choice(item)))];
          }
        }
      }
    }

    std::vector<std::string> prose = extract_prose(report);
    auto lines = line_words(prose);
    std::vector<std::string> words;
    for (const auto& l : lines) words.insert(words.end(), l.begin(), l.end());
    r.words += static_cast<int64_t>(words.size());
    if (!words.empty()) {
      ++lexical_scenes;
      ttr_sum += type_token_ratio(words);
      mattr50_sum += mattr(words, 50);
      mattr100_sum += mattr(words, 100);
      mtld_sum += mtld(words);
    }
    auto trigrams = ngrams(lines, 3);
    if (!trigrams.empty()) {
      ++rep_scenes;
      rep3_sum += rep_n(lines, 3);
    }
    scene_trigrams.push_back(std::move(trigrams));
    for (const auto& hit : match_tells(tells, prose, cast_words)) {
      ++r.tell_matches;
      ++r.tell_counts[tells.patterns[hit.pattern].source];
    }
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  r.validity = ratio(static_cast<double>(r.valid_beats), static_cast<double>(r.scenes));
  r.slop_density = ratio(1000.0 * static_cast<double>(r.tell_matches), static_cast<double>(r.words));
  r.ttr = ratio(ttr_sum, static_cast<double>(lexical_scenes));
  r.mattr50 = ratio(mattr50_sum, static_cast<double>(lexical_scenes));
  r.mattr100 = ratio(mattr100_sum, static_cast<double>(lexical_scenes));
  r.mtld = ratio(mtld_sum, static_cast<double>(lexical_scenes));
  r.rep3 = ratio(rep3_sum, static_cast<double>(rep_scenes));
  r.trigram_reuse = cross_scene_reuse(scene_trigrams);
  r.pov_slip_rate = ratio(static_cast<double>(pov), static_cast<double>(narration));
  r.choice_variety = ratio(static_cast<double>(distinct_choices.size()), static_cast<double>(r.choices_offered));
  for (const auto& [name, count] : stance_counts) {
    r.stance_share[name] = ratio(static_cast<double>(count), static_cast<double>(r.choices_offered));
  }
  r.repair_rate = ratio(static_cast<double>(repaired), static_cast<double>(r.scenes));
  return r;
}

Result<std::vector<SceneSample>> parse_scene_rows(std::string_view jsonl, const std::string& where) {
  std::vector<SceneSample> out;
  FABULA_TRY(for_each_jsonl_object(jsonl, where, [&](const JsonView& j) -> Status {
    SceneSample s;
    FABULA_ASSIGN(s.beat, j.string("beat"));
    FABULA_ASSIGN(JsonView scene, j.field("scene"));
    if (scene.raw().is_number_integer()) {
      FABULA_ASSIGN(int64_t n, scene.integer());
      s.scene = std::to_string(n);
    } else {
      FABULA_ASSIGN(s.scene, scene.string());
    }
    FABULA_ASSIGN(s.seed, j.integer_or("seed", s.seed));
    FABULA_ASSIGN(s.cast, j.strings_or_empty("cast"));
    out.push_back(std::move(s));
    return ok_status();
  }));
  return out;
}

nlohmann::json to_json(const MetricsReport& r) {
  return {{"validity", r.validity},
          {"valid_beats", r.valid_beats},
          {"scenes", r.scenes},
          {"slop_density", r.slop_density},
          {"tell_matches", r.tell_matches},
          {"words", r.words},
          {"ttr", r.ttr},
          {"trigram_reuse", r.trigram_reuse},
          {"mattr50", r.mattr50},
          {"mattr100", r.mattr100},
          {"mtld", r.mtld},
          {"rep3", r.rep3},
          {"pov_slip_rate", r.pov_slip_rate},
          {"choice_variety", r.choice_variety},
          {"choices_offered", r.choices_offered},
          {"stance_share", r.stance_share},
          {"repair_rate", r.repair_rate},
          {"error_counts", r.error_counts},
          {"tell_counts", r.tell_counts}};
}

}  // namespace fabula::eval
