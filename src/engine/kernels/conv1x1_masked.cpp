// Masked 1x1 convolution: reference loops and the register-blocked direct convolution of
// conv_tile.h compiled twice, portable and AVX2+FMA. Must match conv1x1_masked_f32_ref.
#include "engine/kernels/conv1x1_masked.h"

#include "engine/kernels/conv_plan.h"

namespace mapgate {
namespace {

conv_detail::ConvPlan plan(const MaskedConvArgs& a) {
  thread_local conv_detail::ConvPlanStorage storage;
  return conv_detail::make_conv_plan(a, /*kernel=*/1, storage);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("avx2,fma"))) void run_avx2(const conv_detail::ConvPlan& p) {
  conv_detail::conv_run<1>(p);
}
#define MAPGATE_HAVE_AVX2_VARIANT 1
#endif

void run_generic(const conv_detail::ConvPlan& p) { conv_detail::conv_run<1>(p); }

}  // namespace

void conv1x1_masked_f32_ref(const MaskedConvArgs& a) {
  const std::ptrdiff_t pixels = static_cast<std::ptrdiff_t>(a.height) * a.width;
  for (int j = 0; j < a.n_out; ++j) {
    const int o = a.out_active[j];
    float* out = a.out + o * a.out_plane;
    for (std::ptrdiff_t q = 0; q < pixels; ++q) {
      double sum = 0;
      for (int i = 0; i < a.n_in; ++i) {
        const int c = a.in_active[i];
        sum += static_cast<double>(a.weight[static_cast<std::ptrdiff_t>(o) * a.in_total + c]) *
               a.in[c * a.in_plane + q];
      }
      out[q] = static_cast<float>(sum);
    }
  }
}

void conv1x1_masked_f32_generic(const MaskedConvArgs& a) { run_generic(plan(a)); }

void conv1x1_masked_f32_avx2(const MaskedConvArgs& a) {
#ifdef MAPGATE_HAVE_AVX2_VARIANT
  run_avx2(plan(a));
#else
  run_generic(plan(a));
#endif
}

void conv1x1_masked_f32(const MaskedConvArgs& a) {
  if (cpu_has_avx2_fma())
    conv1x1_masked_f32_avx2(a);
  else
    conv1x1_masked_f32_generic(a);
}

}  // namespace mapgate
