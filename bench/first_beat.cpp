// Time to the first beat line on the real narrator's shape: the vn26b profile's prompt for the sakuragaoka story
// (system prompt, a memory of earlier beats, the user turn), grown with memory to at least FABULA_PROMPT_TOKENS
// tokens (1500: a first beat of a scene) and cut to exactly that many, prefilled on a cold session, then sampled
// until the first complete line.
//
// The default model is the synthetic 26B-A4B Q4_K_M (`fabula synth`; random weights and a synthetic vocabulary),
// whose text never ends a line on its own: generation stops at the first newline or after FABULA_LINE_TOKENS
// tokens (32, about one line of a beat), whichever comes first. Counters: prompt tokens, prefill ms and t/s,
// tokens until the line ended, decode t/s, and first_line_ms = prefill + those tokens. Run from the repository
// root; bench/run_all.sh runs llama.cpp's pp at the same length beside it.
//   build/bench/bench_first_beat     (env: FABULA_MODEL, FABULA_THREADS, FABULA_PROMPT_TOKENS, FABULA_UBATCH)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/generator.h"
#include "backend/loaded_model.h"
#include "base/file.h"
#include "bench_env.h"
#include "engine/events.h"
#include "engine/prompt.h"
#include "engine/scene.h"
#include "engine/story.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace fabula {
namespace {

// Earlier beats for memory, from the protocol samples (tests/data/protocol/samples.jsonl): dialogue lines
// `[Name]: "text"`, narration lines, and the choices tool, as the engine records them.
std::vector<engine::MemoryBeat> sample_history(const std::string& samples_path, const engine::Story& story) {
  std::vector<engine::MemoryBeat> history;
  auto text = read_file_text(samples_path);
  if (!text) return history;
  size_t line_start = 0;
  int index = 0;
  while (line_start < text->size()) {
    size_t line_end = text->find('\n', line_start);
    if (line_end == std::string::npos) line_end = text->size();
    const auto row = nlohmann::json::parse(text->substr(line_start, line_end - line_start), nullptr, false);
    line_start = line_end + 1;
    if (!row.is_object() || !row.contains("beat")) continue;
    engine::MemoryBeat b;
    b.place = story.locations[static_cast<size_t>(index++) % story.locations.size()].id;
    b.player_choice = "Stay quiet and listen";
    const std::string beat = row["beat"].get<std::string>();
    size_t p = 0;
    while (p < beat.size()) {
      size_t e = beat.find('\n', p);
      if (e == std::string::npos) e = beat.size();
      const std::string line = beat.substr(p, e - p);
      p = e + 1;
      if (line.rfind("[TOOL: choices", 0) == 0) {
        engine::ChoicesEvent choices;
        choices.choices = {"Walk home together", "Ask about the festival"};
        b.events.push_back(std::move(choices));
      } else if (line.rfind("[TOOL:", 0) == 0 || line.empty()) {
        continue;
      } else if (line[0] == '[' && line.find("]: \"") != std::string::npos) {
        const size_t close = line.find("]: \"");
        std::string said = line.substr(close + 4);
        if (!said.empty() && said.back() == '"') said.pop_back();
        b.events.push_back(engine::DialogueEvent{line.substr(1, close - 1), said});
      } else {
        b.events.push_back(engine::NarrationEvent{line, std::nullopt});
      }
    }
    history.push_back(std::move(b));
  }
  return history;
}

void BM_FirstBeat(benchmark::State& state) {
  const std::string model_path = env_or("FABULA_MODEL", "/tmp/perf/synth-26b-q4km.gguf");
  const int target_tokens = env_int("FABULA_PROMPT_TOKENS", 1500);
  const int line_cap = env_int("FABULA_LINE_TOKENS", 32);
  auto story = engine::load_story(env_or("FABULA_STORY", "sakuragaoka"));
  if (!story) return state.SkipWithError(story.error().message.c_str());
  auto profile = story->profile("vn26b");
  if (!profile) return state.SkipWithError(profile.error().message.c_str());
  auto loaded = backend::load_model(model_path);
  if (!loaded) return state.SkipWithError((model_path + ": " + loaded.error().message).c_str());

  // The prompt: grow the memory budget until the prompt reaches the target length in this model's tokens.
  const auto history = sample_history("tests/data/protocol/samples.jsonl", *story);
  if (history.empty()) return state.SkipWithError("no memory beats (run from the repository root)");
  const engine::SceneState scene = engine::opening_scene(*story);
  engine::NarratorProfile prof = *profile;
  std::vector<int32_t> prompt;
  for (int budget = 0; budget <= 1 << 16; budget += 32) {
    prof.memory_tokens = budget;
    const engine::NarratorRequest request =
        engine::build_request(*story, prof, scene, "Ask what everyone is doing after school", history,
                              engine::Sampling{}, 1);
    auto ids = loaded->encode_chat(request.messages);  // through the model's chat template, as the narrator does
    if (!ids) return state.SkipWithError(ids.error().message.c_str());
    prompt = std::move(*ids);
    if (static_cast<int>(prompt.size()) >= target_tokens) break;
  }
  const double full_prompt_tokens = static_cast<double>(prompt.size());
  // The synthetic vocabulary spends about 3x Gemma's tokens on English (the bare vn26b prompt is ~4,400), so the
  // prompt is cut to the target: its head and its last kTail tokens (the user turn's end and the model turn's
  // opening). The cost of a prefill depends only on its length.
  constexpr size_t kTail = 64;
  const size_t target = static_cast<size_t>(std::max(target_tokens, static_cast<int>(2 * kTail)));
  if (prompt.size() > target) {
    prompt.erase(prompt.begin() + static_cast<std::ptrdiff_t>(target - kTail),
                 prompt.end() - static_cast<std::ptrdiff_t>(kTail));
  }

  SessionOptions so;
  so.n_ctx = static_cast<int64_t>(prompt.size()) + line_cap + 16;
  so.n_threads = env_int("FABULA_THREADS", 0);
  so.n_ubatch = env_int("FABULA_UBATCH", static_cast<int>(so.n_ubatch));  // default: what the narrator uses
  double prefill_ms = 0, decode_ms = 0, line_tokens = 0, first_line_ms = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    Session session(*loaded->model, so);  // cold: nothing cached
    Generator generator(loaded->tokenizer, session);
    GenerationParams params;
    params.sampler.temperature = 1.0f;  // the vn26b ship settings' shape; greedy would not change the cost
    params.sampler.top_p = 0.95f;
    params.sampler.seed = seed++;
    params.n_predict = line_cap;
    std::string text;
    const auto start = std::chrono::steady_clock::now();
    auto result = generator.generate(prompt, params, [&](const GeneratedToken& t) {
      text += t.content;
      return text.find('\n') == std::string::npos;  // stop once a line is complete
    });
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!result) return state.SkipWithError(result.error().message.c_str());
    state.SetIterationTime(ms / 1e3);
    first_line_ms += ms;
    prefill_ms += result->timings.prompt_ms;
    decode_ms += result->timings.predicted_ms;
    line_tokens += result->timings.predicted_n;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["prompt_tokens"] = static_cast<double>(prompt.size());
  state.counters["uncut_prompt_tokens"] = full_prompt_tokens;
  state.counters["prefill_ms"] = prefill_ms / n;
  state.counters["prefill_tok_per_s"] = prefill_ms > 0 ? 1e3 * static_cast<double>(prompt.size()) * n / prefill_ms : 0;
  state.counters["line_tokens"] = line_tokens / n;
  state.counters["decode_tok_per_s"] = decode_ms > 0 ? 1e3 * line_tokens / decode_ms : 0;
  state.counters["first_line_ms"] = first_line_ms / n;
  state.counters["ubatch"] = static_cast<double>(so.n_ubatch);
}
BENCHMARK(BM_FirstBeat)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace fabula
