// `fabula run`: generate from a prompt, a chat message or raw token ids with the in-process model, streaming text.
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <limits>
#include <sstream>
#include <string>

#include "base/log.h"
#include "command.h"
#include "model/model.h"
#include "model_args.h"
#include "protocol/manifest.h"  // [constrained-decoding]
#include "sample/constrained.h"
#include "sample/phrase_ban.h"
#include "sample/sampler.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace {

// The demo narrator's system text (stories/sakuragaoka/story.json profiles.demo.system, recipe/train_demo.py SYSTEM):
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
  // [constrained-decoding]
  bool constrained = false;
  std::string story, cast, ban_list;
  bool ban_tells = false;
};

}  // namespace

FABULA_COMMAND(run, "Generate text with the in-process model") {
  auto a = std::make_shared<RunArgs>();
  cli.add_option("-m,--model", a->model, "GGUF model (default: models/fabula-demo-v1.gguf)");
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
  // [constrained-decoding]
  cli.add_flag("--constrained", a->constrained, "Only sample tokens that keep the beat valid (VN protocol)");
  cli.add_option("--story", a->story, "Story whose manifest constrains (default: sakuragaoka)");
  cli.add_option("--cast", a->cast, "Locked cast for --constrained: A,B (default: the story's cast)");
  cli.add_option("--ban-list", a->ban_list, "Phrases to ban (one a line); rewinds and resamples when one appears");
  cli.add_flag("--ban-tells", a->ban_tells, "Ban the plain phrases of data/slop-tells-v1.txt");
  return [a] {
    using namespace fabula;
    const std::string path = a->model.empty() ? app::default_model_path() : a->model;
    auto loaded = Model::load(path);
    if (!loaded.ok()) return app::report_error(loaded.error());
    const Model& model = **loaded;

    Tokenizer tok;
    const bool has_tokenizer = model.gguf().find("tokenizer.ggml.tokens") != nullptr;
    if (has_tokenizer) {
      auto t = Tokenizer::from_gguf(model.gguf());
      if (!t.ok()) return app::report_error(t.error());
      tok = std::move(*t);
    }
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
      auto tmpl = tok.chat_template().empty() ? Result<ChatTemplate>(ChatTemplate::gemma4())
                                              : ChatTemplate::detect(tok.chat_template());
      if (!tmpl.ok()) return app::report_error(tmpl.error());
      std::vector<ChatMessage> messages;
      std::string system = a->system;
      const GgufValue* name = model.gguf().find("general.name");
      if (system.empty() && name != nullptr && name->as_string() != nullptr &&
          name->as_string()->rfind("fabula-demo", 0) == 0) {
        system = kDemoSystem;
      }
      if (!system.empty()) messages.push_back({"system", system});
      messages.push_back({"user", a->chat});
      auto text = tmpl->render(messages);
      if (!text.ok()) return app::report_error(text.error());
      prompt = tok.encode(*text, /*add_bos=*/false, /*parse_special=*/true);
    }

    const Gemma4HParams& hp = model.hparams();
    SessionOptions so;
    so.n_ctx = a->ctx > 0 ? a->ctx : static_cast<int64_t>(prompt.size()) + std::max(a->n_predict, 0) + 1;
    so.n_threads = a->threads;
    Session session(model, so);

    SamplerParams sp;
    sp.temperature = a->temp;
    sp.top_k = a->top_k;
    sp.top_p = a->top_p;
    sp.min_p = a->min_p;
    sp.seed = a->seed >= 0 ? static_cast<uint64_t>(a->seed) : std::random_device{}();
    Sampler sampler(sp, static_cast<size_t>(hp.n_vocab));

    // [constrained-decoding] the protocol mask and phrase-ban backtracking.
    std::shared_ptr<ProtocolConstraint> constraint;
    if (a->constrained) {
      if (!has_tokenizer) return app::report_error(make_error(ErrorCode::kUnsupported, "--constrained needs a tokenizer"));
      auto m = a->story.empty() ? Result<protocol::Manifest>(protocol::Manifest::default_manifest())
                                : protocol::load_story_manifest(a->story);
      if (!m.ok()) return app::report_error(m.error());
      std::vector<std::string> cast;
      std::stringstream names(a->cast);
      for (std::string n; std::getline(names, n, ',');)
        if (!n.empty()) cast.push_back(n);
      auto c = ProtocolConstraint::create(tok, *m, cast);
      if (!c.ok()) return app::report_error(c.error());
      constraint = std::move(*c);
    }
    std::optional<PhraseMatcher> matcher;
    if (!a->ban_list.empty()) {
      auto pm = PhraseMatcher::load(a->ban_list);
      if (!pm.ok()) return app::report_error(pm.error());
      matcher = std::move(*pm);
    } else if (a->ban_tells) {
      auto path = protocol::find_in_repo("data/slop-tells-v1.txt");
      if (!path) return app::report_error(make_error(ErrorCode::kNotFound, "data/slop-tells-v1.txt not found"));
      auto pm = PhraseMatcher::load_tells(*path);
      if (!pm.ok()) return app::report_error(pm.error());
      matcher = std::move(*pm);
    }
    std::optional<PhraseBacktracker> bans;
    if (matcher) bans.emplace(*matcher);
    std::vector<float> masked;

    const auto t0 = std::chrono::steady_clock::now();
    if (auto st = session.decode(prompt); !st.ok()) return app::report_error(st.error());
    const auto t1 = std::chrono::steady_clock::now();

    std::vector<int32_t> generated;
    StreamingDetokenizer detok(tok);
    for (int i = 0; i < a->n_predict; ++i) {
      int32_t id = -1;
      if (constraint || bans) {  // [constrained-decoding]
        std::span<const float> raw = session.last_logits();
        masked.assign(raw.begin(), raw.end());
        if (constraint) constraint->apply(masked);
        if (bans)
          for (int32_t b : bans->banned(generated.size())) masked[static_cast<size_t>(b)] = -std::numeric_limits<float>::infinity();
        id = sampler.sample(masked);
        if (constraint)
          if (auto st = constraint->accept(id); !st.ok()) return app::report_error(st.error());
      } else {
        id = sampler.sample(session.last_logits());
      }
      sampler.accept(id);
      if (has_tokenizer && tok.is_eog(id)) break;
      generated.push_back(id);
      if (bans) {  // [constrained-decoding] rewind to where a banned phrase started; output is printed at the end
        if (auto keep = bans->on_token(id, tok.token_bytes(id))) {
          generated.resize(*keep);
          if (constraint) constraint->rewind(*keep);
          // Recompute the logits at the rewound position by re-decoding its predecessor.
          const int64_t n = static_cast<int64_t>(prompt.size() + *keep);
          if (auto st = session.truncate(n - 1); !st.ok()) return app::report_error(st.error());
          const int32_t prev[1] = {*keep > 0 ? generated.back() : prompt.back()};
          if (auto st = session.decode(prev); !st.ok()) return app::report_error(st.error());
          continue;
        }
        if (i + 1 == a->n_predict) break;
        const int32_t next[1] = {id};
        if (auto st = session.decode(next); !st.ok()) return app::report_error(st.error());
        continue;
      }
      if (!a->ids) {
        if (has_tokenizer) {
          const std::string piece = detok.feed(id);
          std::fwrite(piece.data(), 1, piece.size(), stdout);
        } else {
          std::printf("%s%d", generated.size() > 1 ? " " : "", id);
        }
        std::fflush(stdout);
      }
      if (i + 1 == a->n_predict) break;
      const int32_t next[1] = {id};
      if (auto st = session.decode(next); !st.ok()) return app::report_error(st.error());
    }
    const auto t2 = std::chrono::steady_clock::now();

    if (a->ids) {
      std::string out = "[";
      for (size_t i = 0; i < generated.size(); ++i) out += (i ? "," : "") + std::to_string(generated[i]);
      std::printf("%s]\n", out.c_str());
    } else {
      const std::string tail = has_tokenizer ? (bans ? tok.decode(generated) : detok.flush()) : "";
      std::printf("%s\n", tail.c_str());
      if (bans) FABULA_LOG_INFO("phrase bans: {} backtracks", bans->backtracks());
    }
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double gen_s = std::chrono::duration<double>(t2 - t1).count();
    FABULA_LOG_INFO("prompt {} tokens in {:.3f} s ({:.1f} tok/s); generated {} tokens in {:.3f} s ({:.1f} tok/s)",
                    prompt.size(), prefill_s, static_cast<double>(prompt.size()) / std::max(prefill_s, 1e-9),
                    generated.size(), gen_s, static_cast<double>(generated.size()) / std::max(gen_s, 1e-9));
    return 0;
  };
}
