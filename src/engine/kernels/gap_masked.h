// Global average pooling of the active maps of one example: the gate input s = GAP(x)
// (docs/design.md §2) and the head's pooling. Must match LibTorch's mean over (H, W).
#pragma once

#include <cstddef>

namespace mapgate {

// in: planes of (H, W) at in + c * in_plane. For c in active: out[c] = mean of in[c].
// Entries of out for other channels and their planes are not touched.
void gap_masked_f32(int height, int width, const float* in, std::ptrdiff_t in_plane,
                    const int* active, int n, float* out);
void gap_masked_f32_ref(int height, int width, const float* in, std::ptrdiff_t in_plane,
                        const int* active, int n, float* out);  // double accumulation

}  // namespace mapgate
