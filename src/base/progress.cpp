// Terminal progress bar drawing.
#include "base/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace fabula {

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  enabled_ = ::isatty(STDERR_FILENO) != 0 || std::getenv("FABULA_PROGRESS") != nullptr;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(uint64_t units) { set(done_ + units); }

void ProgressBar::set(uint64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}


void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

std::string ProgressBar::format_eta(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

std::string ProgressBar::format_bytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  if (bytes >= 1e3) return fmt::format("{:.1f} kB", bytes / 1e3);
  return fmt::format("{:.0f} B", bytes);
}

void ProgressBar::draw(bool final) {
  if (!enabled_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (fraction > 1.0) fraction = 1.0;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : -1;
  if (unit_ == "B") {  // bytes read better as MB and MB/s (downloads, model writes)
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %s/%s %s/s %s %s   ", label_.c_str(), bar.c_str(), fraction * 100,
                 format_bytes(static_cast<double>(done_)).c_str(), format_bytes(static_cast<double>(total_)).c_str(),
                 format_bytes(rate).c_str(), final ? "in" : "ETA", format_eta(final ? elapsed : eta).c_str());
    if (final) std::fputc('\n', stderr);
    std::fflush(stderr);
    return;
  }
  std::fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu %s%s %s %s", label_.c_str(), bar.c_str(), fraction * 100,
               static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_),
               fmt::format("{:.1f}", rate).c_str(), unit_.empty() ? "/s" : (" " + unit_ + "/s").c_str(),
               final ? "in" : "ETA", format_eta(final ? elapsed : eta).c_str());
  if (final) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace fabula
