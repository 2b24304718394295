// Stop strings over streamed text (partial matches held back) and the end-of-generation id set.
#include "sample/stop.h"

#include <algorithm>

namespace fabula {

StopMatcher::StopMatcher(std::vector<std::string> stop_strings) {
  for (auto& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

const std::string& StopMatcher::matched() const {
  static const std::string kNone;
  return matched_ >= 0 ? stops_[size_t(matched_)] : kNone;
}

bool StopMatcher::feed(std::string_view text, std::string& out) {
  if (matched_ >= 0) return true;
  held_.append(text);
  if (stops_.empty()) {
    out += held_;
    held_.clear();
    return false;
  }
  // Earliest complete match wins (the longest stop string on a tie at the same position).
  size_t best_pos = std::string::npos;
  int best = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t p = held_.find(stops_[i]);
    if (p == std::string::npos) continue;
    if (p < best_pos || (p == best_pos && stops_[i].size() > stops_[size_t(best)].size())) {
      best_pos = p;
      best = int(i);
    }
  }
  if (best >= 0) {
    out.append(held_, 0, best_pos);
    held_.clear();
    matched_ = best;
    return true;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, held_.size());
    for (size_t len = max_len; len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  out.append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return false;
}

std::string StopMatcher::flush() {
  if (matched_ >= 0) return {};
  std::string s = std::move(held_);
  held_.clear();
  return s;
}

bool StopCondition::is_eog(int32_t id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

}  // namespace fabula
