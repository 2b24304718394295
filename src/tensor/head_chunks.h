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
