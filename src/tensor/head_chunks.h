// The walk over cache slots that the decode attention kernels for several heads share (attend_heads in
// activations.h for the f32 cache, attend_heads_kv in kv_attention.h for every type): which part of a slot the
// heads read, and the order in which they pass over the rows.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fabula {

// Bytes of the slots' part that the heads read per chunk: 64 KiB stay in L2, most in L1, while the other heads pass
// over them. One thread's heads of a 26B sliding layer at 1024 positions (f32), one core: 16 KiB 12.7, 32 KiB 12.4,
// 64 KiB 13.8, 128 KiB 13.4, 256 KiB 10.8 GB/s.
inline constexpr int64_t kHeadsChunkBytes = int64_t{64} << 10;

// Rows per chunk when the heads read span_bytes of each slot.
inline int64_t heads_chunk_rows(int64_t span_bytes) { return std::max<int64_t>(1, kHeadsChunkBytes / span_bytes); }

// Where n_heads >= 1 heads read a slot: from the first head's offset, `size` units to the end of the last head's
// (off(h) and head_size in one unit: floats or bytes).
struct HeadsSpan {
  int64_t first, size;
};
template <typename Off>
HeadsSpan heads_span(const Off& off, int64_t n_heads, int64_t head_size) {
  int64_t lo = off(0), hi = lo;
  for (int64_t h = 1; h < n_heads; ++h) {
    lo = std::min(lo, off(h));
    hi = std::max(hi, off(h));
  }
  return {lo, hi - lo + head_size};
}

// How far ahead the stored-type kernels (kv_attention.h) ask for the cache rows they walk: about this many bytes of
// their head's part of the rows. The rows are a slot apart (kilobytes), so the hardware prefetchers, which stay
// within a page, do not follow the walk, and each row would wait on memory. Each head group asks for its own part;
// the first group of a chunk asking for the whole span of the heads (the others then finding it in cache) was slower,
// its pass waiting on all the memory and the others on none. The synth 26B at 1,500 positions, f16 cache, attention
// ms per step: none 23.2-24.1, 2 KiB 16.3-18.4, 4 KiB 15.4-17.1; the whole span 20.3-21.6 (BENCHMARKS.md). The f32
// kernels (activations.h) do not ask: one thread walking 30 sliding layers' f32 rows was no faster with it (625-628
// us a layer without, 634-654 with).
inline constexpr int64_t kHeadsPrefetchBytes = 4096;

// Asks for bytes [0, bytes) of rows [j, min(j + n, n_rows)), each `stride` bytes after the one before. Asking on
// past a call's rows into the part its thread reads next (the next head group's, or the next chunk's) was slower
// (one thread, 30 sliding layers of f16 rows: 456-464 us a layer against 494-509).
inline void prefetch_row_heads(const void* rows, int64_t stride, int64_t j, int64_t n, int64_t n_rows, int64_t bytes) {
  const auto* base = static_cast<const char*>(rows);
  for (int64_t r = j; r < std::min(j + n, n_rows); ++r) {
    const uintptr_t begin = reinterpret_cast<uintptr_t>(base + r * stride);
    for (uintptr_t line = begin & ~uintptr_t{63}; line < begin + static_cast<uintptr_t>(bytes); line += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(line));
  }
}

// Rows ahead for a head part of `bytes` (at least one; none for an empty part).
inline int64_t prefetch_rows_ahead(int64_t bytes) {
  return bytes <= 0 ? 0 : std::max<int64_t>(1, (kHeadsPrefetchBytes + bytes - 1) / bytes);
}

// step(run, j0, rows, h, score) for rows [j0, j0 + rows) of each run in chunks of up to `chunk` rows, every head
// over a chunk before the next, so that a chunk is read from memory once for all of them; score is the index of
// the chunk's first score of head h in scores laid out [head][row of all runs] (total rows per head). Every step
// touches only its own rows and scores, so a head's results do not depend on the chunk length.
template <typename Run, typename Step>
void for_head_chunks(const Run* runs, int n_runs, int64_t chunk, int64_t n_heads, int64_t total, const Step& step) {
  int64_t base = 0;
  for (int i = 0; i < n_runs; ++i) {
    for (int64_t j0 = 0; j0 < runs[i].n_rows; j0 += chunk) {
      const int64_t rows = std::min(chunk, runs[i].n_rows - j0);
      for (int64_t h = 0; h < n_heads; ++h) step(runs[i], j0, rows, h, h * total + base + j0);
    }
    base += runs[i].n_rows;
  }
}

}  // namespace fabula
