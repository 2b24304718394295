// Eval report: metrics per narrator and per tag, rendered as JSON, a model-card Markdown table and a bar-chart SVG.
#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace fabula::eval {

using nlohmann::json;

namespace {

MetricsReport metrics_of(const std::vector<const BeatRow*>& rows, const protocol::Manifest& manifest,
                         const TellList& tells) {
  std::vector<SceneSample> samples;
  samples.reserve(rows.size());
  for (const auto* r : rows) samples.push_back({r->scene, static_cast<int64_t>(r->seed), r->beat, r->cast});
  return compute_metrics(samples, manifest, tells);
}

std::string pct(double share) {
  double p = 100.0 * share;
  return std::fabs(p - std::round(p)) < 1e-9 ? fmt::format("{:.0f}%", p) : fmt::format("{:.1f}%", p);
}

double stance(const MetricsReport& m, const char* name) {
  auto it = m.stance_share.find(name);
  return it == m.stance_share.end() ? 0.0 : it->second;
}

// One table row: label (with its arrow) and a cell per narrator.
struct Row {
  std::string metric;
  std::vector<std::string> cells;
};

std::string table(const std::vector<std::string>& columns, const std::vector<Row>& rows) {
  std::string out = "| Metric |";
  for (const auto& c : columns) out += " " + c + " |";
  out += "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& r : rows) {
    out += "| " + r.metric + " |";
    for (const auto& c : r.cells) out += " " + c + " |";
    out += "\n";
  }
  return out;
}

// The card's four (validity, slop, TTR, trigram reuse) for one metrics report per column.
std::vector<Row> card_rows(const std::vector<const MetricsReport*>& ms) {
  std::vector<Row> rows = {{"Protocol validity ↑", {}},
                           {"Slop-tell density /1k words ↓", {}},
                           {"Type-token ratio ↑", {}},
                           {"Cross-scene trigram reuse ↓", {}}};
  for (const auto* m : ms) {
    rows[0].cells.push_back(format_validity(m->valid_beats, m->scenes));
    rows[1].cells.push_back(fmt::format("{:.2f}", m->slop_density));
    rows[2].cells.push_back(fmt::format("{:.2f}", m->ttr));
    rows[3].cells.push_back(fmt::format("{:.3f}", m->trigram_reuse));
  }
  return rows;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string format_validity(int64_t valid, int64_t total) {
  double share = total > 0 ? static_cast<double>(valid) / static_cast<double>(total) : 0.0;
  return fmt::format("{} ({}/{})", pct(share), valid, total);
}

EvalReport build_report(const std::vector<BeatRow>& rows, const std::vector<std::string>& order,
                        const protocol::Manifest& manifest, const TellList& tells) {
  EvalReport report;
  report.tells_version = tells.version;
  std::vector<std::string> labels;
  for (const auto& l : order) {
    if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
  }
  for (const auto& r : rows) {
    if (std::find(labels.begin(), labels.end(), r.narrator) == labels.end()) labels.push_back(r.narrator);
  }
  std::set<std::string> tags;
  for (const auto& r : rows) tags.insert(r.tags.begin(), r.tags.end());
  report.tags.assign(tags.begin(), tags.end());

  for (const auto& label : labels) {
    NarratorSummary s;
    s.label = label;
    std::vector<const BeatRow*> mine;
    for (const auto& r : rows) {
      if (r.narrator != label) continue;
      mine.push_back(&r);
      s.tokens += r.tokens;
      s.ms += r.ms;
      s.backtracks += r.backtracks;
    }
    s.beats = static_cast<int64_t>(mine.size());
    s.tok_s = s.ms > 0 ? 1000.0 * static_cast<double>(s.tokens) / s.ms : 0.0;
    s.metrics = metrics_of(mine, manifest, tells);
    for (const auto& tag : report.tags) {
      std::vector<const BeatRow*> tagged;
      for (const auto* r : mine) {
        if (std::find(r->tags.begin(), r->tags.end(), tag) != r->tags.end()) tagged.push_back(r);
      }
      if (!tagged.empty()) s.by_tag[tag] = metrics_of(tagged, manifest, tells);
    }
    report.narrators.push_back(std::move(s));
  }
  return report;
}

json report_to_json(const EvalReport& report) {
  json narrators = json::array();
  for (const auto& s : report.narrators) {
    json by_tag = json::object();
    for (const auto& [tag, m] : s.by_tag) by_tag[tag] = to_json(m);
    narrators.push_back({{"label", s.label},
                         {"beats", s.beats},
                         {"tokens", s.tokens},
                         {"ms", s.ms},
                         {"tok_s", s.tok_s},
                         {"backtracks", s.backtracks},
                         {"kv_cache", s.kv_cache},
                         {"metrics", to_json(s.metrics)},
                         {"by_tag", by_tag}});
  }
  return json{{"tells_version", report.tells_version}, {"tags", report.tags}, {"narrators", narrators}};
}

std::string report_markdown(const EvalReport& report) {
  std::vector<std::string> columns;
  std::vector<const MetricsReport*> all;
  for (const auto& s : report.narrators) {
    columns.push_back(s.label);
    all.push_back(&s.metrics);
  }
  std::vector<Row> rows = card_rows(all);
  Row mattr50{"MATTR-50 ↑", {}}, mattr100{"MATTR-100 ↑", {}}, mtld{"MTLD ↑", {}}, rep3{"Rep-3 ↓", {}};
  Row variety{"Choice variety ↑", {}}, stances{"Choices: open up / deflect / stay silent", {}};
  Row pov{"POV-slip rate (first person) ↓", {}}, repair{"Repaired by the lenient parser ↓", {}};
  Row speed{"Tokens/s ↑", {}}, backtracks{"Phrase-ban backtracks", {}}, kv{"KV cache (K/V)", {}};
  bool any_backtracks = false, any_kv = false;
  for (const auto& s : report.narrators) {
    backtracks.cells.push_back(std::to_string(s.backtracks));
    any_backtracks = any_backtracks || s.backtracks > 0;
    kv.cells.push_back(s.kv_cache.empty() ? "server" : s.kv_cache);
    any_kv = any_kv || !s.kv_cache.empty();
    const MetricsReport& m = s.metrics;
    mattr50.cells.push_back(fmt::format("{:.3f}", m.mattr50));
    mattr100.cells.push_back(fmt::format("{:.3f}", m.mattr100));
    mtld.cells.push_back(fmt::format("{:.1f}", m.mtld));
    rep3.cells.push_back(fmt::format("{:.3f}", m.rep3));
    variety.cells.push_back(fmt::format("{:.2f} ({} offered)", m.choice_variety, m.choices_offered));
    stances.cells.push_back(fmt::format("{} / {} / {}", pct(stance(m, "open_up")), pct(stance(m, "deflect")),
                                        pct(stance(m, "stay_silent"))));
    pov.cells.push_back(pct(m.pov_slip_rate));
    repair.cells.push_back(pct(m.repair_rate));
    speed.cells.push_back(fmt::format("{:.1f}", s.tok_s));
  }
  for (auto* r : {&mattr50, &mattr100, &mtld, &rep3, &variety, &stances, &pov, &repair, &speed}) rows.push_back(*r);
  if (any_backtracks) rows.push_back(backtracks);  // only runs with phrase bans have any
  if (any_kv) rows.push_back(kv);

  std::string out = "# Eval report\n\n";
  out += table(columns, rows);
  out += fmt::format("\nTell list: {}. Beats per narrator:", report.tells_version.empty() ? "(unversioned)" : report.tells_version);
  for (const auto& s : report.narrators) out += fmt::format(" {} {} ({} tokens)", s.label, s.beats, s.tokens);
  out += ".\n";

  bool any_errors = false;
  for (const auto& s : report.narrators) any_errors |= !s.metrics.error_counts.empty();
  if (any_errors) {
    out += "\n## Validator errors\n\n";
    for (const auto& s : report.narrators) {
      if (s.metrics.error_counts.empty()) continue;
      out += "- " + s.label + ":";
      for (const auto& [code, n] : s.metrics.error_counts) out += fmt::format(" {} ×{}", code, n);
      out += "\n";
    }
  }

  if (!report.tags.empty()) {
    out += "\n## By tag\n";
    MetricsReport empty;
    for (const auto& tag : report.tags) {
      std::vector<const MetricsReport*> ms;
      for (const auto& s : report.narrators) {
        auto it = s.by_tag.find(tag);
        ms.push_back(it == s.by_tag.end() ? &empty : &it->second);
      }
      out += "\n### " + tag + "\n\n" + table(columns, card_rows(ms));
    }
  }
  return out;
}

std::string report_svg(const EvalReport& report) {
  struct Metric {
    const char* name;
    double (*get)(const NarratorSummary&);
    bool share;  // 0..1: bars scaled to 1, else to the largest value
  };
  static const Metric metrics[] = {
      {"validity ↑", [](const NarratorSummary& s) { return s.metrics.validity; }, true},
      {"slop /1k words ↓", [](const NarratorSummary& s) { return s.metrics.slop_density; }, false},
      {"type-token ratio ↑", [](const NarratorSummary& s) { return s.metrics.ttr; }, true},
      {"trigram reuse ↓", [](const NarratorSummary& s) { return s.metrics.trigram_reuse; }, false},
      {"MATTR-50 ↑", [](const NarratorSummary& s) { return s.metrics.mattr50; }, true},
      {"MTLD ↑", [](const NarratorSummary& s) { return s.metrics.mtld; }, false},
      {"rep-3 ↓", [](const NarratorSummary& s) { return s.metrics.rep3; }, true},
      {"choice variety ↑", [](const NarratorSummary& s) { return s.metrics.choice_variety; }, true},
      {"POV slip ↓", [](const NarratorSummary& s) { return s.metrics.pov_slip_rate; }, true},
      {"repaired ↓", [](const NarratorSummary& s) { return s.metrics.repair_rate; }, true},
      {"tokens/s ↑", [](const NarratorSummary& s) { return s.tok_s; }, false},
  };
  static const char* colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"};
  const int n = static_cast<int>(report.narrators.size());
  const int cols = 3, panel_w = 260, bar_h = 18, gap = 6, title_h = 24, pad = 12;
  const int panel_h = title_h + std::max(n, 1) * (bar_h + gap) + pad;
  const int count = static_cast<int>(std::size(metrics));
  const int rows = (count + cols - 1) / cols;
  const int legend_h = 28;
  const int width = cols * panel_w + pad, height = legend_h + rows * panel_h + pad;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  for (int i = 0; i < n; ++i) {
    int x = pad + i * 140;
    out += fmt::format("<rect x=\"{}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{}\"/>"
                       "<text x=\"{}\" y=\"18\">{}</text>\n",
                       x, colors[i % std::size(colors)], x + 16, xml_escape(report.narrators[i].label));
  }
  for (int k = 0; k < count; ++k) {
    const Metric& m = metrics[k];
    int px = pad + (k % cols) * panel_w, py = legend_h + (k / cols) * panel_h;
    out += fmt::format("<g transform=\"translate({},{})\">\n<text x=\"0\" y=\"14\" font-weight=\"bold\">{}</text>\n",
                       px, py, xml_escape(m.name));
    double top = m.share ? 1.0 : 0.0;
    for (const auto& s : report.narrators) top = std::max(top, m.get(s));
    const int max_w = panel_w - 80;
    for (int i = 0; i < n; ++i) {
      double v = m.get(report.narrators[i]);
      int w = top > 0 ? static_cast<int>(std::lround(max_w * std::clamp(v / top, 0.0, 1.0))) : 0;
      int y = title_h + i * (bar_h + gap);
      out += fmt::format("<rect x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>"
                         "<text x=\"{}\" y=\"{}\">{}</text>\n",
                         y, w, bar_h, colors[i % std::size(colors)], w + 4, y + 13,
                         m.share ? fmt::format("{:.3f}", v) : fmt::format("{:.2f}", v));
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace fabula::eval
