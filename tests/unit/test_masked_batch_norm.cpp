// BN under masks (docs/method.md §1): training statistics count only the examples that
// keep a map, recalibration pools them the same way and never leaves a zero variance.
// Checked against a per-channel reference on LibTorch's own batch_norm.
#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/densenet.h"
#include "model/masked_batch_norm.h"
#include "train/evaluate.h"

#include "../support/batch_norms.h"

namespace mapgate {
namespace {

// Switched-off maps are exact zeros, as in the network.
torch::Tensor masked_input(const torch::Tensor& x, const torch::Tensor& keep) {
  return x * keep.view({keep.size(0), keep.size(1), 1, 1});
}

TEST(MaskedBatchNorm, MatchesPerChannelReferenceOnKeptExamples) {
  torch::manual_seed(3);
  auto bn = make_training_bn(5);
  auto keep = torch::bernoulli(torch::full({16, 5}, 0.6));
  keep.index_put_({torch::indexing::Slice(), 3}, 0);  // kept by no example
  keep.index_put_({torch::indexing::Slice(), 4}, 0);
  keep.index_put_({7, 4}, 1);                          // kept by one example
  const auto x = masked_input(torch::randn({16, 5, 3, 4}) * 2 + 1, keep);
  const auto kept = keep.view({16, 5, 1, 1});
  const auto out = masked_batch_norm(*bn, x, keep) * kept;
  const auto ref = masked_batch_norm_reference(*bn, x, keep) * kept;
  EXPECT_TRUE(torch::allclose(out, ref, 1e-4, 1e-5)) << (out - ref).abs().max().item<double>();
  EXPECT_TRUE(torch::isfinite(masked_batch_norm(*bn, x, keep)).all().item<bool>());
}

// The closed-form backward (masks without a gradient, REINFORCE and the baselines) against
// autograd through the elementary ops (the path a straight-through Gumbel mask takes), in
// double: output, running statistics, and the gradients of x, gamma and beta for an
// arbitrary upstream gradient (switched-off examples included), with channels kept by
// nobody, by one example and by all but one.
TEST(MaskedBatchNorm, ClosedFormBackwardMatchesAutograd) {
  torch::manual_seed(5);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto keep = torch::bernoulli(torch::full({12, 6}, 0.6, opts));
  keep.index_put_({torch::indexing::Slice(), 3}, 0);  // kept by no example
  keep.index_put_({torch::indexing::Slice(), 4}, 0);
  keep.index_put_({7, 4}, 1);                          // kept by one example
  keep.index_put_({torch::indexing::Slice(), 5}, 1);
  keep.index_put_({2, 5}, 0);                          // by all but one
  const auto x0 = masked_input(torch::randn({12, 6, 3, 5}, opts) * 2 + 1, keep);
  const auto dy = torch::randn({12, 6, 3, 5}, opts);
  struct Result {
    torch::Tensor y, dx, dgamma, dbeta, running_mean, running_var;
  };
  auto run = [&](bool keep_has_gradient) {
    torch::manual_seed(6);
    auto bn = make_training_bn(6);
    bn->to(torch::kDouble);
    auto x = x0.clone().requires_grad_(true);
    auto k = keep.clone().requires_grad_(keep_has_gradient);
    auto y = masked_batch_norm(*bn, x, k);
    y.backward(dy);
    return Result{y.detach(), x.grad(), bn->weight.grad(), bn->bias.grad(), bn->running_mean.clone(),
                  bn->running_var.clone()};
  };
  const Result fused = run(false), autograd = run(true);
  auto expect_near = [](const torch::Tensor& a, const torch::Tensor& b, const char* what) {
    EXPECT_TRUE(torch::allclose(a, b, 1e-9, 1e-10)) << what << ": " << (a - b).abs().max().item<double>();
  };
  expect_near(fused.y, autograd.y, "output");
  expect_near(fused.dx, autograd.dx, "dx");
  expect_near(fused.dgamma, autograd.dgamma, "dgamma");
  expect_near(fused.dbeta, autograd.dbeta, "dbeta");
  expect_near(fused.running_mean, autograd.running_mean, "running_mean");
  expect_near(fused.running_var, autograd.running_var, "running_var");
  EXPECT_GT(fused.dx.abs().max().item<double>(), 0);
}

// A map on for one example of 64 gives that example the output it has with the map on
// for all 64 (the batch is 64 copies of one input); counting the 63 zeros would not.
TEST(MaskedBatchNorm, MapOnForOneExampleGetsTheAllOnOutput) {
  torch::manual_seed(4);
  auto bn = make_training_bn(3);
  const auto x = (torch::randn({1, 3, 4, 4}) * 3 + 2).repeat({64, 1, 1, 1});
  const auto all_on = masked_batch_norm(*bn, x, torch::ones({64, 3}));
  auto keep = torch::ones({64, 3});
  keep.index_put_({torch::indexing::Slice(), 1}, 0);
  keep.index_put_({10, 1}, 1);
  const auto xm = masked_input(x, keep);
  const auto one = masked_batch_norm(*bn, xm, keep);
  EXPECT_TRUE(torch::allclose(one[10], all_on[10], 1e-4, 1e-5));
  const auto counted = bn->forward(xm);  // zeros in the statistics (--bn-stats all)
  EXPECT_GT((counted[10][1] - all_on[10][1]).abs().max().item<double>(), 1.0);
}

TEST(MaskedBatchNorm, OffExamplesDoNotChangeTheStatistics) {
  torch::manual_seed(5);
  auto bn = make_training_bn(4);
  const auto keep = torch::bernoulli(torch::full({12, 4}, 0.5));
  const auto x = masked_input(torch::randn({12, 4, 3, 3}), keep);
  const auto kept = keep.view({12, 4, 1, 1});
  const auto y1 = masked_batch_norm(*bn, x, keep) * kept;
  const auto y2 = masked_batch_norm(*bn, x + (1 - kept) * 100, keep) * kept;
  EXPECT_TRUE(torch::allclose(y1, y2, 1e-4, 1e-5));
}

TEST(MaskedBatchNorm, RunningStatisticsSkipChannelsNobodyKept) {
  auto bn = make_training_bn(2);
  torch::NoGradGuard no_grad;
  bn->running_var.fill_(2.0);
  bn->running_mean.fill_(0.5);
  auto keep = torch::zeros({8, 2});
  keep.index_put_({torch::indexing::Slice(), 0}, 1);
  masked_batch_norm(*bn, masked_input(torch::randn({8, 2, 2, 2}), keep), keep);
  EXPECT_FLOAT_EQ(bn->running_var[1].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(bn->running_mean[1].item<float>(), 0.5f);
  EXPECT_NE(bn->running_var[0].item<float>(), 2.0f);
}

TEST(MaskedBatchNorm, SumsPoolTheKeptValuesOverBatches) {
  torch::manual_seed(6);
  auto bn = make_training_bn(3);
  BatchStatAccumulator sums;
  std::vector<torch::Tensor> on_values;
  for (int b = 0; b < 3; ++b) {
    auto keep = torch::bernoulli(torch::full({10, 3}, 0.5));
    keep.index_put_({torch::indexing::Slice(), 2}, 0);  // channel 2: never kept
    const auto x = masked_input(torch::randn({10, 3, 2, 2}) + b, keep);
    masked_batch_norm(*bn, x, keep, &sums);
    on_values.push_back(x.select(1, 0).index({keep.select(1, 0).to(torch::kBool)}).flatten());
  }
  {
    torch::NoGradGuard no_grad;
    bn->running_var.fill_(0.25);
  }
  sums.at(bn.get()).write_to(*bn);
  const auto pooled = torch::cat(on_values).to(torch::kDouble);
  EXPECT_NEAR(bn->running_mean[0].item<double>(), pooled.mean().item<double>(), 1e-5);
  EXPECT_NEAR(bn->running_var[0].item<double>(), pooled.var(/*unbiased=*/true).item<double>(), 1e-4);
  EXPECT_FLOAT_EQ(bn->running_var[2].item<float>(), 0.25f);  // kept its statistics, not 0
}

// Recalibration of a gated net whose last gate is off for every input: the BN layers that
// read that map keep a nonzero variance for it.
TEST(MaskedBatchNorm, RecalibrationLeavesNoZeroVariance) {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 3;
  c.num_classes = 2;
  c.image_size = 8;
  c.gated = true;
  c.gate_standardize = true;
  torch::manual_seed(8);
  DenseNet model(c);
  {
    torch::NoGradGuard no_grad;
    auto gate = model->named_modules()["gates.2"]->as<GateImpl>();
    gate->fc()->bias.fill_(-20);  // the last layer's maps: always off
  }
  Dataset data;
  data.num_classes = 2;
  data.channels = 3;
  data.height = data.width = 8;
  data.class_names = {"a", "b"};
  for (int i = 0; i < 32; ++i) {
    data.labels.push_back(i % 2);
    for (int p = 0; p < 3 * 64; ++p) data.images.push_back(static_cast<std::uint8_t>((i * 37 + p * 11) % 256));
  }
  const Normalization norm = compute_normalization(data);
  recalibrate_batch_norm(model, data, norm, /*batches=*/2, /*batch_size=*/16);
  const auto final_var = model->named_buffers()["norm.running_var"];
  EXPECT_GT(final_var.min().item<float>(), 0.0f);
}

}  // namespace
}  // namespace mapgate
