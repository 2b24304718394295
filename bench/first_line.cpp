// Time to the first beat line on the demo narrator: the opening scene's real prompt (engine::build_request, what
// `fabula play` sends first), a cold narrator each run (nothing cached), timed from the request to the first
// complete line of the beat; counters give the prompt length, the beat's tokens and its generation speed.
// Run from the repository root (FABULA_MODEL overrides the model, FABULA_STORY the story):
//   build/bench/bench_first_line --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <chrono>
#include <optional>
#include <string>

#include "backend/loaded_model.h"
#include "backend/local_narrator.h"
#include "bench_env.h"
#include "engine/prompt.h"
#include "engine/scene.h"
#include "engine/story.h"

namespace fabula {
namespace {

void BM_FirstBeatLine(benchmark::State& state) {
  auto story = engine::load_story(env_or("FABULA_STORY", "sakuragaoka"));
  if (!story) {
    state.SkipWithError(story.error().message.c_str());
    return;
  }
  auto profile = story->profile("demo");
  if (!profile) {
    state.SkipWithError(profile.error().message.c_str());
    return;
  }
  const std::string model_path = env_or("FABULA_MODEL", "models/fabula-demo-v1.gguf");
  const engine::SceneState scene = engine::opening_scene(*story);
  auto counter = backend::load_model(model_path);  // only to count the prompt's tokens
  if (!counter) {
    state.SkipWithError(counter.error().message.c_str());
    return;
  }
  double first_line_ms = 0, gen_tps = 0, beat_tokens = 0, prompt_tokens = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    state.PauseTiming();
    auto narrator = backend::LocalNarrator::load(model_path);  // cold: no prompt cache
    if (!narrator) {
      state.SkipWithError(narrator.error().message.c_str());
      return;
    }
    const engine::NarratorRequest request =
        engine::build_request(*story, *profile, scene, "", {}, engine::Sampling{}, seed++);
    state.ResumeTiming();
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    std::optional<Clock::time_point> first_line;
    std::string text;
    auto result = (*narrator)->write(request, [&](std::string_view piece) {
      text += piece;
      if (!first_line && text.find('\n') != std::string::npos) first_line = Clock::now();
      return true;
    });
    const auto end = Clock::now();
    if (!result) {
      state.SkipWithError(result.error().message.c_str());
      return;
    }
    const double total_s = std::chrono::duration<double>(end - start).count();
    const double first_s = std::chrono::duration<double>(first_line.value_or(end) - start).count();
    state.SetIterationTime(first_s);
    first_line_ms += 1e3 * first_s;
    beat_tokens += result->tokens;
    gen_tps += total_s > first_s ? result->tokens / total_s : 0;
    auto prompt = counter->encode_chat(request.messages);  // what the narrator decodes
    prompt_tokens += prompt ? static_cast<double>(prompt->size()) : 0;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["first_line_ms"] = first_line_ms / n;
  state.counters["prompt_tokens"] = prompt_tokens / n;
  state.counters["beat_tokens"] = beat_tokens / n;
  state.counters["beat_tok_per_s"] = gen_tps / n;  // whole beat (prompt included) / wall time
}
BENCHMARK(BM_FirstBeatLine)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace fabula
