// The memory the system can give a process now (MemAvailable), for the loader's choice between reading the weights
// into memory and mapping them, and for the memory check before a model loads (backend/memory_check.h).
#pragma once

#include <cstdint>
#include <optional>

namespace fabula {

// /proc/meminfo MemAvailable in bytes; FABULA_MEM_AVAILABLE (bytes, or with a K/M/G suffix) replaces it, so
// tests and users can see what a smaller machine would do.
std::optional<uint64_t> available_memory();

}  // namespace fabula
