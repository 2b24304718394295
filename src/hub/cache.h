// The model cache: pulled files under $FABULA_HOME/models (or $XDG_CACHE_HOME/fabula/models, ~/.cache/...),
// laid out as <owner>/<repo>/<file>, each model with a manifest <first file>.json beside it (source, revision,
// sha256, verified). A download in progress is <file>.partial until it verifies.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "hub/model_ref.h"

namespace fabula::hub {

std::filesystem::path cache_root();

struct CachedFile {
  std::string name;    // path inside the repo
  uint64_t size = 0;
  std::string sha256;  // "" when the hub gave none
  bool verified = false;  // the downloaded bytes hashed to sha256
};

struct CachedModel {
  std::string ref;         // the reference it was pulled as (vn26b:Q8_0, owner/repo:Q4_K_M, ...)
  std::string repo;
  std::string revision;    // what was asked (main)
  std::string commit;      // what the hub resolved it to (X-Repo-Commit), when known
  std::string quant;
  std::string profile;     // narrator profile from the registry ("" = decided from the model)
  std::string source;      // the hub endpoint
  std::string pulled_at;   // UTC, ISO 8601
  std::vector<CachedFile> files;  // a split model: every part, in order

  std::filesystem::path dir;  // the repo's directory in the cache
  std::filesystem::path path() const { return dir / files.front().name; }  // what to load (the first part)
  uint64_t total_size() const;
  bool verified() const;
  std::filesystem::path manifest_path() const { return dir / (files.front().name + ".json"); }
};

Status save_manifest(const CachedModel& model);
// Every model in the cache whose manifest parses and whose files are all present (newest first by name).
std::vector<CachedModel> list_cached_models();
// A manifest's text (`where`: its path, for the message); a wrongly typed field is an error naming it.
Result<CachedModel> parse_manifest(const std::string& text, const std::string& where);
// The cached model a reference names: its file, or for owner/repo[:QUANT] the quant (default Q4_K_M, else the
// only one cached).
std::optional<CachedModel> find_cached(const ModelRef& ref);
// The cached model whose first file is `path` (to learn a profile from a path into the cache).
std::optional<CachedModel> cached_model_for_path(const std::string& path);

// True when `file`'s base name carries `quant` as a token (…-Q4_K_M.gguf, …Q8_0-00001-of-00002.gguf).
bool file_has_quant(std::string_view file, std::string_view quant);
// The quant token of a file name (Q4_K_M, Q8_0, F16, BF16, ...), "" when none.
std::string quant_of_file(std::string_view file);

}  // namespace fabula::hub
