// `fabula eval`: every narrator × seed × scene → DIR/beats.jsonl (resumable), report.json, report.md, chart.svg.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/narrators.h"
#include "backend/remote_narrator.h"
#include "base/ascii.h"
#include "base/file.h"
#include "command.h"
#include "model_args.h"
#include "decoding_args.h"
#include "engine/story.h"
#include "eval/harness.h"
#include "eval/report.h"
#include "format/gguf.h"

namespace {

using namespace fabula;

struct CommonOptions {
  std::string seeds = "1-6";
  float temp = 1.1f;
  float top_p = 0.95f;
  int top_k = 0;
  float min_p = 0.0f;
  int n_predict = 768;
  std::string profile;  // "" = per narrator: demo for the demo model, vn26b otherwise
  app::DecodingArgs decoding;
};

// "PATH@temp=0.8,seeds=1-3,7,label=x" -> target and key/value pairs. A part without '=' continues the previous
// value, so seed lists keep their commas.
Result<std::pair<std::string, std::map<std::string, std::string>>> split_spec(const std::string& spec) {
  std::map<std::string, std::string> kv;
  size_t at = spec.rfind('@');
  if (at == std::string::npos || spec.find('=', at) == std::string::npos) return std::make_pair(spec, kv);
  std::string target = spec.substr(0, at), rest = spec.substr(at + 1), last;
  for (const std::string_view part : split(rest, ',')) {
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      if (last.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: \"{}\" is not key=value", spec, part);
      kv[last] += "," + std::string(part);
      continue;
    }
    last = part.substr(0, eq);
    kv[last] = part.substr(eq + 1);
  }
  return std::make_pair(target, kv);
}

Result<double> to_number(const std::string& key, const std::string& v) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size()) return make_error(ErrorCode::kInvalidArgument, "{}={}: not a number", key, v);
  return d;
}

// Applies key=value overrides to a narrator.
Status apply_overrides(eval::EvalNarrator& n, const std::map<std::string, std::string>& kv) {
  for (const auto& [k, v] : kv) {
    if (k == "label") {
      n.label = v;
    } else if (k == "profile") {
      n.profile = v;
    } else if (k == "seeds") {
      FABULA_ASSIGN(n.seeds, eval::parse_seed_list(v));
    } else if (k == "temp" || k == "temperature") {
      FABULA_ASSIGN(double d, to_number(k, v));
      n.sampling.temperature = static_cast<float>(d);
    } else if (k == "top_p" || k == "top-p") {
      FABULA_ASSIGN(double d, to_number(k, v));
      n.sampling.top_p = static_cast<float>(d);
    } else if (k == "top_k" || k == "top-k") {
      FABULA_ASSIGN(double d, to_number(k, v));
      n.sampling.top_k = static_cast<int>(d);
    } else if (k == "min_p" || k == "min-p") {
      FABULA_ASSIGN(double d, to_number(k, v));
      n.sampling.min_p = static_cast<float>(d);
    } else if (k == "n_predict" || k == "n-predict") {
      FABULA_ASSIGN(double d, to_number(k, v));
      n.sampling.max_tokens = static_cast<int>(d);
    } else {
      return make_error(ErrorCode::kInvalidArgument,
                        "unknown narrator option \"{}\" (label, profile, seeds, temp, top_p, top_k, min_p, n_predict)", k);
    }
  }
  return ok_status();
}


}  // namespace

FABULA_COMMAND(eval, "Evaluate narrators: beats for every narrator x seed x scene, metrics report, chart") {
  struct Options {
    std::vector<std::string> models, servers;
    std::string scenes, out, tells;
    CommonOptions common;
    KvCacheTypes cache_type;
  };
  auto o = std::make_shared<Options>();
  cli.add_option("--model", o->models, "GGUF narrator, repeatable; PATH[@label=x,temp=0.8,seeds=1-3,profile=demo,...]");
  cli.add_option("--server", o->servers,
                 "llama-server URL, repeatable: all --server URLs share one narrator's work; URL[@label=x,...]");
  cli.add_option("--scenes", o->scenes, "Scenes JSONL (id, story, place, time, cast, player_choice, tags?)")->required();
  cli.add_option("--out", o->out, "Output directory (beats.jsonl, report.json, report.md, chart.svg)")->required();
  cli.add_option("--seeds", o->common.seeds, "Seeds: 1-6, 42, 1-3,7")->capture_default_str();
  cli.add_option("--temp", o->common.temp, "Temperature")->capture_default_str();
  cli.add_option("--top-p", o->common.top_p, "Top-p")->capture_default_str();
  cli.add_option("--top-k", o->common.top_k, "Top-k (0: off)")->capture_default_str();
  cli.add_option("--min-p", o->common.min_p, "Min-p (0: off)")->capture_default_str();
  cli.add_option("--n-predict", o->common.n_predict, "Max tokens per beat")->capture_default_str();
  cli.add_option("--profile", o->common.profile, "Prompt profile for all narrators (default: demo for the demo model, else vn26b)");
  cli.add_option("--tells", o->tells, "Slop-tell list (default: data/slop-tells-v1.txt)");
  app::add_decoding_flags(cli, o->common.decoding);
  app::add_cache_type_flags(cli, o->cache_type);
  return [o] {
    if (o->models.empty() && o->servers.empty()) {
      std::fprintf(stderr, "error: eval needs --model M (repeatable) or --server URL\n");
      return 2;
    }
    auto seeds = eval::parse_seed_list(o->common.seeds);
    if (!seeds) return app::report_error(seeds.error());
    auto scenes_text = read_file_text(o->scenes);
    if (!scenes_text) return app::report_error(scenes_text.error());
    auto scenes = eval::parse_eval_scenes(*scenes_text, o->scenes);
    if (!scenes) return app::report_error(scenes.error());
    std::map<std::string, engine::Story> stories;
    for (const auto& s : *scenes) {
      if (stories.count(s.story)) continue;
      auto story = engine::load_story(s.story);
      if (!story) return app::report_error(story.error());
      stories.emplace(s.story, std::move(*story));
    }
    if (stories.size() > 1) {
      std::fprintf(stderr, "warning: scenes use %zu stories; the report judges all beats against story \"%s\"\n",
                   stories.size(), scenes->front().story.c_str());
    }
    if (o->common.decoding.any() && !o->servers.empty()) {
      std::fprintf(stderr, "error: --constrained / --ban-tells / --ban-list need the in-process model (--model), not --server\n");
      return 2;
    }
    auto bans = eval::load_phrase_bans(o->common.decoding.ban_list, o->common.decoding.ban_tells);
    if (!bans) return app::report_error(bans.error());
    auto tells = o->tells.empty() ? eval::load_default_tells() : eval::TellList::load(o->tells);
    if (!tells) return app::report_error(tells.error());

    auto base = [&](std::string label, std::string profile) {
      eval::EvalNarrator n;
      n.label = std::move(label);
      n.profile = o->common.profile.empty() ? std::move(profile) : o->common.profile;
      n.seeds = *seeds;
      n.sampling.temperature = o->common.temp;
      n.sampling.top_p = o->common.top_p;
      n.sampling.top_k = o->common.top_k;
      n.sampling.min_p = o->common.min_p;
      n.sampling.max_tokens = o->common.n_predict;
      n.sampling.constrained = o->common.decoding.constrained;
      n.sampling.banned_phrases = *bans;
      return n;
    };
    std::vector<std::unique_ptr<engine::Narrator>> owned;
    std::vector<eval::EvalNarrator> narrators;
    std::set<std::string> local_labels;
    for (const auto& spec : o->models) {
      auto split = split_spec(spec);
      if (!split) return app::report_error(split.error());
      // A path or a pulled model (vn26b, owner/repo:QUANT); the model names its own profile.
      auto choice = app::resolve_model_arg(split->first);
      if (!choice) return app::report_error(choice.error());
      const std::string& path = choice->path;
      eval::EvalNarrator n = base(std::filesystem::path(path).stem().string(), app::narrator_profile_for(*choice));
      if (auto st = apply_overrides(n, split->second); !st) return app::report_error(st.error());
      auto made = backend::make_narrator({path, "", {}, o->cache_type});
      if (!made) return app::report_error(made.error());
      owned.push_back(std::move(*made));
      n.workers.push_back(owned.back().get());
      local_labels.insert(n.label);
      narrators.push_back(std::move(n));
    }
    if (!o->servers.empty()) {
      eval::EvalNarrator n = base("server", "vn26b");
      for (const auto& spec : o->servers) {
        auto split = split_spec(spec);
        if (!split) return app::report_error(split.error());
        if (auto st = apply_overrides(n, split->second); !st) return app::report_error(st.error());
        owned.push_back(std::make_unique<backend::RemoteNarrator>(split->first));
        n.workers.push_back(owned.back().get());
      }
      narrators.push_back(std::move(n));
    }

    std::error_code ec;
    std::filesystem::create_directories(o->out, ec);
    if (ec) return app::report_error(make_error(ErrorCode::kIo, "{}: cannot create directory: {}", o->out, ec.message()));
    std::string dir = o->out;
    eval::HarnessOptions ho;
    ho.beats_path = dir + "/beats.jsonl";
    for (const auto& n : narrators) {
      std::fprintf(stderr, "narrator %s: profile %s, temp %.2f, top_p %.2f, %zu seeds, %zu backend(s): %s%s%s\n",
                   n.label.c_str(), n.profile.c_str(), n.sampling.temperature, n.sampling.top_p, n.seeds.size(),
                   n.workers.size(), n.workers.front()->describe().c_str(), n.sampling.constrained ? ", constrained" : "",
                   n.sampling.banned_phrases ? ", phrase bans" : "");
    }
    auto stats = eval::run_harness(stories, *scenes, narrators, ho);
    if (!stats) return app::report_error(stats.error());
    std::fprintf(stderr, "beats: %lld planned, %lld already done, %lld generated, %lld failed\n",
                 static_cast<long long>(stats->planned), static_cast<long long>(stats->skipped),
                 static_cast<long long>(stats->generated), static_cast<long long>(stats->failed));
    for (const auto& f : stats->failures) std::fprintf(stderr, "  failed: %s\n", f.c_str());

    auto rows = eval::read_beat_rows(ho.beats_path);
    if (!rows) return app::report_error(rows.error());
    std::vector<std::string> order;
    for (const auto& n : narrators) order.push_back(n.label);
    const auto& manifest = stories.at(scenes->front().story).manifest;
    eval::EvalReport report = eval::build_report(*rows, order, manifest, *tells);
    for (auto& s : report.narrators) {  // the KV cache of the in-process narrators (a server's is its own)
      if (local_labels.count(s.label))
        s.kv_cache = fmt::format("{}/{}", kv_type_name(o->cache_type.k), kv_type_name(o->cache_type.v));
    }
    std::string md = eval::report_markdown(report);
    auto json_text = eval::report_to_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    for (auto [name, text] : {std::pair<const char*, const std::string*>{"report.json", &json_text},
                              {"report.md", &md}}) {
      if (auto st = write_file_atomic(dir + "/" + name, *text); !st) return app::report_error(st.error());
    }
    if (auto st = write_file_atomic(dir + "/chart.svg", eval::report_svg(report)); !st) return app::report_error(st.error());
    std::printf("%s", md.c_str());
    std::fprintf(stderr, "wrote %s/{beats.jsonl,report.json,report.md,chart.svg}\n", dir.c_str());
    return stats->failed == 0 ? 0 : 1;
  };
}
