// ScriptedNarrator: fixture replay in small chunks, so the engine sees text arrive the way a model streams it.
#include "engine/scripted_narrator.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_view.h"
#include "base/lines.h"

namespace fabula::engine {

Result<std::unique_ptr<ScriptedNarrator>> ScriptedNarrator::load(const std::string& path, ScriptedOptions options) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  std::vector<std::string> beats;
  std::vector<int> delays;
  FABULA_TRY(for_each_line(text, [&](std::string_view line, int line_no, bool) -> Status {
    if (line.starts_with("//")) return ok_status();
    const std::string at = fmt::format("{}: line {}", path, line_no);
    FABULA_ASSIGN(nlohmann::json doc, parse_json(line, at));
    JsonView j(doc, at);
    FABULA_ASSIGN(std::string beat, j.string("beat"));
    FABULA_ASSIGN(int64_t delay, j.integer_or("delay_ms", -1, -1, 600000));
    beats.push_back(std::move(beat));
    delays.push_back(static_cast<int>(delay));
    return ok_status();
  }));
  if (beats.empty()) return make_error(ErrorCode::kParse, "{}: no beats", path);
  auto n = std::make_unique<ScriptedNarrator>(std::move(beats), options, path);
  n->delays_ = std::move(delays);
  return n;
}

ScriptedNarrator::ScriptedNarrator(std::vector<std::string> beats, ScriptedOptions options, std::string source)
    : beats_(std::move(beats)), options_(options), source_(std::move(source)) {
  delays_.assign(beats_.size(), -1);
  if (options_.chunk_bytes == 0) options_.chunk_bytes = 1;
}

Result<NarratorResult> ScriptedNarrator::write(const NarratorRequest& request, const TextCallback& on_text) {
  std::string beat;
  int delay = options_.chunk_delay_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    if (next_ >= beats_.size()) {
      if (!options_.loop)
        return make_error(ErrorCode::kOutOfRange, "scripted narrator {}: all {} beats used", source_, beats_.size());
      next_ = 0;
    }
    if (delays_[next_] >= 0) delay = delays_[next_];
    beat = beats_[next_++];
  }
  NarratorResult result;
  for (size_t pos = 0; pos < beat.size();) {
    // Never split a UTF-8 sequence: extend the chunk over continuation bytes.
    size_t end = std::min(beat.size(), pos + options_.chunk_bytes);
    while (end < beat.size() && (static_cast<unsigned char>(beat[end]) & 0xC0) == 0x80) ++end;
    std::string_view piece(beat.data() + pos, end - pos);
    pos = end;
    if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    result.text += piece;
    ++result.tokens;
    if (!on_text(piece)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      return result;
    }
  }
  result.stop_reason = "end";
  return result;
}

std::string ScriptedNarrator::describe() const { return "scripted: " + source_; }

size_t ScriptedNarrator::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

}  // namespace fabula::engine
