// Eval report: per-narrator metrics (eval/metrics.h) over beats.jsonl rows, as report.json, a model-card table and an SVG chart.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/harness.h"
#include "eval/metrics.h"

namespace fabula::eval {

struct NarratorSummary {
  std::string label;
  MetricsReport metrics;                     // over all of the narrator's beats
  std::map<std::string, MetricsReport> by_tag;  // over the beats of scenes carrying the tag
  int64_t beats = 0;
  int64_t tokens = 0;
  double ms = 0;     // summed generation wall time
  double tok_s = 0;  // tokens / summed seconds (prompt processing included)
  int64_t backtracks = 0;  // phrase-ban rewinds over all beats
  std::string kv_cache;    // "K/V" cache types of an in-process narrator ("q8_0/q8_0"); "" for a server
};

struct EvalReport {
  std::string tells_version;
  std::vector<NarratorSummary> narrators;
  std::vector<std::string> tags;  // sorted
};

// Groups rows by narrator (in `order` first, then by first appearance) and computes every metric with
// compute_metrics(), so the numbers are the ones `fabula metrics` prints for the same rows.
EvalReport build_report(const std::vector<BeatRow>& rows, const std::vector<std::string>& order,
                        const protocol::Manifest& manifest, const TellList& tells);

nlohmann::json report_to_json(const EvalReport& report);
// Markdown: the model card's table (| Metric | <narrator>... |, "Protocol validity ↑" = "100% (48/48)"), the extra
// metrics, and a per-tag breakdown when scenes carry tags.
std::string report_markdown(const EvalReport& report);
// A hand-written SVG: one small bar chart per metric, one bar per narrator.
std::string report_svg(const EvalReport& report);

// "100% (48/48)", "97.9% (47/48)".
std::string format_validity(int64_t valid, int64_t total);

}  // namespace fabula::eval
