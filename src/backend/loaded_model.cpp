// load_model: Model::load, the tokenizer from the same GGUF's metadata, and its chat template detected once.
#include "backend/loaded_model.h"

namespace fabula::backend {

Result<LoadedModel> load_model(const std::string& gguf_path, const LoadModelOptions& options) {
  LoadedModel lm;
  FABULA_ASSIGN(lm.model, Model::load(gguf_path, options.model));
  if (options.require_tokenizer || lm.model->gguf().find("tokenizer.ggml.tokens") != nullptr) {
    FABULA_ASSIGN(lm.tokenizer, Tokenizer::from_gguf(lm.model->gguf()));
  }
  lm.chat_template_text = lm.tokenizer.n_tokens() > 0 ? lm.tokenizer.chat_template() : std::string();
  lm.chat_template = ChatTemplate::gemma4();  // what a Gemma 4 GGUF without a stored template expects
  if (!lm.chat_template_text.empty()) {
    auto detected = ChatTemplate::detect(lm.chat_template_text);
    if (detected.ok()) {
      lm.chat_template = *detected;
    } else {
      lm.chat_template_error = gguf_path + ": " + detected.error().message;
    }
  }
  return lm;
}

std::vector<std::string> LoadedModel::stop_texts() const {
  std::vector<std::string> out;
  if (!has_tokenizer()) return out;
  for (int32_t id : tokenizer.eog_ids()) {
    std::string text(tokenizer.token_text(id));
    if (!text.empty()) out.push_back(std::move(text));
  }
  return out;
}

Result<std::string> LoadedModel::render_chat(std::span<const ChatMessage> messages,
                                             const ChatRenderOptions& options) const {
  if (!chat_template_error.empty()) return make_error(ErrorCode::kUnsupported, "{}", chat_template_error);
  return chat_template.render(messages, options);
}

Result<std::vector<int32_t>> LoadedModel::encode_chat(std::span<const ChatMessage> messages,
                                                      const ChatRenderOptions& options) const {
  if (!has_tokenizer()) return make_error(ErrorCode::kUnsupported, "the model has no tokenizer");
  FABULA_ASSIGN(std::string text, render_chat(messages, options));
  return tokenizer.encode(text, /*add_bos=*/false, /*parse_special=*/true);  // the text spells <bos> itself
}

}  // namespace fabula::backend
