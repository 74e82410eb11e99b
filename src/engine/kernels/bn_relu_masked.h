// BN-ReLU of the active maps of one example, with BN folded into a per-channel scale and
// shift at load time: y = max(0, scale[c] * x + shift[c]), where scale = gamma /
// sqrt(var + eps) and shift = beta - mean * scale (LibTorch's BatchNorm2d in eval mode).
#pragma once

#include <cstddef>

namespace mapgate {

struct BnReluArgs {
  int height = 0, width = 0;
  const float* in = nullptr;        // planes of (H, W) at in + c * in_plane
  std::ptrdiff_t in_plane = 0;
  const int* active = nullptr;      // n active channels; no other plane is read or written
  int n = 0;
  const float* scale = nullptr;     // indexed by channel c
  const float* shift = nullptr;
  float* out = nullptr;             // planes of (H + 2 pad, W + 2 pad) at out + c * out_plane
  std::ptrdiff_t out_plane = 0;
  int pad = 0;                      // 1: write the interior of a zero-padded plane, border untouched
};

void bn_relu_masked_f32(const BnReluArgs& a);          // picks the best variant for this CPU
void bn_relu_masked_f32_ref(const BnReluArgs& a);      // element by element
void bn_relu_masked_f32_generic(const BnReluArgs& a);  // auto-vectorised rows, portable
void bn_relu_masked_f32_avx2(const BnReluArgs& a);     // the same for AVX2; only if cpu_has_avx2_fma()

}  // namespace mapgate
