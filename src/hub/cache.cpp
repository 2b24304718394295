// The on-disk model cache and its manifests.
#include "hub/cache.h"

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/ascii.h"
#include "base/file.h"
#include "base/json_view.h"

namespace fabula::hub {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path cache_root() {
  if (const char* home = std::getenv("FABULA_HOME"); home != nullptr && *home != '\0') return fs::path(home) / "models";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "fabula" / "models";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return fs::path(home) / ".cache" / "fabula" / "models";
  return fs::path(".fabula") / "models";
}

uint64_t CachedModel::total_size() const {
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  return total;
}

bool CachedModel::verified() const {
  return std::all_of(files.begin(), files.end(), [](const CachedFile& f) { return f.verified; });
}

Status save_manifest(const CachedModel& m) {
  json files = json::array();
  for (const auto& f : m.files)
    files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}, {"verified", f.verified}});
  json j = {{"ref", m.ref},         {"repo", m.repo},     {"revision", m.revision}, {"commit", m.commit},
            {"quant", m.quant},     {"profile", m.profile}, {"source", m.source},   {"pulled_at", m.pulled_at},
            {"files", files}};
  return write_file_atomic(m.manifest_path().string(), dump_json(j, 2) + "\n");
}

Result<CachedModel> parse_manifest(const std::string& text, const std::string& where) {
  FABULA_ASSIGN(json j, parse_json(text, where));
  JsonView root(j, where);
  FABULA_TRY(root.expect_object());
  CachedModel m;
  FABULA_ASSIGN(m.ref, root.string_or("ref", ""));
  FABULA_ASSIGN(m.repo, root.string_or("repo", ""));
  FABULA_ASSIGN(m.revision, root.string_or("revision", ""));
  FABULA_ASSIGN(m.commit, root.string_or("commit", ""));
  FABULA_ASSIGN(m.quant, root.string_or("quant", ""));
  FABULA_ASSIGN(m.profile, root.string_or("profile", ""));
  FABULA_ASSIGN(m.source, root.string_or("source", ""));
  FABULA_ASSIGN(m.pulled_at, root.string_or("pulled_at", ""));
  FABULA_ASSIGN(JsonView files, root.field("files"));
  FABULA_ASSIGN(std::vector<JsonView> entries, files.elements());
  if (entries.empty()) return files.error(ErrorCode::kParse, "names no file");
  for (const JsonView& f : entries) {
    CachedFile file;
    FABULA_ASSIGN(file.name, f.string("name"));
    FABULA_ASSIGN(file.size, f.unsigned_or("size", 0));
    FABULA_ASSIGN(file.sha256, f.string_or("sha256", ""));
    FABULA_ASSIGN(file.verified, f.boolean_or("verified", false));
    m.files.push_back(std::move(file));
  }
  return m;
}

namespace {

// A manifest that cannot be read, or whose files are gone, lists nothing: `fabula pull` writes it again.
std::optional<CachedModel> read_manifest(const fs::path& manifest, const fs::path& repo_dir) {
  auto text = read_file_text(manifest.string());
  if (!text.ok()) return std::nullopt;
  auto parsed = parse_manifest(*text, manifest.string());
  if (!parsed.ok()) return std::nullopt;
  CachedModel m = std::move(*parsed);
  m.dir = repo_dir;
  std::error_code ec;
  for (const auto& f : m.files) {
    const fs::path p = m.dir / f.name;
    if (!fs::is_regular_file(p, ec) || fs::file_size(p, ec) != f.size) return std::nullopt;  // removed by hand
  }
  return m;
}

}  // namespace

std::vector<CachedModel> list_cached_models() {
  std::vector<CachedModel> out;
  const fs::path root = cache_root();
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  // <root>/<owner>/<repo>/...: manifests anywhere below a repo directory (files may sit in sub-folders).
  for (const auto& owner : fs::directory_iterator(root, ec)) {
    if (!owner.is_directory()) continue;
    for (const auto& repo : fs::directory_iterator(owner.path(), ec)) {
      if (!repo.is_directory()) continue;
      for (auto it = fs::recursive_directory_iterator(repo.path(), ec); it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!it->is_regular_file() || name.size() < 10 || name.substr(name.size() - 10) != ".gguf.json") continue;
        if (auto m = read_manifest(it->path(), repo.path())) out.push_back(std::move(*m));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const CachedModel& a, const CachedModel& b) {
    return a.repo != b.repo ? a.repo < b.repo : a.files.front().name < b.files.front().name;
  });
  return out;
}

namespace {

}  // namespace

bool file_has_quant(std::string_view file, std::string_view quant) {
  const std::string base = ascii_upper(fs::path(file).filename().string());
  const std::string q = ascii_upper(quant);
  for (size_t at = base.find(q); at != std::string::npos; at = base.find(q, at + 1)) {
    const bool start_ok = at == 0 || base[at - 1] == '-' || base[at - 1] == '.' || base[at - 1] == '_';
    const size_t end = at + q.size();
    const bool end_ok = end == base.size() || base[end] == '-' || base[end] == '.';
    if (start_ok && end_ok) return true;
  }
  return false;
}

std::string quant_of_file(std::string_view file) {
  static const char* kQuants[] = {"IQ1_S",  "IQ1_M",  "IQ2_XXS", "IQ2_XS", "IQ2_S",  "IQ2_M",  "IQ3_XXS", "IQ3_XS",
                                  "IQ3_S",  "IQ3_M",  "IQ4_XS",  "IQ4_NL", "Q2_K",   "Q2_K_S", "Q3_K_S",  "Q3_K_M",
                                  "Q3_K_L", "Q4_0",   "Q4_1",    "Q4_K_S", "Q4_K_M", "Q5_0",   "Q5_1",    "Q5_K_S",
                                  "Q5_K_M", "Q6_K",   "Q8_0",    "F16",    "BF16",   "F32"};
  for (const char* q : kQuants)
    if (file_has_quant(file, q)) return q;
  return "";
}

std::optional<CachedModel> find_cached(const ModelRef& ref) {
  std::vector<CachedModel> candidates;
  for (auto& m : list_cached_models()) {
    if (m.repo != ref.repo) continue;
    if (!ref.file.empty()) {
      if (m.files.front().name == ref.file) return m;
      continue;
    }
    if (!ref.quant.empty() ? (m.quant == ref.quant || file_has_quant(m.files.front().name, ref.quant)) : true)
      candidates.push_back(std::move(m));
  }
  if (candidates.empty()) return std::nullopt;
  if (ref.quant.empty() && candidates.size() > 1) {
    for (auto& m : candidates)
      if (m.quant == "Q4_K_M" || file_has_quant(m.files.front().name, "Q4_K_M")) return m;
    return std::nullopt;  // ambiguous: the caller asks for a :QUANT
  }
  return candidates.front();
}

std::optional<CachedModel> cached_model_for_path(const std::string& path) {
  std::error_code ec;
  const fs::path wanted = fs::weakly_canonical(path, ec);
  for (auto& m : list_cached_models()) {
    if (fs::weakly_canonical(m.path(), ec) == wanted) return m;
  }
  return std::nullopt;
}

}  // namespace fabula::hub
