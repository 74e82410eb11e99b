// The engine (src/engine) against the LibTorch model its weights came from: the same
// images through both, compared logit by logit and mask by mask (docs/design.md §5).
// `mapgate bench` reports it on every run; the engine tests assert on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/densenet.h"

namespace mapgate {

// 0/1 masks (n, layers, k) with round(keep * k) of every layer's k maps on, chosen at
// random (seeded), for EngineMode::kGiven and GateMode::kGiven alike.
std::vector<std::uint8_t> random_layer_masks(const DenseNetConfig& c, int n, double keep, std::uint64_t seed);

struct EngineComparison {
  double max_abs_diff = 0;         // over every logit; NaN when either side has a NaN
  double max_abs_logit = 0;        // of LibTorch's logits: the scale of max_abs_diff
  std::string worst;               // where max_abs_diff is: "example 3, class 7: engine 1.25, LibTorch 1.2501"
  int prediction_mismatches = 0;   // examples whose first arg-max differs
  int mask_mismatches = 0;         // examples whose masks differ anywhere (gated modes)
  std::string first_mask_mismatch; // "example 2, layer 5, map 1: engine on, LibTorch off"
  std::vector<float> logits;       // the engine's, (n, classes)
  std::vector<EngineStats> stats;  // the engine's, one per example
};

// Runs images (n, C, S, S, normalised) through `engine` in its own mode and through
// `model` the same way: kDense against model->forward (pass the ungated network of a gated
// file: densenet_from_weights(without_gates(w))), kGated against forward_gated with
// thresholded masks (the engine's tau), kGiven against forward_gated under `masks`
// ((n, layers, k) 0/1, required). LibTorch runs in batches of 64 without gradients; the
// engine on `threads` threads.
EngineComparison compare_engine_with_libtorch(Engine& engine, DenseNet& model, const float* images, int n,
                                              const std::uint8_t* masks = nullptr, int threads = 1);

}  // namespace mapgate
