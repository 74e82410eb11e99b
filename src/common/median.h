// The median of a sample (the mean of the two middle values for an even count): how
// every timing in mapgate is summarised (docs/perf.md: medians of alternating runs).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mapgate {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

}  // namespace mapgate
