// `fabula validate` and `fabula metrics` end to end through FABULA_BINARY (popen), on small fixtures.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "base/file.h"

namespace fabula {
namespace {

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run_cli(const std::string& args) {
  const char* env = std::getenv("FABULA_BINARY");
  std::string bin = env ? env : FABULA_BINARY;
  std::string cmd = "cd '" + std::string(FABULA_SOURCE_DIR) + "' && '" + bin + "' " + args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> rows;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    rows.push_back(j);
  }
  return rows;
}

const std::string kData = std::string(FABULA_TEST_DATA);

TEST(Cli, ValidateJsonOnRealSamples) {
  CliRun r = run_cli("validate --json --story sakuragaoka '" + kData + "/protocol/samples.jsonl'");
  EXPECT_EQ(r.status, 0) << r.out;
  auto rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& row : rows) {
    EXPECT_TRUE(row["valid"].get<bool>()) << row.dump();
    EXPECT_TRUE(row["errors"].empty());
    EXPECT_TRUE(row["id"].is_string());
    EXPECT_TRUE(row["warnings"].is_array());
  }
  EXPECT_EQ(rows[0]["id"], "sample-0");
}

TEST(Cli, ValidateJsonReportsCodesAndExitsOne) {
  std::string path = testing::TempDir() + "/fabula_cli_beats.jsonl";
  {
    std::ofstream f(path);
    f << R"({"id":"ok","cast":["Hana"],"beat":"Hana waves.\n[TOOL: end_scene]"})" << "\n";
    f << R"({"id":"bad","cast":["Hana"],"beat":"[TOOL: music track=\"jazz\"]\n[Ren]: \"Hi\""})" << "\n";
    f << R"({"beat":"I wave.\n[TOOL: end_scene]"})" << "\n";
  }
  CliRun r = run_cli("validate --json '" + path + "'");
  EXPECT_EQ(r.status, 1) << r.out;
  auto rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(rows[0]["valid"].get<bool>());
  EXPECT_FALSE(rows[1]["valid"].get<bool>());
  std::set<std::string> codes;
  for (const auto& e : rows[1]["errors"]) {
    codes.insert(e["code"].get<std::string>());
    EXPECT_GE(e["line"].get<int>(), 1);
    EXPECT_FALSE(e["message"].get<std::string>().empty());
  }
  EXPECT_EQ(codes, (std::set<std::string>{"E_ENUM", "E_CAST_LOCK", "E_FLOW"}));
  EXPECT_EQ(rows[1]["errors"][0]["line"], 1);
  EXPECT_EQ(rows[2]["id"], path + ":3");  // no id: file:line
  ASSERT_EQ(rows[2]["warnings"].size(), 1u);
  EXPECT_EQ(rows[2]["warnings"][0]["code"], "W_POV_SLIP");
}

TEST(Cli, ValidatePlainTextBeatHumanOutput) {
  std::string path = testing::TempDir() + "/fabula_cli_beat.txt";
  {
    std::ofstream f(path);
    f << "[TOOL: sprite character=\"Hana\" expression=\"happy\"]\n[Hana]: \"Hi\"\n[TOOL: end_scene]\n";
  }
  CliRun r = run_cli("validate '" + path + "'");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("INVALID (1 error)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("line 1: E_ENUM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0/1 beats valid"), std::string::npos) << r.out;
}

TEST(Cli, ValidateUsageErrorsExitTwo) {
  CliRun missing = run_cli("validate /nonexistent/beats.jsonl");
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_NE(missing.out.find("/nonexistent/beats.jsonl"), std::string::npos) << missing.out;
  CliRun no_file = run_cli("validate");
  EXPECT_EQ(no_file.status, 2) << no_file.out;
  CliRun bad_story = run_cli("validate --story no_such_story '" + kData + "/protocol/samples.jsonl'");
  EXPECT_EQ(bad_story.status, 2) << bad_story.out;
  EXPECT_NE(bad_story.out.find("no_such_story"), std::string::npos) << bad_story.out;
  std::string path = testing::TempDir() + "/fabula_cli_bad.jsonl";
  {
    std::ofstream f(path);
    f << R"({"id":"x","beat":"a"})" << "\n" << R"({"id":"y"})" << "\n";
  }
  CliRun bad_row = run_cli("validate '" + path + "'");
  EXPECT_EQ(bad_row.status, 2) << bad_row.out;
  EXPECT_NE(bad_row.out.find(":2"), std::string::npos) << bad_row.out;
}

TEST(Cli, MetricsJsonMatchesTheLibrary) {
  std::string scenes = kData + "/eval/scenes.jsonl";
  std::string tells = kData + "/eval/tells-test.txt";
  CliRun r = run_cli("metrics --json --tells '" + tells + "' '" + scenes + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  for (const char* key : {"validity", "slop_density", "ttr", "trigram_reuse", "mattr50", "mattr100", "mtld", "rep3",
                          "words", "scenes"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  // The values worked out by hand in tests/eval/metrics_test.cpp.
  EXPECT_EQ(j["scenes"], 3);
  EXPECT_EQ(j["words"], 36);
  EXPECT_NEAR(j["validity"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(j["slop_density"].get<double>(), 1000.0 * 6 / 36, 1e-9);
  EXPECT_NEAR(j["trigram_reuse"].get<double>(), 1.0 / 25, 1e-12);
  EXPECT_EQ(j["tells_version"], "test-1");
}

TEST(Cli, MetricsDefaultTellsAndHumanTable) {
  CliRun r = run_cli("metrics --story sakuragaoka '" + kData + "/eval/scenes.jsonl'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("slop-tells-v1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("protocol validity"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(2/3)"), std::string::npos) << r.out;
  CliRun bad = run_cli("metrics --tells /nonexistent/tells.txt '" + kData + "/eval/scenes.jsonl'");
  EXPECT_EQ(bad.status, 2) << bad.out;
  CliRun none = run_cli("metrics");
  EXPECT_EQ(none.status, 2) << none.out;
}

}  // namespace
}  // namespace fabula
