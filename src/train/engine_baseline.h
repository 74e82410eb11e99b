// The self-critical baseline on the inference engine (--baseline engine, docs/method.md §2):
// the reward of the thresholded masks [p > tau] on the same examples, computed by the
// LibTorch-free engine (src/engine) from the model's current weights: eval-mode BN
// (running statistics), switched-off maps skipped. It does not depend on the sampled mask,
// so REINFORCE stays unbiased; it costs one pass at inference speed instead of a LibTorch
// training-mode forward.
#pragma once

#include <torch/types.h>

#include "model/densenet.h"
#include "model/gated_macs.h"
#include "train/choices.h"

namespace mapgate {

// Whether the engine can compute this model's baseline: a gated model on the CPU whose
// masks are thresholded at inference (not --gates random) and whose core maps, if any,
// stay on (tau < 1 - eps).
bool engine_baseline_applies(const DenseNet& model);

// The baseline a step uses for the one asked for: kAuto (--baseline auto, the default) is
// kEngine where it applies and theta trains under the sampled masks, otherwise kGreedy
// (with --theta-masks greedy the LibTorch thresholded pass runs anyway and its reward is
// the greedy baseline at no extra cost). Any other choice is returned as it is.
Baseline resolved_baseline(Baseline requested, ThetaMasks theta_masks, const DenseNet& model);

// R = -CE - lambda * cost(m) per example (N), m = [p > tau] as the engine decides it.
// images: (N, C, S, S) normalised, on the CPU; labels (N). No gradient.
torch::Tensor engine_greedy_reward(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                                   const GatedCost& cost, GateCost kind, double lambda);

}  // namespace mapgate
