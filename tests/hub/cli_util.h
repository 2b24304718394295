// Running the fabula binary with an environment, capturing stdout and stderr separately.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "common/scratch_dir.h"

namespace fabula::hub_test {

struct CliResult {
  int status = -1;
  std::string out, err;
  std::string all() const { return out + err; }
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `fabula ARGS` with `env` added to the environment; stdin is /dev/null.
inline CliResult run_fabula(const test_support::ScratchDir& dir, const std::string& args,
                            const std::map<std::string, std::string>& env) {
  std::string cmd = "env";
  for (const auto& [k, v] : env) cmd += " " + k + "='" + v + "'";
  cmd += std::string(" ") + FABULA_BINARY + " " + args + " </dev/null >" + (dir / "cli.out") + " 2>" + (dir / "cli.err");
  const int rc = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(dir / "cli.out");
  r.err = slurp(dir / "cli.err");
  return r;
}

}  // namespace fabula::hub_test
