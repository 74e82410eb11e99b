// Numerical-fault guards of the training step (src/train/numeric_guard.h).
#include "train/numeric_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/densenet.h"

namespace mapgate {
namespace {

DenseNet tiny_model() {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 2;
  c.num_classes = 3;
  c.image_size = 8;
  torch::manual_seed(2);
  return DenseNet(c);
}

TEST(NumericGuard, AllFinite) {
  EXPECT_TRUE(all_finite(torch::tensor({1.0f, -2.0f})));
  EXPECT_FALSE(all_finite(torch::tensor({1.0f, std::nanf("")})));
  EXPECT_FALSE(all_finite(torch::tensor({std::numeric_limits<float>::infinity()})));
}

TEST(NumericGuard, NamesTheFirstParameterWithANonFiniteGradient) {
  DenseNet model = tiny_model();
  EXPECT_EQ(first_nonfinite_gradient(*model), "");  // no gradients yet
  model->forward(torch::randn({2, 3, 8, 8})).sum().backward();
  EXPECT_EQ(first_nonfinite_gradient(*model), "");
  torch::NoGradGuard no_grad;
  model->named_parameters()["classifier.bias"].grad()[1] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_nonfinite_gradient(*model), "classifier.bias");
  model->named_parameters()["classifier.bias"].grad()[1] = 0;
  model->named_parameters()["stem.weight"].grad()[0][0][0][0] = std::nanf("");
  EXPECT_EQ(first_nonfinite_gradient(*model), "stem.weight");
  model->named_parameters()["stem.weight"].grad()[0][0][0][0] = 0;
  EXPECT_EQ(first_nonfinite_gradient(*model), "");
}

TEST(NumericGuard, LargeFiniteGradientsAreFinite) {
  // Their sum or sum of squares would overflow float32; each value is still usable.
  DenseNet model = tiny_model();
  model->forward(torch::randn({2, 3, 8, 8})).sum().backward();
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.mutable_grad().fill_(3e38f);
  EXPECT_EQ(first_nonfinite_gradient(*model), "");
}

TEST(NumericGuard, BufferSnapshotUndoesRunningStatistics) {
  DenseNet model = tiny_model();
  model->train();
  const BufferSnapshot snapshot(*model);
  std::vector<torch::Tensor> before;
  for (const auto& b : model->buffers()) before.push_back(b.clone());
  model->forward(torch::randn({4, 3, 8, 8}) * 5 + 2);  // moves every BN running mean/var
  bool changed = false;
  std::size_t i = 0;
  for (const auto& b : model->buffers()) changed |= !torch::equal(b, before[i++]);
  ASSERT_TRUE(changed);
  snapshot.restore(*model);
  i = 0;
  for (const auto& b : model->buffers()) EXPECT_TRUE(torch::equal(b, before[i++]));
}

}  // namespace
}  // namespace mapgate
