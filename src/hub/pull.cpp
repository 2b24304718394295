// The Hub protocol (listing, resolve with redirects, X-Linked-Etag / X-Linked-Size, Range resume) and the
// download into the cache.
#include "hub/pull.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/ascii.h"
#include "base/json_view.h"
#include "base/progress.h"
#include "format/gguf_split.h"
#include "hub/http.h"
#include "hub/sha256.h"

namespace fabula::hub {

namespace fs = std::filesystem;

HubConfig hub_config_from_env() {
  HubConfig hub;
  if (const char* e = std::getenv("HF_ENDPOINT"); e != nullptr && *e != '\0') hub.endpoint = e;
  while (!hub.endpoint.empty() && hub.endpoint.back() == '/') hub.endpoint.pop_back();
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    if (const char* t = std::getenv(name); t != nullptr && *t != '\0') {
      hub.token = t;
      break;
    }
  }
  return hub;
}

namespace {

std::string strip_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag.erase(0, 2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

std::string human_bytes(uint64_t n) { return ProgressBar::format_bytes(static_cast<double>(n)); }

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// What an HTTP error status means for this repo / file, with what to do about it.
Error status_error(const HttpResponse& r, const HubConfig& hub, const std::string& repo, const std::string& file) {
  const std::string code = r.header("x-error-code");
  const std::string what = file.empty() ? repo : repo + "/" + file;
  switch (r.status) {
    case 401:
      if (hub.token) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: the Hub refused HF_TOKEN (401); check that the token is valid and can read this "
                          "repository", what);
      }
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: the repository is private or gated (401); set HF_TOKEN to a Hugging Face token that "
                        "has accepted its terms", what);
    case 403:
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: access denied (403){}; accept the model's conditions on its Hub page with the account "
                        "of HF_TOKEN", what, code == "GatedRepo" ? ", gated repository" : "");
    case 404:
      if (code == "RepoNotFound" || file.empty())
        return make_error(ErrorCode::kNotFound, "no repository '{}' on {} (404); check the owner/name", repo,
                          hub.endpoint);
      if (code == "RevisionNotFound")
        return make_error(ErrorCode::kNotFound, "{}: no such revision (404)", repo);
      return make_error(ErrorCode::kNotFound, "{} has no file '{}' (404); `fabula pull {}` lists what it has", repo,
                        file, repo);
    default:
      return make_error(ErrorCode::kIo, "{}: the Hub answered HTTP {}", what, r.status);
  }
}

// One request, following redirects by hand: the token goes only to the endpoint's own origin.
Result<HttpResponse> request_following(HttpRequest request, const HubConfig& hub, std::string* final_url = nullptr) {
  const std::string hub_origin = url_origin(hub.endpoint);
  for (int hop = 0; hop < 10; ++hop) {
    request.bearer_token = url_origin(request.url) == hub_origin ? hub.token : std::nullopt;
    FABULA_ASSIGN(HttpResponse r, http_request(request));
    const std::string location = r.header("location");
    if (!is_redirect(r.status) || location.empty()) {
      if (final_url) *final_url = request.url;
      return r;
    }
    request.url = resolve_location(request.url, location);
  }
  return make_error(ErrorCode::kIo, "{}: more than 10 redirects", url_origin(request.url));
}

struct ResolvedFile {
  std::string repo;
  std::string name;
  std::string url;  // where the bytes are (the CDN after an LFS redirect)
  std::optional<uint64_t> size;
  std::string sha256;  // "" when the hub gave none
  std::string commit;
};

Result<ResolvedFile> resolve_file(const HubConfig& hub, const std::string& repo, const std::string& revision,
                                  const std::string& file) {
  ResolvedFile out;
  out.repo = repo;
  out.name = file;
  std::string url = fmt::format("{}/{}/resolve/{}/{}", hub.endpoint, repo, percent_encode(revision, "/"),
                                percent_encode(file, "/"));
  const std::string hub_origin = url_origin(hub.endpoint);
  for (int hop = 0; hop < 10; ++hop) {
    HttpRequest head;
    head.url = url;
    head.head = true;
    head.bearer_token = url_origin(url) == hub_origin ? hub.token : std::nullopt;
    FABULA_ASSIGN(HttpResponse r, http_request(head));
    if (out.commit.empty()) out.commit = r.header("x-repo-commit");
    const std::string linked_etag = strip_etag(r.header("x-linked-etag"));
    const std::string linked_size = r.header("x-linked-size");
    if (is_redirect(r.status) && !r.header("location").empty()) {
      const std::string next = resolve_location(url, r.header("location"));
      if (!linked_etag.empty() || !linked_size.empty()) {  // an LFS file: the hub's headers describe it
        if (is_sha256_hex(linked_etag)) out.sha256 = linked_etag;
        if (!linked_size.empty()) out.size = std::strtoull(linked_size.c_str(), nullptr, 10);
        out.url = next;
        return out;
      }
      url = next;  // a renamed repo or a relative hop: ask again there
      continue;
    }
    if (r.status < 200 || r.status >= 300) return status_error(r, hub, repo, file);
    std::string etag = !linked_etag.empty() ? linked_etag : strip_etag(r.header("etag"));
    if (is_sha256_hex(etag)) out.sha256 = etag;
    const std::string size = !linked_size.empty() ? linked_size : r.header("content-length");
    if (!size.empty()) out.size = std::strtoull(size.c_str(), nullptr, 10);
    out.url = url;
    return out;
  }
  return make_error(ErrorCode::kIo, "{}/{}: more than 10 redirects", repo, file);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

uint64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// Downloads one resolved file to `target` through target.partial. Returns whether the hash was checked.
Result<bool> download_file(const ResolvedFile& file, const fs::path& target, const HubConfig& hub,
                           const PullOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const fs::path partial = target.string() + ".partial";
  uint64_t offset = file_size_or_zero(partial);
  if (file.size && offset > *file.size) {
    fs::remove(partial);
    offset = 0;
  }
  std::optional<ProgressBar> bar;
  bool verified_while_streaming = false;
  for (int attempt = 0;; ++attempt) {
    if (file.size && offset == *file.size && offset > 0) break;  // complete from an earlier run
    FABULA_ASSIGN(Sha256 hash, sha256_file_prefix(partial.string(), offset));
    if (offset > 0) log(fmt::format("resuming {} at {} of {}", file.name, human_bytes(offset),
                                    file.size ? human_bytes(*file.size) : std::string("?")));
    if (options.progress && !bar) bar.emplace("pull " + fs::path(file.name).filename().string(), file.size.value_or(0), "B");
    FILE* out = nullptr;
    Status write_status = ok_status();
    HttpRequest get;
    get.url = file.url;
    get.range_from = offset;
    get.on_start = [&](long status) {
      if (status == 200 && offset > 0) {  // the server sent the whole file: start over
        offset = 0;
        hash = Sha256();
      }
    };
    get.on_body = [&](const char* data, size_t n) {
      if (out == nullptr) {
        std::error_code ec;
        fs::create_directories(partial.parent_path(), ec);
        out = std::fopen(partial.c_str(), offset > 0 ? "ab" : "wb");
        if (out == nullptr) {
          write_status = make_error(ErrorCode::kIo, "{}: cannot write", partial.string());
          return false;
        }
      }
      if (std::fwrite(data, 1, n, out) != n) {
        write_status = make_error(ErrorCode::kIo, "{}: write failed (disk full?)", partial.string());
        return false;
      }
      hash.update(data, n);
      offset += n;
      if (bar) bar->set(offset);
      return true;
    };
    auto r = request_following(get, hub);
    if (out != nullptr) {
      std::fflush(out);
      ::fsync(::fileno(out));
      std::fclose(out);
    }
    if (!write_status.ok()) return write_status.take_error();
    if (r.ok() && r->status == 416 && offset > 0) {  // the partial is not a prefix the server can continue
      fs::remove(partial);
      offset = 0;
      continue;
    }
    if (r.ok() && (r->status < 200 || r->status >= 300)) return status_error(*r, hub, file.repo, file.name);
    const bool cut = !r.ok() || (file.size && offset < *file.size);
    if (!cut) {
      if (bar) bar->finish();
      // Verify: size, then the sha256 computed while streaming.
      if (file.size && offset != *file.size) {
        fs::remove(partial);
        return make_error(ErrorCode::kCorrupt, "{}: got {} bytes, the Hub announced {}; the download was removed",
                          file.name, offset, *file.size);
      }
      const std::string got = hash.hex_digest();
      if (!file.sha256.empty() && got != file.sha256) {
        fs::remove(partial);
        return make_error(ErrorCode::kCorrupt,
                          "{}: sha256 mismatch (expected {}, got {}); the damaged download was removed. Pull again; "
                          "if it fails the same way, the file on the server is corrupt",
                          file.name, file.sha256, got);
      }
      verified_while_streaming = true;
      break;
    }
    if (r.ok() || r.error().code != ErrorCode::kIo) {
      if (!r.ok()) return r.take_error();
    }
    offset = file_size_or_zero(partial);
    if (attempt >= options.retries) {
      return make_error(ErrorCode::kIo,
                        "{}: the download stopped at {} of {} ({}). The partial file is kept; run the same "
                        "`fabula pull` to resume",
                        file.name, human_bytes(offset), file.size ? human_bytes(*file.size) : std::string("?"),
                        r.ok() ? std::string("connection closed early") : r.error().message);
    }
    log(fmt::format("connection lost at {} ({}); retrying ({} of {})", human_bytes(offset),
                    r.ok() ? std::string("closed early") : r.error().message, attempt + 1, options.retries));
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
  }
  // Re-hash a partial that was already complete (the loop broke before downloading anything).
  if (!file.sha256.empty() && !verified_while_streaming) {
    FABULA_ASSIGN(Sha256 hash, sha256_file_prefix(partial.string(), file_size_or_zero(partial)));
    const std::string got = hash.hex_digest();
    if (got != file.sha256) {
      fs::remove(partial);
      return make_error(ErrorCode::kCorrupt, "{}: sha256 mismatch (expected {}, got {}); the download was removed",
                        file.name, file.sha256, got);
    }
  }
  std::error_code ec;
  fs::rename(partial, target, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot move into place: {}", target.string(), ec.message());
  return !file.sha256.empty();
}

}  // namespace

Result<std::vector<RepoFile>> list_repo_files(const HubConfig& hub, const std::string& repo,
                                              const std::string& revision) {
  HttpRequest get;
  get.url = fmt::format("{}/api/models/{}/tree/{}?recursive=true", hub.endpoint, repo, percent_encode(revision, "/"));
  FABULA_ASSIGN(HttpResponse r, request_following(get, hub));
  if (r.status != 200) return status_error(r, hub, repo, "");
  return parse_repo_listing(r.body, fmt::format("the file listing of {} from {}", repo, hub.endpoint));
}

Result<std::vector<RepoFile>> parse_repo_listing(std::string_view body, const std::string& where) {
  FABULA_ASSIGN(nlohmann::json j, parse_json(body, where));
  FABULA_ASSIGN(std::vector<JsonView> entries, JsonView(j, where).elements());
  std::vector<RepoFile> out;
  for (const JsonView& e : entries) {
    FABULA_TRY(e.expect_object());
    FABULA_ASSIGN(std::string type, e.string_or("type", "file"));
    if (type != "file") continue;  // "directory"
    RepoFile f;
    FABULA_ASSIGN(f.path, e.string("path"));
    FABULA_ASSIGN(f.size, e.unsigned_or("size", 0));
    if (std::optional<JsonView> lfs = e.find("lfs")) {
      FABULA_TRY(lfs->expect_object());
      FABULA_ASSIGN(f.sha256, lfs->string_or("oid", ""));
      FABULA_ASSIGN(f.size, lfs->unsigned_or("size", f.size));
    }
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<std::string>> choose_files(const ModelRef& ref, const std::vector<RepoFile>& listing) {
  std::string first = ref.file;
  if (first.empty()) {
    std::vector<std::string> models;  // single files and first parts
    std::set<std::string> quants;
    for (const auto& f : listing) {
      const std::string base = fs::path(f.path).filename().string();
      if (base.size() < 6 || base.substr(base.size() - 5) != ".gguf" || base.find("mmproj") != std::string::npos) continue;
      auto split = parse_gguf_split_name(f.path);
      if (split && split->index != 0) continue;
      models.push_back(f.path);
      const std::string q = quant_of_file(f.path);
      quants.insert(q.empty() ? base : q);
    }
    auto list = [&] {
      std::string s;
      for (const auto& q : quants) s += (s.empty() ? "" : ", ") + q;
      return s;
    };
    if (models.empty()) return make_error(ErrorCode::kNotFound, "{} has no GGUF files", ref.repo);
    std::vector<std::string> matches;
    const std::string quant = ref.quant.empty() ? "Q4_K_M" : ref.quant;
    for (const auto& m : models)
      if (file_has_quant(m, quant)) matches.push_back(m);
    if (matches.empty() && ref.quant.empty()) {
      if (models.size() > 1) {
        return make_error(ErrorCode::kInvalidArgument, "{} has several GGUF models ({}); pick one: fabula pull {}:QUANT",
                          ref.repo, list(), ref.repo);
      }
      matches = models;
    }
    if (matches.empty()) {
      return make_error(ErrorCode::kNotFound, "{} has no {} GGUF (it has: {})", ref.repo, quant, list());
    }
    std::sort(matches.begin(), matches.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    first = matches.front();
  }
  std::vector<std::string> files{first};
  if (auto split = parse_gguf_split_name(first); split && split->count > 1) {
    files.clear();
    const std::string dir_prefix = split->prefix;
    for (uint32_t i = 0; i < split->count; ++i) files.push_back(gguf_split_path(dir_prefix, i, split->count));
    if (!listing.empty()) {
      std::set<std::string> have;
      for (const auto& f : listing) have.insert(f.path);
      for (const auto& f : files)
        if (have.count(f) == 0) return make_error(ErrorCode::kNotFound, "{}: split part {} is missing", ref.repo, f);
    }
  }
  return files;
}

Result<CachedModel> pull_model(const ModelRef& ref, const HubConfig& hub, const PullOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  std::vector<RepoFile> listing;
  if (ref.file.empty()) {
    log(fmt::format("listing {} on {}", ref.repo, hub.endpoint));
    FABULA_ASSIGN(listing, list_repo_files(hub, ref.repo, ref.revision));
  }
  FABULA_ASSIGN(std::vector<std::string> names, choose_files(ref, listing));

  // Resolve every part before writing anything: a wrong name or a gated repo leaves the cache untouched.
  std::vector<ResolvedFile> resolved;
  for (const auto& name : names) {
    FABULA_ASSIGN(ResolvedFile r, resolve_file(hub, ref.repo, ref.revision, name));
    resolved.push_back(std::move(r));
  }

  CachedModel model;
  model.ref = ref.display();
  model.repo = ref.repo;
  model.revision = ref.revision;
  model.commit = resolved.front().commit;
  model.quant = ref.quant.empty() ? quant_of_file(names.front()) : ref.quant;
  model.profile = ref.profile;
  model.source = hub.endpoint;
  model.pulled_at = utc_now();
  model.dir = cache_root() / ref.repo;

  // What an earlier pull verified with the same sha256 is not downloaded again.
  std::optional<CachedModel> previous;
  {
    ModelRef same = ref;
    same.file = names.front();
    previous = find_cached(same);
  }
  for (const auto& r : resolved) {
    const fs::path target = model.dir / r.name;
    CachedFile entry{r.name, r.size.value_or(0), r.sha256, false};
    bool reuse = false;
    if (previous) {
      for (const auto& f : previous->files) {
        if (f.name == r.name && f.verified && !r.sha256.empty() && f.sha256 == r.sha256 &&
            file_size_or_zero(target) == f.size) {
          reuse = true;
        }
      }
    }
    if (reuse) {
      log(fmt::format("{}: already in the cache, verified", r.name));
      entry.verified = true;
    } else {
      log(fmt::format("downloading {} ({}{})", r.name, r.size ? human_bytes(*r.size) : std::string("size unknown"),
                      r.sha256.empty() ? ", no sha256 from the Hub" : ""));
      FABULA_ASSIGN(bool checked, download_file(r, target, hub, options));
      entry.verified = checked;
      entry.size = file_size_or_zero(target);
      log(fmt::format("{}: {}", r.name, checked ? "sha256 verified" : "downloaded (not verified: no sha256)"));
    }
    model.files.push_back(std::move(entry));
  }
  FABULA_TRY(save_manifest(model));
  return model;
}

}  // namespace fabula::hub
