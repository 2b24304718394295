// OpenAI-compatible chat: POST /v1/chat/completions (JSON or SSE ending in [DONE]) and POST /apply-template.
#include <fmt/format.h>

#include "base/json_view.h"
#include "server/server_impl.h"

namespace fabula::server {

using nlohmann::json;

namespace {

Result<std::string> render_chat(const ChatRequest& c, const ChatTemplate& tmpl) {
  ChatRenderOptions o;
  o.add_generation_prompt = c.add_generation_prompt;
  o.enable_thinking = c.enable_thinking;
  o.add_bos = true;
  return tmpl.render(c.messages, o);
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

    const std::string id = "chatcmpl-" + random_token().substr(0, 24);
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
            return sse_event(error_json(500, r.error().message)) + "data: [DONE]\n\n";
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
