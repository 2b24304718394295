// Logging sink: one line per call, to stderr, with a level prefix.
#include "base/log.h"

#include <atomic>
#include <mutex>

namespace fabula {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_write_mutex;  // keeps lines from interleaving across threads
}  // namespace

LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

void log_write(LogLevel level, const std::string& text) {
  static const char* kPrefix[] = {"debug: ", "", "warning: ", "error: ", ""};
  std::lock_guard lock(g_write_mutex);
  std::fprintf(stderr, "%s%s\n", kPrefix[static_cast<int>(level)], text.c_str());
}

}  // namespace fabula
