// Model references and the registry of short names.
#include "hub/model_ref.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/ascii.h"
#include "base/file.h"
#include "base/json_view.h"
#include "protocol/manifest.h"

namespace fabula::hub {

namespace {

bool valid_repo_part(std::string_view part) {
  if (part.empty() || part.size() > 96 || part == "." || part == "..") return false;
  return std::all_of(part.begin(), part.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

Result<Registry> parse_registry(std::string_view text, const std::string& where) {
  FABULA_ASSIGN(nlohmann::json j, parse_json(text, where));
  JsonView root(j, where);
  FABULA_TRY(root.expect_object());
  FABULA_ASSIGN(JsonView models, root.field("models"));
  FABULA_ASSIGN(auto entries, models.members());
  Registry out;
  for (const auto& [name, m] : entries) {
    FABULA_TRY(m.expect_object());
    RegistryEntry e;
    e.name = name;
    FABULA_ASSIGN(e.repo, m.string("repo"));
    FABULA_ASSIGN(JsonView files, m.field("files"));
    FABULA_ASSIGN(auto quants, files.members());
    if (quants.empty()) return files.error(ErrorCode::kParse, "expected at least one QUANT: file name");
    for (const auto& [quant, file] : quants) {
      FABULA_ASSIGN(e.files[ascii_upper(quant)], file.string());
    }
    FABULA_ASSIGN(std::string default_quant, m.string_or("default", e.files.begin()->first));
    e.default_quant = ascii_upper(default_quant);
    if (e.files.count(e.default_quant) == 0)
      return m.error(ErrorCode::kParse, "default \"{}\" is not in files", e.default_quant);
    FABULA_ASSIGN(e.profile, m.string_or("profile", ""));
    FABULA_ASSIGN(e.description, m.string_or("description", ""));
    out.push_back(std::move(e));
  }
  return out;
}

Result<Registry> load_registry_file(const std::string& path) {
  auto text = read_file_text(path);
  if (!text) return make_error(ErrorCode::kNotFound, "{}: cannot open the model registry", path);
  return parse_registry(*text, path);
}

Result<Registry> load_registry() {
  if (const char* env = std::getenv("FABULA_REGISTRY"); env != nullptr && *env != '\0') return load_registry_file(env);
  auto path = protocol::find_in_repo("models/registry.json");
  if (!path) return Registry{};
  return load_registry_file(*path);
}

const RegistryEntry* find_registry_entry(const Registry& registry, std::string_view name) {
  for (const auto& e : registry)
    if (e.name == name) return &e;
  return nullptr;
}

std::string ModelRef::display() const {
  if (!short_name.empty()) return quant.empty() ? short_name : short_name + ":" + quant;
  if (!file.empty()) return repo + "/" + file;
  return quant.empty() ? repo : repo + ":" + quant;
}

Result<ModelRef> parse_model_ref(std::string_view text, const Registry& registry) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'{}': {} (expected owner/repo[:QUANT], owner/repo/file.gguf or a registry name such as "
                      "vn26b[:Q8_0])",
                      text, why);
  };
  if (text.empty()) return bad("empty model reference");
  ModelRef ref;
  std::string_view body = text;
  // ':QUANT' suffix (never inside a file path form).
  if (const size_t colon = body.rfind(':'); colon != std::string_view::npos) {
    ref.quant = ascii_upper(body.substr(colon + 1));
    body = body.substr(0, colon);
    if (ref.quant.empty()) return bad("nothing after ':'");
    if (!std::all_of(ref.quant.begin(), ref.quant.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; }))
      return bad("a quant is letters, digits and '_' (Q4_K_M, Q8_0)");
  }
  if (body.find('/') == std::string_view::npos) {
    const RegistryEntry* e = find_registry_entry(registry, body);
    if (e == nullptr) {
      std::string known;
      for (const auto& r : registry) known += (known.empty() ? "" : ", ") + r.name;
      return bad(known.empty() ? "not a registry name (the registry is empty)"
                               : fmt::format("not a registry name (known: {})", known));
    }
    ref.short_name = e->name;
    ref.repo = e->repo;
    ref.profile = e->profile;
    const std::string quant = ref.quant.empty() ? e->default_quant : ref.quant;
    auto it = e->files.find(quant);
    if (it == e->files.end()) {
      std::string known;
      for (const auto& [q, f] : e->files) known += (known.empty() ? "" : ", ") + q;
      return make_error(ErrorCode::kNotFound, "{} has no quant {} (it has: {})", e->name, quant, known);
    }
    ref.file = it->second;
    ref.quant = quant == e->default_quant && ref.quant.empty() ? "" : quant;
    return ref;
  }
  const size_t first = body.find('/');
  const size_t second = body.find('/', first + 1);
  std::string_view owner = body.substr(0, first);
  std::string_view name = body.substr(first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1);
  if (!valid_repo_part(owner) || !valid_repo_part(name)) return bad("owner and repo are letters, digits, - _ .");
  ref.repo = std::string(owner) + "/" + std::string(name);
  if (second != std::string_view::npos) {
    if (!ref.quant.empty()) return bad("give either a file or a :QUANT, not both");
    ref.file = std::string(body.substr(second + 1));
    if (ref.file.empty() || ref.file.find("..") != std::string::npos || ref.file.front() == '/')
      return bad("the file must be a path inside the repository");
  }
  // A registry entry for the same repo lends its profile (owner/repo:Q8_0 of vn26b is vn26b).
  for (const auto& e : registry)
    if (e.repo == ref.repo) ref.profile = e.profile;
  return ref;
}

bool looks_like_path(std::string_view text) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(text), ec)) return true;
  if (text.empty()) return false;
  if (text.front() == '/' || text.front() == '.' || text.front() == '~') return true;
  // "model.gguf" or "dir/model.gguf" (one slash): a path. "owner/repo/file.gguf" has two or more.
  const bool gguf = text.size() > 5 && text.substr(text.size() - 5) == ".gguf";
  return gguf && std::count(text.begin(), text.end(), '/') < 2;
}

}  // namespace fabula::hub
