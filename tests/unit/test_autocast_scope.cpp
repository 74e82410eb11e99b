// AutocastScope (src/train/autocast_scope.h): inside it a convolution runs in bfloat16 and
// the model still gives float32 logits and BN statistics; leaving it restores the state
// before it (also when scopes nest); a disabled scope changes nothing.
#include "train/autocast_scope.h"

#include <gtest/gtest.h>

#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include "model/densenet.h"

namespace mapgate {
namespace {

torch::nn::Conv2d small_conv() {
  torch::manual_seed(0);
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
}

TEST(AutocastScope, ConvolutionsRunInBfloat16InsideOnly) {
  auto conv = small_conv();
  const auto x = torch::randn({2, 3, 8, 8});
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  {
    AutocastScope outer(torch::kCPU, true);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
    {
      AutocastScope inner(torch::kCPU, true);
      EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16) << "leaving the inner scope keeps the outer one";
  }
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  {
    AutocastScope off(torch::kCPU, false);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat);
  }
}

// Under autocast a gated DenseNet's logits and gate probabilities are float32, its BN
// running statistics stay float32 and finite, and the logits are close to float32's.
TEST(AutocastScope, GatedDenseNetKeepsFloat32WhereItMatters) {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 4;
  c.gated = true;
  torch::manual_seed(3);
  DenseNet model(c);
  model->train();
  const auto x = torch::randn({8, 3, 32, 32});
  GateControl all_on;
  all_on.mode = GateMode::kAllOn;
  const auto reference = model->forward_gated(x, all_on).logits.detach();
  GatedOutput out;
  {
    AutocastScope amp(torch::kCPU, true);
    out = model->forward_gated(x, all_on);
  }
  EXPECT_EQ(out.logits.scalar_type(), torch::kFloat);
  for (const auto& p : out.probs) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  for (const auto& b : model->buffers()) {
    if (!b.is_floating_point()) continue;
    EXPECT_EQ(b.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
  }
  const double scale = reference.abs().max().item<double>();
  EXPECT_FALSE(torch::equal(out.logits.detach(), reference)) << "the bfloat16 path was not taken";
  EXPECT_LT((out.logits.detach() - reference).abs().max().item<double>(), 0.05 * scale + 0.05);
}

}  // namespace
}  // namespace mapgate
