// --constrained / --ban-list / --ban-tells: the decoding controls run, eval and play share.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace fabula::app {

struct DecodingArgs {
  bool constrained = false;
  bool ban_tells = false;
  std::string ban_list;
  bool any() const { return constrained || ban_tells || !ban_list.empty(); }
};

// Declares the three options on `cli`, writing into `args` (which must outlive parsing).
void add_decoding_flags(CLI::App& cli, DecodingArgs& args);

}  // namespace fabula::app
