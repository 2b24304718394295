// LocalNarrator: engine::Narrator over the native runtime (LoadedModel + Session + sampler via Generator).
#include "backend/local_narrator.h"

#include <filesystem>

#include "backend/narrators.h"

namespace fabula::backend {

Result<std::unique_ptr<LocalNarrator>> LocalNarrator::load(const std::string& gguf_path, LocalNarratorOptions options) {
  std::unique_ptr<LocalNarrator> n(new LocalNarrator());
  n->path_ = std::filesystem::path(gguf_path).filename().string();
  FABULA_ASSIGN(n->loaded_, load_model(gguf_path, {.model = options.load}));
  if (!n->loaded_.chat_template_error.empty())
    return make_error(ErrorCode::kUnsupported, "{} (the narrator renders beats through the model's chat template)",
                      n->loaded_.chat_template_error);
  SessionOptions so;
  so.n_ctx = options.n_ctx;
  so.n_threads = options.n_threads;
  so.cache_type = options.cache_type;
  n->session_ = std::make_unique<Session>(*n->loaded_.model, so);
  n->generator_ = std::make_unique<Generator>(n->loaded_.tokenizer, *n->session_);
  return n;
}

Result<GenerationParams> beat_generation_params(const engine::NarratorRequest& request, const LoadedModel& loaded,
                                                std::shared_ptr<const ConstraintVocab>& vocab) {
  GenerationParams params;
  const auto& s = request.sampling;
  params.sampler.temperature = s.temperature;
  params.sampler.top_k = s.top_k;
  params.sampler.top_p = s.top_p;
  params.sampler.min_p = s.min_p;
  params.sampler.repeat_penalty = s.repeat_penalty;
  params.sampler.seed = request.seed;
  params.n_predict = s.max_tokens;
  params.stop = s.stop;
  for (auto& text : loaded.stop_texts()) params.stop.push_back(std::move(text));
  params.banned_phrases = s.banned_phrases;
  if (s.constrained) {  // fail closed: no manifest or a bad cast is an error, never an unconstrained beat
    if (request.manifest == nullptr)
      return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the request carries no story manifest");
    if (!vocab) {
      FABULA_ASSIGN(vocab, ConstraintVocab::build(loaded.tokenizer));
    }
    FABULA_ASSIGN(auto rec, ProtocolRecognizer::create(*request.manifest, request.cast));
    params.constraint = std::make_shared<ProtocolConstraint>(std::move(rec), vocab);
  }
  return params;
}

Result<engine::NarratorResult> LocalNarrator::write(const engine::NarratorRequest& request,
                                                    const engine::TextCallback& on_text) {
  std::lock_guard<std::mutex> lock(mu_);
  FABULA_ASSIGN(std::vector<int32_t> prompt, loaded_.encode_chat(request.messages));
  FABULA_ASSIGN(GenerationParams params, beat_generation_params(request, loaded_, vocab_));
  engine::NarratorResult out;
  auto gen = generator_->generate(prompt, params, [&](const GeneratedToken& t) {
    ++out.tokens;
    if (t.content.empty()) return true;
    out.text += t.content;
    return on_text(t.content);
  });
  if (!gen) return gen.take_error();
  out.cancelled = gen->stop_type == StopType::kCancelled;
  out.stop_reason = std::string(stop_type_name(gen->stop_type));
  out.backtracks = gen->timings.backtracks;
  return out;
}

Result<std::unique_ptr<engine::Narrator>> make_local_narrator(const std::string& model_path,
                                                               const ModelLoadOptions& load,
                                                               KvCacheTypes cache_type) {
  LocalNarratorOptions options;
  options.load = load;
  options.cache_type = cache_type;
  FABULA_ASSIGN(auto n, LocalNarrator::load(model_path, options));
  return std::unique_ptr<engine::Narrator>(std::move(n));
}

}  // namespace fabula::backend
