// Typed parsing of llama-server request fields into GenerationParams (errors name the field and the expected type).
#include "server/request.h"

#include <cmath>
#include <limits>
#include <random>

#include "base/json_view.h"

namespace fabula::server {
namespace {

// Request bodies are read through JsonView: errors read "request: <field>: expected ..., got ...".
JsonView body_view(const json& body) { return JsonView(body, "request"); }

// Absent or null: keep the default.
Status get_float(const json& body, const char* key, float& out) {
  FABULA_ASSIGN(double v, body_view(body).number_or(key, out));
  out = static_cast<float>(v);
  return ok_status();
}

Status get_int(const json& body, const char* key, int64_t& out) {
  FABULA_ASSIGN(out, body_view(body).integer_or(key, out));
  return ok_status();
}

Status get_int32(const json& body, const char* key, int32_t& out, int64_t lo, int64_t hi) {
  FABULA_ASSIGN(int64_t v, body_view(body).integer_or(key, out, lo, hi));
  out = static_cast<int32_t>(v);
  return ok_status();
}

Status get_bool(const json& body, const char* key, bool& out) {
  FABULA_ASSIGN(out, body_view(body).boolean_or(key, out));
  return ok_status();
}

// Absent or null: empty. Empty strings are dropped.
Status get_strings(const json& body, const char* key, std::vector<std::string>& out) {
  FABULA_ASSIGN(auto all, body_view(body).strings_or_empty(key));
  for (auto& v : all)
    if (!v.empty()) out.push_back(std::move(v));
  return ok_status();
}

Result<int32_t> checked_id(const JsonView& v, int64_t n_vocab) {
  if (!v.raw().is_number_integer()) return v.type_error("a token id (an integer)");
  FABULA_ASSIGN(int64_t id, v.integer());
  if (id < 0 || id >= n_vocab) return v.error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary [0, {})", id, n_vocab);
  return static_cast<int32_t>(id);
}

// key: a token id or a text (every token of it is biased, as llama-server does); bias: a number or false (ban).
Status add_bias(std::vector<std::pair<int32_t, float>>& out, const JsonView& key, const JsonView& bias,
                const Tokenizer& tok, int64_t n_vocab) {
  float b = 0;
  if (bias.is_bool()) {
    FABULA_ASSIGN(bool on, bias.boolean());
    if (on) return bias.error(ErrorCode::kInvalidArgument, "true is not a bias (false bans the token)");
    b = -std::numeric_limits<float>::infinity();
  } else if (bias.is_number()) {
    FABULA_ASSIGN(double v, bias.number());
    b = static_cast<float>(v);
  } else {
    return bias.type_error("a number or false as the bias");
  }
  if (key.is_string()) {
    FABULA_ASSIGN(std::string text, key.string());
    for (int32_t id : tok.encode(text, false, false)) out.emplace_back(id, b);
    return ok_status();
  }
  FABULA_ASSIGN(int32_t id, checked_id(key, n_vocab));
  out.emplace_back(id, b);
  return ok_status();
}

}  // namespace

Result<std::vector<std::pair<int32_t, float>>> parse_logit_bias(const json& value, const Tokenizer& tokenizer,
                                                                int64_t n_vocab) {
  std::vector<std::pair<int32_t, float>> out;
  if (value.is_null()) return out;
  JsonView v(value, "request", "logit_bias");
  if (v.is_array()) {
    FABULA_ASSIGN(auto pairs, v.elements());
    for (const JsonView& pair : pairs) {
      FABULA_ASSIGN(auto kv, pair.elements());
      if (kv.size() != 2) return pair.error(ErrorCode::kInvalidArgument, "each entry must be [token, bias]");
      FABULA_TRY(add_bias(out, kv[0], kv[1], tokenizer, n_vocab));
    }
    return out;
  }
  if (v.is_object()) {
    FABULA_ASSIGN(auto members, v.members());
    for (const auto& [k, bias] : members) {
      // OpenAI style: keys are ids spelled as strings; anything else is text to tokenize.
      char* end = nullptr;
      const long long id = std::strtoll(k.c_str(), &end, 10);
      const bool numeric = !k.empty() && end != nullptr && *end == '\0';
      const json key = numeric ? json(id) : json(k);
      FABULA_TRY(add_bias(out, JsonView(key, "request", bias.path()), bias, tokenizer, n_vocab));
    }
    return out;
  }
  return v.type_error("an array of [token, bias] pairs or an object");
}

Result<std::vector<int32_t>> parse_prompt(const json& prompt, const Tokenizer& tokenizer, int64_t n_vocab) {
  const std::string bos_text(tokenizer.token_text(tokenizer.bos_id()));
  auto encode_text = [&](const std::string& text, bool first, std::vector<int32_t>& out) {
    const bool spells_bos = !bos_text.empty() && text.rfind(bos_text, 0) == 0;
    const bool add_bos = first && tokenizer.add_bos() && !spells_bos;
    std::vector<int32_t> ids = tokenizer.encode(text, add_bos, true);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  JsonView v(prompt, "request", "prompt");
  std::vector<int32_t> out;
  if (v.is_string()) {
    FABULA_ASSIGN(std::string text, v.string());
    encode_text(text, true, out);
  } else if (v.is_array()) {
    FABULA_ASSIGN(auto items, v.elements());
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].is_string()) {
        FABULA_ASSIGN(std::string text, items[i].string());
        encode_text(text, i == 0, out);
      } else if (items[i].raw().is_number_integer()) {
        FABULA_ASSIGN(int32_t id, checked_id(items[i], n_vocab));
        out.push_back(id);
      } else {
        return items[i].type_error("a string or a token id");
      }
    }
  } else {
    return v.type_error("a string or an array of token ids and strings");
  }
  if (out.empty()) return v.error(ErrorCode::kInvalidArgument, "empty prompt");
  return out;
}

Result<CompletionRequest> parse_completion_fields(const json& body, const Tokenizer& tokenizer, int64_t n_vocab,
                                                  bool openai) {
  FABULA_TRY(body_view(body).expect_object());
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
  if (s.repeat_penalty <= 0) return make_error(ErrorCode::kInvalidArgument, "request: repeat_penalty: must be > 0");

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

  if (auto stop = body_view(body).find("stop")) {
    if (stop->is_string() && openai) {
      FABULA_ASSIGN(std::string text, stop->string());
      g.stop.push_back(std::move(text));
    } else if (stop->is_array()) {
      FABULA_TRY(get_strings(body, "stop", g.stop));
    } else {
      return stop->type_error(openai ? "a string or an array of strings" : "an array of strings");
    }
  }
  FABULA_TRY(get_bool(body, "vn_protocol", r.vn_protocol));
  FABULA_TRY(get_strings(body, "vn_cast", r.vn_cast));
  FABULA_TRY(get_strings(body, "banned_phrases", r.banned_phrases));
  if (!r.vn_cast.empty() && !r.vn_protocol)
    return make_error(ErrorCode::kInvalidArgument, "request: vn_cast: only meaningful with \"vn_protocol\": true");
  if (auto it = body.find("logit_bias"); it != body.end()) {
    FABULA_ASSIGN(s.logit_bias, parse_logit_bias(*it, tokenizer, n_vocab));
  }
  return r;
}

Result<ChatRequest> parse_chat(const json& doc, const ChatTemplate& tmpl) {
  JsonView body(doc, "request");
  ChatRequest c;
  FABULA_ASSIGN(JsonView msgs, body.field("messages"));
  FABULA_ASSIGN(auto items, msgs.elements());
  if (items.empty()) return msgs.error(ErrorCode::kInvalidArgument, "expected a non-empty array of messages");
  for (const JsonView& m : items) {
    ChatMessage msg;
    FABULA_ASSIGN(msg.role, m.string("role"));
    auto content = m.find("content");
    if (!content) {
      msg.content = "";
    } else if (content->is_string()) {
      FABULA_ASSIGN(msg.content, content->string());
    } else if (content->is_array()) {  // [{"type": "text", "text": "..."}]
      FABULA_ASSIGN(auto parts, content->elements());
      for (const JsonView& part : parts) {
        FABULA_ASSIGN(std::string type, part.string("type"));
        if (type != "text")
          return part.error(ErrorCode::kInvalidArgument, "only text parts ({{\"type\":\"text\",\"text\":...}}) are supported");
        FABULA_ASSIGN(std::string text, part.string("text"));
        msg.content += text;
      }
    } else {
      return content->type_error("a string or an array of text parts");
    }
    c.messages.push_back(std::move(msg));
  }
  if (auto tools = body.find("tools"); tools && tools->size() > 0)
    return tools->error(ErrorCode::kUnsupported, "tool calling is not supported by fabula serve");
  if (auto n = body.find("n")) {
    auto count = n->integer();
    if (!count || *count != 1) return n->error(ErrorCode::kInvalidArgument, "only 1 choice is supported");
  }
  if (auto rf = body.find("response_format")) {
    auto type = rf->string("type");
    if (!type || *type != "text")
      return rf->error(ErrorCode::kUnsupported, "only {{\"type\":\"text\"}} is supported");
  }
  if (auto effort = body.find("reasoning_effort")) {
    FABULA_ASSIGN(std::string level, effort->string());
    c.enable_thinking = level != "none";
  }
  if (auto kw = body.find("chat_template_kwargs")) {
    FABULA_TRY(kw->expect_object());
    FABULA_ASSIGN(c.enable_thinking, kw->boolean_or("enable_thinking", c.enable_thinking));
  }
  FABULA_ASSIGN(c.add_generation_prompt, body.boolean_or("add_generation_prompt", c.add_generation_prompt));
  if (!tmpl.supports_thinking()) c.enable_thinking = false;
  return c;
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
