// 2x2 average pooling; see avgpool2x2.h. Must match avgpool2x2_f32_ref.
#include "engine/kernels/avgpool2x2.h"

namespace mapgate {

void avgpool2x2_f32(int height, int width, const float* in, std::ptrdiff_t in_plane,
                    const int* active, int n, float* out, std::ptrdiff_t out_plane) {
  const int oh = height / 2, ow = width / 2;
  for (int i = 0; i < n; ++i) {
    const int c = active[i];
    for (int y = 0; y < oh; ++y) {
      const float* __restrict r0 = in + c * in_plane + (2 * y) * width;
      const float* __restrict r1 = r0 + width;
      float* __restrict dst = out + c * out_plane + y * ow;
      for (int x = 0; x < ow; ++x)
        dst[x] = ((r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1])) * 0.25f;
    }
  }
}

void avgpool2x2_f32_ref(int height, int width, const float* in, std::ptrdiff_t in_plane,
                        const int* active, int n, float* out, std::ptrdiff_t out_plane) {
  const int oh = height / 2, ow = width / 2;
  for (int i = 0; i < n; ++i) {
    const int c = active[i];
    auto at = [&](int y, int x) { return static_cast<double>(in[c * in_plane + y * width + x]); };
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x)
        out[c * out_plane + y * ow + x] = static_cast<float>(
            (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4);
  }
}

}  // namespace mapgate
