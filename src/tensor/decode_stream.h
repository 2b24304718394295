// How decode streams its weights, per CPU: how far ahead of the block they unpack the AVX-512 gemvs ask for weight
// lines, how many rows they walk at once, how many bytes one chunk of work between threads holds, and which of two
// equal instruction sequences builds the Q5_0 gemv's fifth bits. Decode streams every weight once per token, and
// the best of each depends on the CPU, not the kernel (BENCHMARKS.md; sessions 15 and 16 in bench/HISTORY.md). The
// prefill tiles keep their own fixed distance (kPrefetchBytes in tiles_avx512-inl.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fabula {

// The prefetch distance: 16 KiB on AMD Zen 4 and Zen 5, 1 KiB on an Intel Xeon with AVX-512.
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

// How many rows, each from its own part of a gemv's row range, the one-token AVX-512 gemvs interleave block by block
// (for_row_streams in gemv_avx512-inl.h), per family of kernels. On Intel, where the L2 hardware prefetcher runs a
// bounded distance ahead of each sequential stream and one core's reads wait on it, more streams keep more lines on
// their way: Q4_K 4, Q6_K 4, the Q8_0 family (Q8_0, Q5_0, Q4_0) 3. On the synth 26B's whole decode step, steps
// alternating in one process (`fabula bench --ab-streams`, BENCHMARKS.md session 31), against these counts: one row
// at a time takes 23% longer, Q6_K 2 0.4% longer, the Q8_0 family 2 0.7% longer, the Q8_0 family 4 within 0.2%.
// Q4_K, since its gemv takes a block of each stream at a time (session 32): 3 1.0% longer, 2 2.5%, 5 0.7%, 6 2%.
// (The replayed walk of session 30 put Q6_K 2 -> 4 at 6.7% of the Q6_K products: it overstates, having no serial
// work between them.) 1 elsewhere (on Zen, adjacent rows in pairs streamed 20% slower in round 6; distant streams are
// unmeasured there), where Q5_0 / Q4_0 take their eight-row pass. Each row's arithmetic is the same whatever the
// count.
enum class GemvFamily { kQ4_K, kQ6_K, kQ8_0 };
struct DecodeRowStreams {
  int q4_K = 1;
  int q6_K = 1;
  int q8_0 = 1;
};
inline constexpr int kMaxDecodeRowStreams = 4;
int decode_row_streams_for_vendor(std::string_view vendor, GemvFamily family);
// FABULA_DECODE_STREAMS (and `fabula bench --ab-streams`): one count for every family ("3"), or one per family in
// the order Q4_K, Q6_K, Q8_0 ("4,4,3"); each from 1 to kMaxDecodeRowStreams. nullopt otherwise.
std::optional<DecodeRowStreams> parse_decode_row_streams(const char* text);
// FABULA_DECODE_STREAMS when set and valid (a warning names an invalid one), else the vendor's.
DecodeRowStreams choose_decode_row_streams();
namespace detail {
inline DecodeRowStreams decode_row_streams = choose_decode_row_streams();  // chosen once before main
}
inline DecodeRowStreams decode_row_streams() { return detail::decode_row_streams; }
inline int decode_row_streams(GemvFamily family) {
  switch (family) {
    case GemvFamily::kQ4_K: return detail::decode_row_streams.q4_K;
    case GemvFamily::kQ6_K: return detail::decode_row_streams.q6_K;
    case GemvFamily::kQ8_0: break;
  }
  return detail::decode_row_streams.q8_0;
}
// For tests, which compare every count, and `fabula bench --ab-streams`, which switches between decode steps: set it
// before the threads that run gemvs start, or between a pool's jobs (its hand-off orders the write before the
// workers' reads). Counts outside 1 to kMaxDecodeRowStreams become 1.
inline void set_decode_row_streams(DecodeRowStreams streams) {
  auto valid = [](int n) { return n >= 1 && n <= kMaxDecodeRowStreams ? n : 1; };
  detail::decode_row_streams = {valid(streams.q4_K), valid(streams.q6_K), valid(streams.q8_0)};
}

// The weight bytes of one decode chunk (matmul's unit of work between threads, one gemv call): 256 KiB on Intel,
// where the row streams restart at every chunk (tg128 of the synth 26B, alternating: 64 KiB 8.57-8.81, 128 KiB
// 9.08-9.32, 256 KiB 9.37-9.69, 512 KiB 9.34-9.77, 1 MiB 9.08-9.55 t/s); 64 KiB elsewhere, as tuned on Zen.
int64_t decode_chunk_bytes_for_vendor(std::string_view vendor);
int64_t decode_chunk_bytes();  // this CPU's, chosen once

// Whether the one-row Q5_0 gemv step (AVX3_DL) moves the two blocks' qh words into its fifth-bit mask through a
// general register (two 4-byte loads, one kmovq) rather than by vpermb + vpshufbitqmb: on Intel, where every byte
// permute shares port 5 (GemvKernel q5_0 +13-15% on the Xeon, BENCHMARKS.md session 17); not on AMD, where moving
// general-register bits into a mask register ran 19% slower on Zen 5 (bench/ROUNDS-decode.md). The same mask
// either way, so the same bits.
bool decode_fifth_bits_from_gpr_for_vendor(std::string_view vendor);
bool choose_decode_fifth_bits_from_gpr();  // this CPU's
namespace detail {
inline bool decode_fifth_bits_from_gpr = choose_decode_fifth_bits_from_gpr();  // chosen once before main
}
inline bool decode_fifth_bits_from_gpr() { return detail::decode_fifth_bits_from_gpr; }
// For tests, which compare both (set it before the threads that run gemvs start).
inline void set_decode_fifth_bits_from_gpr(bool on) { detail::decode_fifth_bits_from_gpr = on; }

}  // namespace fabula
