// DenseNet: hand-counted parameters and MACs (docs/design.md §1) against the LibTorch model.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/densenet.h"
#include "model/macs.h"

namespace mapgate {
namespace {

TEST(ModelCost, DenseNet40MatchesHandCount) {
  const auto total = total_cost(densenet_layer_costs(DenseNetConfig{}));
  EXPECT_EQ(total.params, 1019722);
  EXPECT_EQ(total.macs, 264812928);
}

TEST(ModelCost, DenseNetBC100IsPoint8MParams) {
  DenseNetConfig c;
  c.depth = 100;
  c.bc = true;
  const auto total = total_cost(densenet_layer_costs(c));
  EXPECT_EQ(total.params, 769162);  // Huang et al. report 0.8M
  EXPECT_NEAR(total.params / 1e6, 0.8, 0.05);
}

TEST(ModelCost, StemAndClassifierByHand) {
  const auto layers = densenet_layer_costs(DenseNetConfig{});
  EXPECT_EQ(layers.front().name, "stem");
  EXPECT_EQ(layers.front().macs, 3LL * 16 * 9 * 32 * 32);
  // Transitions keep all channels (compression 1): 16 + 3 blocks * 12 layers * 12 = 448
  // channels into the classifier.
  EXPECT_EQ(layers.back().name, "classifier");
  EXPECT_EQ(layers.back().in_channels, 448);
  EXPECT_EQ(layers.back().macs, 448LL * 10);
}

std::int64_t params_under(torch::nn::Module& m, const std::string& prefix) {
  std::int64_t n = 0;
  for (const auto& p : m.named_parameters())
    if (p.key().rfind(prefix + ".", 0) == 0) n += p.value().numel();
  return n;
}

void expect_model_matches_table(const DenseNetConfig& c) {
  DenseNet model(c);
  const auto layers = densenet_layer_costs(c);
  std::int64_t total = 0;
  for (const auto& l : layers) {
    EXPECT_EQ(params_under(*model, l.name), l.params) << "layer " << l.name;
    total += l.params;
  }
  std::int64_t model_total = 0;
  for (const auto& p : model->parameters()) model_total += p.numel();
  EXPECT_EQ(model_total, total);
}

TEST(DenseNetModel, ParametersMatchTableLayerByLayer) {
  expect_model_matches_table(DenseNetConfig{});
  DenseNetConfig bc;
  bc.depth = 16;
  bc.bc = true;
  bc.growth = 6;
  bc.num_classes = 7;
  expect_model_matches_table(bc);
  DenseNetConfig mnist;
  mnist.depth = 10;
  mnist.in_channels = 1;
  mnist.image_size = 28;
  mnist.compression = 0.5;
  expect_model_matches_table(mnist);
}

TEST(DenseNetModel, ForwardShape) {
  torch::manual_seed(0);
  DenseNetConfig c;
  c.depth = 10;
  c.growth = 4;
  c.num_classes = 5;
  c.in_channels = 1;
  c.image_size = 12;
  DenseNet model(c);
  auto y = model->forward(torch::randn({3, 1, 12, 12}));
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{3, 5}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}

TEST(DenseNetConfigCheck, RejectsBadDepthNamingFlag) {
  DenseNetConfig c;
  c.depth = 41;
  try {
    validate(c);
    FAIL() << "depth 41 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--depth 41"), std::string::npos) << e.what();
  }
  c.depth = 43;  // 3n+4, but BC needs 6n+4
  EXPECT_NO_THROW(validate(c));
  c.bc = true;
  EXPECT_THROW(validate(c), UsageError);
  c.depth = 100;
  EXPECT_NO_THROW(validate(c));
}

TEST(DenseNetConfigCheck, JsonRoundTrip) {
  DenseNetConfig c;
  c.depth = 22;
  c.bc = true;
  c.growth = 8;
  c.dropout = 0.2;
  const auto back = densenet_config_from_json(to_json(c), "test");
  EXPECT_EQ(back.depth, 22);
  EXPECT_TRUE(back.bc);
  EXPECT_EQ(back.growth, 8);
  EXPECT_DOUBLE_EQ(back.effective_compression(), 0.5);
  EXPECT_DOUBLE_EQ(back.dropout, 0.2);
  EXPECT_THROW(densenet_config_from_json(nlohmann::json{{"depth", 40}}, "x"), Error);
}

}  // namespace
}  // namespace mapgate
