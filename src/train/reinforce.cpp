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

torch::Tensor batch_gated_macs(const DenseNetConfig& c, const torch::Tensor& active, const torch::Tensor& any_on) {
  const std::int64_t k = c.growth, n = c.layers_per_block();
  std::int64_t h = c.image_size, w = c.image_size, channels = c.stem_channels();
  auto total = torch::full({active.size(0)}, double(9 * c.in_channels * channels * h * w), active.options());
  double block_input = static_cast<double>(channels);  // maps into the block: all on (stem, transitions)
  torch::Tensor on_at_end;
  for (int b = 0; b < 3; ++b) {
    const auto a = active.narrow(1, b * n, n);           // (N, n)
    const auto on = a.cumsum(1) - a + block_input;        // maps each layer reads
    if (c.bc)
      total = total + (any_on.narrow(1, b * n, n) * on).sum(1) * double(4 * k * h * w) +
              a.sum(1) * double(9 * 4 * k * h * w);
    else
      total = total + (on * a).sum(1) * double(9 * h * w);
    channels += n * k;
    on_at_end = a.sum(1) + block_input;
    if (b == 2) break;
    const std::int64_t out = c.transition_out(static_cast<int>(channels));
    total = total + on_at_end * double(out * h * w);  // conv1x1 before the 2x2 pooling
    channels = out;
    block_input = static_cast<double>(out);
    h /= 2;
    w /= 2;
  }
  return total + on_at_end * double(c.num_classes);  // classifier
}

torch::Tensor mask_macs(const std::vector<torch::Tensor>& masks, const GatedCost& cost) {
  TORCH_CHECK(!masks.empty(), "mask_macs: no masks");
  torch::NoGradGuard no_grad;
  const auto kept = kept_counts(masks).to(torch::kDouble);  // whole maps: every product and sum exact in double
  return batch_gated_macs(cost.config(), kept, kept.gt(0).to(torch::kDouble)) + double(cost.gate_macs());
}

std::vector<double> host_values(const std::vector<torch::Tensor>& scalars) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : scalars) flat.push_back(t.detach().to(torch::kDouble).reshape({1}));
  const auto host = torch::cat(flat).to(torch::kCPU);
  const double* v = host.data_ptr<double>();
  return std::vector<double>(v, v + host.numel());
}

torch::Tensor mask_cost(const std::vector<torch::Tensor>& masks, const GatedCost& cost, GateCost kind) {
  TORCH_CHECK(!masks.empty(), "mask_cost: no masks");
  if (kind == GateCost::kMaps) return all_maps(masks).detach().mean(1);
  return (mask_macs(masks, cost) / static_cast<double>(cost.dense_macs())).to(masks[0].scalar_type());
}

torch::Tensor expected_mask_cost(const std::vector<torch::Tensor>& probs, const GatedCost& cost, GateCost kind) {
  TORCH_CHECK(!probs.empty(), "expected_mask_cost: no probabilities");
  if (kind == GateCost::kMaps) return all_maps(probs).mean(1);
  const auto p = torch::stack(probs, 1).to(torch::kDouble);  // (N, L, k)
  const auto counts = p.sum(2);                              // E[a_l]
  const auto any_on = 1 - (1 - p).prod(2);                   // P(a_l > 0)
  const auto macs = batch_gated_macs(cost.config(), counts, any_on) + double(cost.gate_macs());
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

  // Reported as -CE - lambda * cost(m) of the sample whichever way the cost's gradient is taken.
  const auto reported_reward = (reward - (s.penalty - lambda_in_reward) * sampled_cost).mean();
  const auto v = host_values({ce, reported_reward, baseline.mean(),
                              mask_cost(trained.masks, cost, GateCost::kMaps).mean(),
                              mask_macs(trained.masks, cost).mean(), entropy.mean(),
                              torch::isfinite(reward - baseline).all()});
  GatedStep step;
  step.logits = trained.logits;
  step.loss = loss;
  step.ce_loss = ce;
  step.ce = v[0];
  step.reward = v[1];
  step.baseline = v[2];
  step.kept = v[3];
  step.macs = v[4];
  step.entropy = v[5] / p_all.size(1);
  step.advantage_finite = v[6] != 0;
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
  const auto v = host_values(
      {step.loss, mask_cost(out.masks, cost, GateCost::kMaps).mean(), mask_macs(out.masks, cost).mean()});
  step.ce = v[0];
  step.kept = v[1];
  step.macs = v[2];
  step.reward = -step.ce;
  return step;
}

}  // namespace mapgate
