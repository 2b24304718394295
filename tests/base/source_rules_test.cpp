// Source rules checked as tests. First, the rule that keeps outside JSON from throwing: the files that read story packages, tokenizer and model
// configs, saves and imports, HTTP bodies, eval scenes, beat JSONL and remote servers' replies never call one of
// nlohmann's throwing accessors; they go through JsonView (src/base/json_view.h), which checks the type first and
// returns a Result naming the JSON path (HfConfig, src/format/hf_config.h, reads config.json through it).
//
// The rule, per line (comments removed):
//   .at(  .get<  .get_ref<  .get_to(  .value(ARG        throw on a missing key or a wrong type
//   ["key"] read (not followed by =, [ or .push_back)   throws on a const non-object, asserts on a missing key
//   json::parse(                                         throws on bad text (parse_json does not)
//   .dump() / .dump(N)                                   throws on invalid UTF-8 (dump_json does not)
// A line may opt out with "// json-ok: <why>" when the value is known to have the type (say, built just above).
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

// Every reader of outside data. A new reader of outside JSON belongs here.
const char* kReaders[] = {
    "src/engine/story.cpp",             // story packages
    "src/voice/voice_spec.cpp",         // story packages: voices
    "src/voice/story_audio.cpp",        // story packages: audio files
    "src/protocol/manifest.cpp",        // story packages: tools and value sets
    "src/engine/save_store.cpp",        // saves and imports
    "src/engine/game.cpp",              // imports
    "src/engine/events.cpp",            // events in saves, imports and the player's stream
    "src/engine/scripted_narrator.cpp", // beat JSONL fixtures
    "src/text/tokenizer_json.cpp",      // tokenizer.json, tokenizer_config.json, the chat template
    "src/format/hf_config.cpp",         // HF config.json
    "src/model/gemma4/hparams_hf.cpp",  // HF config.json
    "src/server/game_api.cpp",          // game API bodies
    "src/server/request.cpp",           // server bodies
    "src/server/chat.cpp",              // server bodies
    "src/server/completion.cpp",        // server bodies
    "src/server/server.cpp",            // server bodies
    "src/eval/harness.cpp",             // eval scene files
    "src/eval/metrics.cpp",             // beat JSONL (metrics rows)
    "app/metrics.cpp",                  // beat JSONL
    "app/validate.cpp",                 // beat JSONL
    "src/backend/remote_narrator.cpp",  // a remote server's replies
    "src/hub/pull.cpp",                 // the Hub's file listings
    "src/hub/model_ref.cpp",            // the model registry
    "src/hub/cache.cpp",                // model cache manifests
};

struct Rule {
  const char* what;
  std::regex pattern;
};

// The code of a line as the rules see it: the comment cut off and every string literal's text replaced by "s"
// (so a '[' inside a literal is no subscript, and ["key"] reads as ["s"]).
std::string code_of(const std::string& line) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // an escaped character
      } else if (c == '"') {
        in_string = false;
        out += "s\"";
      }
      continue;
    }
    if (c == '\'' && i + 2 < line.size()) {  // a char literal such as '"' or '['
      size_t close = line.find('\'', i + (line[i + 1] == '\\' ? 3 : 2));
      if (close != std::string::npos && close - i <= 3) {
        out += "'c'";
        i = close;
        continue;
      }
    }
    if (c == '/' && i + 1 < line.size() && line[i + 1] == '/') break;
    if (c == '"') in_string = true;
    out += c;
  }
  return out;
}

// `file`: the file to read; `label`: how to name it in the report.
std::vector<std::string> violations(const std::string& file, const std::string& label) {
  static const std::vector<Rule> rules = {
      {".at()", std::regex(R"(\.at\()")},
      {".get<T>()", std::regex(R"(\.get(_ref)?<)")},
      {".get_to()", std::regex(R"(\.get_to\()")},
      {".value(key, default)", std::regex(R"(\.value\([^)])")},
      {"[\"key\"] read", std::regex(R"(\[\s*"[^"]*"\s*\](?!\s*(=[^=]|\[|\.push_back\()))")},
      {"json::parse()", std::regex(R"(json::parse\()")},
      {".dump() without an error handler", std::regex(R"(\.dump\((\d+)?\))")},
  };
  std::ifstream in(file);
  std::vector<std::string> out;
  if (!in) {
    out.push_back(label + ": missing");
    return out;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find("// json-ok:") != std::string::npos) continue;
    const std::string code = code_of(line);
    for (const auto& rule : rules)
      if (std::regex_search(code, rule.pattern))
        out.push_back(label + ":" + std::to_string(n) + ": " + rule.what + ": " + line);
  }
  return out;
}

TEST(JsonReaders, NoThrowingAccessorReadsOutsideData) {
  std::vector<std::string> all;
  for (const char* path : kReaders)
    for (auto& v : violations(std::string(FABULA_SOURCE_DIR) + "/" + path, path)) all.push_back(std::move(v));
  std::ostringstream report;
  for (const auto& v : all) report << v << "\n";
  EXPECT_TRUE(all.empty()) << "use JsonView (src/base/json_view.h) instead:\n" << report.str();
}

// The rule itself catches what it should and lets writes through.
TEST(JsonReaders, TheRuleSeesThrowingAccessors) {
  std::string tmp = testing::TempDir() + "/json_rule_probe.cpp";
  {
    std::ofstream out(tmp);
    out << "int a = j.at(\"x\");\n"                  // 1
        << "auto b = j[\"x\"].get<int>();\n"         // 2: read and get<>
        << "bool c = j.value(\"x\", false);\n"       // 3
        << "out[\"k\"] = 1;\n"                       // allowed: a write
        << "out[\"a\"][\"b\"] = 2;\n"                // allowed: a write
        << "auto d = json::parse(text);\n"           // 4
        << "auto e = j.dump();\n"                    // 5
        << "auto f = r.value();  // a Result\n"      // allowed
        << "auto g = j[\"x\"].is_string();\n"        // 6
        << "auto h = j.at(0);  // json-ok: checked\n";  // allowed
  }
  auto found = violations(tmp, "probe");
  std::ostringstream report;
  for (const auto& v : found) report << v << "\n";
  EXPECT_EQ(found.size(), 7u) << report.str();
}

// A test that needs a committed asset (or a tool scripts/setup installs) fails when it is missing; GTEST_SKIP
// stays only where the machine or the build lacks a feature, marked "// skip-ok: <why>" on the line.
TEST(TestRules, NoSilentSkipForAMissingAsset) {
  namespace fs = std::filesystem;
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(std::string(FABULA_SOURCE_DIR) + "/tests")) {
    if (!e.is_regular_file()) continue;
    const std::string ext = e.path().extension().string();
    if (ext != ".cpp" && ext != ".h") continue;
    std::ifstream in(e.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
      if (code_of(line).find("GTEST_SKIP") != std::string::npos && line.find("// skip-ok:") == std::string::npos)
        found.push_back(e.path().filename().string() + ":" + std::to_string(n) + ": " + line);
  }
  std::ostringstream report;
  for (const auto& f : found) report << f << "\n";
  EXPECT_TRUE(found.empty()) << "use FAIL() naming the missing asset and how to get it:\n" << report.str();
}

}  // namespace
