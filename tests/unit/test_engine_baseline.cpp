// --baseline engine (src/train/engine_baseline.h): the engine's greedy reward is the
// eval-mode LibTorch one, and reinforce_step takes it before any training-mode pass, so
// that it does not depend on the sampled masks.
#include <gtest/gtest.h>

#include <cmath>

#include "model/densenet.h"
#include "model/gated_macs.h"
#include "train/engine_baseline.h"
#include "train/reinforce.h"
#include "train/train_config.h"

using namespace mapgate;

namespace {

// A gated DenseNet-10 (two layers per block) on 3-class 8x8 images, standardised gate
// inputs (their running statistics folded into the engine's gates), gates that read
// the input (weights ~ N(0, 2^2), bias 0: p near 0.5, masks that differ between examples)
// and BN running statistics away from their initial 0 / 1 (three training-mode passes).
DenseNet routing_model(std::uint64_t seed) {
  DenseNetConfig c;
  c.depth = 10;
  c.growth = 4;
  c.num_classes = 3;
  c.image_size = 8;
  c.gated = true;
  c.gate_standardize = true;
  torch::manual_seed(seed);
  DenseNet model(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().rfind("gates.", 0) != 0) continue;
      if (p.key().find("bias") != std::string::npos)
        p.value().zero_();
      else
        p.value().normal_(0, 2);
    }
    model->train();
    for (int i = 0; i < 3; ++i) model->forward_gated(torch::randn({16, 3, 8, 8}) * 2 + 0.5, GateControl{});
  }
  return model;
}

torch::Tensor eval_mode_greedy_reward(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                                      const GatedCost& cost, GateCost kind, double lambda) {
  torch::NoGradGuard no_grad;
  model->eval();
  const GatedOutput out = model->forward_gated(images, GateControl{});
  model->train();
  return gate_reward(out.logits, labels, mask_cost(out.masks, cost, kind), lambda);
}

const torch::Tensor kLabels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, torch::kInt64);

}  // namespace

TEST(EngineBaseline, IsTheEvalModeGreedyRewardAndLeavesTheModelAsItWas) {
  DenseNet model = routing_model(5);
  const GatedCost cost(model->config());
  torch::manual_seed(6);
  const auto images = torch::randn({10, 3, 8, 8});
  ASSERT_TRUE(engine_baseline_applies(model));
  for (const GateCost kind : {GateCost::kMaps, GateCost::kMacs}) {
    for (const double lambda : {0.0, 3.0}) {
      std::vector<torch::Tensor> before;
      for (const auto& b : model->buffers()) before.push_back(b.clone());
      const auto engine = engine_greedy_reward(model, images, kLabels, cost, kind, lambda);
      EXPECT_TRUE(model->is_training());
      const auto now = model->buffers();  // the engine pass moved no running statistic
      for (std::size_t i = 0; i < now.size(); ++i) EXPECT_TRUE(torch::equal(before[i], now[i]));
      const auto reference = eval_mode_greedy_reward(model, images, kLabels, cost, kind, lambda);
      ASSERT_EQ(engine.sizes(), reference.sizes());
      EXPECT_TRUE(torch::allclose(engine, reference, 1e-4, 1e-4))
          << choice_name(kind) << " lambda " << lambda << "\n" << engine << "\n" << reference;
      // Not vacuous: with lambda > 0 the rewards carry per-example costs that differ.
      if (lambda > 0) {
        const auto costs = (eval_mode_greedy_reward(model, images, kLabels, cost, kind, 0) - reference) / lambda;
        EXPECT_GT(costs.max().item<double>() - costs.min().item<double>(), 0.05) << choice_name(kind);
      }
    }
  }
}

TEST(EngineBaseline, DoesNotDependOnTheSampledMasks) {
  // Two steps from the same model with different samples (seeds) take the same baseline,
  // the one the engine gives before the step; a baseline taken after the sampled pass
  // (whose BN statistics it would see) would differ between them.
  torch::manual_seed(6);
  const auto images = torch::randn({10, 3, 8, 8});
  double expected = 0;
  {
    DenseNet model = routing_model(5);
    expected = engine_greedy_reward(model, images, kLabels, GatedCost(model->config()), GateCost::kMaps, 0)
                   .mean()
                   .item<double>();
  }
  for (const std::uint64_t seed : {11, 12}) {
    DenseNet model = routing_model(5);
    const GatedCost cost(model->config());
    ReinforceSettings s;
    s.penalty = 1.0;
    s.baseline = Baseline::kEngine;
    double mean_baseline = std::nan("");
    torch::manual_seed(seed);
    const GatedStep step = reinforce_step(model, images, kLabels, cost, s, mean_baseline);
    EXPECT_NEAR(step.baseline, expected, 1e-6) << "seed " << seed;
    EXPECT_NE(step.reward, step.baseline) << "seed " << seed;  // the sample is not the greedy mask
    step.loss.backward();
    EXPECT_GT(model->named_parameters()["gates.0.fc.weight"].grad().abs().sum().item<double>(), 0);
  }
}

TEST(EngineBaseline, AutoIsTheEngineWhereItAppliesAndSavesSomething) {
  DenseNet model = routing_model(5);
  EXPECT_EQ(TrainConfig{}.baseline, Baseline::kAuto);  // the default of mapgate train
  EXPECT_EQ(resolved_baseline(Baseline::kAuto, ThetaMasks::kSampled, model), Baseline::kEngine);
  // With theta under the greedy masks their LibTorch pass runs anyway and is the baseline.
  EXPECT_EQ(resolved_baseline(Baseline::kAuto, ThetaMasks::kGreedy, model), Baseline::kGreedy);
  for (const Baseline b : {Baseline::kGreedy, Baseline::kEngine, Baseline::kMean})
    EXPECT_EQ(resolved_baseline(b, ThetaMasks::kSampled, model), b);
  // Core maps that tau would switch off: the engine cannot compute this model.
  DenseNetConfig c = model->config();
  c.core_maps = 1;
  c.threshold = 1 - c.p_clamp;
  DenseNet closed_core(c);
  EXPECT_EQ(resolved_baseline(Baseline::kAuto, ThetaMasks::kSampled, closed_core), Baseline::kGreedy);
  c.threshold = 0.5;
  DenseNet open_core(c);
  EXPECT_EQ(resolved_baseline(Baseline::kAuto, ThetaMasks::kSampled, open_core), Baseline::kEngine);
}

namespace {

// The baseline one step from routing_model(5) takes when asked for `asked`.
double step_baseline(Baseline asked, const torch::Tensor& images) {
  DenseNet model = routing_model(5);
  ReinforceSettings s;
  s.penalty = 1.0;
  s.baseline = asked;
  double mean_baseline = std::nan("");
  torch::manual_seed(11);
  return reinforce_step(model, images, kLabels, GatedCost(model->config()), s, mean_baseline).baseline;
}

}  // namespace

TEST(EngineBaseline, AutoStepTakesTheEngineBaseline) {
  torch::manual_seed(6);
  const auto images = torch::randn({10, 3, 8, 8});
  const double automatic = step_baseline(Baseline::kAuto, images);
  EXPECT_EQ(automatic, step_baseline(Baseline::kEngine, images));
  // Not vacuous: the greedy baseline, a training-mode pass, differs from the eval-mode one.
  EXPECT_NE(step_baseline(Baseline::kGreedy, images), automatic);
}
