// Byte-string helpers of base/ascii.h: splitting, replacement and percent-encoding.
#include <gtest/gtest.h>

#include "base/ascii.h"

namespace fabula {
namespace {

TEST(Ascii, SplitKeepsEmptyParts) {
  using Parts = std::vector<std::string_view>;
  EXPECT_EQ(split("a,b", ','), (Parts{"a", "b"}));
  EXPECT_EQ(split(",a,,b,", ','), (Parts{"", "a", "", "b", ""}));
  EXPECT_EQ(split("", ','), (Parts{""}));
  EXPECT_EQ(split("/usr/bin:/bin", ':'), (Parts{"/usr/bin", "/bin"}));
}

TEST(Ascii, ReplaceAllReplacesEveryOccurrenceLeftToRight) {
  EXPECT_EQ(replace_all("it\xE2\x80\x99s Mio\xE2\x80\x99s", "\xE2\x80\x99", "'"), "it's Mio's");
  EXPECT_EQ(replace_all("aaa", "aa", "b"), "ba");  // no overlaps
  EXPECT_EQ(replace_all("x_y", "_", "__"), "x__y");  // the replacement is not searched again
  EXPECT_EQ(replace_all("", "a", "b"), "");
  EXPECT_EQ(replace_all("abc", "z", "y"), "abc");
}

TEST(Ascii, PercentEncodeKeepsUnreservedAndNamedBytes) {
  EXPECT_EQ(percent_encode("a-Z_0.~"), "a-Z_0.~");
  EXPECT_EQ(percent_encode("a b/c?d=%"), "a%20b%2Fc%3Fd%3D%25");
  EXPECT_EQ(percent_encode("main/sub dir", "/"), "main/sub%20dir");
  EXPECT_EQ(percent_encode("\xE2\x80\x99\x7F"), "%E2%80%99%7F");
}

}  // namespace
}  // namespace fabula
