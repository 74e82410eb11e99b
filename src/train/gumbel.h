// Straight-through Gumbel-sigmoid gates with a target-rate loss (ConvNet-AIG, Veit &
// Belongie 2018; docs/design.md §3 "for comparison"): the same network and gates as
// REINFORCE, but the gates learn by back-propagation through a relaxed mask.
//   training:  m_l = straight-through Gumbel-sigmoid of p_l at temperature T
//              (forward exactly 0/1 ~ Bernoulli(p_l); backward through sigmoid((logit p + L) / T))
//   loss:      CE(f(x; m), y) + lambda * sum_l (mean_{i,j} m_l,ij - t)^2 - beta * H(pi)
// lambda = --penalty, t = --target-rate, T = --gumbel-temperature. Theta and phi both get
// the gradient of this one loss (theta by SGD, phi by the same Adam as REINFORCE).
// Inference is the same deterministic p > tau as for REINFORCE gates.
#pragma once

#include <vector>

#include "train/reinforce.h"

namespace mapgate {

// lambda * sum over layers of (kept fraction of layer l over the batch - target)^2; the
// masks are the straight-through ones, so this is differentiable w.r.t. the gates.
torch::Tensor target_rate_loss(const std::vector<torch::Tensor>& masks, double target, double lambda);

struct GumbelSettings {
  double penalty = 0;      // lambda in effect for this step (after any ramp)
  double target = 0.5;     // t: wanted kept fraction per layer
  double temperature = 1;  // T
  double entropy = 0;      // beta, as for REINFORCE
};

// One training step's forward for a gated model in training mode; GatedStep::reward is 0
// (no reward here), rate_loss the target-rate term.
GatedStep gumbel_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                      const GatedCost& cost, const GumbelSettings& settings);

}  // namespace mapgate
