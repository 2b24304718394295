// `fabula validate`: strict protocol validation of beats (JSONL rows or one plain-text beat).
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "base/jsonl.h"
#include "command.h"
#include "story_args.h"
#include "protocol/manifest.h"
#include "protocol/unicode.h"
#include "protocol/validator.h"

namespace {

using namespace fabula;

struct BeatInput {
  std::string id;
  std::string beat;
  std::vector<std::string> cast;
};

// JSONL if the name says so, or if the first non-blank line is a JSON object with a "beat".
bool looks_like_jsonl(const std::string& path, const std::string& text) {
  if (path.ends_with(".jsonl")) return true;
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || text[start] != '{') return false;
  size_t end = text.find('\n', start);
  auto j = parse_json(std::string_view(text).substr(start, end == std::string::npos ? std::string::npos : end - start), path);
  return j.ok() && JsonView(*j, path).has("beat");
}

Result<std::vector<BeatInput>> read_inputs(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  std::vector<BeatInput> out;
  if (!looks_like_jsonl(path, text)) {
    out.push_back({path, std::move(text), {}});
    return out;
  }
  FABULA_TRY(for_each_jsonl_object(text, path, [&](const JsonView& j) -> Status {
    BeatInput in;
    FABULA_ASSIGN(in.beat, j.string("beat"));
    if (auto id = j.find("id"); id && id->is_number()) {
      in.id = dump_json(id->raw());
    } else {
      FABULA_ASSIGN(in.id, j.string_or("id", j.where()));
    }
    FABULA_ASSIGN(in.cast, j.strings_or_empty("cast"));
    out.push_back(std::move(in));
    return ok_status();
  }));
  return out;
}

nlohmann::json diagnostics_json(const std::vector<protocol::Diagnostic>& list) {
  auto arr = nlohmann::json::array();
  for (const auto& d : list) {
    arr.push_back({{"code", std::string(protocol::code_name(d.code))}, {"line", d.line}, {"message", d.message}});
  }
  return arr;
}

}  // namespace

FABULA_COMMAND(validate, "Validate beats against the VN protocol (strict)") {
  struct Options {
    std::string story;
    std::string file;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  cli.add_option("--story", opts->story, "Story id ($FABULA_STORIES or stories/<id>/story.json) or path to a story.json; default: built-in manifest");
  cli.add_flag("--json", opts->json, "Print one JSON row per beat");
  cli.add_option("file", opts->file, "JSONL (rows: beat, optional id and cast) or a plain-text beat");
  return [opts] {
    if (opts->file.empty()) {
      std::fprintf(stderr, "error: validate needs a FILE (JSONL rows {\"beat\",\"id\",\"cast\"} or one plain-text beat)\n");
      return 2;
    }
    auto story_manifest = app::manifest_for_story_option(opts->story);
    if (!story_manifest) return 2;
    const protocol::Manifest& manifest = *story_manifest;
    auto inputs = read_inputs(opts->file);
    if (!inputs.ok()) {
      app::report_error(inputs.error());
      return 2;
    }
    size_t valid = 0;
    for (const auto& in : *inputs) {
      protocol::ValidateOptions vo;
      vo.locked_cast = in.cast;
      auto report = protocol::validate_beat(in.beat, manifest, vo);
      if (report.valid) ++valid;
      if (opts->json) {
        nlohmann::json row = {{"id", in.id},
                              {"valid", report.valid},
                              {"errors", diagnostics_json(report.errors)},
                              {"warnings", diagnostics_json(report.warnings)}};
        std::printf("%s\n", dump_json(row).c_str());
        continue;
      }
      std::printf("%s: %s\n", in.id.c_str(),
                  report.valid ? "valid" : fmt::format("INVALID ({} error{})", report.errors.size(),
                                                       report.errors.size() == 1 ? "" : "s").c_str());
      for (const auto& e : report.errors) {
        std::printf("  line %d: %s %s\n", e.line, std::string(protocol::code_name(e.code)).c_str(), e.message.c_str());
      }
      for (const auto& w : report.warnings) {
        std::printf("  line %d: %s %s\n", w.line, std::string(protocol::code_name(w.code)).c_str(), w.message.c_str());
      }
    }
    if (!opts->json) std::printf("%zu/%zu beats valid\n", valid, inputs->size());
    return valid == inputs->size() ? 0 : 1;
  };
}
