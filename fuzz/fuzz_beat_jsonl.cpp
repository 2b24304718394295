// libFuzzer target: the beat JSONL readers (metrics rows, eval beat rows, eval scene files). Any bytes read or
// fail with an error naming the line (never a throw or crash); a beat row that reads writes back to JSON that
// reads to the same row.
// fuzz-link: fabula_eval
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/check.h"
#include "base/json_view.h"
#include "eval/harness.h"
#include "eval/metrics.h"

using namespace fabula;

namespace {

bool same_row(const eval::BeatRow& a, const eval::BeatRow& b) {
  return a.narrator == b.narrator && a.scene == b.scene && a.seed == b.seed && a.id == b.id &&
         a.profile == b.profile && a.cast == b.cast && a.tags == b.tags && a.valid == b.valid &&
         a.errors == b.errors && a.repaired == b.repaired && a.tokens == b.tokens && a.ms == b.ms &&
         a.tok_s == b.tok_s && a.stop_reason == b.stop_reason && a.beat == b.beat && a.backtracks == b.backtracks;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rows = eval::parse_scene_rows(text, "rows.jsonl");
  if (!rows) FABULA_CHECK(rows.error().message.rfind("rows.jsonl:", 0) == 0);
  auto scenes = eval::parse_eval_scenes(text, "scenes.jsonl");
  if (!scenes) FABULA_CHECK(scenes.error().message.rfind("scenes.jsonl", 0) == 0);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = parse_json(text.substr(pos, end - pos), "line");
    pos = end + 1;
    if (!line) continue;
    auto row = eval::beat_row_from_json(*line, "line");
    if (!row) continue;
    auto back = eval::beat_row_from_json(*parse_json(dump_json(eval::beat_row_json(*row)), "again"), "again");
    FABULA_CHECK(back.ok() && same_row(*back, *row));
  }
  return 0;
}
