// DenseNet modules; layer names and order mirror densenet_layer_costs() (macs.cpp).
// Initialisation follows the reference implementations: Kaiming-normal convolutions,
// BN weight 1 / bias 0, linear bias 0.
#include "model/densenet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

namespace mapgate {
namespace F = torch::nn::functional;
namespace {

torch::nn::Conv2d make_conv(int in, int out, int kernel) {
  auto conv = torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(false));
  torch::nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
  return conv;
}

torch::Tensor bn_relu(torch::nn::BatchNorm2d& bn, const torch::Tensor& x) {
  return torch::relu(bn->forward(x));
}

}  // namespace

DenseLayerImpl::DenseLayerImpl(int in_channels, const DenseNetConfig& config)
    : bc_(config.bc), dropout_(config.dropout) {
  const int k = config.growth;
  if (bc_) {
    norm1_ = register_module("norm1", torch::nn::BatchNorm2d(in_channels));
    conv1_ = register_module("conv1", make_conv(in_channels, 4 * k, 1));
    norm2_ = register_module("norm2", torch::nn::BatchNorm2d(4 * k));
    conv2_ = register_module("conv2", make_conv(4 * k, k, 3));
  } else {
    norm1_ = register_module("norm", torch::nn::BatchNorm2d(in_channels));
    conv1_ = register_module("conv", make_conv(in_channels, k, 3));
  }
}

torch::Tensor DenseLayerImpl::forward(const torch::Tensor& x) {
  auto y = conv1_->forward(bn_relu(norm1_, x));
  if (bc_) {
    if (dropout_ > 0) y = F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()));
    y = conv2_->forward(bn_relu(norm2_, y));
  }
  if (dropout_ > 0) y = F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return y;
}

TransitionImpl::TransitionImpl(int in_channels, int out_channels) {
  norm_ = register_module("norm", torch::nn::BatchNorm2d(in_channels));
  conv_ = register_module("conv", make_conv(in_channels, out_channels, 1));
}

torch::Tensor TransitionImpl::forward(const torch::Tensor& x) {
  return F::avg_pool2d(conv_->forward(bn_relu(norm_, x)), F::AvgPool2dFuncOptions(2));
}

DenseNetImpl::DenseNetImpl(const DenseNetConfig& config) : config_(config) {
  validate(config_);
  int channels = config_.stem_channels();
  stem_ = register_module("stem", make_conv(config_.in_channels, channels, 3));
  for (int b = 0; b < 3; ++b) {
    blocks_[b] = register_module("block" + std::to_string(b + 1), torch::nn::ModuleList());
    for (int i = 0; i < config_.layers_per_block(); ++i) {
      blocks_[b]->push_back(DenseLayer(channels, config_));
      channels += config_.growth;
    }
    if (b < 2) {
      const int out = config_.transition_out(channels);
      transitions_[b] =
          register_module("trans" + std::to_string(b + 1), Transition(channels, out));
      channels = out;
    }
  }
  norm_ = register_module("norm", torch::nn::BatchNorm2d(channels));
  classifier_ = register_module("classifier", torch::nn::Linear(channels, config_.num_classes));
  torch::nn::init::zeros_(classifier_->bias);
}

torch::Tensor DenseNetImpl::forward(const torch::Tensor& x) {
  auto h = stem_->forward(x);
  for (int b = 0; b < 3; ++b) {
    // Collect the maps and concatenate once per layer: layer i reads all earlier maps.
    std::vector<torch::Tensor> maps{h};
    for (const auto& module : *blocks_[b]) {
      auto input = maps.size() == 1 ? maps[0] : torch::cat(maps, 1);
      maps.push_back(module->as<DenseLayerImpl>()->forward(input));
    }
    h = torch::cat(maps, 1);
    if (b < 2) h = transitions_[b]->forward(h);
  }
  h = torch::relu(norm_->forward(h));
  h = F::adaptive_avg_pool2d(h, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  return classifier_->forward(h);
}

}  // namespace mapgate
