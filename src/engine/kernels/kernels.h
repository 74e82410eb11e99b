// The engine's kernels, one op per file, each fast kernel beside its *_ref. KernelSet is
// the one list that the engine, the tests and the benchmarks draw from: kFastKernels for
// speed, kRefKernels to check a whole forward pass against plain loops.
#pragma once

#include "engine/kernels/avgpool2x2.h"
#include "engine/kernels/bn_relu_masked.h"
#include "engine/kernels/conv1x1_masked.h"
#include "engine/kernels/conv3x3_masked.h"
#include "engine/kernels/gap_masked.h"
#include "engine/kernels/linear_masked.h"

namespace mapgate {

struct KernelSet {
  const char* name;
  void (*conv3x3)(const MaskedConvArgs&);
  void (*conv1x1)(const MaskedConvArgs&);
  void (*bn_relu)(const BnReluArgs&);
  decltype(&gap_masked_f32) gap;
  decltype(&avgpool2x2_f32) avgpool;
  decltype(&linear_masked_f32) linear;
};

inline constexpr KernelSet kFastKernels{"fast",         conv3x3_masked_f32, conv1x1_masked_f32,
                                        bn_relu_masked_f32, gap_masked_f32,  avgpool2x2_f32,
                                        linear_masked_f32};
inline constexpr KernelSet kRefKernels{"ref",              conv3x3_masked_f32_ref, conv1x1_masked_f32_ref,
                                       bn_relu_masked_f32_ref, gap_masked_f32_ref,  avgpool2x2_f32_ref,
                                       linear_masked_f32_ref};

}  // namespace mapgate
