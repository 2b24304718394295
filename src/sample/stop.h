// Stop conditions for streamed generation: end-of-generation ids and stop strings matched across token boundaries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fabula {

// Streams text through; holds back any tail that could be the start of a stop string. On a match the text
// before it is released, the stop string and everything after are dropped, and stopped() turns true.
class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stop_strings);

  // Appends the text that is safe to emit to `out`; returns true once a stop string has matched.
  bool feed(std::string_view text, std::string& out);
  std::string feed(std::string_view text) {
    std::string s;
    feed(text, s);
    return s;
  }
  // End of stream (no stop matched): releases the held-back tail.
  std::string flush();

  bool stopped() const { return matched_ >= 0; }
  // The stop string that matched ("" if none).
  const std::string& matched() const;
  const std::string& held() const { return held_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  int matched_ = -1;
};

// EOG ids plus stop strings: one object the generation loop consults per token.
class StopCondition {
 public:
  StopCondition() = default;
  StopCondition(std::vector<int32_t> eog_ids, std::vector<std::string> stop_strings)
      : eog_(std::move(eog_ids)), matcher_(std::move(stop_strings)) {}

  bool is_eog(int32_t id) const;
  StopMatcher& text() { return matcher_; }
  const std::vector<int32_t>& eog_ids() const { return eog_; }

 private:
  std::vector<int32_t> eog_;
  StopMatcher matcher_;
};

}  // namespace fabula
