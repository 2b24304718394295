// The decoding options shared by run, eval and play (one wording, one place).
#include "decoding_args.h"

namespace fabula::app {

void add_decoding_flags(CLI::App& cli, DecodingArgs& args) {
  cli.add_flag("--constrained", args.constrained,
               "Protocol-constrained decoding: only tokens that keep the beat valid (in-process model only)");
  cli.add_option("--ban-list", args.ban_list, "Phrases to ban, one a line: rewind and resample when one appears");
  cli.add_flag("--ban-tells", args.ban_tells, "Ban the plain phrases of data/slop-tells-v1.txt");
}

}  // namespace fabula::app
