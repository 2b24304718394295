// `fabula convert HF_DIR -o OUT.gguf [--outtype f32|f16|bf16|q8_0|auto]`: Hugging Face Gemma 4 -> GGUF.
#include <cstdio>

#include "command.h"
#include "format/gguf_split.h"
#include "tools/convert.h"

FABULA_COMMAND(convert, "Convert a Hugging Face Gemma 4 checkpoint to GGUF") {
  auto opt = std::make_shared<fabula::ConvertOptions>();
  cli.add_option("hf_dir", opt->hf_dir, "Checkpoint directory (config.json, *.safetensors, tokenizer.json)")->required();
  cli.add_option("-o,--output", opt->output, "Output .gguf path")->required();
  cli.add_option("--outtype", opt->outtype, "f32, f16, bf16, q8_0 or auto (the checkpoint's dtype)")
      ->capture_default_str();
  cli.add_option("--rope-freq", opt->rope_inv_freq,
                 "RoPE inverse-frequency precision: auto (bf16 for a bf16 checkpoint, as transformers), f32, bf16")
      ->capture_default_str();
  cli.add_option("--name", opt->name, "general.name (default: the directory name)");
  auto split = std::make_shared<std::string>();
  cli.add_option("--split-max-size", *split,
                 "Write llama.cpp gguf-split files (OUT-00001-of-0000N.gguf) of at most this size each (2G, 500M)");
  return [opt, split] {
    if (!split->empty()) {
      auto bytes = fabula::parse_split_size(*split);
      if (!bytes)
        return fabula::app::report_error(fabula::make_error(fabula::ErrorCode::kInvalidArgument,
                                                            "--split-max-size {}: expected a size such as 2G or 500M",
                                                            *split));
      opt->split_max_bytes = *bytes;
    }
    auto report = fabula::convert_hf_to_gguf(*opt);
    if (!report.ok()) return fabula::app::report_error(report.error());
    if (report->written.size() > 1)
      std::printf("split into %zu files: %s ...\n", report->written.size(), report->written.front().c_str());
    std::printf("%s: %lld tensors, %.1f MB (%s%s%s; %lld tensors skipped)\n", opt->output.c_str(),
                static_cast<long long>(report->n_tensors), static_cast<double>(report->n_bytes) / 1e6,
                report->architecture.c_str(), report->has_tokenizer ? ", with tokenizer" : ", no tokenizer",
                report->rope_inv_freq_bf16 ? ", bf16 rope frequencies" : "",
                static_cast<long long>(report->n_skipped));
    return 0;
  };
}
