// libFuzzer target: chat-template detection (a GGUF's tokenizer.chat_template, tokenizer_config.json, a remote
// server's /props). Any text is recognised or refused with an error; a recognised template renders messages
// with their text in it.
// fuzz-link: fabula_text
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "text/chat_template.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tmpl = ChatTemplate::detect(text);
  if (!tmpl) {
    FABULA_CHECK(!tmpl.error().message.empty());
    return 0;
  }
  const std::vector<ChatMessage> messages = {
      {"system", "Narrate the scene."}, {"user", "Hello there"}, {"assistant", "[Hana]: \"Hi.\""}, {"user", "Wave"}};
  auto rendered = tmpl->render(messages);
  FABULA_CHECK(rendered.ok());
  FABULA_CHECK(rendered->find("Hello there") != std::string::npos);
  FABULA_CHECK(rendered->find("Wave") != std::string::npos);
  return 0;
}
