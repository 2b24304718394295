// libFuzzer target: /completion and /v1/chat/completions bodies (the first byte picks which). Any body is read
// into generation settings or refused with an error naming the field (never a throw or crash); token ids that
// pass are inside the vocabulary, and chat messages that pass render through the model's template.
// fuzz-link: fabula_server
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "base/json_view.h"
#include "server/request.h"
#include "text/chat_template.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const Tokenizer tokenizer = [] {
    auto t = Tokenizer::load(std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf");
    FABULA_CHECK(t.ok());
    return std::move(*t);
  }();
  static const ChatTemplate tmpl = ChatTemplate::gemma4();
  const int64_t n_vocab = static_cast<int64_t>(tokenizer.n_tokens());
  const bool chat = data[0] & 1;
  auto doc = parse_json(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), "request");
  if (!doc) return 0;
  auto fields = server::parse_completion_fields(*doc, tokenizer, n_vocab, chat);
  if (fields) {
    for (const auto& [id, bias] : fields->gen.sampler.logit_bias) FABULA_CHECK(id >= 0 && id < n_vocab);
    (void)dump_json(server::generation_settings_json(fields->gen, fields->seed_requested));
  } else {
    FABULA_CHECK(fields.error().message.rfind("request", 0) == 0);
  }
  if (chat) {
    auto request = server::parse_chat(*doc, tmpl);
    if (request) {
      auto text = tmpl.render(request->messages);
      FABULA_CHECK(text.ok() || !text.error().message.empty());
    }
  } else if (auto prompt = JsonView(*doc, "request").find("prompt")) {
    auto ids = server::parse_prompt(prompt->raw(), tokenizer, n_vocab);
    if (ids) for (int32_t id : *ids) FABULA_CHECK(id >= 0 && id < n_vocab);
  }
  return 0;
}
