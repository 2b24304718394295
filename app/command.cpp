// The subcommand registry behind FABULA_COMMAND.
#include "command.h"

#include <cstdio>

namespace fabula::app {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;  // filled during static initialisation, read-only afterwards
  return registry;
}

bool register_command(std::string name, std::string help, CommandSetup setup) {
  command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
  return true;
}

int report_error(const Error& error, const std::string& hint) {
  std::fprintf(stderr, "error: %s\n", error.to_string().c_str());
  if (!hint.empty()) std::fprintf(stderr, "hint: %s\n", hint.c_str());
  return 1;
}

}  // namespace fabula::app
