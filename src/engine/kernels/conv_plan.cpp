// ConvPlan construction for the masked convolutions; layouts in conv_plan.h.
#include "engine/kernels/conv_plan.h"

namespace mapgate {

bool cpu_has_avx2_fma() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

namespace conv_detail {

ConvPlan make_conv_plan(const MaskedConvArgs& a, int kernel, ConvPlanStorage& s) {
  const int taps = kernel * kernel;
  const int h = a.height, w = a.width;
  // Input offsets of the taps and of each output pixel's top-left tap; they depend on the
  // image size only, so a thread's storage keeps them until the size changes.
  if (s.height != h || s.width != w || s.kernel != kernel) {
    s.segments.clear();
    s.tail.clear();
    if (kernel == 3) {
      const std::ptrdiff_t row = w + 2;
      for (int dy = 0; dy < 3; ++dy)
        for (int dx = 0; dx < 3; ++dx) s.tap_off[dy * 3 + dx] = dy * row + dx;
      for (int y = 0; y < h; ++y) {
        int x = 0;
        for (; x + 8 <= w; x += 8) s.segments.push_back({y * row + x, std::ptrdiff_t{y} * w + x});
        for (; x < w; ++x) s.tail.push_back({y * row + x, std::ptrdiff_t{y} * w + x});
      }
    } else {
      s.tap_off[0] = 0;
      const std::ptrdiff_t pixels = std::ptrdiff_t{h} * w;
      std::ptrdiff_t q = 0;
      for (; q + 8 <= pixels; q += 8) s.segments.push_back({q, q});
      for (; q < pixels; ++q) s.tail.push_back({q, q});
    }
    s.height = h;
    s.width = w;
    s.kernel = kernel;
  }

  ConvPlan p;
  p.in = a.in;
  p.in_plane = a.in_plane;
  p.in_active = a.in_active;
  p.n_in = a.n_in;
  p.tap_off = s.tap_off;
  p.weight = a.weight;
  p.w_out = static_cast<std::ptrdiff_t>(a.in_total) * taps;
  p.out_active = a.out_active;
  p.n_out = a.n_out;
  p.out = a.out;
  p.out_plane = a.out_plane;
  p.segments = s.segments.data();
  p.n_segments = static_cast<int>(s.segments.size());
  p.tail = s.tail.data();
  p.n_tail = static_cast<int>(s.tail.size());
  return p;
}

}  // namespace conv_detail
}  // namespace mapgate
