#include "tensor/decode_stream.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace fabula {
namespace {

std::string_view cpu_vendor() {
#if defined(__x86_64__)
  static char vendor[13] = {};
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) != 0) {
    std::memcpy(vendor, &ebx, 4);  // the vendor string is ebx, edx, ecx
    std::memcpy(vendor + 4, &edx, 4);
    std::memcpy(vendor + 8, &ecx, 4);
  }
  return vendor;
#else
  return {};
#endif
}

}  // namespace

size_t decode_prefetch_bytes_for_vendor(std::string_view vendor) {
  // Measured with fabula bench on the synth 26B-A4B Q4_K_M, 2 threads, alternating runs: on the Intel Xeon tg128
  // went 7.0 -> 8.2 t/s from 16 KiB to 1 KiB (768 and 1536 B were 1-5% slower than 1 KiB); on Zen 4 / Zen 5, 16 KiB
  // beat 8 and 4 KiB by up to 12%.
  if (vendor == "GenuineIntel") return 1024;
  return 16384;
}

std::optional<size_t> parse_decode_prefetch_bytes(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || text[0] == '-' || value < kDecodePrefetchMin || value > kDecodePrefetchMax) {
    return std::nullopt;
  }
  return static_cast<size_t>(value);
}

size_t choose_decode_prefetch_bytes() {
  const char* text = std::getenv("FABULA_PREFETCH_BYTES");
  if (const auto bytes = parse_decode_prefetch_bytes(text)) return *bytes;
  const size_t chosen = decode_prefetch_bytes_for_vendor(cpu_vendor());
  if (text != nullptr) {  // fprintf, not the logger: this runs before main
    std::fprintf(stderr, "fabula: ignoring FABULA_PREFETCH_BYTES=%s (want bytes from %zu to %zu); using %zu\n", text,
                 kDecodePrefetchMin, kDecodePrefetchMax, chosen);
  }
  return chosen;
}

int decode_row_streams_for_vendor(std::string_view vendor, GemvFamily family) {
  // fabula bench on the synth 26B-A4B Q4_K_M, 2 threads, alternating: tg128 9.03-9.18 (one row) -> 9.37-9.42 t/s
  // (two) on the Intel Xeon; the counts per family from whole decode steps alternating in one process
  // (decode_stream.h).
  if (vendor != "GenuineIntel") return 1;
  return family == GemvFamily::kQ8_0 ? 3 : 4;
}

std::optional<DecodeRowStreams> parse_decode_row_streams(const char* text) {
  if (text == nullptr) return std::nullopt;
  int counts[3] = {};
  int n = 0;
  for (std::string_view rest(text);; rest.remove_prefix(2)) {
    if (n == 3 || rest.size() < 1 || rest[0] < '1' || rest[0] > '0' + kMaxDecodeRowStreams) return std::nullopt;
    counts[n++] = rest[0] - '0';
    if (rest.size() == 1) break;
    if (rest[1] != ',') return std::nullopt;
  }
  if (n == 1) return DecodeRowStreams{counts[0], counts[0], counts[0]};
  if (n == 3) return DecodeRowStreams{counts[0], counts[1], counts[2]};
  return std::nullopt;
}

DecodeRowStreams choose_decode_row_streams() {
  const char* text = std::getenv("FABULA_DECODE_STREAMS");
  if (const auto streams = parse_decode_row_streams(text)) return *streams;
  const std::string_view vendor = cpu_vendor();
  const DecodeRowStreams chosen{decode_row_streams_for_vendor(vendor, GemvFamily::kQ4_K),
                                decode_row_streams_for_vendor(vendor, GemvFamily::kQ6_K),
                                decode_row_streams_for_vendor(vendor, GemvFamily::kQ8_0)};
  if (text != nullptr) {  // fprintf, not the logger: this runs before main
    std::fprintf(stderr,
                 "fabula: ignoring FABULA_DECODE_STREAMS=%s (want 1 to %d for every family, or three counts for Q4_K, "
                 "Q6_K and Q8_0 as in 4,4,3); using %d,%d,%d\n",
                 text, kMaxDecodeRowStreams, chosen.q4_K, chosen.q6_K, chosen.q8_0);
  }
  return chosen;
}

int64_t decode_chunk_bytes_for_vendor(std::string_view vendor) {
  return vendor == "GenuineIntel" ? int64_t{256} << 10 : int64_t{64} << 10;
}

int64_t decode_chunk_bytes() {
  static const int64_t bytes = decode_chunk_bytes_for_vendor(cpu_vendor());
  return bytes;
}

bool decode_fifth_bits_from_gpr_for_vendor(std::string_view vendor) { return vendor == "GenuineIntel"; }

bool choose_decode_fifth_bits_from_gpr() { return decode_fifth_bits_from_gpr_for_vendor(cpu_vendor()); }

}  // namespace fabula
