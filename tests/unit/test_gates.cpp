// Gated DenseNet (docs/design.md §2, §4): switched-off maps are exact zeros downstream, all
// gates on reproduces the dense model, and the MAC count matches counts done by hand.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/densenet.h"
#include "model/gated_macs.h"
#include "model/macs.h"

namespace mapgate {
namespace {

DenseNetConfig tiny(bool gated, bool bc = false) {
  DenseNetConfig c;
  c.depth = bc ? 16 : 10;  // 2 layers per block
  c.bc = bc;
  c.growth = 3;
  c.num_classes = 4;
  c.in_channels = 1;
  c.image_size = 8;
  c.gated = gated;
  return c;
}

TEST(GatedModel, GatesOffHasNoGateParametersAndSameInit) {
  torch::manual_seed(5);
  DenseNet dense(tiny(false));
  torch::manual_seed(5);
  DenseNet gated(tiny(true));
  auto gated_params = gated->named_parameters();
  std::size_t gate_tensors = 0;
  for (const auto& p : gated_params)
    if (p.key().rfind("gates.", 0) == 0) ++gate_tensors;
  EXPECT_EQ(gate_tensors, 2u * 6);  // weight + bias per dense layer
  for (const auto& p : dense->named_parameters()) {
    ASSERT_TRUE(gated_params.contains(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), gated_params[p.key()])) << p.key() << " drew other random numbers";
  }
  EXPECT_EQ(dense->named_parameters().size() + gate_tensors, gated_params.size());
}

void expect_all_on_equals_dense(bool bc) {
  torch::manual_seed(7);
  DenseNet dense(tiny(false, bc));
  torch::manual_seed(7);
  DenseNet gated(tiny(true, bc));
  const auto x = torch::randn({5, 1, 8, 8});
  GateControl all_on;
  all_on.mode = GateMode::kAllOn;
  // Training mode (batch statistics, running-stat updates), then eval mode.
  EXPECT_TRUE(torch::equal(dense->forward(x), gated->forward_gated(x, all_on).logits));
  dense->eval();
  gated->eval();
  EXPECT_TRUE(torch::equal(dense->forward(x), gated->forward_gated(x, all_on).logits));
}

TEST(GatedModel, AllGatesOnGivesTheDenseLogits) {
  expect_all_on_equals_dense(/*bc=*/false);
  expect_all_on_equals_dense(/*bc=*/true);
}

TEST(GatedModel, SwitchedOffMapsAreExactZerosDownstream) {
  torch::manual_seed(11);
  const DenseNetConfig c = tiny(true);
  DenseNet model(c);
  model->eval();
  const auto x = torch::randn({4, 1, 8, 8});
  // Random masks, with map 1 of block 1's first layer off for every example.
  GateControl given;
  given.mode = GateMode::kGiven;
  given.keep_features = true;
  for (int l = 0; l < c.dense_layers(); ++l) given.masks.push_back(torch::randint(0, 2, {4, 3}).to(torch::kFloat));
  given.masks[0].select(1, 1).fill_(0);
  const auto out = model->forward_gated(x, given);
  ASSERT_EQ(out.features.size(), 3u);
  // Block b's output: block input (16 stem maps, or the transition's) then 3 maps per layer.
  const std::int64_t block_in[3] = {16, 22, 28};
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 2; ++i) {
      const auto& m = given.masks[b * 2 + i];
      for (int n = 0; n < 4; ++n)
        for (int j = 0; j < 3; ++j) {
          const auto map = out.features[b][n][block_in[b] + 3 * i + j];
          if (m[n][j].item<float>() == 0)
            EXPECT_TRUE(torch::equal(map, torch::zeros_like(map))) << "block " << b << " layer " << i << " map " << j;
          else
            EXPECT_GT(map.abs().max().item<float>(), 0);
        }
    }
  }
  // Changing the weights of a switched-off map changes nothing: it is never read.
  {
    torch::NoGradGuard no_grad;
    auto w = model->named_parameters()["block1.0.conv.weight"];
    w[1].fill_(1e3);
  }
  const auto again = model->forward_gated(x, given);
  EXPECT_TRUE(torch::equal(out.logits, again.logits));
}

TEST(GatedModel, ThresholdAndLogProb) {
  torch::manual_seed(3);
  DenseNet model(tiny(true));
  model->eval();
  const auto x = torch::randn({2, 1, 8, 8});
  GateControl threshold;
  auto out = model->forward_gated(x, threshold);
  // Fresh gates: W = 0, b = 3, so p = 0.01 + 0.98 sigmoid(3) > 0.5 everywhere.
  for (const auto& m : out.masks) EXPECT_TRUE(torch::equal(m, torch::ones_like(m)));
  const double p = 0.01 + 0.98 / (1 + std::exp(-3.0));
  EXPECT_NEAR(out.log_prob[0].item<double>(), 6 * 3 * std::log(p), 1e-4);
  threshold.threshold = 0.99;  // above every p
  out = model->forward_gated(x, threshold);
  for (const auto& m : out.masks) EXPECT_EQ(m.sum().item<float>(), 0);
  EXPECT_NEAR(out.log_prob[0].item<double>(), 6 * 3 * std::log(1 - p), 1e-3);
}

// --gate-unit layer: one gate output per layer, its decision shared by the layer's k maps,
// and the policy's log-probability counts each decision once (not k times).
TEST(GatedModel, PerLayerGateMakesOneDecisionForTheLayersMaps) {
  DenseNetConfig c = tiny(true);
  c.gate_per_layer = true;
  torch::manual_seed(4);
  DenseNet model(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters())
      if (p.key().rfind("gates.", 0) == 0) p.value().normal_(0.0, 0.5);
  }
  EXPECT_EQ(model->named_parameters()["gates.0.fc.weight"].sizes(), (torch::IntArrayRef{1, 16}));
  model->train();
  const auto x = torch::randn({32, 1, 8, 8});
  GateControl sample;
  sample.mode = GateMode::kSample;
  const auto out = model->forward_gated(x, sample);
  auto expected_log_prob = torch::zeros({32});
  double on = 0, total = 0;
  for (std::size_t l = 0; l < out.masks.size(); ++l) {
    const auto& m = out.masks[l];
    ASSERT_EQ(m.sizes(), (torch::IntArrayRef{32, 3}));
    EXPECT_TRUE(torch::equal(m, m.narrow(1, 0, 1).expand({32, 3}))) << "layer " << l << " split its maps";
    EXPECT_TRUE(torch::equal(out.probs[l], out.probs[l].narrow(1, 0, 1).expand({32, 3})));
    expected_log_prob += bernoulli_log_prob(out.probs[l].narrow(1, 0, 1), m.narrow(1, 0, 1));
    on += m.sum().item<double>();
    total += m.numel();
  }
  EXPECT_TRUE(torch::allclose(out.log_prob, expected_log_prob, 1e-5, 1e-5));
  EXPECT_GT(on, 0);  // the draw means something: layers on and off
  EXPECT_LT(on, total);
  // The masks given back reproduce the sampled forward's logits (same maps on).
  GateControl given;
  given.mode = GateMode::kGiven;
  given.masks = out.masks;
  EXPECT_TRUE(torch::allclose(model->forward_gated(x, given).log_prob, out.log_prob, 1e-5, 1e-5));
}

TEST(GatedCost, AllOnIsDensePlusGates) {
  for (const DenseNetConfig& c : {DenseNetConfig{}, tiny(true), tiny(true, true)}) {
    const GatedCost cost(c);
    EXPECT_EQ(cost.dense_macs(), total_cost(densenet_layer_costs(c)).macs);
    EXPECT_EQ(cost.macs(std::vector<int>(cost.layers(), c.growth)), cost.dense_macs() + cost.gate_macs());
  }
  // DenseNet-40: gates read 16 + 12 i (block 1), 160 + 12 i, 304 + 12 i channels, i < 12.
  const GatedCost d40(DenseNetConfig{});
  std::int64_t gate = 0;
  for (int base : {16, 160, 304})
    for (int i = 0; i < 12; ++i) gate += (base + 12 * i) * 12;
  EXPECT_EQ(d40.gate_macs(), gate);
  EXPECT_EQ(d40.dense_macs(), 264812928);
}

TEST(GatedCost, HandMadeMaskCountedByHand) {
  // depth 10, k = 3, 8x8 single-channel input, 4 classes; kept maps per layer:
  const GatedCost cost(tiny(true));
  const std::vector<int> active = {2, 0, 3, 1, 0, 0};
  const std::int64_t stem = 9 * 1 * 16 * 64;
  const std::int64_t block1 = 9 * 16 * 2 * 64     // 16 active inputs -> 2 maps
                              + 0;                // 18 active inputs -> 0 maps
  const std::int64_t trans1 = 18 * 22 * 64;       // 18 of 22 maps active -> 22 maps, at 8x8
  const std::int64_t block2 = 9 * 22 * 3 * 16     // 4x4
                              + 9 * 25 * 1 * 16;
  const std::int64_t trans2 = 26 * 28 * 16;       // 26 of 28 active -> 28
  const std::int64_t block3 = 0;                  // both layers off
  const std::int64_t classifier = 28 * 4;         // 28 of 34 maps active
  const std::int64_t gates = (16 + 19) * 3 + (22 + 25) * 3 + (28 + 31) * 3;
  EXPECT_EQ(cost.macs(active), stem + block1 + trans1 + block2 + trans2 + block3 + classifier + gates);
  EXPECT_EQ(cost.macs(active), 78279);
  EXPECT_THROW(cost.macs({1, 2}), Error);
  EXPECT_THROW(cost.macs({4, 0, 0, 0, 0, 0}), Error);
}

TEST(GatedCost, ExampleMacsFromMasks) {
  const DenseNetConfig c = tiny(true);
  const GatedCost cost(c);
  std::vector<torch::Tensor> masks;
  const std::vector<int> active = {2, 0, 3, 1, 0, 0};
  for (int a : active) {
    auto m = torch::zeros({2, 3});
    m[0].narrow(0, 0, a).fill_(1);  // example 0: the hand-made counts
    m[1].fill_(1);                  // example 1: all on
    masks.push_back(m);
  }
  const auto macs = example_macs(cost, masks);
  EXPECT_EQ(macs[0], 78279);
  EXPECT_EQ(macs[1], cost.dense_macs() + cost.gate_macs());
}

TEST(GatedConfig, JsonKeepsGateSettingsAndDenseJsonIsUnchanged) {
  DenseNetConfig c = tiny(true);
  c.threshold = 0.3;
  c.p_clamp = 0.05;
  const auto back = densenet_config_from_json(to_json(c), "test");
  EXPECT_TRUE(back.gated);
  EXPECT_DOUBLE_EQ(back.threshold, 0.3);
  EXPECT_DOUBLE_EQ(back.p_clamp, 0.05);
  EXPECT_FALSE(to_json(tiny(false)).contains("gates"));
  EXPECT_FALSE(densenet_config_from_json(to_json(tiny(false)), "test").gated);
  EXPECT_FALSE(to_json(c).contains("gate_unit"));  // per-map gates write the files as before
  c.gate_per_layer = true;
  EXPECT_EQ(to_json(c).at("gate_unit"), "layer");
  EXPECT_TRUE(densenet_config_from_json(to_json(c), "test").gate_per_layer);
  auto odd = to_json(c);
  odd["gate_unit"] = "block";
  EXPECT_THROW(densenet_config_from_json(odd, "test"), Error);
  c.threshold = 1.5;
  EXPECT_THROW(validate(c), UsageError);
}

}  // namespace
}  // namespace mapgate
