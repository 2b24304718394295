// `fabula pull REF`: download a model from the Hugging Face Hub (or HF_ENDPOINT) into the model cache.
#include <cstdio>
#include <memory>

#include "command.h"
#include "hub/pull.h"
#include "model_args.h"

FABULA_COMMAND(pull, "Download a model into the cache: vn26b, vn26b:Q8_0, owner/repo[:QUANT], owner/repo/file.gguf") {
  struct Opts {
    std::string ref, revision = "main";
    int retries = 3;
  };
  auto o = std::make_shared<Opts>();
  cli.add_option("ref", o->ref, "What to pull: a registry name (vn26b[:QUANT]), owner/repo[:QUANT] or owner/repo/file.gguf")
      ->required();
  cli.add_option("--revision", o->revision, "Branch, tag or commit")->capture_default_str();
  cli.add_option("--retries", o->retries, "Resumes after a lost connection before giving up")->capture_default_str();
  cli.footer(
      "Files go to $FABULA_HOME/models (else $XDG_CACHE_HOME/fabula/models, ~/.cache/fabula/models), are checked\n"
      "against the Hub's sha256 and resume where they stopped. HF_TOKEN (gated or private repos) and HF_ENDPOINT\n"
      "(a mirror) are read from the environment; the token is never printed.");
  return [o]() -> int {
    using namespace fabula;
    auto registry = hub::load_registry();
    if (!registry.ok()) return app::report_error(registry.error());
    auto ref = hub::parse_model_ref(o->ref, *registry);
    if (!ref.ok()) return app::report_error(ref.error());
    ref->revision = o->revision;
    const hub::HubConfig config = hub::hub_config_from_env();
    hub::PullOptions options;
    options.retries = std::max(0, o->retries);
    options.log = [](const std::string& line) { std::fprintf(stderr, "pull: %s\n", line.c_str()); };
    auto model = hub::pull_model(*ref, config, options);
    if (!model.ok()) return app::report_error(model.error());
    std::printf("pulled %s: %s (%.2f GB, %zu file%s, %s)\n", model->ref.c_str(), model->path().c_str(),
                static_cast<double>(model->total_size()) / 1e9, model->files.size(),
                model->files.size() == 1 ? "" : "s", model->verified() ? "sha256 verified" : "not verified");
    std::printf("play it: fabula play --model %s\n", o->ref.c_str());
    std::fflush(stdout);
    app::warn_if_model_would_page(app::ModelChoice{model->path().string(), model->ref, model->profile}, 4096);
    return 0;
  };
}
