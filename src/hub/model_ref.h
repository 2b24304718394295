// What a player types after `pull` or `--model`: owner/repo[:QUANT], owner/repo/file.gguf, or a short name from
// the registry (models/registry.json: vn26b, vn26b:Q8_0).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace fabula::hub {

struct RegistryEntry {
  std::string name;                         // "vn26b"
  std::string repo;                         // owner/name on the Hub
  std::string default_quant;                // "Q4_K_M"
  std::map<std::string, std::string> files; // upper-case quant -> file in the repo
  std::string profile;                      // narrator profile of the story packages ("vn26b")
  std::string description;
};

using Registry = std::vector<RegistryEntry>;

// models/registry.json of the source tree (or $FABULA_REGISTRY); an empty registry when neither exists.
Result<Registry> load_registry();
Result<Registry> load_registry_file(const std::string& path);
// {"models": {NAME: {"repo", "files": {QUANT: file}, "default", "profile", "description"}}}; `where` names the source.
Result<Registry> parse_registry(std::string_view text, const std::string& where);
const RegistryEntry* find_registry_entry(const Registry& registry, std::string_view name);

struct ModelRef {
  std::string repo;      // owner/name
  std::string file;      // a file in the repo; "" = pick by quant from the listing
  std::string quant;     // upper case; "" = the default (Q4_K_M when the repo has it)
  std::string revision = "main";
  std::string short_name;  // the registry name it came from
  std::string profile;     // the registry's narrator profile ("" = unknown)

  std::string display() const;  // what the user typed, normalised: vn26b:Q8_0, owner/repo:Q4_K_M, owner/repo/f.gguf
};

// Parses REF. Errors say which forms are accepted. A registry name wins over nothing else: names have no '/'.
Result<ModelRef> parse_model_ref(std::string_view text, const Registry& registry);

// True for what should be opened as a file rather than looked up: an existing file, or a path-like string
// (starts with / . ~, or ends in .gguf with no owner/repo/ in front).
bool looks_like_path(std::string_view text);

}  // namespace fabula::hub
