// libFuzzer target: tokenizer.json with an optional tokenizer_config.json (after a line "----"). Any bytes load
// or fail with an error naming the file and field (never a throw or crash); a tokenizer that loads encodes text
// to ids inside its vocabulary, and its chat template, if any, is recognised or refused with an error.
// fuzz-link: fabula_text
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "base/check.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

using namespace fabula;

namespace {

void write(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const std::string dir = "/tmp/fuzz_tokenizer_json_" + std::to_string(::getpid());
  static const bool made = std::filesystem::create_directories(dir) || true;
  (void)made;
  const std::string json_path = dir + "/tokenizer.json", config_path = dir + "/tokenizer_config.json";
  size_t split = text.find("\n----\n");
  write(json_path, text.substr(0, split));
  if (split == std::string_view::npos) ::unlink(config_path.c_str());
  else write(config_path, text.substr(split + 6));
  auto tok = Tokenizer::from_tokenizer_json(json_path);
  if (!tok) {
    FABULA_CHECK(!tok.error().message.empty());
    return 0;
  }
  const int64_t n = static_cast<int64_t>(tok->n_tokens());
  FABULA_CHECK(n > 0);
  for (const char* sample : {"Hello world", "  two  spaces\n\nnew lines", "caf\xC3\xA9 \xE3\x81\x82 <bos><eos>", ""}) {
    for (int32_t id : tok->encode(sample, true, true)) FABULA_CHECK(id >= 0 && id < n);
    (void)tok->decode(tok->encode(sample, false, false));
  }
  if (!tok->chat_template().empty()) (void)ChatTemplate::detect(tok->chat_template());
  return 0;
}
