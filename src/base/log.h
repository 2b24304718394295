// Minimal leveled logging to stderr (fmt-formatted). Level set once by the CLI.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <utility>

namespace fabula {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_write(LogLevel level, const std::string& text);

template <typename... Args>
void log_at(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  log_write(level, fmt::format(format, std::forward<Args>(args)...));
}

#define FABULA_LOG_DEBUG(...) ::fabula::log_at(::fabula::LogLevel::kDebug, __VA_ARGS__)
#define FABULA_LOG_INFO(...) ::fabula::log_at(::fabula::LogLevel::kInfo, __VA_ARGS__)
#define FABULA_LOG_WARN(...) ::fabula::log_at(::fabula::LogLevel::kWarn, __VA_ARGS__)
#define FABULA_LOG_ERROR(...) ::fabula::log_at(::fabula::LogLevel::kError, __VA_ARGS__)

}  // namespace fabula
