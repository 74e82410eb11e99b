// REINFORCE for the gates (docs/method.md §2). Per example, with masks m ~ pi(. | x):
//   E[R] = -E[CE(f(x; m), y)] - lambda * E[cost(m)]
// The CE part needs the score function: -(R_ce - b) * log pi(m | x), (R_ce - b) detached,
// whose gradient w.r.t. the gate weights phi is, in expectation, -grad_phi E[-CE] for any
// baseline b that does not depend on m. The cost part has a closed form in p (analytic,
// the default): its gradient is exact and noise-free. --cost-gradient reinforce puts the
// cost into R instead (the estimator before). Network weights theta get CE only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>

#include "model/densenet.h"
#include "model/gated_macs.h"
#include "train/choices.h"

namespace mapgate {

// gated_macs_walk for a whole batch at once, without the gate cost: active (N, L) kept maps
// per dense layer (or their expectations), any_on (N, L) whether a layer keeps any (or its
// probability), double; MACs (N), differentiable. A block at a time: the maps a layer
// reads are the block's input plus the earlier layers' kept maps (a cumulative sum), so
// a DenseNet-40 takes about 30 operators, not 10 per layer (docs/scale.md, "Fewer
// operators per step for a GPU").
torch::Tensor batch_gated_macs(const DenseNetConfig& c, const torch::Tensor& active, const torch::Tensor& any_on);

// Exact MACs (N, double, the gates' included) of every example's masks, computed where the
// masks are (no host read); no gradient. The same numbers as example_macs (model/gate.h).
torch::Tensor mask_macs(const std::vector<torch::Tensor>& masks, const GatedCost& cost);

// Scalars (any dtype, on any device) read back to the host in one copy: on a GPU one wait
// for the queue instead of one per number (item()).
std::vector<double> host_values(const std::vector<torch::Tensor>& scalars);

// Per-example cost (N) of masks: kMaps = fraction of gated maps on, in [0, 1];
// kMacs = exact MACs / dense MACs (gate cost included, so all-on is slightly above 1).
torch::Tensor mask_cost(const std::vector<torch::Tensor>& masks, const GatedCost& cost, GateCost kind);

// E[cost(m) | x] (N) for m ~ Bernoulli(p), differentiable w.r.t. p: kMaps, the mean of p;
// kMacs, expected MACs / dense MACs (exact: the MAC count on expected counts, batch_gated_macs).
torch::Tensor expected_mask_cost(const std::vector<torch::Tensor>& probs, const GatedCost& cost, GateCost kind);

// Bengio et al. (2015)'s batch-variance term: mean over gated maps of the variance of p_j
// across the batch (scalar, differentiable). A static gate has 0; subtracting gamma times
// it pushes gates to differ between inputs.
torch::Tensor batch_variance(const std::vector<torch::Tensor>& probs);

// The opposite pressure: mean over gated maps of the variance across the batch of each
// gate's log-odds log(p / (1 - p)) (scalar, differentiable). 0 exactly when every example
// gets the same p; with a standardised gate input it is about |W_j|^2 per gate, so adding
// delta times it pulls the input weights to 0 unless the reward keeps them (a gate stays
// static unless routing pays).
torch::Tensor batch_logit_variance(const std::vector<torch::Tensor>& probs);

// R = -CE(logits_i, y_i) - lambda * cost_i, per example (N); no gradient.
torch::Tensor gate_reward(const torch::Tensor& logits, const torch::Tensor& labels,
                          const torch::Tensor& cost, double lambda);

// The surrogate -mean_i (R_i - b_i) log pi(m_i | x_i); its gradient is the REINFORCE
// estimate of -grad E[R]. baseline: (N) or a scalar tensor; reward and baseline are
// detached here.
torch::Tensor reinforce_loss(const torch::Tensor& log_prob, const torch::Tensor& reward,
                             const torch::Tensor& baseline);

// Parameters of a DenseNet split into the network weights theta and the gate weights
// phi ("gates.*"), each in named_parameters() order (so theta of an ungated model is
// exactly parameters()).
std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> split_parameters(
    torch::nn::Module& model);

struct ReinforceSettings {
  double penalty = 0;              // lambda in effect for this step (after any ramp)
  GateCost cost = GateCost::kMaps;
  CostGradient cost_gradient = CostGradient::kAnalytic;  // lambda E[cost] through p | cost in R
  // T: the analytic cost term is lambda * max(0, mean E[cost] - T) over the batch, so the
  // penalty stops pulling once the batch's expected cost is at the target (0: lambda * mean
  // E[cost], the same since a cost is never negative). Per batch, not per example: an
  // image may cost more than T when others cost less.
  double cost_target = 0;
  double variance = 0;             // gamma: the policy loss subtracts gamma * batch_variance(p)
  double logit_variance = 0;       // delta: the policy loss adds delta * batch_logit_variance(p)
  Baseline baseline = Baseline::kGreedy;  // kAuto: resolved_baseline (engine_baseline.h) per step
  double entropy = 0;              // beta: the policy loss subtracts beta * H(pi(. | x))
  double mean_decay = 0.9;         // mean baseline: b <- decay b + (1 - decay) mean(R)
  // Masks theta is trained under: kSampled (the REINFORCE sample, as in the paper) or
  // kGreedy (the thresholded masks inference uses; the sample then only scores the gates).
  ThetaMasks theta_masks = ThetaMasks::kSampled;
};

struct GatedStep {
  torch::Tensor logits;   // (N, classes) under the masks theta trains on (theta_masks)
  torch::Tensor loss;     // scalar: CE mean (theta) + policy loss (phi); call backward()
  torch::Tensor ce_loss;  // scalar: the CE mean inside `loss`, the same graph node (--distill replaces part of it)
  double ce = 0;          // batch means:
  double reward = 0;
  double baseline = 0;    // REINFORCE: b (0 for the target-rate loss)
  double kept = 0;        // fraction of gated maps on
  double macs = 0;        // exact MACs per example
  double entropy = 0;     // policy entropy per map, nats
  double rate_loss = 0;   // --gates gumbel: the target-rate loss (0 for REINFORCE)
  bool advantage_finite = true;  // REINFORCE: every example's R - b is finite
};

// The gates' loss for one batch: REINFORCE on `reward` (N) against `baseline` (N or
// scalar), plus lambda * max(0, mean E[cost | x] - T) when the cost gradient is analytic, minus the
// entropy and batch-variance bonuses, plus the log-odds variance penalty. reward holds -CE, and also -lambda * cost(m) when
// s.cost_gradient is kReinforce (gate_reward with that lambda).
torch::Tensor gate_loss(const torch::Tensor& log_prob, const std::vector<torch::Tensor>& probs,
                        const torch::Tensor& reward, const torch::Tensor& baseline, const GatedCost& cost,
                        const ReinforceSettings& s);
// The gates' optimizer (--gate-optimizer): Adam, or plain SGD (no momentum).
std::unique_ptr<torch::optim::Optimizer> make_gate_optimizer(GateOptimizer kind, double lr,
                                                             const std::vector<torch::Tensor>& phi);

// lambda that goes into R under s (0 when the cost's gradient is analytic).
double reward_penalty(const ReinforceSettings& s);

// One training step's forward for a gated model in training mode. mean_baseline is the
// running state of the "mean" baseline (NaN before the first step; updated here).
// The greedy baseline runs a second, gradient-free forward with thresholded masks and
// restores the BN running statistics it touched, so only the sampled pass updates them.
GatedStep reinforce_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                         const GatedCost& cost, const ReinforceSettings& settings,
                         double& mean_baseline);

// The baselines --gates random (mode kSample: masks drawn at the fixed gate rates) and
// --gates fixed (kThreshold: the same maps for every input): theta learns CE under those
// masks; nothing else trains.
GatedStep fixed_gates_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                           const GatedCost& cost, GateMode mode);

}  // namespace mapgate
