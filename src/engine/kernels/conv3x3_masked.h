// Masked 3x3 convolution (stride 1, padding 1, no bias) of one example: only the active
// output maps, from only the active input maps (docs/design.md §5). Must match LibTorch's
// Conv2d(kernel 3, padding 1) restricted to those channels; conv3x3_masked_f32_ref is the
// reference the fast variants are tested against.
#pragma once

#include "engine/kernels/masked_conv_args.h"

namespace mapgate {

// a.in:     planes of (H+2, W+2), zero border, interior = the BN-ReLU'd input map
// a.weight: (out_total, in_total, 3, 3)
// a.out:    planes of (H, W)
// for o in out_active:
//   out[o](y, x) = sum_{c in in_active} sum_{dy, dx < 3} weight[o][c][dy][dx] * in[c](y + dy, x + dx)
// (in's padded coordinates). No other plane is read or written; n_in = 0 writes zeros.
void conv3x3_masked_f32(const MaskedConvArgs& a);        // picks the best variant for this CPU
void conv3x3_masked_f32_ref(const MaskedConvArgs& a);    // plain loops, double accumulation
void conv3x3_masked_f32_generic(const MaskedConvArgs& a);  // portable (SSE2 on x86-64)
void conv3x3_masked_f32_avx2(const MaskedConvArgs& a);   // AVX2 + FMA; only if cpu_has_avx2_fma()

}  // namespace mapgate
