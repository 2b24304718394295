// Request bodies -> generation settings: llama-server's /completion fields, typed checks, prompts, logit_bias.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/generator.h"
#include "base/result.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fabula::server {

using nlohmann::json;

// Sampling defaults of llama-server's /completion (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05).
struct CompletionDefaults {
  SamplerParams sampler = [] {
    SamplerParams p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.penalty_last_n = 64;
    return p;
  }();
};

struct CompletionRequest {
  GenerationParams gen;
  int64_t seed_requested = -1;  // as sent (-1: random; the one used is gen.sampler.seed)
  bool stream = false;
  bool return_tokens = false;
  int id_slot = -1;
  // Fabula extensions (the server turns them into GenerationParams::constraint / banned_phrases, failing closed).
  bool vn_protocol = false;                 // "vn_protocol": only beats valid under the server's story manifest
  std::vector<std::string> vn_cast;         // "vn_cast": the scene's locked cast (empty: the story's whole cast)
  std::vector<std::string> banned_phrases;  // "banned_phrases": rewound and resampled when one appears
};

// Parses the sampling / stopping fields shared by /completion and /v1/chat/completions. Wrong types and
// out-of-range values are kInvalidArgument errors naming the field. `openai`: also max_tokens /
// max_completion_tokens, and `stop` may be a single string.
Result<CompletionRequest> parse_completion_fields(const json& body, const Tokenizer& tokenizer, int64_t n_vocab,
                                                  bool openai);

// prompt: a string, a token array, or a mixed array of strings and ids. BOS is prepended when the prompt starts with
// a string, the tokenizer adds BOS, and the text does not already spell the BOS token.
Result<std::vector<int32_t>> parse_prompt(const json& prompt, const Tokenizer& tokenizer, int64_t n_vocab);

// logit_bias: [[id|"text", bias|false], ...] or {"id": bias|false, "text": bias}; false bans the token.
Result<std::vector<std::pair<int32_t, float>>> parse_logit_bias(const json& value, const Tokenizer& tokenizer,
                                                                int64_t n_vocab);

// /v1/chat/completions: the messages (text parts only) and the template switches. Errors name the field.
struct ChatRequest {
  std::vector<ChatMessage> messages;
  bool enable_thinking = false;
  bool add_generation_prompt = true;
};
Result<ChatRequest> parse_chat(const json& body, const ChatTemplate& tmpl);

// The settings echoed back as "generation_settings" (and /props "params").
json generation_settings_json(const GenerationParams& gen, int64_t seed_requested);
json timings_json(const GenerationTimings& t);

}  // namespace fabula::server
