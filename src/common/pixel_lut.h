// The input normalisation as a lookup table: lut[c * 256 + v] = (v / 255 - mean[c]) / std[c]
// (a std <= 0 counts as 1). Shared by the data loader and the engine library's pixel
// entry point; header-only because the engine does not link the data library.
#pragma once

#include <cstddef>
#include <vector>

namespace mapgate {

inline std::vector<float> pixel_lut(const std::vector<float>& mean, const std::vector<float>& std) {
  std::vector<float> lut(mean.size() * 256);
  for (std::size_t c = 0; c < mean.size(); ++c) {
    const float s = std[c] > 0.0f ? std[c] : 1.0f;
    for (int v = 0; v < 256; ++v) lut[c * 256 + v] = (static_cast<float>(v) / 255.0f - mean[c]) / s;
  }
  return lut;
}

}  // namespace mapgate
