// The fused CPU BN-ReLU-mask of the training step against its reference, the composition
// masked_batch_norm -> relu -> mask multiply: output, running statistics and gradients.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "model/masked_bn_relu.h"

#include "../support/batch_norms.h"

namespace mapgate {
namespace {

// Channels kept by no example, by one, by all but one, and at random; off maps are zeros.
struct Case {
  torch::Tensor x, keep, dy;
};

Case make_case(int n, int c, int h, int w) {
  torch::manual_seed(11);
  auto keep = torch::bernoulli(torch::full({n, c}, 0.6));
  keep.index_put_({torch::indexing::Slice(), 0}, 0);
  keep.index_put_({torch::indexing::Slice(), 1}, 0);
  keep.index_put_({3, 1}, 1);
  keep.index_put_({torch::indexing::Slice(), 2}, 1);
  keep.index_put_({4, 2}, 0);
  const auto x = (torch::randn({n, c, h, w}) * 2 + 0.5) * keep.view({n, c, 1, 1});
  return {x, keep, torch::randn({n, c, h, w})};
}

struct Result {
  torch::Tensor y, dx, dgamma, dbeta, running_mean, running_var;
};

Result run(const Case& k, bool fused) {
  torch::manual_seed(13);  // the same gamma and beta on every call
  auto bn = make_training_bn(static_cast<int>(k.x.size(1)));
  auto x = k.x.clone().requires_grad_(true);
  const auto y = fused ? masked_bn_relu(*bn, x, k.keep)
                       : torch::relu(masked_batch_norm(*bn, x, k.keep)) * k.keep.view({k.x.size(0), -1, 1, 1});
  y.backward(k.dy);
  return {y.detach(), x.grad(), bn->weight.grad(), bn->bias.grad(), bn->running_mean.clone(), bn->running_var.clone()};
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-5)) << what << ": " << (a - b).abs().max().item<double>();
}

TEST(MaskedBnRelu, MatchesTheComposition) {
  for (auto shape : {std::vector<int>{12, 7, 3, 5}, std::vector<int>{16, 5, 8, 8}}) {  // 15 and 64 pixels
    const Case k = make_case(shape[0], shape[1], shape[2], shape[3]);
    const Result fused = run(k, true), reference = run(k, false);
    expect_close(fused.y, reference.y, "output");
    expect_close(fused.dx, reference.dx, "dx");
    expect_close(fused.dgamma, reference.dgamma, "dgamma");
    expect_close(fused.dbeta, reference.dbeta, "dbeta");
    expect_close(fused.running_mean, reference.running_mean, "running_mean");
    expect_close(fused.running_var, reference.running_var, "running_var");
    EXPECT_GT(fused.dx.abs().max().item<double>(), 0);
    EXPECT_EQ(fused.y.select(1, 0).abs().max().item<float>(), 0.0f);  // kept by nobody
  }
}

// Sums per plane, combined in a fixed order: the same bits on 1 and 2 threads.
TEST(MaskedBnRelu, SameBitsOnOneAndTwoThreads) {
  const Case k = make_case(32, 6, 8, 8);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Result one = run(k, true);
  at::set_num_threads(2);
  const Result two = run(k, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.dx, two.dx));
  EXPECT_TRUE(torch::equal(one.dgamma, two.dgamma));
  EXPECT_TRUE(torch::equal(one.running_var, two.running_var));
}

TEST(MaskedBnRelu, EveryMapOnIsLibTorchBatchNorm) {
  torch::manual_seed(12);
  const auto x = torch::randn({8, 4, 3, 3});
  auto a = make_training_bn(4), b = make_training_bn(4);
  torch::NoGradGuard no_grad;
  b->weight.copy_(a->weight);
  b->bias.copy_(a->bias);
  EXPECT_TRUE(torch::equal(masked_bn_relu(*a, x, torch::ones({8, 4})), torch::relu(b->forward(x))));
}

TEST(MaskedBnRelu, AppliesToCpuFloatTrainingWithAPlainMaskOnly) {
  auto bn = make_training_bn(3);
  const auto x = torch::randn({4, 3, 2, 2});
  const auto keep = torch::ones({4, 3});
  EXPECT_TRUE(masked_bn_relu_applies(*bn, x, keep));
  EXPECT_FALSE(masked_bn_relu_applies(*bn, x.to(torch::kDouble), keep));
  EXPECT_FALSE(masked_bn_relu_applies(*bn, x.transpose(2, 3), keep));
  EXPECT_FALSE(masked_bn_relu_applies(*bn, x, keep.clone().requires_grad_(true)));  // Gumbel straight-through
  EXPECT_FALSE(masked_bn_relu_applies(*bn, x, torch::Tensor()));
  bn->eval();
  EXPECT_FALSE(masked_bn_relu_applies(*bn, x, keep));
}

}  // namespace
}  // namespace mapgate
