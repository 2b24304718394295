// One attention head read straight from a KV cache of any tensor/kv_types.h type: scores are dot products with
// the stored blocks and the value sum accumulates the stored blocks, each dequantised in registers; no
// full-precision copy of the cache is made. For the rotated types the query is rotated once (the rotation is
// orthogonal, so q·k = (Rq)·(Rk)) and a rotated V is summed in the rotated domain and rotated back once.
// SIMD with Highway dynamic dispatch; each kernel has a scalar reference (tests/tensor/kv_attention_test.cpp
// compares them on every target).
#pragma once

#include <cstdint>

#include "tensor/kv_types.h"

namespace fabula {

constexpr int64_t kKvMaxHeadDim = 1024;

// Contiguous cache rows: position j of the run has its key head at k + j * k_stride bytes, its value head at
// v + j * v_stride.
struct KvRun {
  const uint8_t* k;
  const uint8_t* v;
  int64_t n_rows;
};

struct KvHeadFormat {
  KvType k_type = KvType::kF32;
  KvType v_type = KvType::kF32;
  int64_t k_stride = 0;  // bytes from one position's row to the next
  int64_t v_stride = 0;
};

// scores = q · k_j over the d dims of the head, softmax over all rows of the runs (a ring buffer gives at most
// two), out[0..d) = Σ_j softmax_j v_j. scores: scratch for the total number of rows. d <= kKvMaxHeadDim.
void attend_head_kv(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& format, int64_t d,
                    float* scores, float* out);
void attend_head_kv_ref(const float* q, const KvRun* runs, int n_runs, const KvHeadFormat& format, int64_t d,
                        float* scores, float* out);

// Query heads q[0..n_heads) over the same runs of cache slots (the runs' k and v at a slot's start): head h reads
// its key rows k_offset[h] and its value rows v_offset[h] bytes into each slot (its kv head; nullptr: 0), and
// out[h] is attend_head_kv's for q[h] over those rows, bit for bit. The slots go in chunks, every head over a chunk
// before the next, so each slot is read from memory once, in order, for all the heads (activations.h,
// attend_heads). scores: scratch for n_heads x the total number of rows. n_heads <= kKvMaxHeadsPerCall.
constexpr int64_t kKvMaxHeadsPerCall = 16;
void attend_heads_kv(const float* const* q, const int64_t* k_offset, const int64_t* v_offset, int64_t n_heads,
                     const KvRun* runs, int n_runs, const KvHeadFormat& format, int64_t d, float* scores,
                     float* const* out);

// The two kernels behind it, on the stored domain, for n_heads heads that read the same rows (a kv head's query
// heads: each row is decoded once for all of them). q[h]: kv_stored_dim(type, d) floats (rotated for tq types);
// scores[h][j] = q[h] · decode(row j). Each head's numbers are those of the head alone, bit for bit.
void kv_dot_rows(KvType type, const float* const* q, int64_t n_heads, const uint8_t* rows, int64_t stride,
                 int64_t n_rows, int64_t d, float* const* scores);
void kv_dot_rows_ref(KvType type, const float* const* q, int64_t n_heads, const uint8_t* rows, int64_t stride,
                     int64_t n_rows, int64_t d, float* const* scores);
// out[h][0..kv_stored_dim(type, d)) += Σ_j weights[h][j] * decode(row j).
void kv_add_rows(KvType type, const float* const* weights, int64_t n_heads, const uint8_t* rows, int64_t stride,
                 int64_t n_rows, int64_t d, float* const* out);
void kv_add_rows_ref(KvType type, const float* const* weights, int64_t n_heads, const uint8_t* rows, int64_t stride,
                     int64_t n_rows, int64_t d, float* const* out);

// The cache slots of one KV head as a ring: position j has its key head at k + (j % capacity) * k_stride bytes and
// its value head at v + (j % capacity) * v_stride (KvHeadFormat's strides).
struct KvRing {
  const uint8_t* k;
  const uint8_t* v;
  int64_t capacity;
};

// Many query rows that read one KV head (prefill: the query heads of a group for a run of tokens of one sequence).
// Row i has the query q[i] (d floats), sees the keys of positions first[i]..last[i], and gets attend_head_kv over
// them, up to rounding, in out[i] (d floats). All positions of a call lie within one capacity:
// max(last) - min(first) < ring.capacity. The SIMD kernel holds a block of rows in the lanes (the queries
// transposed), so each key is read once per block instead of once per row; the softmax runs online over chunks of
// keys. m <= kKvMaxBlockRows.
constexpr int64_t kKvMaxBlockRows = 128;
void attend_rows_kv(const float* const* q, const int64_t* first, const int64_t* last, int64_t m, const KvRing& ring,
                    const KvHeadFormat& format, int64_t d, float* const* out);
void attend_rows_kv_ref(const float* const* q, const int64_t* first, const int64_t* last, int64_t m,
                        const KvRing& ring, const KvHeadFormat& format, int64_t d, float* const* out);

}  // namespace fabula
