// Straight-through Gumbel-sigmoid gates (--gates gumbel, src/train/gumbel.h): the mask
// is exactly 0/1 in the forward and Bernoulli(p); its gradient w.r.t. the gate logits
// is the relaxed mask's (finite differences); in the model a switched-off map is an exact zero and the gates get a
// gradient from CE; on a short synthetic run the target rate moves the kept fraction;
// the run's checkpoint evaluates like any gated run.
#include <fstream>

#include <gtest/gtest.h>

#include "../e2e/synthetic_data.h"
#include "model/densenet.h"
#include "model/gate.h"
#include "train/evaluate.h"
#include "train/gumbel.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

bool all_zero_or_one(const torch::Tensor& m) { return m.eq(0).logical_or(m.eq(1)).all().item<bool>(); }

TEST(Gumbel, StraightThroughMaskIsExactlyBinaryWithGradient) {
  torch::manual_seed(5);
  const auto z = (3 * torch::randn({64, 8})).requires_grad_();
  for (double t : {0.3, 1.0, 4.0}) {
    const auto m = gumbel_straight_through(gate_probability(z, 0.01), t);
    EXPECT_TRUE(all_zero_or_one(m)) << "T " << t;
    EXPECT_TRUE(m.requires_grad());
    const auto w = torch::randn({64, 8});
    const auto g = torch::autograd::grad({(m * w).sum()}, {z})[0];
    // d m / d z = sigmoid'((logit p + L) / T) / T * d logit(p) / d z: nonzero except where
    // float sigmoid' underflows to 0 for extreme noise at low T.
    EXPECT_GT(g.ne(0).to(torch::kFloat).mean().item<float>(), 0.9) << "T " << t;
  }
  // Same noise: the temperature changes the gradient, never the forward mask.
  const auto noise = torch::rand({64, 8}).clamp(1e-6, 1 - 1e-6);
  const auto l = torch::log(noise) - torch::log1p(-noise);
  const auto a = gumbel_straight_through(gate_probability(z, 0.01), 0.5, l);
  const auto b = gumbel_straight_through(gate_probability(z, 0.01), 2.0, l);
  EXPECT_TRUE(torch::equal(a, b));
  const auto ga = torch::autograd::grad({a.sum()}, {z})[0], gb = torch::autograd::grad({b.sum()}, {z})[0];
  EXPECT_FALSE(torch::allclose(ga, gb));
}

// The straight-through gradient is the relaxed mask's: d/dz of sum(w * soft(z)), soft =
// sigmoid((logit p(z) + L) / T), checked against central differences in double.
TEST(Gumbel, StraightThroughGradientEqualsTheRelaxedMasksByFiniteDifference) {
  torch::manual_seed(7);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto z = (2 * torch::randn({4, 6}, opts)).requires_grad_();
  const auto u = torch::rand({4, 6}, opts).clamp(1e-3, 1 - 1e-3);
  const auto noise = torch::log(u) - torch::log1p(-u);
  const auto w = torch::randn({4, 6}, opts);
  const double t = 0.7, eps = 0.01, h = 1e-6;
  auto relaxed_sum = [&](const torch::Tensor& zz) {
    const auto p = gate_probability(zz, eps);
    return (w * torch::sigmoid((torch::log(p) - torch::log1p(-p) + noise) / t)).sum().item<double>();
  };
  const auto st = gumbel_straight_through(gate_probability(z, eps), t, noise);
  const auto grad = torch::autograd::grad({(st * w).sum()}, {z})[0];
  torch::NoGradGuard no_grad;
  const auto base = z.detach();
  auto numeric = torch::zeros_like(base);
  for (int64_t i = 0; i < base.numel(); ++i) {
    auto plus = base.clone(), minus = base.clone();
    plus.view(-1)[i] += h;
    minus.view(-1)[i] -= h;
    numeric.view(-1)[i] = (relaxed_sum(plus) - relaxed_sum(minus)) / (2 * h);
  }
  EXPECT_GT(numeric.abs().max().item<double>(), 1e-3) << "a gradient worth checking";
  EXPECT_TRUE(torch::allclose(grad, numeric, /*rtol=*/1e-6, /*atol=*/1e-8))
      << "autograd\n" << grad << "\nfinite differences\n" << numeric;
}

TEST(Gumbel, HardMaskIsBernoulliOfP) {
  torch::manual_seed(6);
  const auto p = torch::tensor({0.05, 0.3, 0.5, 0.8, 0.97}).repeat({40000, 1});
  const auto freq = gumbel_straight_through(p, 1.0).mean(0);
  // 40000 samples: standard error <= 0.0025.
  EXPECT_TRUE(torch::allclose(freq, p[0], /*rtol=*/0, /*atol=*/0.01)) << freq;
}

TEST(Gumbel, ModelMasksAreExactZerosAndGatesGetGradientFromCe) {
  torch::manual_seed(7);
  DenseNetConfig c;
  c.depth = 10;
  c.growth = 3;
  c.num_classes = 4;
  c.in_channels = 1;
  c.image_size = 8;
  c.gated = true;
  DenseNet model(c);
  {  // move the gates to p = 0.5 so that about half the maps are off
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters())
      if (p.key().rfind("gates.", 0) == 0 && p.key().find("bias") != std::string::npos) p.value().zero_();
  }
  model->train();
  GateControl control;
  control.mode = GateMode::kGumbel;
  control.keep_features = true;
  const auto x = torch::randn({6, 1, 8, 8});
  const auto out = model->forward_gated(x, control);
  const std::int64_t block_in[3] = {16, 22, 28};
  int off = 0;
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 2; ++i) {
      const auto& m = out.masks[b * 2 + i];
      ASSERT_TRUE(all_zero_or_one(m));
      for (int n = 0; n < 6; ++n)
        for (int j = 0; j < 3; ++j)
          if (m[n][j].item<float>() == 0) {
            ++off;
            const auto map = out.features[b][n][block_in[b] + 3 * i + j];
            EXPECT_TRUE(torch::equal(map, torch::zeros_like(map)));
          }
    }
  EXPECT_GT(off, 0);
  const auto labels = torch::randint(0, 4, {6}, torch::kInt64);
  torch::nn::functional::cross_entropy(out.logits, labels).backward();
  const auto g = model->named_parameters()["gates.0.fc.bias"].grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().sum().item<float>(), 0);
  // The target-rate loss: lambda * sum_l (kept fraction of l - t)^2.
  std::vector<torch::Tensor> masks{torch::ones({2, 2}), torch::tensor({{1.f, 0.f}, {0.f, 0.f}})};
  EXPECT_NEAR(target_rate_loss(masks, 0.5, 2.0).item<double>(), 2.0 * (0.25 + 0.0625), 1e-6);
}

std::vector<nlohmann::json> read_metrics(const std::string& run) {
  std::ifstream in(std::filesystem::path(run) / kMetricsFile);
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TrainConfig gumbel_config(const std::string& out_dir, double target) {
  TrainConfig c;
  c.dataset = "quadrant-blobs";
  c.out_dir = out_dir;
  c.model.depth = 10;
  c.model.growth = 4;
  c.epochs = 2;
  c.batch = 16;
  c.lr = 0.05;
  c.threads = 1;
  c.seed = 4;
  c.augment = false;
  c.gates = Gates::kGumbel;
  c.penalty = 10;      // a strong pull towards the target
  c.target_rate = target;
  c.gate_lr = 1.0;     // standardised gate inputs: the bias alone moves the rate
  return c;
}

TEST(Gumbel, TargetRateMovesTheKeptFractionAndEvalReproducesMetrics) {
  test::ScratchDir dir;
  const DatasetSplits data = test::make_quadrant_splits(192, 48, 12, 9);
  train(gumbel_config(dir / "low", 0.3), data, nullptr);
  train(gumbel_config(dir / "high", 0.9), data, nullptr);
  const auto low = read_metrics(dir / "low").back();
  const auto high = read_metrics(dir / "high").back();
  for (const auto& m : {low, high})
    for (const char* key : {"train_kept_fraction", "train_macs_mean", "train_rate_loss", "test_macs_mean",
                            "test_active_fraction", "test_per_layer_active"})
      EXPECT_TRUE(m.contains(key)) << key;
  const double kept_low = low["train_kept_fraction"].get<double>();
  const double kept_high = high["train_kept_fraction"].get<double>();
  EXPECT_LT(kept_low, kept_high - 0.2);
  EXPECT_NEAR(kept_low, 0.3, 0.15);
  EXPECT_NEAR(kept_high, 0.9, 0.15);
  EXPECT_LT(low["test_macs_mean"].get<double>(), high["test_macs_mean"].get<double>());
  // The checkpoint records the estimator; eval (thresholded p) reproduces the metrics.
  TrainedModel t = load_trained_model(dir / "low");
  EXPECT_TRUE(t.config.gated);
  const EvalResult r = evaluate(t.model, data.test, t.normalization);
  EXPECT_DOUBLE_EQ(r.accuracy(), low["test_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(r.macs_mean(), low["test_macs_mean"].get<double>());
  const auto config = nlohmann::json::parse(std::ifstream(dir / "low" + "/config.json"));
  EXPECT_EQ(config["gates"], "gumbel");
  EXPECT_EQ(config["target_rate"], 0.3);
  EXPECT_EQ(config["gumbel_temperature"], 1.0);
}

}  // namespace
}  // namespace mapgate
