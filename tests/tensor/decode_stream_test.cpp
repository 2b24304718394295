#include "tensor/decode_stream.h"

#include <array>
#include <optional>

#include <gtest/gtest.h>

namespace fabula {
namespace {

TEST(DecodeStream, VendorsGetTheirMeasuredDistance) {
  EXPECT_EQ(decode_prefetch_bytes_for_vendor("GenuineIntel"), 1024u);
  EXPECT_EQ(decode_prefetch_bytes_for_vendor("AuthenticAMD"), 16384u);
  EXPECT_EQ(decode_prefetch_bytes_for_vendor(""), 16384u);  // unknown (or not x86): the AMD-tuned default
}

TEST(DecodeStream, TheOverrideIsAWholeNumberOfBytesInRange) {
  EXPECT_EQ(parse_decode_prefetch_bytes("1024"), 1024u);
  EXPECT_EQ(parse_decode_prefetch_bytes("64"), kDecodePrefetchMin);
  EXPECT_EQ(parse_decode_prefetch_bytes("1048576"), kDecodePrefetchMax);
  for (const char* bad : {"", "63", "1048577", "-1024", "1k", "10 24", "abc", "99999999999999999999999"}) {
    EXPECT_EQ(parse_decode_prefetch_bytes(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_decode_prefetch_bytes(nullptr), std::nullopt);
}

TEST(DecodeStream, VendorsGetTheirMeasuredRowStreams) {
  EXPECT_EQ(decode_row_streams_for_vendor("GenuineIntel", GemvFamily::kQ4_K), 4);
  EXPECT_EQ(decode_row_streams_for_vendor("GenuineIntel", GemvFamily::kQ6_K), 4);
  EXPECT_EQ(decode_row_streams_for_vendor("GenuineIntel", GemvFamily::kQ8_0), 3);
  for (const GemvFamily family : {GemvFamily::kQ4_K, GemvFamily::kQ6_K, GemvFamily::kQ8_0}) {
    EXPECT_EQ(decode_row_streams_for_vendor("AuthenticAMD", family), 1);
    EXPECT_EQ(decode_row_streams_for_vendor("", family), 1);
  }
}

TEST(DecodeStream, TheRowStreamsOverrideIsOneToFourForAllOrEachFamily) {
  auto parsed = [](const char* text) -> std::optional<std::array<int, 3>> {
    const auto s = parse_decode_row_streams(text);
    if (!s) return std::nullopt;
    return std::array<int, 3>{s->q4_K, s->q6_K, s->q8_0};
  };
  using Counts = std::array<int, 3>;
  EXPECT_EQ(parsed("1"), (Counts{1, 1, 1}));
  EXPECT_EQ(parsed("2"), (Counts{2, 2, 2}));
  EXPECT_EQ(parsed("3"), (Counts{3, 3, 3}));
  EXPECT_EQ(parsed("4"), (Counts{4, 4, 4}));
  EXPECT_EQ(parsed("3,4,3"), (Counts{3, 4, 3}));  // Q4_K, Q6_K, the Q8_0 family
  EXPECT_EQ(parsed("1,2,4"), (Counts{1, 2, 4}));
  for (const char* bad : {"", "0", "5", "-1", "2 ", "two", "12", "3,4", "3,4,3,1", "3,0,3", "3,5,3", "3,,3", "3,4,",
                          ",3,4", "3;4;3", "3, 4, 3", "34,3"}) {
    EXPECT_EQ(parsed(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parsed(nullptr), std::nullopt);
  for (const GemvFamily family : {GemvFamily::kQ4_K, GemvFamily::kQ6_K, GemvFamily::kQ8_0}) {
    EXPECT_GE(decode_row_streams(family), 1);
    EXPECT_LE(decode_row_streams(family), kMaxDecodeRowStreams);
  }
}

TEST(DecodeStream, SettingRowStreamsKeepsCountsInRange) {
  const DecodeRowStreams saved = decode_row_streams();
  set_decode_row_streams({3, 4, 2});
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ4_K), 3);
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ6_K), 4);
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ8_0), 2);
  set_decode_row_streams({0, 5, -1});  // out of range: one row at a time
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ4_K), 1);
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ6_K), 1);
  EXPECT_EQ(decode_row_streams(GemvFamily::kQ8_0), 1);
  set_decode_row_streams(saved);
}

TEST(DecodeStream, VendorsGetTheirMeasuredDecodeChunk) {
  EXPECT_EQ(decode_chunk_bytes_for_vendor("GenuineIntel"), 256 * 1024);
  EXPECT_EQ(decode_chunk_bytes_for_vendor("AuthenticAMD"), 64 * 1024);
  EXPECT_EQ(decode_chunk_bytes_for_vendor(""), 64 * 1024);
}

TEST(DecodeStream, OnlyIntelBuildsTheFifthBitsInAGeneralRegister) {
  EXPECT_TRUE(decode_fifth_bits_from_gpr_for_vendor("GenuineIntel"));
  EXPECT_FALSE(decode_fifth_bits_from_gpr_for_vendor("AuthenticAMD"));
  EXPECT_FALSE(decode_fifth_bits_from_gpr_for_vendor(""));
}

TEST(DecodeStream, TheProcessDistanceIsInRange) {
  EXPECT_GE(kDecodePrefetchBytes, kDecodePrefetchMin);
  EXPECT_LE(kDecodePrefetchBytes, kDecodePrefetchMax);
}

}  // namespace
}  // namespace fabula
