// The environment variables the model benchmarks take their settings from (FABULA_MODEL, FABULA_THREADS, ...): each
// program is a Google Benchmark binary whose own flags are Google Benchmark's.
#pragma once

#include <cstdlib>
#include <string>

namespace fabula {

// The variable's value, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : fallback;
}

// The variable as an integer (atoi), or `fallback` when it is unset or empty.
inline int env_int(const char* name, int fallback) {
  return std::atoi(env_or(name, std::to_string(fallback).c_str()).c_str());
}

}  // namespace fabula
