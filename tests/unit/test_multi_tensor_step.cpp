// multi_tensor_step / multi_tensor_zero_grad against LibTorch's own optimizers: the same
// parameters, gradients and hyper-parameters give bit-identical parameters and state
// after several steps.
#include <gtest/gtest.h>

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include "train/multi_tensor_step.h"
#include "train/optimizer_state.h"

namespace mapgate {
namespace {

// Parameters of several shapes.
std::vector<torch::Tensor> make_parameters(std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  std::vector<torch::Tensor> out;
  for (const auto& shape : {std::vector<std::int64_t>{4, 3, 3, 3}, {7}, {5, 6}, {1}})
    out.push_back(torch::randn(shape).requires_grad_(true));
  return out;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// Gradients of step `step`, the same for both copies; parameter `skip` gets none.
void set_gradients(std::vector<torch::Tensor>& params, int step, std::size_t skip) {
  torch::manual_seed(100 + step);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto g = torch::randn(params[i].sizes());
    if (i == skip)
      params[i].mutable_grad() = torch::Tensor();
    else
      params[i].mutable_grad() = g;
  }
}

void expect_identical(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

std::vector<torch::Tensor> state_of(const torch::optim::Optimizer& o) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, t] : optimizer_state_tensors(o)) out.push_back(t);
  return out;
}

// Four steps of each, the learning rate changed after the second (as a schedule does);
// parameter 1 has no gradient in the first two steps (its state starts late), parameter 3
// none in the last.
template <class Optimizer, class Options>
void expect_same_steps(const Options& options) {
  auto reference = make_parameters(1);
  auto ours = copies(reference);
  Optimizer a(reference, options), b(ours, options);
  for (int step = 0; step < 4; ++step) {
    const std::size_t skip = step < 2 ? 1 : step == 3 ? 3 : 99;
    set_gradients(reference, step, skip);
    set_gradients(ours, step, skip);
    a.step();
    multi_tensor_step(b);
    expect_identical(reference, ours);
    expect_identical(state_of(a), state_of(b));
    if (step == 1)
      for (auto* o : {&a, &b}) static_cast<Options&>(o->param_groups()[0].options()).lr(options.lr() / 3);
  }
  EXPECT_FALSE(torch::equal(reference[0], make_parameters(1)[0]));  // the steps moved something
}

TEST(MultiTensorStep, SgdWithNesterovMomentumAndWeightDecayEqualsLibTorch) {
  expect_same_steps<torch::optim::SGD>(torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4));
}

TEST(MultiTensorStep, SgdWithPlainMomentumAndDampeningEqualsLibTorch) {
  expect_same_steps<torch::optim::SGD>(torch::optim::SGDOptions(0.05).momentum(0.8).dampening(0.1));
}

TEST(MultiTensorStep, PlainSgdEqualsLibTorch) { expect_same_steps<torch::optim::SGD>(torch::optim::SGDOptions(0.01)); }

TEST(MultiTensorStep, AdamEqualsLibTorch) { expect_same_steps<torch::optim::Adam>(torch::optim::AdamOptions(0.01)); }

TEST(MultiTensorStep, AdamWithWeightDecayEqualsLibTorch) {
  expect_same_steps<torch::optim::Adam>(torch::optim::AdamOptions(0.003).weight_decay(0.01).eps(1e-6));
}

TEST(MultiTensorStep, AmsgradTakesLibTorchsOwnStep) {
  expect_same_steps<torch::optim::Adam>(torch::optim::AdamOptions(0.01).amsgrad(true));
}

TEST(MultiTensorStep, ZeroGradZeroesEveryDefinedGradientAndKeepsTheMissingOnesMissing) {
  auto params = make_parameters(2);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.1));
  set_gradients(params, 0, 2);
  const auto storage = params[0].grad().data_ptr();
  multi_tensor_zero_grad(sgd);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i == 2) {
      EXPECT_FALSE(params[i].grad().defined());
      continue;
    }
    EXPECT_TRUE(torch::equal(params[i].grad(), torch::zeros_like(params[i]))) << i;
  }
  EXPECT_EQ(params[0].grad().data_ptr(), storage);  // zeroed in place, as zero_grad() does
}

}  // namespace
}  // namespace mapgate
