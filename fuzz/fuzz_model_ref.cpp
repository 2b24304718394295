// libFuzzer target: what a player types after `fabula pull` / `--model`, the split file names and sizes, and a
// Hub file listing. Every input gives a value or an error, never a crash.
// fuzz-link: fabula_hub fabula_format
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "format/gguf_split.h"
#include "hub/cache.h"
#include "hub/http.h"
#include "hub/model_ref.h"
#include "hub/pull.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fabula;
  const std::string text(reinterpret_cast<const char*>(data), size);
  hub::RegistryEntry e;
  e.name = "vn26b";
  e.repo = "o/r";
  e.default_quant = "Q4_K_M";
  e.files = {{"Q4_K_M", "m-Q4_K_M.gguf"}};
  auto ref = hub::parse_model_ref(text, {e});
  if (ref.ok()) (void)ref->display();
  (void)parse_gguf_split_name(text);
  (void)parse_split_size(text);
  (void)hub::quant_of_file(text);
  (void)hub::url_origin(text);
  (void)hub::resolve_location("https://hub/a/b", text);
  // The same bytes as a listing of file names (one per line) to choose from.
  std::vector<hub::RepoFile> listing;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\n') {
      listing.push_back({text.substr(start, i - start), 1, ""});
      start = i + 1;
    }
  }
  // The same bytes as the JSON of a Hub listing, a registry and a cache manifest.
  (void)hub::parse_repo_listing(text, "fuzz");
  (void)hub::parse_registry(text, "fuzz");
  (void)hub::parse_manifest(text, "fuzz");
  hub::ModelRef any;
  any.repo = "o/r";
  (void)hub::choose_files(any, listing);
  return 0;
}
