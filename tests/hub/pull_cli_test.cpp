// fabula pull / models / --model REF end to end against FakeHub: resume after a cut, verification, clear
// errors that leave nothing behind, the token never printed, split models, TLS, the profile by model.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "fake_hub.h"
#include "format/gguf_split.h"

namespace fabula::hub_test {
namespace {

namespace fs = std::filesystem;
using test_support::ScratchDir;

constexpr const char* kToken = "hf_SECRETtokenVALUE1234567890";
constexpr const char* kVnRepo = "build-small-hackathon/Gemma-26B-A4B-VisualNovel-GGUF";

// The synth models every test serves, made once.
class PullCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_ = new ScratchDir("pull_models");
    auto synth = [](const std::string& args) {
      const CliResult r = run_fabula(*models_, "synth " + args, {});
      ASSERT_EQ(r.status, 0) << r.all();
    };
    synth("--shape gemma4-tiny-moe --type Q8_0 -o " + (*models_ / "tiny-Q8_0.gguf"));
    // At least 50 MB: the resume test's file.
    synth("--shape gemma4-small --type Q8_0 -o " + (*models_ / "big-Q8_0.gguf"));
    // Models that run are F16 (the kernels every machine has).
    synth("--shape gemma4-tiny-moe --type F16 -o " + (*models_ / "tiny-F16.gguf"));
    synth("--shape gemma4-tiny-moe --type F16 --split-max-size 300K -o " + (*models_ / "tiny-split-F16.gguf"));
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
  }

  std::map<std::string, std::string> env(bool with_token = false) const {
    std::map<std::string, std::string> e = {{"FABULA_HOME", home_.path().string()},
                                            {"HF_ENDPOINT", hub_.endpoint()},
                                            {"HF_TOKEN", ""},
                                            {"FABULA_PROGRESS", "1"}};
    if (with_token) e["HF_TOKEN"] = kToken;
    return e;
  }
  CliResult fabula(const std::string& args, bool with_token = false) {
    return run_fabula(work_, args, env(with_token));
  }
  std::vector<std::string> cache_files() const {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::exists(home_.path(), ec)) return out;
    for (auto& e : fs::recursive_directory_iterator(home_.path()))
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), home_.path()).string());
    return out;
  }
  std::string model(const std::string& name) const { return *models_ / name; }

  static ScratchDir* models_;
  ScratchDir home_{"pull_home"};
  ScratchDir work_{"pull_work"};
  FakeHub hub_;
};
ScratchDir* PullCli::models_ = nullptr;

TEST_F(PullCli, A50MBPullCutMidTransferResumesAndVerifies) {
  const uint64_t size = fs::file_size(model("big-Q8_0.gguf"));
  ASSERT_GE(size, 50u * 1000 * 1000);
  hub_.add_file("test/big-GGUF", "big-Q8_0.gguf", slurp(model("big-Q8_0.gguf")), {.cut_first_download = true});
  const CliResult r = fabula("pull test/big-GGUF:Q8_0");
  ASSERT_EQ(r.status, 0) << r.all();
  EXPECT_NE(r.err.find("connection lost"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sha256 verified"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("B/s"), std::string::npos) << "progress bar with speed: " << r.err;
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("fabula play --model test/big-GGUF:Q8_0"), std::string::npos) << r.out;

  // Two downloads: the cut one from 0, the resumed one from exactly half (the Range the client asked).
  std::vector<Hit> gets;
  for (const auto& h : hub_.hits())
    if (h.path.rfind("/cdn/", 0) == 0 && h.method == "GET") gets.push_back(h);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].range, "");
  EXPECT_EQ(gets[1].range, "bytes=" + std::to_string(size / 2) + "-");

  const fs::path pulled = home_.path() / "models/test/big-GGUF/big-Q8_0.gguf";
  ASSERT_TRUE(fs::exists(pulled));
  EXPECT_EQ(slurp(pulled.string()), slurp(model("big-Q8_0.gguf")));
  EXPECT_FALSE(fs::exists(pulled.string() + ".partial"));
}

TEST_F(PullCli, AnInterruptedPullKeepsThePartialAndTheNextPullResumesIt) {
  const std::string bytes = slurp(model("tiny-Q8_0.gguf"));
  hub_.add_file("test/tiny-GGUF", "tiny-Q8_0.gguf", bytes, {.cut_first_download = true});
  const CliResult first = fabula("pull test/tiny-GGUF/tiny-Q8_0.gguf --retries 0");
  ASSERT_NE(first.status, 0);
  EXPECT_NE(first.err.find("run the same `fabula pull` to resume"), std::string::npos) << first.err;
  const fs::path partial = home_.path() / "models/test/tiny-GGUF/tiny-Q8_0.gguf.partial";
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), bytes.size() / 2);

  const CliResult second = fabula("pull test/tiny-GGUF/tiny-Q8_0.gguf --retries 0");
  ASSERT_EQ(second.status, 0) << second.all();
  EXPECT_NE(second.err.find("resuming tiny-Q8_0.gguf"), std::string::npos) << second.err;
  EXPECT_EQ(hub_.hits().back().range, "bytes=" + std::to_string(bytes.size() / 2) + "-");
  EXPECT_EQ(slurp((home_.path() / "models/test/tiny-GGUF/tiny-Q8_0.gguf").string()), bytes);
  EXPECT_FALSE(fs::exists(partial));
}

TEST_F(PullCli, ACorruptedFileIsRejectedAndRemoved) {
  hub_.add_file("test/bad-GGUF", "bad-Q8_0.gguf", slurp(model("tiny-Q8_0.gguf")), {.corrupt = true});
  const CliResult r = fabula("pull test/bad-GGUF");
  ASSERT_NE(r.status, 0);
  EXPECT_NE(r.err.find("sha256 mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(hub_.sha256("test/bad-GGUF", "bad-Q8_0.gguf")), std::string::npos) << r.err;
  for (const auto& f : cache_files()) EXPECT_EQ(f.find("bad-Q8_0"), std::string::npos) << "left behind: " << f;
  EXPECT_NE(fabula("models").out.find("no models"), std::string::npos);
}

TEST_F(PullCli, AWrongNameGivesAClearErrorAndLeavesNothingBehind) {
  hub_.add_file("test/tiny-GGUF", "tiny-Q8_0.gguf", slurp(model("tiny-Q8_0.gguf")));
  struct Case {
    std::string ref, message;
  };
  const std::vector<Case> cases = {
      {"test/no-such-repo", "no repository 'test/no-such-repo'"},
      {"test/tiny-GGUF:Q5_K_S", "has no Q5_K_S GGUF (it has: Q8_0)"},
      {"test/tiny-GGUF/missing-Q4_0.gguf", "has no file 'missing-Q4_0.gguf'"},
      {"nosuchname", "not a registry name (known: vn26b)"},
      {"vn26b:Q2_K", "vn26b has no quant Q2_K (it has: Q4_K_M, Q8_0)"},
  };
  for (const auto& c : cases) {
    const CliResult r = fabula("pull " + c.ref);
    EXPECT_EQ(r.status, 1) << c.ref;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.ref << ": " << r.err;
  }
  EXPECT_TRUE(cache_files().empty()) << cache_files().front();
}

TEST_F(PullCli, TheTokenReachesTheHubAndAppearsInNoOutput) {
  hub_.add_file("test/private-GGUF", "tiny-Q8_0.gguf", slurp(model("tiny-Q8_0.gguf")));
  hub_.make_private("test/private-GGUF", kToken);

  const CliResult without = fabula("pull test/private-GGUF:Q8_0");
  ASSERT_NE(without.status, 0);
  EXPECT_NE(without.err.find("set HF_TOKEN"), std::string::npos) << without.err;

  const CliResult with = fabula("-v pull test/private-GGUF:Q8_0", /*with_token=*/true);
  ASSERT_EQ(with.status, 0) << with.all();
  EXPECT_EQ(with.all().find(kToken), std::string::npos) << "the token was printed";
  const CliResult listed = fabula("models --json", true);
  EXPECT_EQ(listed.all().find(kToken), std::string::npos);
  for (const auto& f : cache_files()) EXPECT_EQ(slurp((home_.path() / f).string()).find(kToken), std::string::npos) << f;

  // The hub's own origin got the token; the CDN (another origin) never did.
  int hub_with_token = 0;
  for (const auto& h : hub_.hits()) {
    if (h.path.rfind("/cdn/", 0) == 0) {
      EXPECT_EQ(h.authorization, "") << "token sent across origins to " << h.path;
    } else if (h.authorization == std::string("Bearer ") + kToken) {
      ++hub_with_token;
    }
  }
  EXPECT_GE(hub_with_token, 2);  // the listing and the resolve

  // A wrong token: the message says so, without echoing it.
  auto e = env();
  e["HF_TOKEN"] = "hf_WRONGtoken42";
  const CliResult wrong = run_fabula(work_, "pull test/private-GGUF:Q8_0", e);
  EXPECT_NE(wrong.status, 0);
  EXPECT_NE(wrong.err.find("refused HF_TOKEN"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.all().find("hf_WRONGtoken42"), std::string::npos);
}

TEST_F(PullCli, ModelsListsWhatWasPulled) {
  hub_.add_file("test/tiny-GGUF", "tiny-Q8_0.gguf", slurp(model("tiny-Q8_0.gguf")));
  ASSERT_EQ(fabula("pull test/tiny-GGUF").status, 0);
  const std::string sha = hub_.sha256("test/tiny-GGUF", "tiny-Q8_0.gguf");
  const CliResult table = fabula("models");
  ASSERT_EQ(table.status, 0);
  EXPECT_NE(table.out.find("test/tiny-GGUF"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(sha.substr(0, 12)), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("main@c0ffee0"), std::string::npos) << table.out;

  auto j = nlohmann::json::parse(fabula("models --json").out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["repo"], "test/tiny-GGUF");
  EXPECT_EQ(j[0]["quant"], "Q8_0");
  EXPECT_EQ(j[0]["files"][0]["sha256"], sha);
  EXPECT_EQ(j[0]["verified"], true);
  EXPECT_EQ(j[0]["size"], fs::file_size(model("tiny-Q8_0.gguf")));
  EXPECT_EQ(j[0]["source"], hub_.endpoint());

  // A second pull finds it verified in the cache and downloads nothing.
  const size_t before = hub_.hits().size();
  const CliResult again = fabula("pull test/tiny-GGUF");
  ASSERT_EQ(again.status, 0);
  EXPECT_NE(again.err.find("already in the cache"), std::string::npos) << again.err;
  for (size_t i = before; i < hub_.hits().size(); ++i) EXPECT_NE(hub_.hits()[i].path.rfind("/cdn/", 0), 0u);
}

TEST_F(PullCli, ASplitModelPullsEveryPartAndRuns) {
  std::vector<std::string> parts;
  for (auto& e : fs::directory_iterator(models_->path()))
    if (e.path().filename().string().rfind("tiny-split-F16-", 0) == 0) parts.push_back(e.path().filename());
  std::sort(parts.begin(), parts.end());
  ASSERT_GE(parts.size(), 2u);
  for (const auto& p : parts) hub_.add_file("test/split-GGUF", p, slurp(model(p)));
  hub_.add_file("test/split-GGUF", "tiny-Q4_0.gguf", slurp(model("tiny-Q8_0.gguf")));  // another quant beside it

  const CliResult r = fabula("pull test/split-GGUF:F16");
  ASSERT_EQ(r.status, 0) << r.all();
  EXPECT_NE(r.out.find(std::to_string(parts.size()) + " files"), std::string::npos) << r.out;
  for (const auto& p : parts) EXPECT_TRUE(fs::exists(home_.path() / "models/test/split-GGUF" / p)) << p;
  EXPECT_FALSE(fs::exists(home_.path() / "models/test/split-GGUF/tiny-Q4_0.gguf"));

  const CliResult inspect = fabula("inspect " + (home_.path() / "models/test/split-GGUF" / parts[0]).string());
  ASSERT_EQ(inspect.status, 0) << inspect.all();
  EXPECT_NE(inspect.out.find("split model: " + std::to_string(parts.size()) + " files"), std::string::npos);
  const CliResult run = fabula("run --model test/split-GGUF:F16 --tokens 2,17,300 -n 3 --temp 0 --ids");
  ASSERT_EQ(run.status, 0) << run.all();
  const CliResult single = fabula("run --model " + model("tiny-F16.gguf") + " --tokens 2,17,300 -n 3 --temp 0 --ids");
  EXPECT_EQ(run.out, single.out) << "the split synth has the single file's weights";
}

TEST_F(PullCli, AModelThatIsNotCachedNamesThePullCommand) {
  const CliResult r = fabula("run --model vn26b:Q8_0 --tokens 1 -n 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("download it first with: fabula pull vn26b:Q8_0"), std::string::npos) << r.err;
}

TEST_F(PullCli, PlayWithThePulledRegistryModelUsesItsProfile) {
  // The registry's vn26b, served by the fake hub (a tiny synth under the real file name).
  hub_.add_file(kVnRepo, "vn26b-experts-v1-Q4_K_M.gguf", slurp(model("tiny-F16.gguf")));
  const CliResult pulled = fabula("pull vn26b");
  ASSERT_EQ(pulled.status, 0) << pulled.all();
  EXPECT_TRUE(fs::exists(home_.path() / "models" / kVnRepo / "vn26b-experts-v1-Q4_K_M.gguf"));
  EXPECT_NE(fabula("models").out.find("vn26b"), std::string::npos);

  const CliResult play = fabula("play --model vn26b --tui --no-wait --new --save " + (work_ / "saves.sqlite"));
  EXPECT_NE(play.err.find("profile vn26b"), std::string::npos) << play.all();
  EXPECT_NE(play.err.find("vn26b-experts-v1-Q4_K_M.gguf"), std::string::npos) << play.err;
}

TEST_F(PullCli, TheMemoryCheckWarnsWithFiguresAndTheSmallerQuant) {
  // The synth 26B-A4B Q8_0 (26.9 GB) as a sparse file: the real header and size, no disk used.
  const CliResult synth = fabula("synth --shape gemma4-26b-a4b --type Q8_0 --sparse -o " + (work_ / "26b-Q8_0.gguf"));
  ASSERT_EQ(synth.status, 0) << synth.all();
  const uint64_t size = fs::file_size(work_ / "26b-Q8_0.gguf");
  EXPECT_GT(size, 26'000'000'000u);

  // On this machine: the warning appears exactly when the file is larger than the memory available.
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kb = 0, available = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit)
    if (key == "MemAvailable:") available = kb * 1024;
  const CliResult here = fabula("inspect " + (work_ / "26b-Q8_0.gguf"));
  ASSERT_EQ(here.status, 0) << here.err;
  const std::string here_tail = here.out.substr(here.out.rfind("memory:"));
  EXPECT_EQ(here_tail.find("would page") != std::string::npos, size > available) << here_tail;
  // A smaller machine, whatever this one has: the figures, and the largest smaller quant that fits.
  auto e = env();
  e["FABULA_MEM_AVAILABLE"] = "21G";
  const CliResult small = run_fabula(work_, "inspect " + (work_ / "26b-Q8_0.gguf"), e);
  const std::string tail = small.out.substr(small.out.rfind("memory:"));
  EXPECT_NE(tail.find("26.8 GB weights + 1.2 GB KV cache at ctx 4096"), std::string::npos) << tail;
  EXPECT_NE(tail.find("21.0 GB of memory is available: it would page"), std::string::npos) << tail;
  EXPECT_NE(tail.find("Use the smaller Q5_K_M"), std::string::npos) << tail;
  e["FABULA_MEM_AVAILABLE"] = "18G";
  const std::string tail18 = run_fabula(work_, "inspect " + (work_ / "26b-Q8_0.gguf"), e).out;
  EXPECT_NE(tail18.find("Use the smaller Q4_K_M"), std::string::npos) << tail18.substr(tail18.rfind("memory:"));
  // Named as the registry's vn26b Q8_0 file, only the quants it is published in are offered, with the pull.
  fs::rename(work_ / "26b-Q8_0.gguf", work_ / "vn26b-experts-v1-Q8_0.gguf");
  e["FABULA_MEM_AVAILABLE"] = "21G";
  const std::string vn = run_fabula(work_, "inspect " + (work_ / "vn26b-experts-v1-Q8_0.gguf"), e).out;
  EXPECT_NE(vn.find("Use the smaller Q4_K_M (about 15.4 GB of weights) instead, or lower --ctx / close other "
                    "programs. (fabula pull vn26b:Q4_K_M)"),
            std::string::npos)
      << vn.substr(vn.rfind("memory:"));

  // Commands that load warn before loading and still run.
  e["FABULA_MEM_AVAILABLE"] = "1M";
  const CliResult run = run_fabula(work_, "run --model " + model("tiny-F16.gguf") + " --tokens 2,17 -n 1 --ids", e);
  EXPECT_EQ(run.status, 0) << run.all();
  EXPECT_NE(run.err.find("warning: tiny-F16.gguf needs"), std::string::npos) << run.err;
  e["FABULA_MEM_AVAILABLE"] = "64G";
  const CliResult fits = run_fabula(work_, "run --model " + model("tiny-F16.gguf") + " --tokens 2,17 -n 1 --ids", e);
  EXPECT_EQ(fits.err.find("would page"), std::string::npos) << fits.err;
}

}  // namespace
}  // namespace fabula::hub_test
