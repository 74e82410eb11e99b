// BN-ReLU on active channels; formula in bn_relu_masked.h. One loop compiled twice, portable
// and AVX2, picked at run time. Must match bn_relu_masked_f32_ref.
#include "engine/kernels/bn_relu_masked.h"

#include <algorithm>
#include <cstddef>

#include "engine/kernels/masked_conv_args.h"  // cpu_has_avx2_fma

namespace mapgate {

namespace {

// Rows of contiguous floats, vectorised by the compiler for the ISA of the caller.
inline __attribute__((always_inline)) void bn_relu_rows(const BnReluArgs& a) {
  const int w = a.width;
  const int row = w + 2 * a.pad;
  for (int i = 0; i < a.n; ++i) {
    const int c = a.active[i];
    const float s = a.scale[c], t = a.shift[c];
    const float* __restrict in = a.in + c * a.in_plane;
    float* __restrict out = a.out + c * a.out_plane + a.pad * row + a.pad;
    if (a.pad == 0) {  // one run of H*W
      const std::ptrdiff_t pixels = static_cast<std::ptrdiff_t>(a.height) * w;
      for (std::ptrdiff_t q = 0; q < pixels; ++q) {
        const float v = s * in[q] + t;
        out[q] = v > 0.f ? v : 0.f;
      }
      continue;
    }
    for (int y = 0; y < a.height; ++y) {
      const float* src = in + y * w;
      float* dst = out + y * row;
      for (int x = 0; x < w; ++x) {
        const float v = s * src[x] + t;
        dst[x] = v > 0.f ? v : 0.f;
      }
    }
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MAPGATE_HAVE_AVX2_VARIANT 1
#endif

}  // namespace

void bn_relu_masked_f32_generic(const BnReluArgs& a) { bn_relu_rows(a); }

#ifdef MAPGATE_HAVE_AVX2_VARIANT
// AVX2 without FMA: s * x + t stays two roundings, as in the reference.
__attribute__((target("avx2"))) void bn_relu_masked_f32_avx2(const BnReluArgs& a) { bn_relu_rows(a); }
#else
void bn_relu_masked_f32_avx2(const BnReluArgs& a) { bn_relu_rows(a); }
#endif

void bn_relu_masked_f32(const BnReluArgs& a) {
  if (cpu_has_avx2_fma())
    bn_relu_masked_f32_avx2(a);
  else
    bn_relu_masked_f32_generic(a);
}

void bn_relu_masked_f32_ref(const BnReluArgs& a) {
  const int row = a.width + 2 * a.pad;
  for (int i = 0; i < a.n; ++i) {
    const int c = a.active[i];
    for (int y = 0; y < a.height; ++y)
      for (int x = 0; x < a.width; ++x) {
        const float v = a.in[c * a.in_plane + y * a.width + x];
        a.out[c * a.out_plane + (y + a.pad) * row + x + a.pad] = std::max(0.f, a.scale[c] * v + a.shift[c]);
      }
  }
}

}  // namespace mapgate
