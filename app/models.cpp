// `fabula models`: what the model cache holds (size, source, revision, sha256, verified).
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "hub/cache.h"

FABULA_COMMAND(models, "List the models in the cache (fabula pull puts them there)") {
  auto json_out = std::make_shared<bool>(false);
  cli.add_flag("--json", *json_out, "One JSON array instead of the table");
  return [json_out]() -> int {
    using namespace fabula;
    const auto models = hub::list_cached_models();
    if (*json_out) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& m : models) {
        nlohmann::json files = nlohmann::json::array();
        for (const auto& f : m.files)
          files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}, {"verified", f.verified}});
        out.push_back({{"ref", m.ref}, {"repo", m.repo}, {"path", m.path().string()}, {"size", m.total_size()},
                       {"quant", m.quant}, {"revision", m.revision}, {"commit", m.commit}, {"source", m.source},
                       {"profile", m.profile}, {"verified", m.verified()}, {"pulled_at", m.pulled_at},
                       {"files", files}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    if (models.empty()) {
      std::printf("no models in %s yet; try: fabula pull vn26b\n", hub::cache_root().c_str());
      return 0;
    }
    std::printf("%-28s %9s  %-8s %-14s %-14s %-8s %s\n", "REF", "SIZE", "QUANT", "REVISION", "SHA256", "VERIFIED",
                "SOURCE");
    for (const auto& m : models) {
      std::string revision = m.commit.empty() ? m.revision : m.revision + "@" + m.commit.substr(0, 7);
      std::string sha = m.files.front().sha256.empty() ? "-" : m.files.front().sha256.substr(0, 12);
      if (m.files.size() > 1) sha += "+";  // a split model: every part has its own
      std::printf("%-28s %7.2f GB  %-8s %-14s %-14s %-8s %s/%s\n", m.ref.c_str(),
                  static_cast<double>(m.total_size()) / 1e9, m.quant.empty() ? "-" : m.quant.c_str(),
                  revision.c_str(), sha.c_str(), m.verified() ? "yes" : "no", m.source.c_str(), m.repo.c_str());
      std::printf("  %s%s\n", m.path().c_str(),
                  m.files.size() > 1 ? fmt::format(" (+{} parts)", m.files.size() - 1).c_str() : "");
    }
    std::printf("cache: %s\n", hub::cache_root().c_str());
    return 0;
  };
}
