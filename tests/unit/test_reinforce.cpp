// REINFORCE on a toy whose masks can all be enumerated (STYLE.md "Tests"): 3 Bernoulli
// gates with a linear policy p = eps + (1 - 2 eps) sigmoid(W x + b) on two inputs. The
// exact gradient of E[R] is autograd through the sum over all 8 masks; the estimator
// (reinforce_loss, the one the trainer uses) averaged over 20000 samples must match it
// within 4 standard errors (measured from 20 chunks of 1000) plus 1e-3, with no baseline,
// a constant baseline and the greedy (self-critical) baseline.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/densenet.h"
#include "model/gate.h"
#include "model/gated_macs.h"
#include "train/numeric_guard.h"
#include "train/reinforce.h"

namespace mapgate {
namespace {

constexpr double kEps = 0.01;
constexpr int kGates = 3;

struct Toy {
  torch::Tensor w = torch::tensor({{0.5, -1.0}, {1.5, 0.3}, {-0.7, 0.8}}, torch::kDouble).requires_grad_();
  torch::Tensor b = torch::tensor({0.2, -0.4, 1.0}, torch::kDouble).requires_grad_();
  torch::Tensor x = torch::tensor({{1.0, 0.5}, {-0.3, 1.2}}, torch::kDouble);  // 2 inputs

  torch::Tensor probs(const torch::Tensor& inputs) const {
    return gate_probability(inputs.matmul(w.t()) + b, kEps);
  }
  // An arbitrary reward with interactions: R(m, x) per row; m (N, 3), inputs (N, 2).
  static torch::Tensor reward(const torch::Tensor& m, const torch::Tensor& inputs) {
    auto m0 = m.select(1, 0), m1 = m.select(1, 1), m2 = m.select(1, 2);
    auto x0 = inputs.select(1, 0);
    return 2.0 * m0 - 1.5 * m1 * m2 + x0 * m2 - 0.3 * (m0 + m1 + m2) + 0.5 * m0 * m1 * x0;
  }
};

// d/d(w, b) of the mean over inputs of E_{m ~ pi(.|x)}[R(m, x)], by enumeration.
std::vector<torch::Tensor> exact_gradient(Toy& toy) {
  auto p = toy.probs(toy.x);  // (2, 3)
  auto expected = torch::zeros({2}, torch::kDouble);
  for (int code = 0; code < (1 << kGates); ++code) {
    auto m = torch::zeros({2, kGates}, torch::kDouble);
    for (int j = 0; j < kGates; ++j) m.select(1, j).fill_((code >> j) & 1);
    auto prob = torch::exp(bernoulli_log_prob(p, m));
    expected = expected + prob * Toy::reward(m, toy.x);
  }
  auto grads = torch::autograd::grad({expected.mean()}, {toy.w, toy.b});
  return grads;
}

struct Estimate {
  torch::Tensor mean, standard_error;  // flattened (w, b)
};

// The REINFORCE gradient of E[R] (minus the gradient of reinforce_loss).
Estimate reinforce_gradient(Toy& toy, const std::string& baseline_kind, int samples, int chunks) {
  torch::manual_seed(1234);
  std::vector<torch::Tensor> chunk_grads;
  const int per_chunk = samples / chunks;
  for (int c = 0; c < chunks; ++c) {
    // Each chunk: per_chunk / 2 samples of each input.
    auto inputs = toy.x.repeat({per_chunk / 2, 1});
    auto p = toy.probs(inputs);
    auto m = torch::bernoulli(p.detach());
    auto reward = Toy::reward(m, inputs);
    torch::Tensor baseline;
    if (baseline_kind == "none") baseline = torch::scalar_tensor(0.0, torch::kDouble);
    if (baseline_kind == "constant") baseline = torch::scalar_tensor(0.7, torch::kDouble);
    if (baseline_kind == "greedy") baseline = Toy::reward(p.detach().gt(0.5).to(torch::kDouble), inputs);
    auto loss = reinforce_loss(bernoulli_log_prob(p, m), reward, baseline);
    auto g = torch::autograd::grad({loss}, {toy.w, toy.b});
    chunk_grads.push_back(-torch::cat({g[0].flatten(), g[1].flatten()}));
  }
  auto all = torch::stack(chunk_grads);
  return {all.mean(0), all.std(0) / std::sqrt(static_cast<double>(chunks))};
}

void expect_unbiased(const std::string& baseline) {
  Toy toy;
  const auto exact_parts = exact_gradient(toy);
  const auto exact = torch::cat({exact_parts[0].flatten(), exact_parts[1].flatten()});
  const auto est = reinforce_gradient(toy, baseline, /*samples=*/20000, /*chunks=*/20);
  for (int i = 0; i < exact.size(0); ++i) {
    const double e = exact[i].item<double>(), g = est.mean[i].item<double>();
    const double tol = 4 * est.standard_error[i].item<double>() + 1e-3;
    EXPECT_NEAR(g, e, tol) << "baseline " << baseline << ", parameter " << i;
  }
  // The test has teeth: the exact gradient is far from zero.
  EXPECT_GT(exact.abs().max().item<double>(), 0.1);
}

TEST(Reinforce, EstimatorMatchesEnumeratedGradient) { expect_unbiased("none"); }
TEST(Reinforce, ConstantBaselineDoesNotBias) { expect_unbiased("constant"); }
TEST(Reinforce, GreedyBaselineDoesNotBias) { expect_unbiased("greedy"); }

// The analytic cost gradient (the default): REINFORCE on the toy reward R alone plus
// lambda * d mean(p) / d theta, against the enumerated gradient of E[R - lambda * mean(m)].
TEST(Reinforce, AnalyticCostGradientMatchesEnumeration) {
  const double lambda = 0.8;
  Toy toy;
  auto p = toy.probs(toy.x);
  auto expected = torch::zeros({2}, torch::kDouble);
  for (int code = 0; code < (1 << kGates); ++code) {
    auto m = torch::zeros({2, kGates}, torch::kDouble);
    for (int j = 0; j < kGates; ++j) m.select(1, j).fill_((code >> j) & 1);
    expected = expected + torch::exp(bernoulli_log_prob(p, m)) * (Toy::reward(m, toy.x) - lambda * m.mean(1));
  }
  const auto exact_parts = torch::autograd::grad({expected.mean()}, {toy.w, toy.b});
  const auto exact = torch::cat({exact_parts[0].flatten(), exact_parts[1].flatten()});

  DenseNetConfig c;
  c.depth = 7;
  c.growth = kGates;
  c.gated = true;
  const GatedCost cost(c);  // typed only: kMaps reads the probabilities alone
  ReinforceSettings s;
  s.penalty = lambda;
  s.cost_gradient = CostGradient::kAnalytic;
  torch::manual_seed(99);
  std::vector<torch::Tensor> chunks;
  for (int chunk = 0; chunk < 20; ++chunk) {
    auto inputs = toy.x.repeat({500, 1});
    auto probs = toy.probs(inputs);
    auto m = torch::bernoulli(probs.detach());
    auto loss = gate_loss(bernoulli_log_prob(probs, m), {probs}, Toy::reward(m, inputs),
                          torch::scalar_tensor(0.0, torch::kDouble), cost, s);
    auto g = torch::autograd::grad({loss}, {toy.w, toy.b});
    chunks.push_back(-torch::cat({g[0].flatten(), g[1].flatten()}));
  }
  const auto all = torch::stack(chunks);
  const auto mean = all.mean(0), se = all.std(0) / std::sqrt(20.0);
  for (int i = 0; i < exact.size(0); ++i)
    EXPECT_NEAR(mean[i].item<double>(), exact[i].item<double>(), 4 * se[i].item<double>() + 1e-3) << i;
}

// E[cost] in closed form equals the enumeration over every mask, for both costs, with
// and without bottlenecks (where a layer that keeps nothing skips its 1x1 too).
TEST(Reinforce, ExpectedCostEqualsEnumeration) {
  for (bool bc : {false, true}) {
    DenseNetConfig c;
    c.depth = bc ? 10 : 7;  // 3 gates either way
    c.growth = 2;
    c.bc = bc;
    c.gated = true;
    const GatedCost cost(c);
    torch::manual_seed(bc ? 1 : 2);
    std::vector<torch::Tensor> probs;
    for (int l = 0; l < 3; ++l) probs.push_back(torch::rand({1, 2}, torch::kDouble) * 0.9 + 0.05);
    const auto p_all = torch::cat(probs, 1);  // (1, 6)
    for (const GateCost kind : {GateCost::kMaps, GateCost::kMacs}) {
      double enumerated = 0;
      for (int code = 0; code < 64; ++code) {
        auto m = torch::zeros({1, 6}, torch::kDouble);
        for (int j = 0; j < 6; ++j) m[0][j] = (code >> j) & 1;
        const double weight = torch::exp(bernoulli_log_prob(p_all, m)).item<double>();
        enumerated += weight * mask_cost(m.chunk(3, 1), cost, kind).item<double>();
      }
      EXPECT_NEAR(expected_mask_cost(probs, cost, kind).item<double>(), enumerated, 1e-9) << choice_name(kind) << " bc " << bc;
    }
  }
}

// batch_gated_macs against the walk it vectorises, on fractional counts and
// probabilities (expected costs), with and without bottlenecks, compression, other image
// sizes, channels and classes.
TEST(Reinforce, BatchGatedMacsEqualsTheWalk) {
  for (int variant = 0; variant < 3; ++variant) {
    DenseNetConfig c;
    c.depth = variant == 1 ? 16 : variant == 2 ? 13 : 22;
    c.growth = variant == 1 ? 4 : 12;
    c.bc = variant == 1;
    c.compression = variant == 1 ? 0.5 : 1.0;
    if (variant == 2) {
      c.image_size = 28;
      c.in_channels = 1;
      c.num_classes = 100;
    }
    c.gated = true;
    const int layers = c.dense_layers();
    torch::manual_seed(variant);
    const auto active = torch::rand({3, layers}, torch::kDouble) * c.growth;
    const auto any_on = torch::rand({3, layers}, torch::kDouble);
    const auto batch = batch_gated_macs(c, active, any_on);
    for (int i = 0; i < 3; ++i) {
      std::vector<double> a(layers), any(layers);
      for (int l = 0; l < layers; ++l) {
        a[l] = active[i][l].item<double>();
        any[l] = any_on[i][l].item<double>();
      }
      const double walk = gated_macs_walk<double>(c, a, any, 0.0);
      EXPECT_NEAR(batch[i].item<double>(), walk, 1e-9 * walk) << "variant " << variant << " example " << i;
    }
  }
}

// mask_cost's MACs are the exact integer count of every example's masks (example_macs).
TEST(Reinforce, MaskCostInMacsIsTheExactCount) {
  const DenseNetConfig c = [] {
    DenseNetConfig d;
    d.depth = 22;
    d.growth = 6;
    d.gated = true;
    return d;
  }();
  const GatedCost cost(c);
  torch::manual_seed(5);
  std::vector<torch::Tensor> masks;
  for (int l = 0; l < c.dense_layers(); ++l) masks.push_back(torch::bernoulli(torch::full({4, 6}, l % 3 == 0 ? 0.1 : 0.6)));
  masks[2].zero_();  // a layer that keeps nothing
  const auto relative = mask_cost(masks, cost, GateCost::kMacs).to(torch::kDouble);
  const auto exact = example_macs(cost, masks);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(relative[i].item<double>(), static_cast<double>(static_cast<float>(double(exact[i]) / cost.dense_macs())))
        << "example " << i;
}

TEST(Reinforce, GreedyBaselineReducesVariance) {
  Toy toy;
  const auto none = reinforce_gradient(toy, "none", 20000, 20);
  const auto greedy = reinforce_gradient(toy, "greedy", 20000, 20);
  EXPECT_LT(greedy.standard_error.sum().item<double>(), none.standard_error.sum().item<double>());
}

// Two examples, two maps: map 0 is static (p = 0.5 for both), map 1 conditional (0.9 /
// 0.1: log-odds +-log 9). A second layer of static maps halves the means.
TEST(Reinforce, BatchVarianceTermsOnHandMadeProbabilities) {
  const auto conditional = torch::tensor({0.5, 0.9, 0.5, 0.1}, torch::kDouble).view({2, 2});
  const auto still = torch::full({2, 2}, 0.7, torch::kDouble);
  EXPECT_NEAR(batch_variance({conditional}).item<double>(), 0.16 / 2, 1e-12);
  EXPECT_NEAR(batch_logit_variance({conditional}).item<double>(), std::pow(std::log(9.0), 2) / 2, 1e-9);
  EXPECT_NEAR(batch_logit_variance({conditional, still}).item<double>(), std::pow(std::log(9.0), 2) / 4, 1e-9);
  EXPECT_EQ(batch_logit_variance({still}).item<double>(), 0);
}

// The architecture of a gated DenseNet of this depth and growth (a cost reads nothing else).
DenseNetConfig gated_architecture(int depth, int growth) {
  DenseNetConfig c;
  c.depth = depth;
  c.growth = growth;
  c.gated = true;
  return c;
}

TEST(Reinforce, RewardAndCost) {
  const GatedCost cost(gated_architecture(10, 2));
  std::vector<torch::Tensor> masks(6, torch::tensor({{1.0f, 0.0f}, {1.0f, 1.0f}}));
  const auto maps = mask_cost(masks, cost, GateCost::kMaps);
  EXPECT_FLOAT_EQ(maps[0].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(maps[1].item<float>(), 1.0f);
  const auto macs = mask_cost(masks, cost, GateCost::kMacs);
  EXPECT_NEAR(macs[1].item<double>(), double(cost.dense_macs() + cost.gate_macs()) / cost.dense_macs(), 1e-6);
  EXPECT_LT(macs[0].item<double>(), macs[1].item<double>());
  // R = -CE - lambda * cost: uniform logits over 4 classes give CE = log 4.
  const auto logits = torch::zeros({2, 4});
  const auto labels = torch::tensor({0, 3}, torch::kInt64);
  const auto r = gate_reward(logits, labels, maps, 0.2);
  EXPECT_NEAR(r[0].item<double>(), -std::log(4.0) - 0.2 * 0.5, 1e-6);
  EXPECT_NEAR(r[1].item<double>(), -std::log(4.0) - 0.2, 1e-6);
}

// --cost-target T: the analytic cost term pulls on p only while the batch's mean expected
// cost is above T, and then exactly as without a target (a zero reward isolates it).
TEST(Reinforce, CostTargetStopsThePullBelowTheTarget) {
  const GatedCost cost(gated_architecture(7, 2));
  const auto penalty_gradient = [&](double target) {
    auto logits = torch::tensor({{0.0, 1.0}, {2.0, -1.0}}, torch::kDouble).requires_grad_();
    const std::vector<torch::Tensor> probs(3, torch::sigmoid(logits));  // mean p = 0.59
    ReinforceSettings s;
    s.penalty = 2.0;
    s.cost_target = target;
    const auto zero = torch::zeros({2}, torch::kDouble);
    const auto loss = gate_loss(zero, probs, zero, zero, cost, s);
    return torch::autograd::grad({loss}, {logits})[0];
  };
  const auto plain = penalty_gradient(0);
  EXPECT_GT(plain.abs().min().item<double>(), 0.01);
  EXPECT_TRUE(torch::allclose(penalty_gradient(0.5), plain));  // above the target: the same pull
  EXPECT_EQ(penalty_gradient(0.7).abs().max().item<double>(), 0);  // below it: none
}

// A gated DenseNet-7 on 3-class 8x8 images: small enough for a whole step in milliseconds.
DenseNetConfig tiny_gated_config(int growth) {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = growth;
  c.num_classes = 3;
  c.image_size = 8;
  c.gated = true;
  return c;
}

TEST(Reinforce, GreedyThetaMasksTrainWeightsUnderThresholdedMasks) {
  // Gate biases at -1 (p = 0.27): the thresholded masks switch every gated map off, the
  // sampled ones keep about a quarter. Under --theta-masks greedy the weights of the
  // layers' last convolutions, which only feed gated maps, get no gradient, the gates do,
  // the step's logits are the greedy pass's, and BN keeps the greedy pass's statistics only.
  const DenseNetConfig c = tiny_gated_config(4);
  const GatedCost cost(c);
  const auto images = torch::randn({8, 3, 8, 8});
  const auto labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kInt64);
  for (const ThetaMasks theta_masks : {ThetaMasks::kGreedy, ThetaMasks::kSampled}) {
    torch::manual_seed(3);
    DenseNet model(c);
    model->train();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->named_parameters())
        if (p.key().rfind("gates.", 0) == 0 && p.key().find("bias") != std::string::npos) p.value().fill_(-1.0);
    }
    const BufferSnapshot before(*model);
    double mean_baseline = std::nan("");
    ReinforceSettings s;
    s.penalty = 0.1;
    s.theta_masks = theta_masks;
    const GatedStep step = reinforce_step(model, images, labels, cost, s, mean_baseline);
    step.loss.backward();
    auto params = model->named_parameters();
    const auto conv_grad = params["block1.0.conv.weight"].grad();
    const auto gate_grad = params["gates.0.fc.bias"].grad();
    ASSERT_TRUE(gate_grad.defined()) << choice_name(theta_masks);
    EXPECT_GT(gate_grad.abs().sum().item<double>(), 0) << choice_name(theta_masks);
    for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad()) << choice_name(theta_masks);
    if (theta_masks == ThetaMasks::kSampled) {
      EXPECT_GT(conv_grad.abs().sum().item<double>(), 0);
      continue;
    }
    EXPECT_FALSE(conv_grad.defined() && conv_grad.abs().sum().item<double>() > 0);
    EXPECT_DOUBLE_EQ(step.kept, 0.0);
    // Same greedy forward from the same buffers: same logits, same running statistics.
    std::vector<torch::Tensor> after_step;
    for (const auto& b : model->buffers()) after_step.push_back(b.clone());
    before.restore(*model);
    torch::NoGradGuard no_grad;
    const auto greedy = model->forward_gated(images, GateControl{});
    EXPECT_TRUE(torch::allclose(step.logits.detach(), greedy.logits, 1e-5, 1e-6));
    const auto buffers = model->buffers();
    for (std::size_t i = 0; i < buffers.size(); ++i) EXPECT_TRUE(torch::equal(buffers[i], after_step[i])) << i;
  }
}

TEST(Reinforce, NonFiniteAdvantageIsReported) {
  // An infinite penalty makes R = -inf for every example and R - b undefined, while the
  // cross-entropy stays finite: the step must say so (the trainer stops or skips on it).
  const DenseNetConfig c = tiny_gated_config(2);
  torch::manual_seed(1);
  DenseNet model(c);
  model->train();
  const GatedCost cost(c);
  const auto images = torch::randn({4, 3, 8, 8});
  const auto labels = torch::tensor({0, 1, 2, 0}, torch::kInt64);
  double mean_baseline = std::nan("");
  ReinforceSettings s;
  s.cost_gradient = CostGradient::kReinforce;  // the cost inside R (analytic: inside the gate loss)
  s.penalty = 0.5;
  const GatedStep ok = reinforce_step(model, images, labels, cost, s, mean_baseline);
  EXPECT_TRUE(ok.advantage_finite);
  s.penalty = std::numeric_limits<double>::infinity();
  const GatedStep bad = reinforce_step(model, images, labels, cost, s, mean_baseline);
  EXPECT_TRUE(std::isfinite(bad.ce));
  EXPECT_FALSE(bad.advantage_finite);
  // Analytic cost gradient: R holds -CE only, and the infinite penalty shows in the loss.
  s.cost_gradient = CostGradient::kAnalytic;
  const GatedStep analytic = reinforce_step(model, images, labels, cost, s, mean_baseline);
  EXPECT_TRUE(analytic.advantage_finite);
  EXPECT_FALSE(std::isfinite(analytic.loss.item<double>()));
}

}  // namespace
}  // namespace mapgate
