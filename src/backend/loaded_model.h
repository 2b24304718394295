// LoadedModel: a GGUF's model, tokenizer and chat template, loaded in one place for `fabula run`, `fabula serve`
// and the local narrator.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fabula::backend {

struct LoadedModel {
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;             // empty (n_tokens() == 0) when the GGUF has none and none was required
  ChatTemplate chat_template;      // the GGUF's tokenizer.chat_template; Gemma 4's when it stores none
  std::string chat_template_text;  // as stored ("" if none)
  std::string chat_template_error; // why the stored template is unusable (chat_template is then Gemma 4's)

  bool has_tokenizer() const { return tokenizer.n_tokens() > 0; }
  // The text of every end-of-generation token (<eos>, <turn|>, ...): stop strings for a model that spells one
  // out piece by piece instead of sampling the token.
  std::vector<std::string> stop_texts() const;
  // Messages rendered through the chat template (generation prompt added), then tokenized with the special
  // tokens the text spells parsed. kUnsupported when the stored template is one fabula cannot render.
  Result<std::string> render_chat(std::span<const ChatMessage> messages, const ChatRenderOptions& options = {}) const;
  Result<std::vector<int32_t>> encode_chat(std::span<const ChatMessage> messages,
                                           const ChatRenderOptions& options = {}) const;
};

struct LoadModelOptions {
  bool require_tokenizer = true;  // false: a GGUF without tokenizer.* loads (raw token ids only)
  ModelLoadOptions model;          // --mlock / --no-mmap
};

Result<LoadedModel> load_model(const std::string& gguf_path, const LoadModelOptions& options = {});

}  // namespace fabula::backend
