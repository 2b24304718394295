// Typed parsing of llama-server request fields into GenerationParams (errors name the field and the expected type).
#include "server/request.h"

#include <cmath>
#include <limits>
#include <random>

namespace fabula::server {
namespace {

std::string type_of(const json& v) { return v.type_name(); }

Error field_error(const std::string& field, const std::string& expected, const json& got) {
  return make_error(ErrorCode::kInvalidArgument, "field '{}': expected {}, got {}", field, expected, type_of(got));
}

// Absent or null: keep the default.
Status get_float(const json& body, const char* key, float& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return ok_status();
  if (!it->is_number()) return field_error(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v)) return make_error(ErrorCode::kInvalidArgument, "field '{}': not a finite number", key);
  out = static_cast<float>(v);
  return ok_status();
}

Status get_int(const json& body, const char* key, int64_t& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return ok_status();
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return ok_status();
  }
  if (it->is_number_float()) {  // 64.0 is fine, 64.5 is not
    const double v = it->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) {
      out = static_cast<int64_t>(v);
      return ok_status();
    }
  }
  return field_error(key, "an integer", *it);
}

Status get_int32(const json& body, const char* key, int32_t& out, int64_t lo, int64_t hi) {
  int64_t v = out;
  FABULA_TRY(get_int(body, key, v));
  if (v < lo || v > hi) return make_error(ErrorCode::kInvalidArgument, "field '{}': {} is outside [{}, {}]", key, v, lo, hi);
  out = static_cast<int32_t>(v);
  return ok_status();
}

Status get_bool(const json& body, const char* key, bool& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return ok_status();
  if (!it->is_boolean()) return field_error(key, "a boolean", *it);
  out = it->get<bool>();
  return ok_status();
}

// Absent or null: empty. Empty strings are dropped.
Status get_strings(const json& body, const char* key, std::vector<std::string>& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return ok_status();
  if (!it->is_array()) return field_error(key, "an array of strings", *it);
  for (const json& v : *it) {
    if (!v.is_string()) return field_error(std::string(key) + "[]", "a string", v);
    if (!v.get<std::string>().empty()) out.push_back(v.get<std::string>());
  }
  return ok_status();
}

Result<int32_t> checked_id(const json& v, int64_t n_vocab, const std::string& where) {
  if (!v.is_number_integer()) return field_error(where, "a token id (integer)", v);
  const int64_t id = v.get<int64_t>();
  if (id < 0 || id >= n_vocab)
    return make_error(ErrorCode::kInvalidArgument, "{}: token id {} is outside the vocabulary [0, {})", where, id, n_vocab);
  return static_cast<int32_t>(id);
}

Status add_bias(std::vector<std::pair<int32_t, float>>& out, const json& key, const json& bias, const Tokenizer& tok,
                int64_t n_vocab) {
  float b = 0;
  if (bias.is_boolean()) {
    if (bias.get<bool>()) return make_error(ErrorCode::kInvalidArgument, "logit_bias: true is not a bias (false bans)");
    b = -std::numeric_limits<float>::infinity();
  } else if (bias.is_number()) {
    b = bias.get<float>();
    if (std::isnan(b)) return make_error(ErrorCode::kInvalidArgument, "logit_bias: bias is NaN");
  } else {
    return field_error("logit_bias", "a number or false as the bias", bias);
  }
  if (key.is_string()) {
    // llama-server biases every token of the string.
    for (int32_t id : tok.encode(key.get<std::string>(), false, false)) out.emplace_back(id, b);
    return ok_status();
  }
  FABULA_ASSIGN(int32_t id, checked_id(key, n_vocab, "logit_bias"));
  out.emplace_back(id, b);
  return ok_status();
}

}  // namespace

Result<std::vector<std::pair<int32_t, float>>> parse_logit_bias(const json& value, const Tokenizer& tokenizer,
                                                                int64_t n_vocab) {
  std::vector<std::pair<int32_t, float>> out;
  if (value.is_null()) return out;
  if (value.is_array()) {
    for (const json& pair : value) {
      if (!pair.is_array() || pair.size() != 2)
        return make_error(ErrorCode::kInvalidArgument, "logit_bias: each entry must be [token, bias]");
      FABULA_TRY(add_bias(out, pair[0], pair[1], tokenizer, n_vocab));
    }
    return out;
  }
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string& k = it.key();
      // OpenAI style: keys are ids spelled as strings; anything else is text to tokenize.
      char* end = nullptr;
      const long long id = std::strtoll(k.c_str(), &end, 10);
      const bool numeric = !k.empty() && end != nullptr && *end == '\0';
      if (numeric) FABULA_TRY(add_bias(out, json(id), it.value(), tokenizer, n_vocab));
      else FABULA_TRY(add_bias(out, json(k), it.value(), tokenizer, n_vocab));
    }
    return out;
  }
  return field_error("logit_bias", "an array of [token, bias] pairs or an object", value);
}

Result<std::vector<int32_t>> parse_prompt(const json& prompt, const Tokenizer& tokenizer, int64_t n_vocab) {
  const std::string bos_text(tokenizer.token_text(tokenizer.bos_id()));
  auto encode_text = [&](const std::string& text, bool first, std::vector<int32_t>& out) {
    const bool spells_bos = !bos_text.empty() && text.rfind(bos_text, 0) == 0;
    const bool add_bos = first && tokenizer.add_bos() && !spells_bos;
    std::vector<int32_t> ids = tokenizer.encode(text, add_bos, true);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  std::vector<int32_t> out;
  if (prompt.is_string()) {
    encode_text(prompt.get<std::string>(), true, out);
  } else if (prompt.is_array()) {
    for (size_t i = 0; i < prompt.size(); ++i) {
      const json& item = prompt[i];
      if (item.is_string()) {
        encode_text(item.get<std::string>(), i == 0, out);
      } else if (item.is_number_integer()) {
        FABULA_ASSIGN(int32_t id, checked_id(item, n_vocab, "prompt[" + std::to_string(i) + "]"));
        out.push_back(id);
      } else {
        return field_error("prompt[" + std::to_string(i) + "]", "a string or a token id", item);
      }
    }
  } else {
    return field_error("prompt", "a string or an array of token ids and strings", prompt);
  }
  if (out.empty()) return make_error(ErrorCode::kInvalidArgument, "field 'prompt': empty prompt");
  return out;
}

Result<CompletionRequest> parse_completion_fields(const json& body, const Tokenizer& tokenizer, int64_t n_vocab,
                                                  bool openai) {
  if (!body.is_object()) return make_error(ErrorCode::kInvalidArgument, "request body must be a JSON object");
  CompletionRequest r;
  SamplerParams& s = r.gen.sampler;
  s = CompletionDefaults{}.sampler;
  FABULA_TRY(get_float(body, "temperature", s.temperature));
  FABULA_TRY(get_int32(body, "top_k", s.top_k, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
  FABULA_TRY(get_float(body, "top_p", s.top_p));
  FABULA_TRY(get_float(body, "min_p", s.min_p));
  FABULA_TRY(get_float(body, "repeat_penalty", s.repeat_penalty));
  FABULA_TRY(get_int32(body, "repeat_last_n", s.penalty_last_n, -1, std::numeric_limits<int32_t>::max()));
  FABULA_TRY(get_float(body, "presence_penalty", s.presence_penalty));
  FABULA_TRY(get_float(body, "frequency_penalty", s.frequency_penalty));
  if (s.repeat_penalty <= 0) return make_error(ErrorCode::kInvalidArgument, "field 'repeat_penalty': must be > 0");

  int64_t seed = -1;
  FABULA_TRY(get_int(body, "seed", seed));
  r.seed_requested = seed;
  if (seed < 0) {
    std::random_device rd;
    s.seed = rd() & 0x7fffffffu;  // reported back as generation_settings.seed
  } else {
    s.seed = static_cast<uint64_t>(seed);
  }

  GenerationParams& g = r.gen;
  const int32_t kMaxI32 = std::numeric_limits<int32_t>::max();
  FABULA_TRY(get_int32(body, "n_predict", g.n_predict, -1, kMaxI32));
  if (openai) {
    FABULA_TRY(get_int32(body, "max_tokens", g.n_predict, -1, kMaxI32));
    FABULA_TRY(get_int32(body, "max_completion_tokens", g.n_predict, -1, kMaxI32));
  }
  FABULA_TRY(get_int32(body, "n_probs", g.n_probs, 0, 100));
  FABULA_TRY(get_bool(body, "cache_prompt", g.cache_prompt));
  FABULA_TRY(get_bool(body, "ignore_eos", g.ignore_eos));
  FABULA_TRY(get_bool(body, "stream", r.stream));
  FABULA_TRY(get_bool(body, "return_tokens", r.return_tokens));
  FABULA_TRY(get_int32(body, "id_slot", r.id_slot, -1, kMaxI32));
  float t_max = 0;
  FABULA_TRY(get_float(body, "t_max_predict_ms", t_max));
  g.t_max_predict_ms = t_max;

  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string() && openai) {
      g.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const json& v : *it) {
        if (!v.is_string()) return field_error("stop[]", "a string", v);
        if (!v.get<std::string>().empty()) g.stop.push_back(v.get<std::string>());
      }
    } else {
      return field_error("stop", openai ? "a string or an array of strings" : "an array of strings", *it);
    }
  }
  FABULA_TRY(get_bool(body, "vn_protocol", r.vn_protocol));
  FABULA_TRY(get_strings(body, "vn_cast", r.vn_cast));
  FABULA_TRY(get_strings(body, "banned_phrases", r.banned_phrases));
  if (!r.vn_cast.empty() && !r.vn_protocol)
    return make_error(ErrorCode::kInvalidArgument, "field 'vn_cast': only meaningful with \"vn_protocol\": true");
  if (auto it = body.find("logit_bias"); it != body.end()) {
    FABULA_ASSIGN(s.logit_bias, parse_logit_bias(*it, tokenizer, n_vocab));
  }
  return r;
}

json timings_json(const GenerationTimings& t) {
  return json{{"cache_n", t.cache_n},
              {"prompt_n", t.prompt_n},
              {"prompt_ms", t.prompt_ms},
              {"prompt_per_token_ms", t.prompt_per_token_ms()},
              {"prompt_per_second", t.prompt_per_second()},
              {"predicted_n", t.predicted_n},
              {"predicted_ms", t.predicted_ms},
              {"predicted_per_token_ms", t.predicted_per_token_ms()},
              {"predicted_per_second", t.predicted_per_second()},
              {"backtracks", t.backtracks}};
}

json generation_settings_json(const GenerationParams& g, int64_t /*seed_requested*/) {
  const SamplerParams& s = g.sampler;
  json bias = json::array();
  for (const auto& [id, b] : s.logit_bias) bias.push_back(json::array({id, std::isinf(b) ? json(false) : json(b)}));
  return json{{"n_predict", g.n_predict},
              {"seed", static_cast<int64_t>(s.seed)},
              {"temperature", s.temperature},
              {"top_k", s.top_k},
              {"top_p", s.top_p},
              {"min_p", s.min_p},
              {"repeat_penalty", s.repeat_penalty},
              {"repeat_last_n", s.penalty_last_n},
              {"presence_penalty", s.presence_penalty},
              {"frequency_penalty", s.frequency_penalty},
              {"stop", g.stop},
              {"n_probs", g.n_probs},
              {"ignore_eos", g.ignore_eos},
              {"cache_prompt", g.cache_prompt},
              {"t_max_predict_ms", g.t_max_predict_ms},
              {"logit_bias", bias},
              {"samplers", json::array({"penalties", "top_k", "top_p", "min_p", "temperature"})}};
}

}  // namespace fabula::server
