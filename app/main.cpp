// fabula: the command-line entry point; every subcommand lives in its own app/<name>.cpp.
#include <algorithm>
#include <cstdio>
#include <map>

#include <CLI/CLI.hpp>

#include "base/log.h"
#include "command.h"

#ifndef FABULA_VERSION
#define FABULA_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace fabula;
  CLI::App cli{"fabula — an anime visual novel written and directed by a local LLM"};
  cli.set_version_flag("--version", FABULA_VERSION);
  cli.require_subcommand(1);
  bool verbose = false, quiet = false;
  cli.add_flag("-v,--verbose", verbose, "Print debug logging");
  cli.add_flag("-q,--quiet", quiet, "Print only errors");

  auto specs = app::command_registry();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, app::CommandRun> runs;
  for (auto& spec : specs) {
    CLI::App* sub = cli.add_subcommand(spec.name, spec.help);
    runs[sub] = spec.setup(*sub);
  }

  CLI11_PARSE(cli, argc, argv);
  set_log_level(quiet ? LogLevel::kError : verbose ? LogLevel::kDebug : LogLevel::kInfo);
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  return 1;
}
