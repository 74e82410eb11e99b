// REINFORCE step for the gates; formulas in reinforce.h and docs/method.md.
#include "train/reinforce.h"

#include <cmath>

#include "common/error.h"
#include "train/numeric_guard.h"

namespace mapgate {
namespace F = torch::nn::functional;

torch::Tensor mask_cost(const std::vector<torch::Tensor>& masks, const GatedCost& cost,
                        const std::string& kind) {
  TORCH_CHECK(!masks.empty(), "mask_cost: no masks");
  if (kind == "maps") {
    std::vector<torch::Tensor> flat;
    for (const auto& m : masks) flat.push_back(m.detach().flatten(1));
    return torch::cat(flat, 1).mean(1);
  }
  if (kind == "macs") {
    const auto macs = example_macs(cost, masks);
    auto out = torch::empty({static_cast<std::int64_t>(macs.size())}, masks[0].options());
    for (std::size_t i = 0; i < macs.size(); ++i)
      out[i] = static_cast<double>(macs[i]) / static_cast<double>(cost.dense_macs());
    return out;
  }
  throw UsageError("--cost " + quoted(kind) + ": unknown; expected one of maps, macs");
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

GatedStep reinforce_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                         const GatedCost& cost, const ReinforceSettings& s, double& mean_baseline) {
  if (s.baseline != "greedy" && s.baseline != "mean")
    throw UsageError("--baseline " + quoted(s.baseline) + ": unknown; expected one of greedy, mean");
  torch::Tensor baseline;
  if (s.baseline == "greedy") {
    // Self-critical: the reward the deterministic policy earns on the same examples.
    // Runs first, and its BN running-stat updates are undone before the sampled pass
    // records its graph (BN's backward checks that those buffers were not modified).
    torch::NoGradGuard no_grad;
    const BufferSnapshot buffers(*model);
    const GatedOutput greedy = model->forward_gated(images, GateControl{});
    buffers.restore(*model);
    baseline = gate_reward(greedy.logits, labels, mask_cost(greedy.masks, cost, s.cost), s.penalty);
  }

  GateControl sample;
  sample.mode = GateMode::kSample;
  const GatedOutput out = model->forward_gated(images, sample);
  const auto ce = F::cross_entropy(out.logits, labels);
  const auto reward = gate_reward(out.logits, labels, mask_cost(out.masks, cost, s.cost), s.penalty);
  if (s.baseline == "mean") {
    // Moving average of past batches' mean reward; the first batch uses its own mean.
    const double batch_mean = reward.mean().item<double>();
    if (std::isnan(mean_baseline)) mean_baseline = batch_mean;
    baseline = torch::scalar_tensor(mean_baseline, reward.options());
    mean_baseline = s.mean_decay * mean_baseline + (1 - s.mean_decay) * batch_mean;
  }

  std::vector<torch::Tensor> probs;
  for (const auto& p : out.probs) probs.push_back(p.flatten(1));
  const auto p_all = torch::cat(probs, 1);  // (N, gated maps)
  const auto entropy = bernoulli_entropy(p_all);  // (N)
  auto loss = ce + reinforce_loss(out.log_prob, reward, baseline);
  if (s.entropy != 0) loss = loss - s.entropy * entropy.mean();

  GatedStep step;
  step.advantage_finite = all_finite(reward - baseline);
  step.logits = out.logits;
  step.loss = loss;
  step.ce = ce.item<double>();
  step.reward = reward.mean().item<double>();
  step.kept = mask_cost(out.masks, cost, "maps").mean().item<double>();
  double macs = 0;
  for (auto m : example_macs(cost, out.masks)) macs += static_cast<double>(m);
  step.macs = macs / images.size(0);
  step.entropy = entropy.mean().item<double>() / p_all.size(1);
  return step;
}

}  // namespace mapgate
