// `fabula play` on a story package with a wrong-typed field: a clear error naming the field, never a crash.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/scratch_dir.h"

namespace {

// A wrong-typed field is a clear error, not a crash: "memory": "yes" in a profile once ended `fabula play` with
// "terminate called after throwing an instance of nlohmann::...::type_error".
TEST(PlayCli, AStoryWithAWrongTypedFieldIsAClearError) {
  fabula::test_support::ScratchDir dir("play_cli");
  std::ifstream in(std::string(FABULA_SOURCE_DIR) + "/stories/sakuragaoka/story.json");
  nlohmann::json story = nlohmann::json::parse(in);
  story["profiles"]["vn26b"]["memory"] = "yes";
  std::ofstream(dir / "story.json") << story.dump(2);

  std::string cmd = std::string("'") + FABULA_BINARY + "' play --scripted '" + FABULA_TEST_DATA +
                    "/engine/play_fixture.jsonl' --story '" + (dir / "story.json") + "' --save '" +
                    (dir / "save.sqlite") + "' --port 0 </dev/null 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal: " << out;
  EXPECT_NE(WEXITSTATUS(status), 0) << out;
  EXPECT_EQ(out.find("terminate called"), std::string::npos) << out;
  EXPECT_NE(out.find("profiles.vn26b.memory: expected a boolean (true or false), got the string \"yes\""),
            std::string::npos)
      << out;
}

}  // namespace
