// Subcommand registry: each app/<name>.cpp registers one subcommand with FABULA_COMMAND; main.cpp wires them to CLI11.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"

namespace fabula::app {

// What a subcommand's setup returns: the action run after parsing; its value is the exit status.
using CommandRun = std::function<int()>;
using CommandSetup = std::function<CommandRun(CLI::App&)>;

struct CommandSpec {
  std::string name;
  std::string help;
  CommandSetup setup;
};

std::vector<CommandSpec>& command_registry();
bool register_command(std::string name, std::string help, CommandSetup setup);

// Prints "error: <message>" (plus a hint if given) to stderr and returns exit status 1.
int report_error(const Error& error, const std::string& hint = "");

}  // namespace fabula::app

// FABULA_COMMAND(inspect, "Show a model file") { ... return [=] { return 0; }; }
// The body receives `CLI::App& cli` to declare options and returns the CommandRun.
#define FABULA_COMMAND(name, help)                                                                  \
  static ::fabula::app::CommandRun fabula_setup_##name(CLI::App& cli);                              \
  [[maybe_unused]] static const bool fabula_registered_##name =                                     \
      ::fabula::app::register_command(#name, help, fabula_setup_##name);                            \
  static ::fabula::app::CommandRun fabula_setup_##name([[maybe_unused]] CLI::App& cli)
