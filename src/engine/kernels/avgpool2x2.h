// 2x2 average pooling, stride 2, of one example's maps (the end of each transition).
// Must match LibTorch's avg_pool2d(2): floor mode, an odd last row or column is dropped.
#pragma once

#include <cstddef>

namespace mapgate {

// in: planes of (H, W) at in + c * in_plane; out: planes of (H/2, W/2) at out + c * out_plane.
// out[c](y, x) = (in[c](2y, 2x) + in[c](2y, 2x+1) + in[c](2y+1, 2x) + in[c](2y+1, 2x+1)) / 4
// for c in active; no other plane is read or written.
void avgpool2x2_f32(int height, int width, const float* in, std::ptrdiff_t in_plane,
                    const int* active, int n, float* out, std::ptrdiff_t out_plane);
void avgpool2x2_f32_ref(int height, int width, const float* in, std::ptrdiff_t in_plane,
                        const int* active, int n, float* out, std::ptrdiff_t out_plane);

}  // namespace mapgate
