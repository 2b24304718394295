// FakeHub: a local HTTP(S) server that answers like the Hugging Face Hub, for the pull tests (no test touches
// the network). It has the file listing, resolve with an LFS redirect to a second origin (localhost vs
// 127.0.0.1) carrying X-Linked-Etag / X-Linked-Size / X-Repo-Commit, Range, a connection cut mid-file on the
// first download, a file corrupted on the server, 401 for a private repo without its token, and 404s with the
// Hub's X-Error-Code.
#pragma once

#include <httplib.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/sha256.h"

namespace fabula::hub_test {

struct Hit {
  std::string method, path, range, authorization;
};

struct FileOptions {
  bool cut_first_download = false;  // the first GET of the bytes stops halfway and drops the connection
  bool corrupt = false;             // serve one flipped byte; advertise the true sha256
};

class FakeHub {
 public:
  // TLS when cert/key are given (PEM paths).
  FakeHub(const std::string& cert = "", const std::string& key = "") : tls_(!cert.empty()) {
    if (tls_) {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    routes();
    port_ = server_->bind_to_any_port("127.0.0.1");
    // bind_to_any_port already listens: requests queue until the accept loop runs.
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  ~FakeHub() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string endpoint() const { return fmt::format("{}://127.0.0.1:{}", tls_ ? "https" : "http", port_); }
  // The "CDN" origin the LFS redirect points at: another origin for the same server.
  std::string cdn_origin() const { return fmt::format("{}://localhost:{}", tls_ ? "https" : "http", port_); }

  void add_file(const std::string& repo, const std::string& path, std::string bytes, FileOptions options = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    File f;
    hub::Sha256 h;
    h.update(bytes.data(), bytes.size());
    f.sha256 = h.hex_digest();
    f.bytes = std::move(bytes);
    if (options.corrupt) f.bytes[f.bytes.size() / 2] ^= 0x5a;
    f.cut_pending = options.cut_first_download;
    f.id = std::to_string(files_.size());
    repos_[repo].push_back(path);
    files_[repo + "/" + path] = std::move(f);
  }
  void add_file_from_disk(const std::string& repo, const std::string& path, const std::string& disk,
                          FileOptions options = {}) {
    std::ifstream in(disk, std::ios::binary);
    add_file(repo, path, std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()), options);
  }
  void make_private(const std::string& repo, const std::string& token) {
    std::lock_guard<std::mutex> lock(mu_);
    private_[repo] = token;
  }
  std::string sha256(const std::string& repo, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.at(repo + "/" + path).sha256;
  }
  std::vector<Hit> hits() {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_;
  }

 private:
  struct File {
    std::string bytes, sha256, id;
    bool cut_pending = false;
  };

  void record(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    hits_.push_back({req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
  }

  // 401 when the repo is private and the request lacks its token; 404 when there is no such repo.
  bool refuse(const httplib::Request& req, httplib::Response& res, const std::string& repo) {
    std::lock_guard<std::mutex> lock(mu_);
    if (repos_.count(repo) == 0) {
      res.status = 404;
      res.set_header("X-Error-Code", "RepoNotFound");
      res.set_content("{\"error\":\"Repository not found\"}", "application/json");
      return true;
    }
    auto p = private_.find(repo);
    if (p != private_.end() && req.get_header_value("Authorization") != "Bearer " + p->second) {
      res.status = 401;
      res.set_header("X-Error-Code", "GatedRepo");
      res.set_content("{\"error\":\"Access to this repository is restricted\"}", "application/json");
      return true;
    }
    return false;
  }

  void routes() {
    server_->Get(R"(/api/models/([^/]+)/([^/]+)/tree/([^/]+))", [this](const httplib::Request& req,
                                                                        httplib::Response& res) {
      record(req);
      const std::string repo = req.matches[1].str() + "/" + req.matches[2].str();
      if (refuse(req, res, repo)) return;
      std::lock_guard<std::mutex> lock(mu_);
      nlohmann::json listing = nlohmann::json::array();
      for (const auto& path : repos_[repo]) {
        const File& f = files_[repo + "/" + path];
        listing.push_back({{"type", "file"},
                           {"path", path},
                           {"size", 135},
                           {"oid", "0123456789abcdef0123456789abcdef01234567"},
                           {"lfs", {{"oid", f.sha256}, {"size", f.bytes.size()}, {"pointerSize", 135}}}});
      }
      listing.push_back({{"type", "file"}, {"path", ".gitattributes"}, {"size", 1519}});
      res.set_content(listing.dump(), "application/json");
    });
    // GET and HEAD of resolve: the LFS redirect to the CDN origin.
    server_->Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this](const httplib::Request& req,
                                                                     httplib::Response& res) {
      record(req);
      const std::string repo = req.matches[1].str() + "/" + req.matches[2].str();
      if (refuse(req, res, repo)) return;
      std::lock_guard<std::mutex> lock(mu_);
      auto it = files_.find(repo + "/" + req.matches[4].str());
      if (it == files_.end()) {
        res.status = 404;
        res.set_header("X-Error-Code", "EntryNotFound");
        res.set_content("{\"error\":\"Entry not found\"}", "application/json");
        return;
      }
      res.status = 302;
      res.set_header("Location", cdn_origin() + "/cdn/" + it->second.id + "?X-Amz-Signature=abc");
      res.set_header("X-Linked-Etag", "\"" + it->second.sha256 + "\"");
      res.set_header("X-Linked-Size", std::to_string(it->second.bytes.size()));
      res.set_header("X-Repo-Commit", "c0ffee0000000000000000000000000000000001");
      res.set_header("ETag", "W/\"0123456789abcdef0123456789abcdef01234567\"");
    });
    // The bytes, with Range (httplib applies it to the content provider) and the first-download cut.
    server_->Get(R"(/cdn/([0-9]+))", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      std::lock_guard<std::mutex> lock(mu_);
      File* file = nullptr;
      for (auto& [k, f] : files_)
        if (f.id == req.matches[1].str()) file = &f;
      if (file == nullptr) {
        res.status = 404;
        return;
      }
      const bool cut = file->cut_pending && req.method == "GET";
      if (cut) file->cut_pending = false;
      const std::string* bytes = &file->bytes;
      const size_t cut_at = bytes->size() / 2;
      res.set_content_provider(bytes->size(), "application/octet-stream",
                               [bytes, cut, cut_at](size_t offset, size_t length, httplib::DataSink& sink) {
                                 size_t end = offset + std::min<size_t>(length, 1 << 16);
                                 if (cut && end > cut_at) {
                                   if (offset < cut_at) sink.write(bytes->data() + offset, cut_at - offset);
                                   return false;  // drop the connection mid-file
                                 }
                                 sink.write(bytes->data() + offset, end - offset);
                                 return true;
                               });
    });
  }

  bool tls_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> repos_;
  std::map<std::string, File> files_;
  std::map<std::string, std::string> private_;
  std::vector<Hit> hits_;
};

}  // namespace fabula::hub_test
