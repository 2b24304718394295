// How far ahead of the block they unpack the AVX-512 decode gemvs ask for weight lines. Decode streams every
// weight once per token, and the best distance depends on the CPU, not the kernel: 16 KiB on AMD Zen 4 and Zen 5,
// 1 KiB on an Intel Xeon with AVX-512 (BENCHMARKS.md, session 15). The prefill tiles keep their
// own fixed distance (kPrefetchBytes in tiles_avx512-inl.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace fabula {

inline constexpr size_t kDecodePrefetchMin = 64;
inline constexpr size_t kDecodePrefetchMax = size_t{1} << 20;

// The distance for a CPU of this vendor (the cpuid vendor string, "GenuineIntel", "AuthenticAMD", ...).
size_t decode_prefetch_bytes_for_vendor(std::string_view vendor);

// FABULA_PREFETCH_BYTES as a distance: a whole number of bytes in [kDecodePrefetchMin, kDecodePrefetchMax];
// nullopt when unset or not such a number.
std::optional<size_t> parse_decode_prefetch_bytes(const char* text);

// FABULA_PREFETCH_BYTES when set and valid (a warning names an invalid one), else the vendor's distance.
size_t choose_decode_prefetch_bytes();

// The distance this process uses, chosen once before main.
inline const size_t kDecodePrefetchBytes = choose_decode_prefetch_bytes();

}  // namespace fabula
