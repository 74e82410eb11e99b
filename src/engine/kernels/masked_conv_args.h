// Arguments shared by the masked convolution kernels (conv3x3_masked.h, conv1x1_masked.h):
// one example, per-channel planes (CHW float), and the lists of active input and output
// maps. A plane whose channel is not listed is never read or written (docs/design.md §5).
#pragma once

#include <cstddef>

namespace mapgate {

struct MaskedConvArgs {
  int height = 0, width = 0;        // output size H x W (stride 1, so also the input size)
  // Input planes: channel c starts at in + c * in_plane. conv3x3 reads a zero-padded
  // (H+2, W+2) plane (row stride W+2, border zero); conv1x1 reads an (H, W) plane.
  const float* in = nullptr;
  std::ptrdiff_t in_plane = 0;
  const int* in_active = nullptr;   // n_in active input channels (indices into in and weight dim 1)
  int n_in = 0;
  // weight: (out_total, in_total, kh, kw), LibTorch's Conv2d layout; in_total is its dim 1.
  const float* weight = nullptr;
  int in_total = 0;
  const int* out_active = nullptr;  // n_out active outputs (indices into weight dim 0 and out)
  int n_out = 0;
  // Output planes: (H, W), channel o starts at out + o * out_plane.
  float* out = nullptr;
  std::ptrdiff_t out_plane = 0;
};

// The fast convolutions compute a call's active outputs in balanced groups of at most this
// many rows (conv_tile.h's conv_run): of n outputs in G = ceil(n / rows) groups, group g
// holds n / G + (g < n % G ? 1 : 0). An output's float arithmetic depends on its group's
// size, so a caller that splits one call's outputs between threads splits at these groups
// and calls once per group to get the one-call result bit for bit.
constexpr int conv_group_rows(int taps) { return taps == 1 ? 4 : 6; }

// True when this CPU runs the *_avx2 kernel variants (AVX2 and FMA).
bool cpu_has_avx2_fma();

}  // namespace mapgate
