// How a run's gates are set up (docs/method.md): the model settings that follow the gate
// flags, which gate parameters train, and where the gates of a fresh run start (the
// baselines' fixed gates, --init-mask).
#pragma once

#include <vector>

#include "model/densenet.h"
#include "train/train_config.h"

namespace mapgate {

// c.model's gate settings from the run's flags: gated, the gate input, per-layer units,
// sampled inference (--gates random); --gates frozen takes the --init run's gate input,
// unit, threshold and p clamp (UsageError if that run has no gates).
void apply_gate_flags(TrainConfig& c);

// Gate parameters that train (phi): none unless the gates learn; the biases alone for
// --gate-weights frozen (W stays 0 and stops taking gradients, so the policy cannot
// depend on the input).
std::vector<torch::Tensor> trainable_gate_parameters(DenseNet& model, const TrainConfig& c);

// A fresh run's gates: --gates random, W = 0 and p at each layer's --random-keep rate;
// --gates fixed, the static mask of --fixed-maps (b = +-10); --init-mask, a static mask
// the REINFORCE gates depart from (b = +-3, p = 0.95 or 0.05). Others stay as built.
void initialise_gates(DenseNet& model, const TrainConfig& c);

}  // namespace mapgate
