// `fabula quantize IN.gguf OUT.gguf TYPE` and `fabula quantize --dry-run (IN.gguf | --shape NAME) TYPE`.
#include <cstdio>
#include <memory>

#include "command.h"
#include "format/gguf_split.h"
#include "tools/quantize.h"

namespace {

struct QuantizeArgs {
  std::vector<std::string> positional;
  std::string shape;
  bool dry_run = false;
  bool list = false;
  int threads = 0;
  std::string split_max_size;
};

void print_list(const fabula::QuantPlan& plan) {
  for (const auto& t : plan.tensors) {
    std::string dims;
    for (uint64_t d : t.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    std::printf("  %-36s %-18s %5s -> %-5s%s\n", t.name.c_str(), ("{" + dims + "}").c_str(),
                std::string(fabula::type_name(t.source)).c_str(), std::string(fabula::type_name(t.target)).c_str(),
                t.fallback ? "  (fallback)" : "");
  }
}

}  // namespace

FABULA_COMMAND(quantize, "Quantize a GGUF model (Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K, F16, BF16)") {
  auto args = std::make_shared<QuantizeArgs>();
  cli.add_option("args", args->positional, "IN.gguf OUT.gguf TYPE (dry run: IN.gguf TYPE, or TYPE with --shape)")
      ->required();
  cli.add_flag("--dry-run", args->dry_run, "Print the plan (types, fallbacks, output size) without writing");
  cli.add_option("--shape", args->shape, "Plan for a built-in shape instead of a file (gemma4-26b-a4b, ...)");
  cli.add_flag("--list", args->list, "Also print every tensor's decision");
  cli.add_option("-t,--threads", args->threads, "Worker threads (0: all cores)");
  cli.add_option("--split-max-size", args->split_max_size,
                 "Write llama.cpp gguf-split files (OUT-00001-of-0000N.gguf) of at most this size each (2G, 500M)");
  return [args]() -> int {
    using namespace fabula;
    uint64_t split_bytes = 0;
    if (!args->split_max_size.empty()) {
      auto bytes = parse_split_size(args->split_max_size);
      if (!bytes)
        return app::report_error(make_error(ErrorCode::kInvalidArgument,
                                            "--split-max-size {}: expected a size such as 2G or 500M",
                                            args->split_max_size));
      split_bytes = *bytes;
    }
    const auto& pos = args->positional;
    const size_t want = args->dry_run ? (args->shape.empty() ? 2 : 1) : 3;
    if (!args->shape.empty() && !args->dry_run)
      return app::report_error(make_error(ErrorCode::kInvalidArgument, "--shape needs --dry-run"));
    if (pos.size() != want)
      return app::report_error(make_error(ErrorCode::kInvalidArgument, "expected {} positional arguments, got {}",
                                          want, pos.size()),
                               "fabula quantize IN.gguf OUT.gguf TYPE | --dry-run (IN.gguf | --shape NAME) TYPE");
    auto ftype = quant_ftype_from_name(pos.back());
    if (!ftype.ok()) return app::report_error(ftype.error());

    if (!args->shape.empty()) {
      auto shape = gemma4_preset(args->shape);
      if (!shape.ok()) return app::report_error(shape.error());
      auto plan = plan_quantization(quant_inputs(*shape), *ftype, quant_model_info(*shape));
      if (!plan.ok()) return app::report_error(plan.error());
      if (args->list) print_list(*plan);
      const uint64_t size = gguf_file_size({{"general.quantization_version", GgufValue::u32(2)},
                                            {"general.file_type", GgufValue::u32(static_cast<uint32_t>(*ftype))}},
                                           *plan);
      std::fputs(format_quant_plan(*plan, args->shape, size,
                                   "(tensor data + tensor infos; a real file adds its metadata, mostly the tokenizer)")
                     .c_str(),
                 stdout);
      return 0;
    }

    auto in = GgufFile::open(pos[0]);
    if (!in.ok()) return app::report_error(in.error());
    auto plan = plan_quantization(quant_inputs(*in), *ftype, quant_model_info(*in));
    if (!plan.ok()) return app::report_error(plan.error());
    if (args->dry_run) {
      if (args->list) print_list(*plan);
      for (const auto& t : plan->tensors)
        if (t.fallback) std::printf("%s\n", quant_fallback_line(t).c_str());
      const uint64_t size = gguf_file_size(quantized_metadata(*in, *ftype), *plan, in->alignment());
      std::fputs(format_quant_plan(*plan, pos[0], size, "(exact file size)").c_str(), stdout);
      return 0;
    }
    QuantizeOptions options;
    options.n_threads = args->threads;
    options.split_max_bytes = split_bytes;
    options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    Status st = quantize_gguf(*in, *plan, pos[1], options);
    if (!st.ok()) return app::report_error(st.error());
    std::printf("wrote %s (%s)\n", pos[1].c_str(), std::string(quant_ftype_name(*ftype)).c_str());
    return 0;
  };
}
