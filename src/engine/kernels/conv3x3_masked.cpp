// Masked 3x3 convolution: reference loops and the register-blocked direct convolution of
// conv_tile.h compiled twice, portable and AVX2+FMA. Must match conv3x3_masked_f32_ref.
#include "engine/kernels/conv3x3_masked.h"

#include "engine/kernels/conv_plan.h"

namespace mapgate {
namespace {

conv_detail::ConvPlan plan(const MaskedConvArgs& a) {
  thread_local conv_detail::ConvPlanStorage storage;
  return conv_detail::make_conv_plan(a, /*kernel=*/3, storage);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("avx2,fma"))) void run_avx2(const conv_detail::ConvPlan& p) {
  conv_detail::conv_run<9>(p);
}
#define MAPGATE_HAVE_AVX2_VARIANT 1
#endif

void run_generic(const conv_detail::ConvPlan& p) { conv_detail::conv_run<9>(p); }

}  // namespace

void conv3x3_masked_f32_ref(const MaskedConvArgs& a) {
  const int h = a.height, w = a.width;
  const std::ptrdiff_t row = w + 2;
  for (int j = 0; j < a.n_out; ++j) {
    const int o = a.out_active[j];
    float* out = a.out + o * a.out_plane;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double sum = 0;
        for (int i = 0; i < a.n_in; ++i) {
          const int c = a.in_active[i];
          const float* in = a.in + c * a.in_plane;
          const float* k = a.weight + (static_cast<std::ptrdiff_t>(o) * a.in_total + c) * 9;
          for (int dy = 0; dy < 3; ++dy)
            for (int dx = 0; dx < 3; ++dx)
              sum += static_cast<double>(k[dy * 3 + dx]) * in[(y + dy) * row + x + dx];
        }
        out[y * w + x] = static_cast<float>(sum);
      }
  }
}

void conv3x3_masked_f32_generic(const MaskedConvArgs& a) { run_generic(plan(a)); }

void conv3x3_masked_f32_avx2(const MaskedConvArgs& a) {
#ifdef MAPGATE_HAVE_AVX2_VARIANT
  run_avx2(plan(a));
#else
  run_generic(plan(a));
#endif
}

void conv3x3_masked_f32(const MaskedConvArgs& a) {
  if (cpu_has_avx2_fma())
    conv3x3_masked_f32_avx2(a);
  else
    conv3x3_masked_f32_generic(a);
}

}  // namespace mapgate
