// `fabula metrics`: the metrics of docs/PROTOCOL.md §4 over generated scenes (JSONL rows: scene, seed, beat, optional cast).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "command.h"
#include "story_args.h"
#include "eval/metrics.h"
#include "protocol/manifest.h"

namespace {

using namespace fabula;

}  // namespace

FABULA_COMMAND(metrics, "Compute protocol validity, slop density, TTR, trigram reuse, MATTR, MTLD, rep-3") {
  struct Options {
    std::string story, tells, file;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  cli.add_option("--story", opts->story, "Story id or path to story.json (cast, tools); default: built-in manifest");
  cli.add_option("--tells", opts->tells, "Slop-tell list; default: data/slop-tells-v1.txt of the repository");
  cli.add_flag("--json", opts->json, "Print one JSON object");
  cli.add_option("file", opts->file, "JSONL rows {\"scene\",\"seed\",\"beat\",\"cast\"?}");
  return [opts] {
    if (opts->file.empty()) {
      std::fprintf(stderr, "error: metrics needs a FILE.jsonl (rows {\"scene\",\"seed\",\"beat\",\"cast\"?})\n");
      return 2;
    }
    auto story_manifest = app::manifest_for_story_option(opts->story);
    if (!story_manifest) return 2;
    const protocol::Manifest& manifest = *story_manifest;
    auto tells = opts->tells.empty() ? eval::load_default_tells() : eval::TellList::load(opts->tells);
    if (!tells.ok()) {
      app::report_error(tells.error());
      return 2;
    }
    auto text = read_file_text(opts->file);
    if (!text.ok()) {
      app::report_error(text.error());
      return 2;
    }
    auto rows = eval::parse_scene_rows(*text, opts->file);
    if (!rows.ok()) {
      app::report_error(rows.error());
      return 2;
    }
    eval::MetricsReport r = eval::compute_metrics(*rows, manifest, *tells);
    if (opts->json) {
      nlohmann::json j = eval::to_json(r);
      j["tells_version"] = tells->version;
      std::printf("%s\n", dump_json(j).c_str());
      return 0;
    }
    std::printf("scenes %lld, prose words %lld, tells %s (%zu patterns)\n", static_cast<long long>(r.scenes),
                static_cast<long long>(r.words), tells->version.c_str(), tells->patterns.size());
    std::printf("%-28s %10s\n", "metric", "value");
    std::printf("%-28s %9.1f%%  (%lld/%lld)\n", "protocol validity", 100.0 * r.validity,
                static_cast<long long>(r.valid_beats), static_cast<long long>(r.scenes));
    std::printf("%-28s %10.2f  (%lld matches)\n", "slop-tell density /1k words", r.slop_density,
                static_cast<long long>(r.tell_matches));
    std::printf("%-28s %10.3f\n", "type-token ratio", r.ttr);
    std::printf("%-28s %10.4f\n", "cross-scene trigram reuse", r.trigram_reuse);
    std::printf("%-28s %10.3f\n", "MATTR-50", r.mattr50);
    std::printf("%-28s %10.3f\n", "MATTR-100", r.mattr100);
    std::printf("%-28s %10.1f\n", "MTLD", r.mtld);
    std::printf("%-28s %10.3f\n", "rep-3", r.rep3);
    std::printf("%-28s %10.3f\n", "POV-slip rate", r.pov_slip_rate);
    std::printf("%-28s %10.3f  (%lld offered)\n", "choice variety", r.choice_variety,
                static_cast<long long>(r.choices_offered));
    std::printf("%-28s %10.3f\n", "repair rate", r.repair_rate);
    return 0;
  };
}
