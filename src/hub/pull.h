// `fabula pull`: resolve a reference on the Hub, download into the cache with resume and sha256 verification.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "hub/cache.h"
#include "hub/model_ref.h"

namespace fabula::hub {

struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::optional<std::string> token;                 // HF_TOKEN; never printed, sent only to the endpoint's origin
};

// HF_ENDPOINT and HF_TOKEN from the environment.
HubConfig hub_config_from_env();

struct RepoFile {
  std::string path;
  uint64_t size = 0;
  std::string sha256;  // the LFS oid, when the listing has one
};

// GET /api/models/{repo}/tree/{revision}?recursive=true: every file of the repository.
Result<std::vector<RepoFile>> list_repo_files(const HubConfig& hub, const std::string& repo,
                                              const std::string& revision);
// The body of that reply: a JSON array of entries; directories are skipped, a file's LFS oid and size win over
// the plain ones. A wrongly typed field is an error naming it (`where`: the reply's origin, for the message).
Result<std::vector<RepoFile>> parse_repo_listing(std::string_view body, const std::string& where);

// The files a reference names: one, or every part of a split model, in order. For owner/repo[:QUANT] the
// listing picks the quant (Q4_K_M when none is given and the repo has it).
Result<std::vector<std::string>> choose_files(const ModelRef& ref, const std::vector<RepoFile>& listing);

struct PullOptions {
  int retries = 3;       // resumes after a lost connection within one pull
  bool progress = true;  // the bar on stderr (when it is a terminal, or FABULA_PROGRESS is set)
  std::function<void(const std::string&)> log;  // one line per event (resolving, resuming, verified)
};

// Downloads what `ref` names into the cache (skipping files already there and verified) and writes its manifest.
// A wrong name, a gated repo or a missing quant fails before anything is written; a lost connection leaves
// <file>.partial for the next pull to resume; a file whose sha256 does not match is removed.
Result<CachedModel> pull_model(const ModelRef& ref, const HubConfig& hub, const PullOptions& options);

}  // namespace fabula::hub
