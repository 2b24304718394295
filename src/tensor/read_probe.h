// The memory read probe: how fast all threads of a pool stream a buffer far larger than any cache. The same sums
// for the read bound wherever it is measured (bench_membw's Read benchmarks, and `fabula bench --bound-probe` between
// decode steps), so a decode rate and the bound it is compared with come from the same kinds of read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/thread_pool.h"

namespace fabula {

inline constexpr size_t kReadProbeBytes = size_t{1} << 30;  // 1 GiB: far beyond any L3
inline constexpr size_t kReadChunkBytes = 512;              // what one iteration of every sum kernel reads

// Sums [p, p + bytes) as uint64 lanes (bytes % kReadChunkBytes == 0, p 64-byte aligned).
using ReadSumFn = uint64_t (*)(const uint64_t* p, size_t bytes);

enum class ReadIsa { kScalar, kAvx2, kAvx512 };
const char* read_isa_name(ReadIsa isa);
bool read_isa_supported(ReadIsa isa);  // on this CPU
ReadIsa widest_read_isa();             // the widest this CPU has

// The sum with isa's widest loads into 8 independent accumulators (AVX-512, AVX2), so neither the add chain nor the
// load width limits it; kScalar is a plain `s += p[i]` loop the compiler vectorises on its own. prefetch_distance > 0:
// the vector sums also ask for the line that many bytes ahead of every line they load (1024, 2048, 4096 or 8192; the
// scalar loop prefetches 4 KiB ahead whatever distance is asked). nullptr for another distance.
ReadSumFn read_sum(ReadIsa isa, size_t prefetch_distance = 0);

// A 2 MiB-aligned buffer asking for huge pages (as fabula's weight mapping does), filled in parallel by `pool`'s
// threads (first touch outside any timed read) so its pages spread like a weight mapping's do.
class ReadProbeBuffer {
 public:
  explicit ReadProbeBuffer(ThreadPool& pool, size_t bytes = kReadProbeBytes);  // bytes % kReadChunkBytes == 0
  const uint64_t* data() const { return data_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Free {
    void operator()(uint64_t* p) const;
  };
  std::unique_ptr<uint64_t, Free> data_;
  size_t bytes_ = 0;
};

// One read of the whole buffer: every thread of `pool` sums its contiguous share (whole kReadChunkBytes chunks).
struct ReadPass {
  double seconds = 0;
  uint64_t sum = 0;  // of every lane, so the read cannot be left out
};
ReadPass read_pass(ThreadPool& pool, const ReadProbeBuffer& buf, ReadSumFn sum);

// The prefetch distance of the probe's second method (bench_membw's ReadPrefetch/<threads>/1024).
inline constexpr size_t kProbePrefetchBytes = 1024;

// The best of `passes` rounds of two reads, the widest sum without prefetch (bench_membw's Read) and with the line
// kProbePrefetchBytes ahead asked for (ReadPrefetch), in GB/s (1e9 bytes): the strict bound, as decode_bound.sh
// takes the best of bench_membw's Read benchmarks; a shared machine only ever makes a pass slower.
double read_probe_gbs(ThreadPool& pool, const ReadProbeBuffer& buf, int passes);

}  // namespace fabula
