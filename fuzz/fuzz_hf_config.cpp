// libFuzzer target: a Hugging Face config.json. Any bytes load or fail with an error naming the key (never a
// throw or crash); the Gemma 4 hyper-parameters read from it are read again from the config written back.
// fuzz-link: fabula_model
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "format/hf_config.h"
#include "model/gemma4/hparams.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = HfConfig::parse(text);
  if (!config) {
    FABULA_CHECK(!config.error().message.empty());
    return 0;
  }
  for (const auto& key : config->keys()) (void)config->get_double_or(key, 0), (void)config->get_string_or(key, "");
  auto text_config = config->has("text_config") ? config->get_object("text_config") : Result<HfConfig>(*config);
  if (!text_config) return 0;
  auto hp = gemma4_hparams_from_hf(*text_config);
  if (!hp) {
    FABULA_CHECK(!hp.error().message.empty());
    return 0;
  }
  // parse -> write -> parse: the same hyper-parameters.
  auto again = HfConfig::parse(dump_json(config->json()));
  FABULA_CHECK(again.ok());
  auto again_text = again->has("text_config") ? again->get_object("text_config") : Result<HfConfig>(*again);
  FABULA_CHECK(again_text.ok());
  auto hp2 = gemma4_hparams_from_hf(*again_text);
  FABULA_CHECK(hp2.ok() && *hp2 == *hp);
  return 0;
}
