#include "model/decode_ab.h"

#include <algorithm>

#include "base/sorted_median.h"

namespace fabula {

AbbaSummary summarize_abba(const std::vector<double>& step_ns) {
  AbbaSummary s;
  std::vector<double> ratios;
  double a_ns = 0, b_ns = 0;
  for (size_t i = 0; i + 4 <= step_ns.size(); i += 4) {
    const double a = step_ns[i] + step_ns[i + 3], b = step_ns[i + 1] + step_ns[i + 2];
    if (b <= 0) continue;  // a clock that did not move: no ratio
    ratios.push_back(a / b);
    a_ns += a;
    b_ns += b;
  }
  if (ratios.empty()) return s;
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  // Nearest rank: the value at or above fraction f of the sorted ratios.
  auto rank = [&](double f) { return ratios[std::min(n - 1, static_cast<size_t>(f * static_cast<double>(n)))]; };
  s.quads = static_cast<int>(n);
  s.median = sorted_median(ratios);
  s.q1 = rank(0.25);
  s.q3 = rank(0.75);
  s.whole = a_ns / b_ns;
  return s;
}

}  // namespace fabula
