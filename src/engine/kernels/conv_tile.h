// Internal to the kernels: the register-blocked direct convolution shared by
// conv3x3_masked_f32 and conv1x1_masked_f32. Every function is always_inline so that
// each ISA entry point (a function with __attribute__((target))) gets its own copy
// compiled for its instruction set; the portable copy uses only the default target.
// Must match conv3x3_masked_f32_ref / conv1x1_masked_f32_ref.
#pragma once

#include <cstddef>

#include "engine/kernels/masked_conv_args.h"

#define MAPGATE_ALWAYS_INLINE inline __attribute__((always_inline))

// A 32-byte vector type in always_inline helpers only; no call ever passes it by value
// across an ABI boundary, so GCC's note about the AVX calling convention does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mapgate::conv_detail {

// 8 floats; GCC lowers it to one AVX register or two SSE registers.
typedef float v8f __attribute__((vector_size(32)));

MAPGATE_ALWAYS_INLINE v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
MAPGATE_ALWAYS_INLINE void store8(float* p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }

// A run of 8 consecutive output pixels: in_off is its first input position (the top-left
// tap, in the input plane's coordinates), out_off its first output position.
struct Segment {
  std::ptrdiff_t in_off, out_off;
};

// Everything the compute loop needs; built per call by the kernel's wrapper (conv_plan.h).
// Weights are read in place, in LibTorch's (out_total, in_total, taps) layout: output o,
// input c, tap t at weight[o * w_out + c * TAPS + t], so masking needs no repacking.
struct ConvPlan {
  const float* in;
  std::ptrdiff_t in_plane;
  const int* in_active;
  int n_in;
  const std::ptrdiff_t* tap_off;  // input offset of each tap relative to the top-left one
  const float* weight;
  std::ptrdiff_t w_out;        // in_total * taps: distance between two outputs' weights
  const int* out_active;
  int n_out;
  float* out;
  std::ptrdiff_t out_plane;
  const Segment* segments;     // full 8-pixel runs
  int n_segments;
  const Segment* tail;         // single leftover pixels (odd widths)
  int n_tail;
};

// MR outputs of one group: their weight rows (input 0, tap 0) and output planes.
template <int MR>
struct Rows {
  const float* w[MR];
  float* out[MR];
};

// acc(r, j) = sum_c sum_t w_r(c, t) * in_c[seg_j.in_off + tap_off[t] + i], i < 8.
// Registers (16 on AVX2): MR*NV accumulators, plus either NV inputs and one broadcast
// weight (MR >= NV) or MR broadcast weights and one input (MR < NV).
template <int MR, int NV, int TAPS>
MAPGATE_ALWAYS_INLINE void conv_tile(const ConvPlan& p, const Rows<MR>& rows, const Segment* seg) {
  v8f acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[r][j] = v8f{};
  std::ptrdiff_t in_off[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) in_off[j] = seg[j].in_off;
  for (int c = 0; c < p.n_in; ++c) {
    const int ci = p.in_active[c];
    const float* src = p.in + ci * p.in_plane;
    const std::ptrdiff_t wc = static_cast<std::ptrdiff_t>(ci) * TAPS;
#pragma GCC unroll 9
    for (int t = 0; t < TAPS; ++t) {
      const float* s = src + p.tap_off[t];
      if constexpr (MR < NV) {
        float w[MR];
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) w[r] = rows.w[r][wc + t];
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
          const v8f v = load8(s + in_off[j]);
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) acc[r][j] += v * w[r];
        }
      } else {
        v8f v[NV];
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) v[j] = load8(s + in_off[j]);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const float w = rows.w[r][wc + t];
#pragma GCC unroll 8
          for (int j = 0; j < NV; ++j) acc[r][j] += v[j] * w;
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) store8(rows.out[r] + seg[j].out_off, acc[r][j]);
}

// One output pixel of every row of the group (the scalar tail of odd widths).
template <int MR, int TAPS>
MAPGATE_ALWAYS_INLINE void conv_pixel(const ConvPlan& p, const Rows<MR>& rows, const Segment& seg) {
  float acc[MR] = {};
  for (int c = 0; c < p.n_in; ++c) {
    const int ci = p.in_active[c];
    const float* src = p.in + ci * p.in_plane + seg.in_off;
    const std::ptrdiff_t wc = static_cast<std::ptrdiff_t>(ci) * TAPS;
    for (int t = 0; t < TAPS; ++t) {
      const float v = src[p.tap_off[t]];
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r] += rows.w[r][wc + t] * v;
    }
  }
  for (int r = 0; r < MR; ++r) rows.out[r][seg.out_off] = acc[r];
}

// The last n < NV segments of a group, as one tile of n.
template <int MR, int NV, int TAPS>
MAPGATE_ALWAYS_INLINE void conv_rest(const ConvPlan& p, const Rows<MR>& rows, const Segment* seg, int n) {
  if constexpr (NV > 0) {
    if (n == NV)
      conv_tile<MR, NV, TAPS>(p, rows, seg);
    else
      conv_rest<MR, NV - 1, TAPS>(p, rows, seg, n);
  }
}

// Segments per tile for MR rows: about 12 accumulators (see conv_tile), at least 8 so
// that the FMA latency is hidden. 8x8 maps have 8 segments, 16x16 32, 32x32 128.
template <int MR>
inline constexpr int kTileSegments = MR == 1 ? 8 : MR == 2 ? 6 : MR == 3 ? 4 : MR == 4 ? 3 : 2;

// Segments [begin, end) of the group starting at active output `first`, and the scalar
// tail pixels if `tail`.
template <int MR, int TAPS>
MAPGATE_ALWAYS_INLINE void conv_group(const ConvPlan& p, int first, int begin, int end, bool tail) {
  constexpr int NV = kTileSegments<MR>;
  Rows<MR> rows;
  for (int r = 0; r < MR; ++r) {
    const std::ptrdiff_t o = p.out_active[first + r];
    rows.w[r] = p.weight + o * p.w_out;
    rows.out[r] = p.out + o * p.out_plane;
  }
  int s = begin;
  for (; s + NV <= end; s += NV) conv_tile<MR, NV, TAPS>(p, rows, p.segments + s);
  if (s < end) conv_rest<MR, NV - 1, TAPS>(p, rows, p.segments + s, end - s);
  if (tail)
    for (int i = 0; i < p.n_tail; ++i) conv_pixel<MR, TAPS>(p, rows, p.tail[i]);
}

// The active outputs in balanced groups of at most 6 (7 -> 4 + 3, not 6 + 1); at most 4
// for 1x1, whose tiles then keep every weight row pointer in a register. 3x3 layers have
// few groups (k = 12: two), so each group sweeps the whole map. 1x1 transitions have many
// (160 outputs: 40), so the map is swept in blocks of kBlock segments and every group
// computes one block before the next, while its inputs are still in cache.
template <int TAPS>
MAPGATE_ALWAYS_INLINE void conv_run(const ConvPlan& p) {
  constexpr int kMaxRows = conv_group_rows(TAPS);
  constexpr int kBlock = TAPS == 1 ? 12 : 1 << 30;  // 12: a multiple of every tile width but 8
  const int n_groups = (p.n_out + kMaxRows - 1) / kMaxRows;
  for (int begin = 0; begin < p.n_segments || begin == 0; begin += kBlock) {
    const int end = p.n_segments - begin > kBlock ? begin + kBlock : p.n_segments;
    const bool last = end == p.n_segments;
    for (int g = 0, first = 0; g < n_groups; ++g) {
      const int rows = p.n_out / n_groups + (g < p.n_out % n_groups ? 1 : 0);
      switch (rows) {
        case 1: conv_group<1, TAPS>(p, first, begin, end, last); break;
        case 2: conv_group<2, TAPS>(p, first, begin, end, last); break;
        case 3: conv_group<3, TAPS>(p, first, begin, end, last); break;
        case 4: conv_group<4, TAPS>(p, first, begin, end, last); break;
        case 5: conv_group<5, TAPS>(p, first, begin, end, last); break;
        default: conv_group<6, TAPS>(p, first, begin, end, last); break;
      }
      first += rows;
    }
  }
}

}  // namespace mapgate::conv_detail

#pragma GCC diagnostic pop
