// POST /completion (llama-server native): prompt as text/ids, sampling fields, JSON or SSE replies, SSE plumbing.
#include <fmt/format.h>

#include "server/server_impl.h"

namespace fabula::server {

using nlohmann::json;

void stream_task(httplib::Response& res, std::shared_ptr<Task> task, EventRenderer on_event, EndRenderer on_end) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [task, on_event = std::move(on_event), on_end = std::move(on_end)](size_t, httplib::DataSink& sink) {
        std::vector<TokenEvent> events;
        for (;;) {
          events.clear();
          const bool finished = task->wait(events, std::chrono::milliseconds(200));
          for (const TokenEvent& e : events) {
            const std::string chunk = on_event(e);
            if (!chunk.empty() && !sink.write(chunk.data(), chunk.size())) {
              task->cancelled = true;  // the client went away
              return false;
            }
          }
          if (finished) {
            const std::string end = on_end(task->wait_result());
            if (!end.empty() && !sink.write(end.data(), end.size())) return false;
            sink.done();
            return true;
          }
          if (!sink.is_writable()) {
            task->cancelled = true;
            return false;
          }
        }
      },
      [task](bool success) {
        if (!success) task->cancelled = true;
      });
}

bool check_prompt_fits(httplib::Response& res, size_t n_prompt, int64_t n_ctx) {
  if (static_cast<int64_t>(n_prompt) < n_ctx) return true;
  json body = error_json(400,
                         fmt::format("the request exceeds the available context size: the prompt has {} tokens, the "
                                     "context holds {} (and needs room for at least one generated token)",
                                     n_prompt, n_ctx),
                         "exceed_context_size_error");
  body["error"]["n_prompt_tokens"] = n_prompt;
  body["error"]["n_ctx"] = n_ctx;
  send_json(res, body, 400);
  return false;
}

namespace {

json final_json(const GenerationResult& r, const CompletionRequest& cr, const std::string& alias, int slot,
                const Tokenizer& tok, bool stream) {
  std::vector<int32_t> tokens = r.tokens;
  if (r.stop_type == StopType::kEos && !tokens.empty()) tokens.pop_back();  // the EOG id adds no text
  json j{{"index", 0},
         {"content", stream ? std::string() : r.content},
         {"tokens", stream || !cr.return_tokens ? json::array() : json(tokens)},
         {"id_slot", slot},
         {"stop", true},
         {"model", alias},
         {"tokens_predicted", r.timings.predicted_n},
         {"tokens_evaluated", r.tokens_evaluated},
         {"generation_settings", generation_settings_json(cr.gen, cr.seed_requested)},
         {"has_new_line", r.content.find('\n') != std::string::npos},
         {"truncated", r.context_full},
         {"stop_type", stop_type_name(r.stop_type)},
         {"stopping_word", r.stopping_word},
         {"tokens_cached", r.timings.cache_n + r.timings.prompt_n + r.timings.predicted_n},
         {"timings", timings_json(r.timings)}};
  if (!stream && cr.gen.n_probs > 0) {
    json probs = json::array();
    for (const TokenProbs& p : r.probs) {
      if (r.stop_type == StopType::kEos && &p == &r.probs.back()) break;
      probs.push_back(probs_json(tok, p.id, p.logprob, p.top));
    }
    j["completion_probabilities"] = probs;
  }
  return j;
}

}  // namespace

void Server::Impl::register_completion_routes() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req, res);
    if (body.is_discarded()) return;
    Loaded& L = *loaded;
    const int64_t n_vocab = L.model->n_vocab();
    auto prompt_it = body.find("prompt");
    if (prompt_it == body.end()) return send_error(res, 400, "field 'prompt': required");
    auto prompt = parse_prompt(*prompt_it, L.tokenizer, n_vocab);
    if (!prompt.ok()) return send_result_error(res, prompt.error());
    auto cr = parse_completion_fields(body, L.tokenizer, n_vocab, false);
    if (!cr.ok()) return send_result_error(res, cr.error());
    if (!check_prompt_fits(res, prompt->size(), L.scheduler->n_ctx())) return;
    if (!apply_decoding_fields(res, L, *cr)) return;

    auto task = std::make_shared<Task>();
    task->prompt = std::move(*prompt);
    task->params = cr->gen;
    task->params.deadline = deadline();
    task->id_slot = cr->id_slot;
    task->want_events = cr->stream;
    L.scheduler->submit(task);

    const std::string alias_copy = alias;
    if (!cr->stream) {
      auto r = task->wait_result();
      if (!r.ok()) return send_result_error(res, r.error());
      return send_json(res, final_json(*r, *cr, alias_copy, task->slot(), L.tokenizer, false));
    }
    const CompletionRequest req_copy = *cr;
    const Tokenizer* tok = &L.tokenizer;
    auto n_sent = std::make_shared<int>(0);
    stream_task(
        res, task,
        [tok, req_copy, n_sent](const TokenEvent& e) -> std::string {
          if (e.eog && e.content.empty()) return "";
          json j{{"index", 0}, {"content", e.content}, {"tokens", e.eog ? json::array() : json::array({e.id})}, {"stop", false}};
          if (req_copy.gen.n_probs > 0 && !e.eog)
            j["completion_probabilities"] = json::array({probs_json(*tok, e.id, e.logprob, e.top)});
          ++*n_sent;
          return sse_event(j);
        },
        [tok, req_copy, alias_copy, task](const Result<GenerationResult>& r) -> std::string {
          if (!r.ok()) {
            const int code = r.error().code == ErrorCode::kOutOfRange || r.error().code == ErrorCode::kInvalidArgument ? 400 : 500;
            return sse_event(error_json(code, r.error().message));
          }
          return sse_event(final_json(*r, req_copy, alias_copy, task->slot(), *tok, true));
        });
  };
  http.Post("/completion", handler);
  http.Post("/completions", handler);
}

}  // namespace fabula::server
