// The read probe (bench_membw's Read and ReadPrefetch, `fabula bench --bound-probe`): every kernel this CPU has,
// at every prefetch distance, sums exactly what a scalar loop over the buffer sums, whatever the thread split.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "tensor/read_probe.h"

namespace fabula {
namespace {

uint64_t scalar_sum(const uint64_t* p, size_t bytes) {
  uint64_t s = 0;
  for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) s += p[i];
  return s;
}

constexpr ReadIsa kIsas[] = {ReadIsa::kScalar, ReadIsa::kAvx2, ReadIsa::kAvx512};
constexpr size_t kDistances[] = {0, 1024, 2048, 4096, 8192};

TEST(ReadProbe, EveryKernelSumsWhatAScalarLoopSums) {
  ThreadPool fill(2);
  // Not a multiple of the huge page, and an odd number of chunks, so the threads' shares differ.
  const ReadProbeBuffer buf(fill, (size_t{3} << 20) + 3 * kReadChunkBytes);
  ASSERT_EQ(buf.bytes() % kReadChunkBytes, 0u);
  const uint64_t want = scalar_sum(buf.data(), buf.bytes());
  int tested = 0;
  for (ReadIsa isa : kIsas) {
    if (!read_isa_supported(isa)) continue;
    for (size_t distance : kDistances) {
      const ReadSumFn sum = read_sum(isa, distance);
      ASSERT_NE(sum, nullptr) << read_isa_name(isa) << " " << distance;
      // One call over parts of the buffer (the kernel alone), then whole passes split over 1-3 threads.
      const size_t part = 5 * kReadChunkBytes;
      EXPECT_EQ(sum(buf.data() + part / sizeof(uint64_t), part), scalar_sum(buf.data() + part / sizeof(uint64_t), part))
          << read_isa_name(isa) << " " << distance;
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        EXPECT_EQ(read_pass(pool, buf, sum).sum, want) << read_isa_name(isa) << " " << distance << " " << threads;
      }
      ++tested;
    }
  }
  EXPECT_GE(tested, 5);  // the scalar loop at least
}

TEST(ReadProbe, TheWidestIsaIsSupportedAndOtherDistancesHaveNoKernel) {
  EXPECT_TRUE(read_isa_supported(widest_read_isa()));
  EXPECT_TRUE(read_isa_supported(ReadIsa::kScalar));
  for (ReadIsa isa : kIsas) {
    if (read_isa_supported(isa) && isa != ReadIsa::kScalar) {
      EXPECT_EQ(read_sum(isa, 3000), nullptr);
    }
  }
}

TEST(ReadProbe, ProbeReportsAFiniteRate) {
  ThreadPool pool(2);
  const ReadProbeBuffer buf(pool, size_t{2} << 20);
  const double gbs = read_probe_gbs(pool, buf, 2);
  EXPECT_TRUE(std::isfinite(gbs));
  EXPECT_GT(gbs, 0);
}

}  // namespace
}  // namespace fabula
