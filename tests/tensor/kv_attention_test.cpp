// Attention on the compressed KV cache (tensor/kv_attention.h): each SIMD kernel against its scalar reference on
// every Highway target the CPU supports, for every K and V type; and the reference against plain f32 attention
// over the dequantised cache (the query rotation and the rotated value sum give the same head output).
#include <gtest/gtest.h>

#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <vector>

#include "tensor/activations.h"
#include "tensor/kernels.h"
#include "kernel_test_util.h"
#include "tensor/kv_attention.h"

namespace fabula {
namespace {

using kernel_test::on_every_target;
using kernel_test::random_values;

void expect_close(const float* got, const float* want, int64_t n, float tol) {
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << i;
}

// A cache of n_rows positions, each slot holding two heads of d (the head under test is the second, so rows sit
// at a stride wider than the head), quantised to `type`.
struct QuantCache {
  std::vector<uint8_t> bytes;
  int64_t stride = 0;
  size_t head = 0;  // offset of the head under test in a slot
  QuantCache(KvType type, const std::vector<float>& values, int64_t n_rows, int64_t d) {
    head = kv_head_bytes(type, d);
    stride = static_cast<int64_t>(2 * head);
    bytes.assign(static_cast<size_t>(stride * n_rows), 0);
    for (int64_t j = 0; j < n_rows; ++j)
      for (int64_t h = 0; h < 2; ++h)
        kv_quantize_head(type, values.data() + (j * 2 + h) * d, d, bytes.data() + j * stride + h * head);
  }
  const uint8_t* row(int64_t j) const { return bytes.data() + j * stride + head; }
};

// The kernels for a group of heads that read the same rows, against the reference, and each head of a group against
// the same head alone, bit for bit: group sizes that the SIMD kernels take whole (1, 2, 4, 8) and that they split
// (3, 5, 7, 9, 16), head dims with and without a partial block and row counts with and without an odd last row.
TEST(KvAttention, KernelsMatchTheReference) {
  on_every_target([] {
    for (int64_t d : {16, 80, 256, 512}) {
      for (int64_t n_rows : {1, 19}) {
        const auto values = random_values(2 * n_rows * d, 1.0f, static_cast<uint32_t>(d));
        for (KvType t : kAllKvTypes) {
          const QuantCache c(t, values, n_rows, d);
          const int64_t dp = kv_stored_dim(t, d);
          for (int64_t n_heads : {1, 2, 3, 4, 5, 7, 8, 9, 16}) {
            SCOPED_TRACE(std::string(kv_type_name(t)) + " d=" + std::to_string(d) + " rows=" + std::to_string(n_rows) +
                         " heads=" + std::to_string(n_heads));
            const auto qv = random_values(n_heads * dp, 1.0f, static_cast<uint32_t>(n_heads) + 3);
            const auto wv = random_values(n_heads * n_rows, 0.3f, static_cast<uint32_t>(n_heads) + 5);
            const size_t n_scores = static_cast<size_t>(n_heads * n_rows), n_out = static_cast<size_t>(n_heads * dp);
            std::vector<float> want(n_scores), got(n_scores), alone(n_scores);
            std::vector<float> acc_want(n_out, 0.5f), acc_got(acc_want), acc_alone(acc_want);
            std::vector<const float*> q, w;
            std::vector<float*> s_want, s_got, s_alone, o_want, o_got, o_alone;
            for (int64_t h = 0; h < n_heads; ++h) {
              q.push_back(qv.data() + h * dp);
              w.push_back(wv.data() + h * n_rows);
              s_want.push_back(want.data() + h * n_rows);
              s_got.push_back(got.data() + h * n_rows);
              s_alone.push_back(alone.data() + h * n_rows);
              o_want.push_back(acc_want.data() + h * dp);
              o_got.push_back(acc_got.data() + h * dp);
              o_alone.push_back(acc_alone.data() + h * dp);
            }
            kv_dot_rows_ref(t, q.data(), n_heads, c.row(0), c.stride, n_rows, d, s_want.data());
            kv_dot_rows(t, q.data(), n_heads, c.row(0), c.stride, n_rows, d, s_got.data());
            kv_add_rows_ref(t, w.data(), n_heads, c.row(0), c.stride, n_rows, d, o_want.data());
            kv_add_rows(t, w.data(), n_heads, c.row(0), c.stride, n_rows, d, o_got.data());
            for (int64_t h = 0; h < n_heads; ++h) {
              kv_dot_rows(t, &q[h], 1, c.row(0), c.stride, n_rows, d, &s_alone[h]);
              kv_add_rows(t, &w[h], 1, c.row(0), c.stride, n_rows, d, &o_alone[h]);
            }
            const float score_tol = 2e-5f * std::sqrt(static_cast<float>(d));
            expect_close(got.data(), want.data(), static_cast<int64_t>(n_scores), score_tol);
            expect_close(acc_got.data(), acc_want.data(), static_cast<int64_t>(n_out), 2e-5f);
            for (size_t i = 0; i < n_scores; ++i) ASSERT_EQ(got[i], alone[i]) << "score " << i;
            for (size_t i = 0; i < n_out; ++i) ASSERT_EQ(acc_got[i], acc_alone[i]) << "sum " << i;
          }
        }
      }
    }
  });
}

// Every pair of K and V types, the keys in two runs (a ring buffer that wrapped).
TEST(KvAttention, HeadMatchesTheReferenceForEveryTypePair) {
  on_every_target([] {
    for (int64_t d : {16, 64, 512}) {
      const int64_t n_rows = 23, split = 9;
      const auto keys = random_values(2 * n_rows * d, 1.0f, static_cast<uint32_t>(d) + 1);
      const auto vals = random_values(2 * n_rows * d, 1.0f, static_cast<uint32_t>(d) + 2);
      const auto q = random_values(d, 0.4f, 17);
      for (KvType kt : kAllKvTypes) {
        for (KvType vt : kAllKvTypes) {
          SCOPED_TRACE(std::string(kv_type_name(kt)) + "/" + std::string(kv_type_name(vt)) + " d=" + std::to_string(d));
          const QuantCache k(kt, keys, n_rows, d), v(vt, vals, n_rows, d);
          const KvRun runs[2] = {{k.row(split), v.row(split), n_rows - split}, {k.row(0), v.row(0), split}};
          const KvHeadFormat f{kt, vt, k.stride, v.stride};
          std::vector<float> sw(static_cast<size_t>(n_rows)), sg(sw.size());
          std::vector<float> want(static_cast<size_t>(d)), got(want.size());
          attend_head_kv_ref(q.data(), runs, 2, f, d, sw.data(), want.data());
          attend_head_kv(q.data(), runs, 2, f, d, sg.data(), got.data());
          expect_close(got.data(), want.data(), d, 1e-4f);
          expect_close(sg.data(), sw.data(), n_rows, 1e-4f);
        }
      }
    }
  });
}

// Heads together (attend_heads_kv) against each head alone (attend_head_kv), bit for bit: every pair of K and V
// types, slots of two kv heads (each query head reads the one its offset names), a ring that wrapped, slots enough
// for several of its chunks (64 KiB: 16 of this cache's 512-dim f32 slots), head counts that are and are not
// powers of two.
TEST(KvAttention, HeadsTogetherEqualEachHeadAlone) {
  on_every_target([] {
    for (int64_t d : {64, 512}) {
      const int64_t n_rows = 71, split = 30;
      const auto keys = random_values(2 * n_rows * d, 1.0f, static_cast<uint32_t>(d) + 3);
      const auto vals = random_values(2 * n_rows * d, 1.0f, static_cast<uint32_t>(d) + 4);
      for (int64_t n_heads : {1, 2, 3, 8, 16}) {
        const auto qv = random_values(n_heads * d, 0.4f, static_cast<uint32_t>(n_heads) + 19);
        for (KvType kt : kAllKvTypes) {
          for (KvType vt : kAllKvTypes) {
            SCOPED_TRACE(std::string(kv_type_name(kt)) + "/" + std::string(kv_type_name(vt)) + " d=" +
                         std::to_string(d) + " heads=" + std::to_string(n_heads));
            const QuantCache k(kt, keys, n_rows, d), v(vt, vals, n_rows, d);
            // The slots' starts (kv head 0); QuantCache::row is kv head 1.
            const uint8_t* k0 = k.bytes.data();
            const uint8_t* v0 = v.bytes.data();
            const KvRun slots[2] = {{k0 + split * k.stride, v0 + split * v.stride, n_rows - split}, {k0, v0, split}};
            const KvHeadFormat f{kt, vt, k.stride, v.stride};
            std::vector<float> alone(static_cast<size_t>(n_heads * d)), together(alone.size(), -1.0f);
            std::vector<float> want(alone.size()), scores(static_cast<size_t>(n_heads * n_rows));
            std::vector<const float*> qs;
            std::vector<float*> outs;
            std::vector<int64_t> k_offset, v_offset;
            for (int64_t h = 0; h < n_heads; ++h) {
              const int64_t kv_head = h * 2 / n_heads;  // the first half reads kv head 0, the rest kv head 1
              k_offset.push_back(kv_head * static_cast<int64_t>(k.head));
              v_offset.push_back(kv_head * static_cast<int64_t>(v.head));
              const KvRun runs[2] = {{slots[0].k + k_offset[h], slots[0].v + v_offset[h], slots[0].n_rows},
                                     {slots[1].k + k_offset[h], slots[1].v + v_offset[h], slots[1].n_rows}};
              qs.push_back(qv.data() + h * d);
              outs.push_back(together.data() + h * d);
              attend_head_kv(qs.back(), runs, 2, f, d, scores.data(), alone.data() + h * d);
              attend_head_kv_ref(qs.back(), runs, 2, f, d, scores.data(), want.data() + h * d);
            }
            attend_heads_kv(qs.data(), k_offset.data(), v_offset.data(), n_heads, slots, 2, f, d, scores.data(),
                            outs.data());
            for (size_t i = 0; i < alone.size(); ++i) ASSERT_EQ(together[i], alone[i]) << i;
            expect_close(together.data(), want.data(), n_heads * d, 1e-4f);
          }
        }
      }
    }
  });
}

// Blocks of query rows (attend_rows_kv) against the per-row reference: every pair of K and V types, a ring that
// wraps inside the block's keys, sliding windows (each row its own first key) and causal rows from position 0,
// row counts that do not fill the SIMD lanes.
// attend_rows_kv against attend_rows_kv_ref for the query rows q (row i sees positions first[i]..last[i]).
void expect_row_blocks_match_reference(const std::vector<const float*>& q, const std::vector<int64_t>& first,
                                       const std::vector<int64_t>& last, const KvRing& ring, const KvHeadFormat& f,
                                       int64_t d) {
  const int64_t m = static_cast<int64_t>(q.size());
  std::vector<float> want(static_cast<size_t>(m * d)), got(want.size(), -1.0f);
  std::vector<float*> want_rows, got_rows;
  for (int64_t i = 0; i < m; ++i) {
    want_rows.push_back(want.data() + i * d);
    got_rows.push_back(got.data() + i * d);
  }
  attend_rows_kv_ref(q.data(), first.data(), last.data(), m, ring, f, d, want_rows.data());
  attend_rows_kv(q.data(), first.data(), last.data(), m, ring, f, d, got_rows.data());
  expect_close(got.data(), want.data(), m * d, 1e-4f);
}

TEST(KvAttention, RowBlocksMatchTheReferenceForEveryTypePair) {
  struct Case {
    int64_t capacity, first_pos, tokens, heads, window;  // window 0: every row sees positions 0..pos
  };
  // The last: 120 rows, a whole block of four 32-row passes on AVX-512 (two blocks of 64 on AVX2).
  const Case cases[] = {{40, 73, 9, 4, 31}, {40, 73, 1, 3, 31}, {100, 50, 5, 8, 0}, {100, 6, 17, 2, 0},
                        {160, 150, 30, 4, 120}};
  on_every_target([&] {
    for (int64_t d : {16, 64, 256, 512}) {
      for (const Case& cs : cases) {
        const auto keys = random_values(2 * cs.capacity * d, 1.0f, static_cast<uint32_t>(d) + 5);
        const auto vals = random_values(2 * cs.capacity * d, 1.0f, static_cast<uint32_t>(d) + 6);
        const auto qv = random_values(cs.tokens * cs.heads * d, 0.4f, 19);
        std::vector<const float*> q;
        std::vector<int64_t> first, last;
        for (int64_t t = 0; t < cs.tokens; ++t) {
          for (int64_t h = 0; h < cs.heads; ++h) {
            const int64_t pos = cs.first_pos + t;
            q.push_back(qv.data() + (t * cs.heads + h) * d);
            first.push_back(cs.window > 0 ? std::max<int64_t>(0, pos - cs.window + 1) : 0);
            last.push_back(pos);
          }
        }
        const int64_t m = static_cast<int64_t>(q.size());
        for (KvType kt : kAllKvTypes) {
          for (KvType vt : kAllKvTypes) {
            if (d != 64 && kt != vt && kt != KvType::kF32) continue;  // every pair at one width, the diagonal at all
            SCOPED_TRACE(std::string(kv_type_name(kt)) + "/" + std::string(kv_type_name(vt)) + " d=" +
                         std::to_string(d) + " rows=" + std::to_string(m));
            const QuantCache k(kt, keys, cs.capacity, d), v(vt, vals, cs.capacity, d);
            const KvHeadFormat f{kt, vt, k.stride, v.stride};
            const KvRing ring{k.row(0), v.row(0), cs.capacity};
            expect_row_blocks_match_reference(q, first, last, ring, f, d);
          }
        }
      }
    }
  });
}

// Scores spread over hundreds: most softmax weights of a row fall below FLT_MIN, where the row-block kernel uses
// exact zeros and the reference subnormals. The sums still agree (what the zeros drop is below a float's reach).
TEST(KvAttention, RowBlocksWithSubnormalWeightsMatchTheReference) {
  on_every_target([] {
    constexpr int64_t d = 64, capacity = 96, tokens = 40;
    const auto keys = random_values(2 * capacity * d, 1.0f, 31);  // two heads per slot (QuantCache)
    const auto vals = random_values(2 * capacity * d, 1.0f, 32);
    auto qv = random_values(tokens * d, 1.0f, 33);
    for (float& v : qv) v *= 20.0f;  // scores of about +-50 (one sd), so most weights underflow
    std::vector<const float*> q;
    std::vector<int64_t> first, last;
    for (int64_t t = 0; t < tokens; ++t) {
      q.push_back(qv.data() + t * d);
      first.push_back(0);
      last.push_back(capacity - tokens + t);
    }
    const QuantCache k(KvType::kF32, keys, capacity, d), v(KvType::kF32, vals, capacity, d);
    const KvHeadFormat f{KvType::kF32, KvType::kF32, k.stride, v.stride};
    const KvRing ring{k.row(0), v.row(0), capacity};
    expect_row_blocks_match_reference(q, first, last, ring, f, d);
  });
}

// The reference on a quantised cache equals f32 attention over the dequantised cache: rotating the query and
// un-rotating the value sum is exact up to rounding.
TEST(KvAttention, CompressedHeadEqualsAttentionOverTheDequantisedCache) {
  const int64_t d = 256, n_rows = 31;
  const auto keys = random_values(2 * n_rows * d, 1.0f, 41);
  const auto vals = random_values(2 * n_rows * d, 1.0f, 42);
  const auto q = random_values(d, 0.2f, 43);
  for (KvType t : kAllKvTypes) {
    SCOPED_TRACE(kv_type_name(t));
    const QuantCache k(t, keys, n_rows, d), v(t, vals, n_rows, d);
    std::vector<float> dk(static_cast<size_t>(n_rows * d)), dv(dk.size());
    for (int64_t j = 0; j < n_rows; ++j) {
      kv_dequantize_head(t, k.row(j), d, dk.data() + j * d);
      kv_dequantize_head(t, v.row(j), d, dv.data() + j * d);
    }
    const CacheRun run{dk.data(), dv.data(), n_rows};
    std::vector<float> s0(static_cast<size_t>(n_rows)), s1(s0.size()), want(static_cast<size_t>(d)), got(want.size());
    attend_head_ref(q.data(), &run, 1, d, d, s0.data(), want.data());
    const KvRun kr{k.row(0), v.row(0), n_rows};
    attend_head_kv_ref(q.data(), &kr, 1, KvHeadFormat{t, t, k.stride, v.stride}, d, s1.data(), got.data());
    expect_close(got.data(), want.data(), d, 1e-4f);
  }
}

}  // namespace
}  // namespace fabula
