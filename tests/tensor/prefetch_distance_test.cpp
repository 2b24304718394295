#include "tensor/prefetch_distance.h"

#include <gtest/gtest.h>

namespace fabula {
namespace {

TEST(PrefetchDistance, VendorsGetTheirMeasuredDistance) {
  EXPECT_EQ(decode_prefetch_bytes_for_vendor("GenuineIntel"), 1024u);
  EXPECT_EQ(decode_prefetch_bytes_for_vendor("AuthenticAMD"), 16384u);
  EXPECT_EQ(decode_prefetch_bytes_for_vendor(""), 16384u);  // unknown (or not x86): the AMD-tuned default
}

TEST(PrefetchDistance, TheOverrideIsAWholeNumberOfBytesInRange) {
  EXPECT_EQ(parse_decode_prefetch_bytes("1024"), 1024u);
  EXPECT_EQ(parse_decode_prefetch_bytes("64"), kDecodePrefetchMin);
  EXPECT_EQ(parse_decode_prefetch_bytes("1048576"), kDecodePrefetchMax);
  for (const char* bad : {"", "63", "1048577", "-1024", "1k", "10 24", "abc", "99999999999999999999999"}) {
    EXPECT_EQ(parse_decode_prefetch_bytes(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_decode_prefetch_bytes(nullptr), std::nullopt);
}

TEST(PrefetchDistance, TheProcessDistanceIsInRange) {
  EXPECT_GE(kDecodePrefetchBytes, kDecodePrefetchMin);
  EXPECT_LE(kDecodePrefetchBytes, kDecodePrefetchMax);
}

}  // namespace
}  // namespace fabula
