// `fabula synth --shape NAME --type Q4_K_M -o F.gguf`: a random-weight Gemma 4 GGUF for benchmarks.
#include <cstdio>
#include <memory>

#include "command.h"
#include "tools/quantize.h"
#include "format/gguf_split.h"
#include "tools/synth.h"

FABULA_COMMAND(synth, "Write a random-weight Gemma 4 GGUF of a given shape and type (benchmarks)") {
  auto opt = std::make_shared<fabula::SynthOptions>();
  auto dry_run = std::make_shared<bool>(false);
  auto list = std::make_shared<bool>(false);
  auto split = std::make_shared<std::string>();
  cli.add_option("--shape", opt->shape, "gemma4-26b-a4b | gemma4-mini | gemma4-2b-a0.5b | gemma4-demo | gemma4-small | gemma4-tiny-moe")
      ->capture_default_str();
  cli.add_option("--type", opt->type, "File type: Q4_K_M, Q8_0, Q4_0, Q5_K_M, Q6_K, F16, BF16, F32")
      ->capture_default_str();
  cli.add_option("-o,--output", opt->output, "Output .gguf (written atomically)");
  cli.add_option("--seed", opt->seed, "Random seed")->capture_default_str();
  cli.add_option("-t,--threads", opt->n_threads, "Worker threads (0: all cores)");
  cli.add_flag("--quantize-floats", opt->quantize_floats,
               "Quantize random floats with the reference quantizers instead of writing random blocks (slow)");
  cli.add_flag("--sparse", opt->sparse,
               "All-zero weights written as a sparse file: the real size and header, no disk used (memory tests)");
  cli.add_option("--split-max-size", *split, "Write llama.cpp gguf-split files of at most this size each (2G, 500M)");
  cli.add_flag("--dry-run", *dry_run, "Print the plan and file size, write nothing");
  cli.add_flag("--list", *list, "With --dry-run: every tensor's name, shape and type");
  return [opt, dry_run, list, split]() -> int {
    using namespace fabula;
    if (!split->empty()) {
      auto bytes = parse_split_size(*split);
      if (!bytes) return app::report_error(make_error(ErrorCode::kInvalidArgument, "--split-max-size {}: expected a size such as 2G or 500M", *split));
      opt->split_max_bytes = *bytes;
    }
    auto plan = synth_plan(*opt);
    if (!plan.ok()) return app::report_error(plan.error());
    if (*dry_run) {
      if (*list) {
        for (const auto& t : plan->quant.tensors) {
          std::string dims;
          for (uint64_t d : t.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
          std::printf("  %-36s %-22s %s\n", t.name.c_str(), ("{" + dims + "}").c_str(),
                      std::string(type_name(t.target)).c_str());
        }
      }
      std::fputs(format_quant_plan(plan->quant, plan->shape, plan->file_bytes, "(exact file size)").c_str(),
                 stdout);
      return 0;
    }
    if (opt->output.empty()) {
      return app::report_error(make_error(ErrorCode::kInvalidArgument, "synth: -o F.gguf is required"));
    }
    auto report = synth_gguf(*opt);
    if (!report.ok()) return app::report_error(report.error());
    std::printf("wrote %s: %s %s, %llu tensors, %.3f B parameters, %llu bytes (%.2f GiB)\n", opt->output.c_str(),
                plan->shape.c_str(), opt->type.c_str(), static_cast<unsigned long long>(report->n_tensors),
                static_cast<double>(report->n_params) / 1e9, static_cast<unsigned long long>(report->file_bytes),
                static_cast<double>(report->file_bytes) / (1024.0 * 1024.0 * 1024.0));
    return 0;
  };
}
