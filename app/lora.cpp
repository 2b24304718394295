// `fabula lora merge --base DIR --adapter DIR --out DIR` and `fabula lora plan --shape NAME --rank R --targets ...`.
#include <cstdio>
#include <memory>

#include "base/ascii.h"
#include "command.h"
#include "format/hf_config.h"
#include "tools/lora.h"

FABULA_COMMAND(lora, "Merge a PEFT LoRA adapter into an HF checkpoint, or plan a LoRA (modules, parameters)") {
  struct Args {
    std::string base, adapter, out, shape = "gemma4-26b-a4b", config, targets = "experts,attention,mlp";
    uint32_t rank = 16;
    int threads = 0;
    bool list = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* merge = cli.add_subcommand("merge", "W + (alpha/r)·B·A in f32, rounded once to the base dtype");
  merge->add_option("--base", a->base, "HF checkpoint directory")->required();
  merge->add_option("--adapter", a->adapter, "PEFT adapter directory (adapter_config.json, adapter_model.safetensors)")
      ->required();
  merge->add_option("--out", a->out, "Output HF directory")->required();
  merge->add_option("-t,--threads", a->threads, "Worker threads (0: all cores)");
  CLI::App* plan = cli.add_subcommand("plan", "Count LoRA modules and trainable parameters for a shape");
  plan->add_option("--shape", a->shape, "Built-in shape")->capture_default_str();
  plan->add_option("--config", a->config, "HF config.json instead of a built-in shape");
  plan->add_option("--rank", a->rank, "LoRA rank r")->capture_default_str();
  plan->add_option("--targets", a->targets, "Comma-separated: experts, attention, mlp")->capture_default_str();
  plan->add_flag("--list", a->list, "Print the target modules instead (one per line: name, in features, out "
                                    "features; the names a PEFT adapter's target_modules and tensors use)");
  cli.require_subcommand(1);
  return [=]() -> int {
    using namespace fabula;
    if (merge->parsed()) {
      auto stats = lora_merge(a->base, a->adapter, a->out, a->threads,
                              [](const std::string& line) { std::printf("%s\n", line.c_str()); });
      if (!stats.ok()) return app::report_error(stats.error());
      return 0;
    }
    Result<Gemma4HParams> shape = gemma4_preset(a->shape);
    if (!a->config.empty()) {
      auto config = HfConfig::load(a->config);
      if (!config.ok()) return app::report_error(config.error());
      auto text_config = config->has("text_config") ? config->get_object("text_config") : config;
      if (!text_config.ok()) return app::report_error(text_config.error());
      shape = gemma4_hparams_from_hf(*text_config);
    }
    if (!shape.ok()) return app::report_error(shape.error());
    std::vector<std::string> targets;
    for (const std::string_view t : split(a->targets, ','))
      if (!t.empty()) targets.emplace_back(t);
    auto modules = lora_modules(*shape, targets);
    if (!modules.ok()) return app::report_error(modules.error());
    if (a->list) {
      for (const auto& m : *modules)
        std::printf("%s\t%llu\t%llu\n", m.name.c_str(), static_cast<unsigned long long>(m.in),
                    static_cast<unsigned long long>(m.out));
      return 0;
    }
    const LoraPlan p = lora_plan(*modules, a->rank);
    std::printf("LoRA plan: %s, rank %u, targets %s\n", (a->config.empty() ? a->shape : a->config).c_str(), a->rank,
                a->targets.c_str());
    std::printf("  %-10s %10s %16s\n", "group", "modules", "parameters");
    for (const auto& g : p.groups)
      std::printf("  %-10s %10llu %16llu\n", g.group.c_str(), static_cast<unsigned long long>(g.modules),
                  static_cast<unsigned long long>(g.params));
    std::printf("  %-10s %10llu %16llu\n", "total", static_cast<unsigned long long>(p.modules),
                static_cast<unsigned long long>(p.params));
    return 0;
  };
}
