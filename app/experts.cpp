// `fabula experts unfuse|refuse IN OUT`: split fused MoE expert tensors into per-expert 2-D tensors and back.
#include <cstdio>
#include <memory>

#include "command.h"
#include "tools/experts.h"

FABULA_COMMAND(experts, "Un-fuse or re-fuse MoE expert tensors (HF safetensors file/dir or GGUF)") {
  struct Args {
    std::string in, out;
  };
  auto unfuse = std::make_shared<Args>();
  auto refuse = std::make_shared<Args>();
  CLI::App* u = cli.add_subcommand("unfuse", "experts.gate_up_proj/down_proj -> experts.gate_up.N/down.N.weight");
  u->add_option("IN", unfuse->in, "model.safetensors, an HF directory or a .gguf")->required();
  u->add_option("OUT", unfuse->out, "output of the same kind")->required();
  CLI::App* r = cli.add_subcommand("refuse", "per-expert tensors -> fused experts (inverse of unfuse)");
  r->add_option("IN", refuse->in, "model.safetensors, an HF directory or a .gguf")->required();
  r->add_option("OUT", refuse->out, "output of the same kind")->required();
  cli.require_subcommand(1);
  return [=]() -> int {
    using namespace fabula;
    const bool is_unfuse = u->parsed();
    const Args& a = is_unfuse ? *unfuse : *refuse;
    auto stats = experts_convert(a.in, a.out, is_unfuse ? ExpertsOp::kUnfuse : ExpertsOp::kRefuse,
                                 [](const std::string& line) { std::printf("%s\n", line.c_str()); });
    if (!stats.ok()) return app::report_error(stats.error());
    return 0;
  };
}
