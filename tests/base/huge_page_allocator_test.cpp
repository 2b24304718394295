// HugePageAllocator (base/huge_page_allocator.h): blocks of 2 MiB and more start on a 2 MiB boundary (so that they
// can be backed by huge pages at all), smaller ones are plain heap blocks; both hold what is written to them.
#include "base/huge_page_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace fabula {
namespace {

TEST(HugePageAllocator, LargeBlocksStartOnAHugePage) {
  for (size_t bytes : {kHugePageBytes, kHugePageBytes + 4096, 3 * kHugePageBytes + 1}) {
    std::vector<uint8_t, HugePageAllocator<uint8_t>> v;
    v.assign(bytes, 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u) << bytes;
    for (size_t i = 0; i < bytes; i += 4099) v[i] = static_cast<uint8_t>(i);
    for (size_t i = 0; i < bytes; i += 4099) ASSERT_EQ(v[i], static_cast<uint8_t>(i)) << i;
    EXPECT_EQ(v[1], 0);
  }
}

TEST(HugePageAllocator, SmallBlocksAndGrowthKeepTheirContents) {
  std::vector<float, HugePageAllocator<float>> v;
  for (int i = 0; i < 1000; ++i) v.push_back(static_cast<float>(i));  // small blocks, then moved as it grows
  v.resize(kHugePageBytes / sizeof(float) + 5, -1.0f);                 // into a large one
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(v[static_cast<size_t>(i)], static_cast<float>(i));
  EXPECT_EQ(v.back(), -1.0f);
  const std::vector<float, HugePageAllocator<float>> copy = v;
  EXPECT_EQ(copy, v);
}

}  // namespace
}  // namespace fabula
