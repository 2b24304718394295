// libFuzzer target: line splitter (whole vs chunked), lenient parser and validator on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/check.h"
#include "eval/metrics.h"
#include "protocol/line_splitter.h"
#include "protocol/parser.h"
#include "protocol/validator.h"

using namespace fabula;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const protocol::Manifest manifest = protocol::Manifest::default_manifest();

  // The splitter must give the same lines whatever the chunking; chunk sizes come from the input.
  auto whole = protocol::split_lines(text);
  protocol::LineSplitter splitter;
  std::vector<protocol::LogicalLine> chunked;
  size_t pos = 0, step = 1;
  while (pos < text.size()) {
    size_t n = 1 + (step * 7 + static_cast<unsigned char>(text[pos])) % 13;
    splitter.feed(text.substr(pos, n), chunked);
    pos += n;
    ++step;
  }
  if (auto last = splitter.finish()) chunked.push_back(*last);
  FABULA_CHECK(chunked.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    FABULA_CHECK(chunked[i].text == whole[i].text);
    FABULA_CHECK(chunked[i].line == whole[i].line);
  }

  for (const auto& line : whole) {
    auto parsed = protocol::parse_line(line.text, line.line);
    if (!parsed.ok()) continue;
    if (const auto* tool = std::get_if<protocol::Tool>(&parsed->line)) {
      for (const auto& arg : tool->args) {
        if (arg.kind == protocol::ValueKind::kJson) {
          std::vector<protocol::Repair> repairs;
          (void)protocol::repair_json_value(arg.value, line.line, repairs);
        }
      }
    }
  }

  protocol::BeatReport report = protocol::validate_beat(text, manifest);
  FABULA_CHECK(report.valid == report.errors.empty());
  for (const auto& e : report.errors) FABULA_CHECK(e.line >= 1);
  FABULA_CHECK(report.lines.size() == whole.size());
  (void)eval::words_of(text);
  return 0;
}
