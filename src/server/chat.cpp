// OpenAI-compatible chat: POST /v1/chat/completions (JSON or SSE ending in [DONE]) and POST /apply-template.
#include <fmt/format.h>

#include <random>

#include "base/json_view.h"
#include "server/server_impl.h"

namespace fabula::server {

using nlohmann::json;

namespace {

struct ChatRequest {
  std::vector<ChatMessage> messages;
  bool enable_thinking = false;
  bool add_generation_prompt = true;
};

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

Result<std::string> render_chat(const ChatRequest& c, const ChatTemplate& tmpl) {
  ChatRenderOptions o;
  o.add_generation_prompt = c.add_generation_prompt;
  o.enable_thinking = c.enable_thinking;
  o.add_bos = true;
  return tmpl.render(c.messages, o);
}

std::string random_id() {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::string s = "chatcmpl-";
  for (int i = 0; i < 24; ++i) s += kChars[rd() % (sizeof(kChars) - 1)];
  return s;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string finish_reason(StopType t) { return t == StopType::kLimit ? "length" : "stop"; }

json usage_json(const GenerationResult& r) {
  return json{{"prompt_tokens", r.tokens_evaluated},
              {"completion_tokens", r.timings.predicted_n},
              {"total_tokens", r.tokens_evaluated + r.timings.predicted_n},
              {"prompt_tokens_details", {{"cached_tokens", r.timings.cache_n}}}};
}

}  // namespace

void Server::Impl::register_chat_routes() {
  http.Post("/apply-template", [this](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req, res);
    if (body.is_discarded()) return;
    auto chat = parse_chat(body, loaded->chat_template);
    if (!chat.ok()) return send_result_error(res, chat.error());
    auto text = render_chat(*chat, loaded->chat_template);
    if (!text.ok()) return send_result_error(res, text.error());
    send_json(res, json{{"prompt", *text}});
  });

  auto chat_handler = [this](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req, res);
    if (body.is_discarded()) return;
    Loaded& L = *loaded;
    auto chat = parse_chat(body, L.chat_template);
    if (!chat.ok()) return send_result_error(res, chat.error());
    auto cr = parse_completion_fields(body, L.tokenizer, L.model->n_vocab(), true);
    if (!cr.ok()) return send_result_error(res, cr.error());
    auto text = render_chat(*chat, L.chat_template);
    if (!text.ok()) return send_result_error(res, text.error());
    std::vector<int32_t> prompt = L.tokenizer.encode(*text, false, true);  // the text spells <bos> itself
    if (!check_prompt_fits(res, prompt.size(), L.scheduler->n_ctx())) return;
    if (!apply_decoding_fields(res, L, *cr)) return;

    auto task = std::make_shared<Task>();
    task->prompt = std::move(prompt);
    task->params = cr->gen;
    task->params.split_reasoning = true;  // reasoning by channel token ids, never a marker in content
    task->params.prompt_opens_reasoning = L.chat_template.prompt_opens_reasoning(*text);
    task->params.deadline = deadline();
    task->id_slot = cr->id_slot;
    task->want_events = cr->stream;
    L.scheduler->submit(task);

    const std::string id = random_id();
    const int64_t created = unix_now();
    const std::string model = alias;
    if (!cr->stream) {
      auto r = task->wait_result();
      if (!r.ok()) return send_result_error(res, r.error());
      json message{{"role", "assistant"}, {"content", r->content}};
      if (!r->reasoning.empty()) message["reasoning_content"] = r->reasoning;
      return send_json(res, json{{"choices", json::array({json{{"finish_reason", finish_reason(r->stop_type)},
                                                               {"index", 0},
                                                               {"message", message}}})},
                                 {"created", created},
                                 {"model", model},
                                 {"system_fingerprint", "fabula-0.1.0"},
                                 {"object", "chat.completion"},
                                 {"usage", usage_json(*r)},
                                 {"id", id},
                                 {"timings", timings_json(r->timings)}});
    }
    auto chunk = [id, created, model](json delta, json finish) {
      return json{{"choices", json::array({json{{"finish_reason", finish}, {"index", 0}, {"delta", std::move(delta)}}})},
                  {"created", created},
                  {"id", id},
                  {"model", model},
                  {"system_fingerprint", "fabula-0.1.0"},
                  {"object", "chat.completion.chunk"}};
    };
    auto first = std::make_shared<bool>(true);
    stream_task(
        res, task,
        [chunk, first](const TokenEvent& e) -> std::string {
          std::string out;
          if (*first) {
            *first = false;
            out += sse_event(chunk(json{{"role", "assistant"}, {"content", nullptr}}, nullptr));
          }
          if (!e.reasoning.empty()) out += sse_event(chunk(json{{"reasoning_content", e.reasoning}}, nullptr));
          if (!e.content.empty()) out += sse_event(chunk(json{{"content", e.content}}, nullptr));
          return out;
        },
        [chunk, first](const Result<GenerationResult>& r) -> std::string {
          if (!r.ok())
            return sse_event(json{{"error", {{"code", 500}, {"message", r.error().message}, {"type", "server_error"}}}}) +
                   "data: [DONE]\n\n";
          std::string out;
          if (*first) out += sse_event(chunk(json{{"role", "assistant"}, {"content", nullptr}}, nullptr));
          json last = chunk(json::object(), finish_reason(r->stop_type));
          last["timings"] = timings_json(r->timings);
          last["usage"] = usage_json(*r);
          out += sse_event(last);
          out += "data: [DONE]\n\n";
          return out;
        });
  };
  http.Post("/v1/chat/completions", chat_handler);
  http.Post("/chat/completions", chat_handler);
}

}  // namespace fabula::server
