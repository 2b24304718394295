// Throughput of the protocol layer (validate: split + parse + judge) and of the eval metrics, in MB/s.
#include <benchmark/benchmark.h>

#include <random>

#include "eval/metrics.h"
#include "protocol/line_splitter.h"
#include "protocol/validator.h"

namespace {

using namespace fabula;

// Beats shaped like the demo narrator's (vn_corpus.py): tools, narration, dialogue, choices.
std::vector<eval::SceneSample> make_scenes(int n) {
  const std::vector<std::string> cast = {"Hana", "Ren", "Mio", "Kaito"};
  const std::vector<std::string> places = {"classroom", "rooftop", "park", "cafe", "library"};
  const std::vector<std::string> narration = {
      "Wind tugged at the fence on the rooftop, carrying the smell of rain.",
      "For a moment nobody said anything. Then {a} laughed, and the tension broke.",
      "{a} drummed their fingers on the desk, clearly plotting something.",
      "The silence stretched. Somewhere, a crow cawed, unimpressed.",
      "A gust of wind sent {a}'s notes flying, and everyone scrambled to catch them."};
  const std::vector<std::string> lines = {"Race you to the gate! Loser buys melon bread!",
                                          "Noted. Filed. Ignored. In that order.",
                                          "Um... the light looks really nice right now.",
                                          "I have a plan. It involves taiyaki, a ladder, and absolutely no permission."};
  std::mt19937 rng(42);
  auto pick = [&](const auto& v) { return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)]; };
  std::vector<eval::SceneSample> out;
  for (int i = 0; i < n; ++i) {
    eval::SceneSample s;
    s.scene = pick(places);
    s.seed = i;
    std::string a = pick(cast);
    s.beat = "[TOOL: background name=\"" + s.scene + "\" transition=\"fade\"]\n[TOOL: music track=\"calm\"]\n";
    for (const auto& c : cast) s.beat += "[TOOL: sprite character=\"" + c + "\" expression=\"smile\" position=\"left\"]\n";
    for (int k = 0; k < 6; ++k) {
      std::string text = pick(narration);
      if (auto at = text.find("{a}"); at != std::string::npos) text.replace(at, 3, a);
      s.beat += text + "\n[" + pick(cast) + "]: \"" + pick(lines) + "\"\n";
    }
    s.beat += "[TOOL: choices choices='[\"Pretend you didn't hear\", \"Ask " + a + " what's wrong\", \"Walk home\"]']\n";
    out.push_back(std::move(s));
  }
  return out;
}

void BM_SplitLines(benchmark::State& state) {
  auto scenes = make_scenes(256);
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& s : scenes) {
      benchmark::DoNotOptimize(protocol::split_lines(s.beat));
      bytes += static_cast<int64_t>(s.beat.size());
    }
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_SplitLines);

void BM_Validate(benchmark::State& state) {
  auto scenes = make_scenes(256);
  protocol::Manifest m = protocol::Manifest::default_manifest();
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& s : scenes) {
      benchmark::DoNotOptimize(protocol::validate_beat(s.beat, m));
      bytes += static_cast<int64_t>(s.beat.size());
    }
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Validate);

void BM_Metrics(benchmark::State& state) {
  auto scenes = make_scenes(static_cast<int>(state.range(0)));
  protocol::Manifest m = protocol::Manifest::default_manifest();
  auto tells = eval::load_default_tells();
  if (!tells.ok()) {
    state.SkipWithError(tells.error().message.c_str());
    return;
  }
  int64_t bytes = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(eval::compute_metrics(scenes, m, *tells));
    for (const auto& s : scenes) bytes += static_cast<int64_t>(s.beat.size());
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Metrics)->Arg(48)->Arg(512);

}  // namespace
