// `fabula dataset export INPUT... -o DIR`: training data from saves (SQLite) and eval runs (beats.jsonl).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/loaded_model.h"
#include "command.h"
#include "dataset/export.h"
#include "model_args.h"

namespace {

using namespace fabula;

// An eval run: its beats.jsonl, or the run's directory holding one. Anything else is a save store.
std::optional<std::string> eval_beats_path(const std::string& input) {
  namespace fs = std::filesystem;
  if (input.ends_with(".jsonl")) return input;
  if (fs::is_directory(input) && fs::exists(fs::path(input) / "beats.jsonl")) return (fs::path(input) / "beats.jsonl").string();
  return std::nullopt;
}

}  // namespace

FABULA_COMMAND(dataset, "Export played beats (saves, eval runs) as filtered training data split by scene") {
  struct Args {
    std::vector<std::string> inputs;
    std::string out, format = "both", model, scenes, rerender_profile, tells;
    bool kept_only = false;
    int64_t min_words = 8;
    double max_slop = -1, near_dup = 0.8, held_out = 0.2;
    uint64_t split_seed = 1;
  };
  auto a = std::make_shared<Args>();
  CLI::App* ex = cli.add_subcommand("export", "One row per narrator turn: the exact messages, the beat, the scene, "
                                               "seed, model and sampling, kept or regenerated");
  ex->add_option("inputs", a->inputs, "Save files (SQLite, as `fabula play --save` writes) and eval runs "
                                      "(beats.jsonl or its directory)")->required();
  ex->add_option("-o,--out", a->out, "Output directory: train/heldout .jsonl and .text.jsonl, heldout-scenes.jsonl, "
                                     "rejected.jsonl, summary.json")->required();
  ex->add_option("--format", a->format, "chat (messages JSONL for HF datasets / TRL), text (pre-rendered through "
                                        "the model's chat template) or both")
      ->check(CLI::IsMember({"chat", "text", "both"}))->capture_default_str();
  ex->add_option("--model", a->model, "Model whose chat template renders the text format (default: the demo "
                                      "narrator)");
  ex->add_flag("--kept-only", a->kept_only, "Only beats the player kept (drop versions replaced by regenerate)");
  ex->add_option("--min-words", a->min_words, "Fewest prose words a beat may have")->capture_default_str();
  ex->add_option("--max-slop", a->max_slop, "Most slop tells per 1,000 prose words (default: no limit)");
  ex->add_option("--tells", a->tells, "Slop-tell list (default: data/slop-tells-v1.txt)");
  ex->add_option("--near-dup", a->near_dup, "Jaccard similarity of prose trigram shingles at which a beat is a "
                                            "near duplicate of an earlier one (above 1: off)")->capture_default_str();
  ex->add_option("--held-out", a->held_out, "Share of scenes (story/place/time) held out")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  ex->add_option("--split-seed", a->split_seed, "Seed of the scene split")->capture_default_str();
  ex->add_option("--scenes", a->scenes, "The eval scenes file an eval run used (its prompts are rebuilt from it)");
  ex->add_option("--rerender-profile", a->rerender_profile, "Rebuild the prompts of beats saved before prompts were "
                                                           "recorded, with this story narrator profile (demo, vn26b)");
  cli.require_subcommand(1);
  return [=]() -> int {
    dataset::StoryCache stories;
    std::vector<dataset::TurnRow> turns;
    for (const auto& input : a->inputs) {
      dataset::SourceReport report;
      auto beats = eval_beats_path(input);
      auto rows = beats ? dataset::read_eval_turns(*beats, a->scenes, stories.lookup(), report)
                        : dataset::read_save_turns(input, stories.lookup(), {a->rerender_profile}, report);
      if (!rows.ok()) return app::report_error(rows.error());
      std::printf("%s: %s, %lld rows", input.c_str(), report.kind.c_str(), static_cast<long long>(report.rows));
      if (report.kind == "save")
        std::printf(", %lld sessions, save schema %d", static_cast<long long>(report.sessions), report.schema_version);
      std::printf("\n");
      for (const auto& note : report.notes) std::printf("  note: %s\n", note.c_str());
      for (auto& r : *rows) turns.push_back(std::move(r));
    }
    auto tells = a->tells.empty() ? eval::load_default_tells() : eval::TellList::load(a->tells);
    if (!tells.ok()) return app::report_error(tells.error());

    dataset::ExportOptions options;
    options.out_dir = a->out;
    options.filters.kept_only = a->kept_only;
    options.filters.min_words = a->min_words;
    if (a->max_slop >= 0) options.filters.max_slop = a->max_slop;
    options.filters.near_duplicate = a->near_dup;
    options.held_out = a->held_out;
    options.split_seed = a->split_seed;
    options.chat = a->format != "text";
    std::optional<backend::LoadedModel> model;
    if (a->format != "chat") {
      auto choice = app::resolve_model_arg(a->model);
      if (!choice.ok()) return app::report_error(choice.error());
      auto loaded = backend::load_model(choice->path);
      if (!loaded.ok()) return app::report_error(loaded.error());
      if (!loaded->chat_template_error.empty())
        return app::report_error(make_error(ErrorCode::kUnsupported, "{}", loaded->chat_template_error),
                                 "use --format chat, or a model whose chat template fabula renders");
      model = std::move(*loaded);
      std::printf("text rows: rendered through the chat template of %s\n", choice->path.c_str());
      options.text = dataset::TextFormat{
          [&model](std::span<const ChatMessage> messages) { return model->render_chat(messages); },
          std::string(model->chat_template.end_of_turn())};
    }
    auto summary = dataset::export_dataset(std::move(turns), stories.lookup(), *tells, options);
    if (!summary.ok()) return app::report_error(summary.error());
    std::printf("\n%s\nwritten to %s (held-out scenes for `fabula eval --scenes %s/heldout-scenes.jsonl`)\n",
                dataset::summary_table(*summary).c_str(), a->out.c_str(), a->out.c_str());
    return 0;
  };
}
