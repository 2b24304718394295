#include "base/sorted_median.h"

#include <gtest/gtest.h>

#include <vector>

namespace fabula {
namespace {

TEST(SortedMedian, MiddleValueOrMeanOfTheMiddleTwo) {
  EXPECT_EQ(sorted_median(std::vector<double>{}), 0);
  EXPECT_EQ(sorted_median(std::vector<double>{7}), 7);
  EXPECT_EQ(sorted_median(std::vector<double>{1, 2, 10}), 2);
  EXPECT_EQ(sorted_median(std::vector<double>{1, 2, 4, 10}), 3);
  EXPECT_EQ(sorted_median(std::vector<double>{-3, -1}), -2);
}

}  // namespace
}  // namespace fabula
