// ProgressBar: a one-line bar with rate and ETA on stderr; silent when stderr is not a terminal
// unless forced (so logs and tests stay clean).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fabula {

class ProgressBar {
 public:
  // total: units of work (bytes, tensors, beats); unit: printed after the rate ("B", "beats").
  ProgressBar(std::string label, uint64_t total, std::string unit = "");
  ~ProgressBar();

  void advance(uint64_t units = 1);
  void set(uint64_t done);
  void finish();

  static std::string format_eta(double seconds);
  static std::string format_bytes(double bytes);  // 812 B, 3.4 kB, 51.2 MB, 16.80 GB

 private:
  void draw(bool final);

  std::string label_;
  std::string unit_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace fabula
