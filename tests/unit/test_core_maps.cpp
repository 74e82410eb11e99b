// --core-maps K (docs/method.md §1, "Core maps"): the first K maps of every layer are
// computed for every image without a decision, in every gate mode but given masks; the
// policy's log-probability counts the other maps' decisions only, so no gradient reaches
// a core map's gate; the setting round-trips through the model config and is checked.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/densenet.h"

namespace mapgate {
namespace {

DenseNetConfig tiny_with_core(int core) {
  DenseNetConfig c;
  c.depth = 10;  // 2 layers per block, 6 gates
  c.growth = 3;
  c.num_classes = 4;
  c.in_channels = 1;
  c.image_size = 8;
  c.gated = true;
  c.core_maps = core;
  return c;
}

// Gates that would switch most maps off (bias -2) and depend on the input (random W).
DenseNet model_with_closing_gates(int core) {
  torch::manual_seed(11);
  DenseNet model(tiny_with_core(core));
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().rfind("gates.", 0) != 0) continue;
    if (p.key().find("bias") != std::string::npos) p.value().fill_(-2.0);
    else p.value().normal_(0.0, 0.1);
  }
  return model;
}

TEST(CoreMaps, FirstMapsAreOnWithoutADecisionInEveryMode) {
  DenseNet model = model_with_closing_gates(/*core=*/1);
  model->train();
  const auto x = torch::randn({32, 1, 8, 8});
  for (GateMode mode : {GateMode::kSample, GateMode::kThreshold, GateMode::kGumbel}) {
    GateControl control;
    control.mode = mode;
    const auto out = model->forward_gated(x, control);
    auto expected_log_prob = torch::zeros({32});
    double gated_on = 0, gated_total = 0;
    for (std::size_t l = 0; l < out.masks.size(); ++l) {
      const auto m = out.masks[l].detach(), p = out.probs[l].detach();
      ASSERT_EQ(m.sizes(), (torch::IntArrayRef{32, 3}));
      EXPECT_TRUE(torch::equal(m.narrow(1, 0, 1), torch::ones({32, 1}))) << "layer " << l;
      EXPECT_TRUE(torch::equal(p.narrow(1, 0, 1), torch::ones({32, 1}))) << "layer " << l;
      expected_log_prob += bernoulli_log_prob(p.narrow(1, 1, 2), m.narrow(1, 1, 2));
      gated_on += m.narrow(1, 1, 2).sum().item<double>();
      gated_total += 64;
    }
    EXPECT_TRUE(torch::allclose(out.log_prob.detach(), expected_log_prob, 1e-5, 1e-5));
    EXPECT_LT(gated_on, 0.5 * gated_total) << "the gated maps follow their closing gates";
  }
}

TEST(CoreMaps, NoPolicyGradientReachesACoreMapsGate) {
  DenseNet model = model_with_closing_gates(/*core=*/1);
  model->train();
  GateControl sample;
  sample.mode = GateMode::kSample;
  const auto out = model->forward_gated(torch::randn({32, 1, 8, 8}), sample);
  out.log_prob.sum().backward();
  for (int l = 0; l < 6; ++l) {
    const auto params = model->named_parameters();
    const auto w = params["gates." + std::to_string(l) + ".fc.weight"].grad();
    const auto b = params["gates." + std::to_string(l) + ".fc.bias"].grad();
    EXPECT_EQ(w[0].abs().sum().item<float>(), 0) << "gate " << l;
    EXPECT_EQ(b[0].item<float>(), 0) << "gate " << l;
    EXPECT_GT(w.narrow(0, 1, 2).abs().sum().item<float>(), 0) << "gate " << l;  // the others learn
  }
}

TEST(CoreMaps, GivenMasksStayAsGiven) {
  DenseNet model = model_with_closing_gates(/*core=*/2);
  model->eval();
  GateControl given;
  given.mode = GateMode::kGiven;
  given.masks.assign(6, torch::zeros({4, 3}));
  const auto out = model->forward_gated(torch::randn({4, 1, 8, 8}), given);
  for (const auto& m : out.masks) EXPECT_EQ(m.sum().item<float>(), 0);  // the shuffle ablation's contract
}

TEST(CoreMaps, ConfigRoundTripAndChecks) {
  DenseNetConfig c = tiny_with_core(0);
  EXPECT_FALSE(to_json(c).contains("core_maps"));  // files without core maps stay as they were
  c.core_maps = 2;
  EXPECT_EQ(to_json(c).at("core_maps"), 2);
  EXPECT_EQ(densenet_config_from_json(to_json(c), "test").core_maps, 2);
  EXPECT_NO_THROW(validate(c));
  for (int bad : {-1, 3}) {
    c.core_maps = bad;
    EXPECT_THROW(validate(c), UsageError) << bad;
    auto j = to_json(tiny_with_core(1));
    j["core_maps"] = bad;
    EXPECT_THROW(densenet_config_from_json(j, "test"), Error) << bad;
  }
  c.core_maps = 1;
  c.gate_per_layer = true;
  EXPECT_THROW(validate(c), UsageError);
  auto j = to_json(tiny_with_core(1));
  j["core_maps"] = "one";
  EXPECT_THROW(densenet_config_from_json(j, "test"), Error);
}

}  // namespace
}  // namespace mapgate
