// REINFORCE step for the gates; formulas in reinforce.h and docs/method.md.
#include "train/reinforce.h"

#include <cmath>

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include "train/engine_baseline.h"
#include "train/numeric_guard.h"

namespace mapgate {
namespace F = torch::nn::functional;

namespace {

// Every gated map of a batch side by side: (N, maps) from the per-layer (N, k) tensors.
torch::Tensor all_maps(const std::vector<torch::Tensor>& per_layer) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : per_layer) flat.push_back(t.flatten(1));
  return torch::cat(flat, 1);
}

// Mean over maps of each map's (biased) variance across the batch; 0 for one example.
torch::Tensor mean_batch_variance(const torch::Tensor& all) {
  if (all.size(0) < 2) return torch::zeros({}, all.options());
  return all.var(0, /*unbiased=*/false).mean();
}

}  // namespace

torch::Tensor mask_cost(const std::vector<torch::Tensor>& masks, const GatedCost& cost, GateCost kind) {
  TORCH_CHECK(!masks.empty(), "mask_cost: no masks");
  if (kind == GateCost::kMaps) return all_maps(masks).detach().mean(1);
  const auto macs = example_macs(cost, masks);
  auto out = torch::empty({static_cast<std::int64_t>(macs.size())}, torch::kDouble);
  for (std::size_t i = 0; i < macs.size(); ++i)
    out[i] = static_cast<double>(macs[i]) / static_cast<double>(cost.dense_macs());
  return out.to(masks[0].options());
}

torch::Tensor expected_mask_cost(const std::vector<torch::Tensor>& probs, const GatedCost& cost, GateCost kind) {
  TORCH_CHECK(!probs.empty(), "expected_mask_cost: no probabilities");
  if (kind == GateCost::kMaps) return all_maps(probs).mean(1);
  std::vector<torch::Tensor> counts, any_on;
  for (const auto& p : probs) {
    const auto pd = p.to(torch::kDouble);
    counts.push_back(pd.sum(1));             // E[a_l]
    any_on.push_back(1 - (1 - pd).prod(1));  // P(a_l > 0)
  }
  const auto zero = torch::zeros({probs[0].size(0)}, counts[0].options());
  const auto macs = gated_macs_walk(cost.config(), counts, any_on, zero) + cost.gate_macs();
  return (macs / static_cast<double>(cost.dense_macs())).to(probs[0].scalar_type());
}

torch::Tensor batch_variance(const std::vector<torch::Tensor>& probs) { return mean_batch_variance(all_maps(probs)); }

torch::Tensor batch_logit_variance(const std::vector<torch::Tensor>& probs) {
  return mean_batch_variance(torch::logit(all_maps(probs)));  // p inside [eps, 1 - eps]: finite
}

std::unique_ptr<torch::optim::Optimizer> make_gate_optimizer(GateOptimizer kind, double lr,
                                                             const std::vector<torch::Tensor>& phi) {
  if (kind == GateOptimizer::kSgd) return std::make_unique<torch::optim::SGD>(phi, torch::optim::SGDOptions(lr));
  return std::make_unique<torch::optim::Adam>(phi, torch::optim::AdamOptions(lr));
}

double reward_penalty(const ReinforceSettings& s) {
  return s.cost_gradient == CostGradient::kAnalytic ? 0.0 : s.penalty;
}

torch::Tensor gate_loss(const torch::Tensor& log_prob, const std::vector<torch::Tensor>& probs,
                        const torch::Tensor& reward, const torch::Tensor& baseline, const GatedCost& cost,
                        const ReinforceSettings& s) {
  auto loss = reinforce_loss(log_prob, reward, baseline);
  if (s.cost_gradient == CostGradient::kAnalytic && s.penalty != 0)
    loss = loss + s.penalty * torch::relu(expected_mask_cost(probs, cost, s.cost).mean() - s.cost_target);
  if (s.entropy == 0 && s.variance == 0 && s.logit_variance == 0) return loss;
  const auto p = all_maps(probs);  // once for the three terms below
  if (s.entropy != 0) loss = loss - s.entropy * bernoulli_entropy(p).mean();
  if (s.variance != 0) loss = loss - s.variance * mean_batch_variance(p);
  if (s.logit_variance != 0) loss = loss + s.logit_variance * mean_batch_variance(torch::logit(p));
  return loss;
}

torch::Tensor gate_reward(const torch::Tensor& logits, const torch::Tensor& labels,
                          const torch::Tensor& cost, double lambda) {
  torch::NoGradGuard no_grad;
  auto ce = F::cross_entropy(logits.detach(), labels, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  return -ce - lambda * cost.to(ce.scalar_type());
}

torch::Tensor reinforce_loss(const torch::Tensor& log_prob, const torch::Tensor& reward,
                             const torch::Tensor& baseline) {
  const auto advantage = (reward - baseline).detach();
  return -(advantage * log_prob).mean();
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> split_parameters(
    torch::nn::Module& model) {
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> out;
  for (const auto& p : model.named_parameters())
    (p.key().rfind("gates.", 0) == 0 ? out.second : out.first).push_back(p.value());
  return out;
}

namespace {

// Parameters that take no gradient while it lives (requires_grad off, then back on).
class FrozenParameters {
 public:
  explicit FrozenParameters(std::vector<torch::Tensor> params) : params_(std::move(params)) {
    for (auto& p : params_) p.requires_grad_(false);
  }
  ~FrozenParameters() {
    for (auto& p : params_) p.requires_grad_(true);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
};

// A forward pass whose BN running-statistics updates are undone: the extra pass of a
// step (the greedy baseline, or the sample when theta trains under the greedy masks).
GatedOutput side_pass(DenseNet& model, const torch::Tensor& images, const GateControl& control) {
  const BufferSnapshot buffers(*model);
  GatedOutput out = model->forward_gated(images, control);
  buffers.restore(*model);
  return out;
}

}  // namespace

GatedStep reinforce_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                         const GatedCost& cost, const ReinforceSettings& s, double& mean_baseline) {
  const double lambda_in_reward = reward_penalty(s);
  const Baseline baseline_kind = resolved_baseline(s.baseline, s.theta_masks, model);
  GateControl sample;
  sample.mode = GateMode::kSample;
  GatedOutput out;     // the REINFORCE sample
  GatedOutput greedy;  // the thresholded masks, when theta trains on them or they are the baseline
  torch::Tensor baseline;
  // Before any training-mode pass: BN running statistics updated under the sample would
  // make the baseline depend on it.
  if (baseline_kind == Baseline::kEngine)
    baseline = engine_greedy_reward(model, images, labels, cost, s.cost, lambda_in_reward);
  // The side pass runs first: the other records theta's graph, and BN's backward checks
  // that the running statistics it saved were not modified after it.
  if (s.theta_masks == ThetaMasks::kGreedy) {
    {
      const FrozenParameters theta(split_parameters(*model).first);  // the sample trains the gates only
      out = side_pass(model, images, sample);
    }
    greedy = model->forward_gated(images, GateControl{});
  } else {
    if (baseline_kind == Baseline::kGreedy) {
      // Self-critical: the reward the deterministic policy earns on the same examples.
      torch::NoGradGuard no_grad;
      greedy = side_pass(model, images, GateControl{});
    }
    out = model->forward_gated(images, sample);
  }
  const GatedOutput& trained = s.theta_masks == ThetaMasks::kGreedy ? greedy : out;
  const auto ce = F::cross_entropy(trained.logits, labels);
  const auto sampled_cost = mask_cost(out.masks, cost, s.cost);
  const auto reward = gate_reward(out.logits, labels, sampled_cost, lambda_in_reward);
  if (baseline_kind == Baseline::kGreedy) {
    baseline = gate_reward(greedy.logits, labels, mask_cost(greedy.masks, cost, s.cost), lambda_in_reward);
  } else if (baseline_kind == Baseline::kMean) {
    // Moving average of past batches' mean reward; the first batch uses its own mean.
    const double batch_mean = reward.mean().item<double>();
    if (std::isnan(mean_baseline)) mean_baseline = batch_mean;
    baseline = torch::scalar_tensor(mean_baseline, reward.options());
    mean_baseline = s.mean_decay * mean_baseline + (1 - s.mean_decay) * batch_mean;
  }

  const auto p_all = all_maps(out.probs).detach();  // (N, gated maps)
  const auto entropy = bernoulli_entropy(p_all);     // (N)
  const auto loss = ce + gate_loss(out.log_prob, out.probs, reward, baseline, cost, s);

  GatedStep step;
  step.advantage_finite = all_finite(reward - baseline);
  step.logits = trained.logits;
  step.loss = loss;
  step.ce_loss = ce;
  step.ce = ce.item<double>();
  // Reported as -CE - lambda * cost(m) of the sample whichever way the cost's gradient is taken.
  step.reward = (reward - (s.penalty - lambda_in_reward) * sampled_cost).mean().item<double>();
  step.baseline = baseline.mean().item<double>();
  step.kept = mask_cost(trained.masks, cost, GateCost::kMaps).mean().item<double>();
  double macs = 0;
  for (auto m : example_macs(cost, trained.masks)) macs += static_cast<double>(m);
  step.macs = macs / images.size(0);
  step.entropy = entropy.mean().item<double>() / p_all.size(1);
  return step;
}

GatedStep fixed_gates_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                           const GatedCost& cost, GateMode mode) {
  GateControl control;
  control.mode = mode;
  const GatedOutput out = model->forward_gated(images, control);
  GatedStep step;
  step.logits = out.logits;
  step.loss = F::cross_entropy(out.logits, labels);
  step.ce_loss = step.loss;
  step.ce = step.loss.item<double>();
  step.kept = mask_cost(out.masks, cost, GateCost::kMaps).mean().item<double>();
  double macs = 0;
  for (auto m : example_macs(cost, out.masks)) macs += static_cast<double>(m);
  step.macs = macs / images.size(0);
  step.reward = -step.ce;
  return step;
}

}  // namespace mapgate
