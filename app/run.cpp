// `fabula run`: generate from a prompt, a chat message or raw token ids with the in-process model, streaming text.
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "backend/generator.h"
#include "backend/loaded_model.h"
#include "base/ascii.h"
#include "base/log.h"
#include "command.h"
#include "decoding_args.h"
#include "eval/tells.h"
#include "model/model.h"
#include "model_args.h"
#include "story_args.h"
#include "protocol/manifest.h"
#include "sample/constrained.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace {

// The demo narrator's system text (stories/sakuragaoka/story.json profiles.demo.system, the one it was trained with):
// its chat template has no system text of its own, and it was trained with exactly this one.
constexpr const char* kDemoSystem =
    "You narrate a slice-of-life visual novel. Use only the listed cast. Drive the stage with [TOOL: ...] lines.";

struct RunArgs {
  std::string model;
  std::string prompt, chat, tokens, system;
  bool system_set = false;
  int n_predict = 128;
  float temp = 1.0f;
  float top_p = 0.95f;
  int top_k = 64;
  float min_p = 0.0f;
  int64_t seed = -1;
  bool ids = false;
  int threads = 0;
  int64_t ctx = 0;
  fabula::app::DecodingArgs decoding;  // --constrained, --ban-list, --ban-tells
  std::string story, cast;
  fabula::ModelLoadOptions load;
  fabula::KvCacheTypes cache_type;
};

}  // namespace

FABULA_COMMAND(run, "Generate text with the in-process model") {
  auto a = std::make_shared<RunArgs>();
  cli.add_option("-m,--model", a->model, "GGUF model: a path or a pulled model (vn26b, owner/repo:QUANT)");
  auto* g = cli.add_option_group("input", "exactly one of");
  g->add_option("-p,--prompt", a->prompt, "Raw prompt text (special tokens like <bos> are recognised)");
  g->add_option("--chat", a->chat, "A user message, wrapped with the model's chat template");
  g->add_option("--tokens", a->tokens, "Prompt token ids: 2,17,300");
  g->require_option(1);
  cli.add_option("--system", a->system, "System text for --chat (default: the demo narrator's, for the demo model)");
  cli.add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str();
  cli.add_option("--temp", a->temp, "Temperature; 0 = greedy")->capture_default_str();
  cli.add_option("--top-p", a->top_p, "Nucleus sampling mass; 1 = off")->capture_default_str();
  cli.add_option("--top-k", a->top_k, "Keep the k most likely; 0 = off")->capture_default_str();
  cli.add_option("--min-p", a->min_p, "Min-p cutoff; 0 = off")->capture_default_str();
  cli.add_option("--seed", a->seed, "Sampling seed (default: random)");
  cli.add_flag("--ids", a->ids, "Print only the generated ids, as one JSON array");
  cli.add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  cli.add_option("-c,--ctx", a->ctx, "Context size (default: prompt + n-predict)");
  fabula::app::add_decoding_flags(cli, a->decoding);
  fabula::app::add_load_flags(cli, a->load);
  fabula::app::add_cache_type_flags(cli, a->cache_type);
  cli.add_option("--story", a->story, "Story whose manifest constrains (default: sakuragaoka)");
  cli.add_option("--cast", a->cast, "Locked cast for --constrained: A,B (default: the story's cast)");
  return [a] {
    using namespace fabula;
    auto choice = app::resolve_model_arg(a->model);
    if (!choice) return app::report_error(choice.error());
    const std::string path = choice->path;
    const std::string profile = app::narrator_profile_for(*choice);
    FABULA_LOG_DEBUG("model {} · profile {}", path, profile);
    // The context the run needs is known only after tokenizing; the check uses --ctx or a typical beat's worth.
    app::warn_if_model_would_page(*choice, a->ctx > 0 ? a->ctx : 4096, a->cache_type);
    auto loaded = backend::load_model(path, {.require_tokenizer = false, .model = a->load});
    if (!loaded.ok()) return app::report_error(loaded.error());
    const Model& model = *loaded->model;
    const Tokenizer& tok = loaded->tokenizer;
    const bool has_tokenizer = loaded->has_tokenizer();
    if (!has_tokenizer && a->tokens.empty()) {
      return app::report_error(make_error(ErrorCode::kUnsupported, "{}: the model has no tokenizer; use --tokens",
                                          path));
    }

    std::vector<int32_t> prompt;
    if (!a->tokens.empty()) {
      auto ids = app::parse_token_list(a->tokens);
      if (!ids.ok()) return app::report_error(ids.error());
      prompt = std::move(*ids);
    } else if (!a->prompt.empty()) {
      prompt = tok.encode(a->prompt);
    } else {
      std::vector<ChatMessage> messages;
      std::string system = a->system;
      if (system.empty() && profile == "demo") system = kDemoSystem;
      if (!system.empty()) messages.push_back({"system", system});
      messages.push_back({"user", a->chat});
      auto ids = loaded->encode_chat(messages);
      if (!ids.ok()) return app::report_error(ids.error());
      prompt = std::move(*ids);
    }

    GenerationParams gp;
    SamplerParams& sp = gp.sampler;
    sp.temperature = a->temp;
    sp.top_k = a->top_k;
    sp.top_p = a->top_p;
    sp.min_p = a->min_p;
    sp.seed = a->seed >= 0 ? static_cast<uint64_t>(a->seed) : std::random_device{}();
    gp.n_predict = a->n_predict;
    gp.cache_prompt = false;
    if (!has_tokenizer) gp.eog_ids = {-1};  // raw ids only: nothing ends generation but the limit

    // The protocol mask and phrase-ban backtracking, both inside the shared Generator.
    if (a->decoding.constrained) {
      if (!has_tokenizer) return app::report_error(make_error(ErrorCode::kUnsupported, "--constrained needs a tokenizer"));
      auto m = app::manifest_for_story_option(a->story);  // prints the error
      if (!m) return 1;
      std::vector<std::string> cast;
      for (const std::string_view n : split(a->cast, ','))
        if (!n.empty()) cast.emplace_back(n);
      auto c = ProtocolConstraint::create(tok, *m, cast);
      if (!c.ok()) return app::report_error(c.error());
      gp.constraint = std::move(*c);
    }
    if (!a->decoding.ban_list.empty() || a->decoding.ban_tells) {
      if (!has_tokenizer) return app::report_error(make_error(ErrorCode::kUnsupported, "phrase bans need a tokenizer"));
      auto pm = eval::load_phrase_bans(a->decoding.ban_list, a->decoding.ban_tells);
      if (!pm.ok()) return app::report_error(pm.error());
      gp.banned_phrases = std::move(*pm);
    }

    SessionOptions so;
    so.n_ctx = a->ctx > 0 ? a->ctx : static_cast<int64_t>(prompt.size()) + std::max(a->n_predict, 0) + 1;
    so.n_threads = a->threads;
    so.cache_type = a->cache_type;
    Session session(model, so);
    Generator gen(tok, session);

    bool first = true;
    auto r = gen.generate(prompt, gp, [&](const GeneratedToken& t) {
      if (a->ids) return true;
      if (has_tokenizer) {
        std::fwrite(t.content.data(), 1, t.content.size(), stdout);
      } else if (!t.eog) {
        std::printf("%s%d", first ? "" : " ", t.id);
        first = false;
      }
      std::fflush(stdout);
      return true;
    });
    if (!r.ok()) return app::report_error(r.error());
    std::vector<int32_t> generated = r->tokens;
    if (r->stop_type == StopType::kEos && !generated.empty()) generated.pop_back();  // the EOG id adds no text
    if (a->ids) {
      std::string out = "[";
      for (size_t i = 0; i < generated.size(); ++i) out += (i ? "," : "") + std::to_string(generated[i]);
      std::printf("%s]\n", out.c_str());
    } else {
      std::printf("\n");
      std::fflush(stdout);  // before the log lines on stderr
      if (gp.banned_phrases) FABULA_LOG_INFO("phrase bans: {} backtracks", r->timings.backtracks);
    }
    const double prefill_s = r->timings.prompt_ms / 1e3;
    const double gen_s = r->timings.predicted_ms / 1e3;
    FABULA_LOG_INFO("prompt {} tokens in {:.3f} s ({:.1f} tok/s); generated {} tokens in {:.3f} s ({:.1f} tok/s)",
                    prompt.size(), prefill_s, static_cast<double>(prompt.size()) / std::max(prefill_s, 1e-9),
                    generated.size(), gen_s, static_cast<double>(generated.size()) / std::max(gen_s, 1e-9));
    return 0;
  };
}
