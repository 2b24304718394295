// The model CLI end to end (fabula convert / run / logits), through the built binary.
#include <gtest/gtest.h>

#include <cstdio>

#include "model_test_util.h"
#include "tensor/decode_stream.h"

namespace fabula {
namespace {

using namespace model_test;

struct Output {
  int status = -1;
  std::string text;  // stdout
};

// Runs a shell command line and reads its stdout.
Output run_shell(const std::string& cmd) {
  Output out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.text.append(buf, n);
  const int rc = ::pclose(p);
  out.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

Output run_cli(const std::string& args) { return run_shell(std::string(FABULA_BINARY) + ' ' + args + " 2>/dev/null"); }

// What a command writes on stderr.
std::string run_cli_stderr(const std::string& args) {
  return run_shell(std::string(FABULA_BINARY) + ' ' + args + " 2>&1 >/dev/null").text;
}

// The object under `key` of the one row `fabula bench ARGS --json` prints (ARGS with one tg test); null, with a
// failure recorded, when the run fails or prints anything else.
nlohmann::json bench_row_object(const std::string& args, const char* key) {
  const Output bench = run_cli("bench " + args + " --json");
  const auto rows = nlohmann::json::parse(bench.text, nullptr, false);
  if (bench.status != 0 || !rows.is_array() || rows.size() != 1 || !rows[0].contains(key) || !rows[0][key].is_object()) {
    ADD_FAILURE() << "bench " << args << ": status " << bench.status << ", no single row with an object '" << key
                  << "':\n" << bench.text;
    return nullptr;
  }
  return rows[0][key];
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

class ModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const Output conv = run_cli("convert " + data_path("gemma4-tiny") + " -o " + (dir_ / "tiny.gguf") + " --outtype f32");
    ASSERT_EQ(conv.status, 0) << conv.text;
    golden_ = read_json(data_path("gemma4-tiny/golden.json"));
  }
  ScratchDir dir_{"cli"};
  nlohmann::json golden_;
};

TEST_F(ModelCli, GreedyRunPrintsTheGoldenIds) {
  for (size_t s = 0; s < 3; ++s) {
    const auto ids = golden_["sequences"][s].get<std::vector<int32_t>>();
    const Output out = run_cli("run --model " + (dir_ / "tiny.gguf") + " --tokens " + join(ids) +
                               " -n 20 --temp 0 --ids");
    ASSERT_EQ(out.status, 0);
    auto got = nlohmann::json::parse(out.text, nullptr, false);
    ASSERT_FALSE(got.is_discarded()) << out.text;
    EXPECT_EQ(got.get<std::vector<int32_t>>(), golden_["greedy"][s].get<std::vector<int32_t>>()) << "sequence " << s;
  }
}

TEST_F(ModelCli, LogitsCommandWritesTheLogitsTensor) {
  const auto ids = golden_["sequences"][2].get<std::vector<int32_t>>();
  const std::string path = dir_ / "logits.safetensors";
  const Output out = run_cli("logits --model " + (dir_ / "tiny.gguf") + " --tokens " + join(ids) + " --output " + path);
  ASSERT_EQ(out.status, 0) << out.text;
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  const SafetensorsTensor* t = file->find_tensor("logits");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<uint64_t>{4, 512}));
  auto golden = SafetensorsFile::open(data_path("gemma4-tiny/golden.safetensors"));
  ASSERT_TRUE(golden.ok());
  EXPECT_LE(max_abs_diff(golden_tensor(*file, "logits"), golden_tensor(*golden, "logits.2")), 1e-3);
}

TEST_F(ModelCli, DemoChatIsReproducibleWithASeedAndStopsAtTheTurnEnd) {
  const std::string chat =
      "--chat \"Cast: Kaito, Mio. Place: school rooftop. Time: after school.\nExpressions: neutral, smile, laugh, sad, "
      "angry, surprised, embarrassed.\nThe player chose: \\\"Ask Mio about the festival\\\".\nWrite the next beat.\"";
  // Default model: models/fabula-demo-v1.gguf, found relative to the binary.
  const Output a = run_cli("run " + chat + " -n 400 --temp 1.1 --top-p 0.95 --seed 7 --ids");
  const Output b = run_cli("run " + chat + " -n 400 --temp 1.1 --top-p 0.95 --seed 7 --ids");
  ASSERT_EQ(a.status, 0);
  EXPECT_EQ(a.text, b.text);
  auto ids = nlohmann::json::parse(a.text, nullptr, false);
  ASSERT_TRUE(ids.is_array());
  EXPECT_GT(ids.size(), 10u);
  EXPECT_LT(ids.size(), 400u);  // it ends its turn with <turn|> (not printed) well before the limit
  for (const auto& id : ids) EXPECT_NE(id.get<int>(), 6);

  const Output text = run_cli("run " + chat + " -n 400 --temp 0");
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.text.find("[TOOL:"), std::string::npos) << text.text;  // it drives the stage, as trained
}

// --cache-type-k / --cache-type-v: every type runs (f32 gives the golden ids), an unknown one is refused; bench
// runs the types side by side at a depth and prints the memory table.
TEST_F(ModelCli, CacheTypesRunAndUnknownOnesAreRefused) {
  const auto ids = golden_["sequences"][0].get<std::vector<int32_t>>();
  for (const char* t : {"f32", "f16", "q8_0", "q4_0", "tq4", "tq3"}) {
    const Output out = run_cli("run --model " + (dir_ / "tiny.gguf") + " --tokens " + join(ids) +
                               " -n 8 --temp 0 --ids --cache-type-k " + t + " --cache-type-v " + t);
    ASSERT_EQ(out.status, 0) << t;
    auto got = nlohmann::json::parse(out.text, nullptr, false);
    ASSERT_FALSE(got.is_discarded()) << out.text;
    EXPECT_EQ(got.size(), 8u) << t;
    if (std::string(t) == "f32") {
      auto want = golden_["greedy"][0].get<std::vector<int32_t>>();
      want.resize(8);
      EXPECT_EQ(got.get<std::vector<int32_t>>(), want);
    }
  }
  EXPECT_NE(run_cli("run --model " + (dir_ / "tiny.gguf") + " --tokens 1,2 --cache-type-k q5_1").status, 0);
  const Output bench = run_cli("bench --model " + (dir_ / "tiny.gguf") +
                               " -p 8 -n 4 -r 1 -d 20 --cache-type-k f16,tq3 --json");
  ASSERT_EQ(bench.status, 0);
  auto rows = nlohmann::json::parse(bench.text, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << bench.text;
  ASSERT_EQ(rows.size(), 4u);  // pp and tg for each type
  EXPECT_EQ(rows[3]["type_k"], "tq3");
  EXPECT_EQ(rows[3]["n_depth"], 20);
  const Output mem = run_cli("bench --kv-memory --contexts 8192");
  ASSERT_EQ(mem.status, 0);
  EXPECT_NE(mem.text.find("| tq4 | 4.5 | 2304 | 1152 |"), std::string::npos) << mem.text;
}

// --bound-probe K: a chunk per K steps (the last one shorter) in every repetition, each with its two reads; a
// negative K and --parallel are refused with a message naming the option.
TEST_F(ModelCli, BenchBoundProbeReportsAChunkPerKStepsAndRefusesANegativeK) {
  const nlohmann::json probe =
      bench_row_object("--model " + (dir_ / "tiny.gguf") + " -p 0 -n 7 -r 2 -t 2 --bound-probe 3", "bound_probe");
  ASSERT_TRUE(probe.is_object());
  EXPECT_EQ(probe["steps_per_probe"], 3);
  const auto& chunks = probe["chunks"];
  ASSERT_EQ(chunks.size(), 6u);  // 3 + 3 + 1, twice
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i]["steps"], i % 3 == 2 ? 1 : 3) << i;
    EXPECT_GT(chunks[i]["read_before_gbs"].get<double>(), 0) << i;
    EXPECT_GT(chunks[i]["read_after_gbs"].get<double>(), 0) << i;
    if (i % 3 != 0) {  // one read between two chunks of a repetition
      EXPECT_EQ(chunks[i]["read_before_gbs"], chunks[i - 1]["read_after_gbs"]) << i;
    }
  }
  EXPECT_EQ(probe["all"]["count"], 6);

  const std::string err = run_cli_stderr("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 4 --bound-probe -1");
  EXPECT_NE(err.find("--bound-probe must be 0 (off)"), std::string::npos) << err;
  EXPECT_NE(run_cli("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 4 --bound-probe -1").status, 0);
  EXPECT_NE(run_cli("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 4 --bound-probe 2 --parallel 2").status, 0);
}

// --ab-streams: the whole quads of every repetition (10 steps: two a repetition) with the counts in use as A and
// the flag's as B; a malformed list, and runs with no tg or with --parallel, are refused with a message.
TEST_F(ModelCli, BenchAbStreamsSummarisesTheQuadsAndRefusesBadLists) {
  const nlohmann::json ab =
      bench_row_object("--model " + (dir_ / "tiny.gguf") + " -p 0 -n 10 -r 2 -t 2 --ab-streams 1,2,4", "ab_streams");
  ASSERT_TRUE(ab.is_object());
  EXPECT_EQ(ab["b"], "1,2,4");
  const DecodeRowStreams in_use = decode_row_streams();  // the test's process chose as the CLI's did
  EXPECT_EQ(ab["a"], std::to_string(in_use.q4_K) + "," + std::to_string(in_use.q6_K) + "," + std::to_string(in_use.q8_0));
  EXPECT_EQ(ab["quads"], 4);
  for (const char* key : {"median", "q1", "q3", "whole"}) EXPECT_GT(ab[key].get<double>(), 0) << key;
  EXPECT_LE(ab["q1"].get<double>(), ab["median"].get<double>());
  EXPECT_LE(ab["median"].get<double>(), ab["q3"].get<double>());

  const std::string err = run_cli_stderr("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 8 --ab-streams 3,9");
  EXPECT_NE(err.find("--ab-streams wants one count from 1 to 4"), std::string::npos) << err;
  EXPECT_NE(run_cli("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 8 --ab-streams 3,4").status, 0);
  EXPECT_NE(run_cli("bench --model " + (dir_ / "tiny.gguf") + " -p 8 -n 0 --ab-streams 2").status, 0);
  EXPECT_NE(run_cli("bench --model " + (dir_ / "tiny.gguf") + " -p 0 -n 8 --ab-streams 2 --parallel 2").status, 0);
}

TEST_F(ModelCli, ErrorsExitNonZero) {
  EXPECT_NE(run_cli("run --model " + (dir_ / "missing.gguf") + " --tokens 1,2").status, 0);
  EXPECT_NE(run_cli("run --model " + (dir_ / "tiny.gguf") + " --tokens 1,x").status, 0);
  EXPECT_NE(run_cli("run --model " + (dir_ / "tiny.gguf") + " --prompt hi").status, 0);  // no tokenizer
  EXPECT_NE(run_cli("convert " + dir_.operator/("nowhere") + " -o " + (dir_ / "x.gguf")).status, 0);
}

}  // namespace
}  // namespace fabula
