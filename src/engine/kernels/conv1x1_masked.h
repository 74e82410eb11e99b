// Masked 1x1 convolution (no bias) of one example: only the active outputs from only the
// active inputs (transitions, and the BC bottleneck). Must match LibTorch's Conv2d
// (kernel 1) restricted to those channels; conv1x1_masked_f32_ref is the reference.
#pragma once

#include "engine/kernels/masked_conv_args.h"

namespace mapgate {

// a.in:     planes of (H, W)
// a.weight: (out_total, in_total, 1, 1)
// a.out:    planes of (H, W)
// for o in out_active: out[o](q) = sum_{c in in_active} weight[o][c] * in[c](q), q < H*W.
// No other plane is read or written; n_in = 0 writes zeros.
void conv1x1_masked_f32(const MaskedConvArgs& a);          // picks the best variant for this CPU
void conv1x1_masked_f32_ref(const MaskedConvArgs& a);      // plain loops, double accumulation
void conv1x1_masked_f32_generic(const MaskedConvArgs& a);  // portable (SSE2 on x86-64)
void conv1x1_masked_f32_avx2(const MaskedConvArgs& a);     // AVX2 + FMA; only if cpu_has_avx2_fma()

}  // namespace mapgate
