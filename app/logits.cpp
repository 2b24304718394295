// `fabula logits`: run token ids through the model and write f32 logits [T, n_vocab] as safetensors tensor "logits".
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "format/safetensors_writer.h"
#include "model/model.h"
#include "model_args.h"

FABULA_COMMAND(logits, "Write the model's logits for token ids to a safetensors file") {
  struct Args {
    std::string model, tokens, output;
    bool last = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cli.add_option("-m,--model", a->model, "GGUF model (default: models/fabula-demo-v1.gguf)");
  cli.add_option("--tokens", a->tokens, "Token ids: 2,17,300")->required();
  cli.add_option("-o,--output", a->output, "Output .safetensors path")->required();
  cli.add_flag("--last", a->last, "Only the last position's logits ([1, n_vocab])");
  cli.add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  return [a] {
    using namespace fabula;
    auto ids = app::parse_token_list(a->tokens);
    if (!ids.ok()) return app::report_error(ids.error());
    const std::string path = a->model.empty() ? app::default_model_path() : a->model;
    auto loaded = Model::load(path);
    if (!loaded.ok()) return app::report_error(loaded.error());
    const Model& model = **loaded;

    SessionOptions so;
    so.n_ctx = static_cast<int64_t>(ids->size());
    so.n_threads = a->threads;
    Session session(model, so);
    if (auto st = session.decode(*ids, a->last ? LogitsMode::kLast : LogitsMode::kAll); !st.ok()) {
      return app::report_error(st.error());
    }
    const auto logits = session.logits();
    SafetensorsWriter writer;
    writer.set_metadata({{"format", "pt"}});
    writer.add_tensor("logits", SafetensorsDtype::kF32,
                      {static_cast<uint64_t>(session.logits_rows()), static_cast<uint64_t>(model.n_vocab())},
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(logits.data()), logits.size_bytes()));
    if (auto st = writer.write(a->output); !st.ok()) return app::report_error(st.error());
    std::printf("%s: logits [%lld, %lld]\n", a->output.c_str(), static_cast<long long>(session.logits_rows()),
                static_cast<long long>(model.n_vocab()));
    return 0;
  };
}
