// The median of values already sorted ascending, as the decode measurements report it (model/decode_bound.h,
// model/decode_ab.h): the middle value, or the mean of the middle two for an even count; 0 for none.
#pragma once

#include <span>

namespace fabula {

inline double sorted_median(std::span<const double> sorted) {
  const size_t n = sorted.size();
  if (n == 0) return 0;
  return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

}  // namespace fabula
