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

// The kernels that come in several variants (dispatching, portable, AVX2), each with its
// reference: the one list that the kernel tests check against the reference and the
// kernel benchmarks time, so that a new variant is added here and nowhere else.
template <class Args>
struct KernelVariant {
  const char* name;                // the function's own name
  void (*fn)(const Args&);
  bool needs_avx2_fma = false;     // run only where cpu_has_avx2_fma()
  bool runs_here() const { return !needs_avx2_fma || cpu_has_avx2_fma(); }
};

template <class Args>
struct KernelFamily {
  KernelVariant<Args> ref;         // plain loops
  KernelVariant<Args> fast[3];     // what the engine calls (dispatching), then each variant
};

inline constexpr KernelFamily<MaskedConvArgs> kConv3x3Family{
    {"conv3x3_masked_f32_ref", conv3x3_masked_f32_ref},
    {{"conv3x3_masked_f32", conv3x3_masked_f32},
     {"conv3x3_masked_f32_generic", conv3x3_masked_f32_generic},
     {"conv3x3_masked_f32_avx2", conv3x3_masked_f32_avx2, true}}};
inline constexpr KernelFamily<MaskedConvArgs> kConv1x1Family{
    {"conv1x1_masked_f32_ref", conv1x1_masked_f32_ref},
    {{"conv1x1_masked_f32", conv1x1_masked_f32},
     {"conv1x1_masked_f32_generic", conv1x1_masked_f32_generic},
     {"conv1x1_masked_f32_avx2", conv1x1_masked_f32_avx2, true}}};
inline constexpr KernelFamily<BnReluArgs> kBnReluFamily{
    {"bn_relu_masked_f32_ref", bn_relu_masked_f32_ref},
    {{"bn_relu_masked_f32", bn_relu_masked_f32},
     {"bn_relu_masked_f32_generic", bn_relu_masked_f32_generic},
     {"bn_relu_masked_f32_avx2", bn_relu_masked_f32_avx2, true}}};

}  // namespace mapgate
