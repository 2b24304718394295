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

// How many rows, each from its own part of a gemv's row range, the one-token AVX-512 gemvs (Q4_K, Q6_K, the Q8_0
// family; with two, Q5_0 / Q4_0 leave their eight-row pass for the one-row kernel) interleave block by block
// (for_row_streams in gemv_avx512-inl.h): 2 on Intel, where the L2 hardware prefetcher runs a bounded distance
// ahead of each sequential stream and one core's reads wait on it (two streams keep twice the lines on their way:
// the synth 26B's tg128 9.0-9.2 -> 9.4 t/s, session 16 in bench/HISTORY.md); 1 elsewhere (on Zen, adjacent rows in
// pairs streamed 20% slower in round 6; two distant streams are unmeasured there). Each row's arithmetic is the
// same either way.
int decode_row_streams_for_vendor(std::string_view vendor);
// FABULA_DECODE_STREAMS as a count: "1" or "2"; nullopt otherwise.
std::optional<int> parse_decode_row_streams(const char* text);
// FABULA_DECODE_STREAMS when set and valid (a warning names an invalid one), else the vendor's count.
int choose_decode_row_streams();
namespace detail {
inline int decode_row_streams = choose_decode_row_streams();  // chosen once before main
}
inline int decode_row_streams() { return detail::decode_row_streams; }
// 1 or 2; for tests, which compare both orders (set it before the threads that run gemvs start).
inline void set_decode_row_streams(int streams) { detail::decode_row_streams = streams == 2 ? 2 : 1; }

// The weight bytes of one decode chunk (matmul's unit of work between threads, one gemv call): 256 KiB on Intel,
// where the two row streams restart at every chunk (tg128 of the synth 26B, alternating: 64 KiB 8.57-8.81, 128 KiB
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
