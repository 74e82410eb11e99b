// Internal to the kernels: turns MaskedConvArgs into a ConvPlan (conv_tile.h): the tap
// offsets and the output pixels as runs of 8 plus single-pixel tails, cached per thread
// for the last image size seen. Weights are not copied: the plan points at them.
#pragma once

#include <vector>

#include "engine/kernels/conv_tile.h"
#include "engine/kernels/masked_conv_args.h"

namespace mapgate::conv_detail {

struct ConvPlanStorage {
  int height = -1, width = -1, kernel = -1;  // what segments, tail and tap_off were built for
  std::vector<Segment> segments, tail;
  std::ptrdiff_t tap_off[9] = {};
};

// kernel: 3 (input planes zero-padded to (H+2, W+2)) or 1 (input planes (H, W)).
ConvPlan make_conv_plan(const MaskedConvArgs& a, int kernel, ConvPlanStorage& storage);

}  // namespace mapgate::conv_detail
