// Global average pooling on active channels; see gap_masked.h. Must match gap_masked_f32_ref.
#include "engine/kernels/gap_masked.h"

namespace mapgate {

void gap_masked_f32(int height, int width, const float* in, std::ptrdiff_t in_plane,
                    const int* active, int n, float* out) {
  const std::ptrdiff_t pixels = static_cast<std::ptrdiff_t>(height) * width;
  for (int i = 0; i < n; ++i) {
    const int c = active[i];
    const float* src = in + c * in_plane;
    // 8 partial sums: vectorisable, and closer to a pairwise sum than one running total.
    float part[8] = {};
    std::ptrdiff_t q = 0;
    for (; q + 8 <= pixels; q += 8)
      for (int j = 0; j < 8; ++j) part[j] += src[q + j];
    float sum = 0;
    for (; q < pixels; ++q) sum += src[q];
    sum += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    out[c] = sum / static_cast<float>(pixels);
  }
}

void gap_masked_f32_ref(int height, int width, const float* in, std::ptrdiff_t in_plane,
                        const int* active, int n, float* out) {
  const std::ptrdiff_t pixels = static_cast<std::ptrdiff_t>(height) * width;
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (std::ptrdiff_t q = 0; q < pixels; ++q) sum += in[active[i] * in_plane + q];
    out[active[i]] = static_cast<float>(sum / static_cast<double>(pixels));
  }
}

}  // namespace mapgate
