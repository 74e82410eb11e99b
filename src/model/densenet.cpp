// DenseNet modules; layer names and order mirror densenet_layer_costs() (macs.cpp).
// Initialisation follows the reference implementations: Kaiming-normal convolutions,
// BN weight 1 / bias 0, linear bias 0.
#include "model/densenet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include "model/masked_bn_relu.h"

namespace mapgate {
namespace F = torch::nn::functional;
namespace {

torch::nn::Conv2d make_conv(int in, int out, int kernel) {
  auto conv = torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(false));
  torch::nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
  return conv;
}

// BN-ReLU of x (N, C, H, W), then zero the switched-off channels of keep (N, C). BN reads
// float32 (a no-op but under --amp bf16, whose convolutions give bfloat16 maps), so its
// statistics and running buffers stay float32.
torch::Tensor bn_relu(torch::nn::BatchNorm2d& bn, const torch::Tensor& low, const torch::Tensor& keep,
                      const MaskedNorm& norm) {
  const torch::Tensor x = low.to(torch::kFloat);
  if (!keep.defined()) return torch::relu(bn->forward(x));
  if (norm.masked_stats && norm.fused_cpu && !norm.sums && masked_bn_relu_applies(*bn, x, keep)) return masked_bn_relu(*bn, x, keep);
  torch::Tensor stats_keep = norm.masked_stats ? keep : torch::Tensor();
  if (norm.sums && !stats_keep.defined()) stats_keep = torch::ones_like(keep);
  const auto a = torch::relu(masked_batch_norm(*bn, x, stats_keep, norm.sums));
  return a * keep.view({keep.size(0), keep.size(1), 1, 1});
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

torch::Tensor DenseLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& keep, const MaskedNorm& norm) {
  auto y = conv1_->forward(bn_relu(norm1_, x, keep, norm));
  if (bc_) {
    if (dropout_ > 0) y = F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()));
    // The bottleneck's 4k maps are never switched off: plain BN (recalibration still sums).
    const auto all = norm.sums ? torch::ones({y.size(0), y.size(1)}, y.options()) : torch::Tensor();
    y = conv2_->forward(bn_relu(norm2_, y, all, norm));
  }
  if (dropout_ > 0) y = F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return y;
}

TransitionImpl::TransitionImpl(int in_channels, int out_channels) {
  norm_ = register_module("norm", torch::nn::BatchNorm2d(in_channels));
  conv_ = register_module("conv", make_conv(in_channels, out_channels, 1));
}

torch::Tensor TransitionImpl::forward(const torch::Tensor& x, const torch::Tensor& keep, const MaskedNorm& norm) {
  return F::avg_pool2d(conv_->forward(bn_relu(norm_, x, keep, norm)), F::AvgPool2dFuncOptions(2));
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
  if (config_.gated) {
    gates_ = register_module("gates", torch::nn::ModuleList());
    int in = config_.stem_channels();
    for (int b = 0; b < 3; ++b) {
      for (int i = 0; i < config_.layers_per_block(); ++i) {
        gates_->push_back(Gate(in, config_.gate_outputs(), config_.gate_standardize));
        in += config_.growth;
      }
      if (b < 2) in = config_.transition_out(in);
    }
  }
}

void DenseNetImpl::set_threshold(double tau) {
  DenseNetConfig c = config_;
  c.threshold = tau;
  validate(c);
  config_ = c;
}

torch::Tensor DenseNetImpl::forward(const torch::Tensor& x) {
  if (config_.gated) {
    GateControl control;
    control.mode = is_training() ? GateMode::kSample : GateMode::kThreshold;
    return forward_gated(x, control).logits;
  }
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
  h = torch::relu(norm_->forward(h.to(torch::kFloat)));
  h = F::adaptive_avg_pool2d(h, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  return classifier_->forward(h).to(torch::kFloat);  // float32 logits under --amp bf16 too
}

GatedOutput DenseNetImpl::forward_gated(const torch::Tensor& x, const GateControl& control) {
  TORCH_CHECK(config_.gated, "forward_gated: this DenseNet has no gates (config.gated is false)");
  const auto n = x.size(0);
  const int layers = config_.dense_layers();
  TORCH_CHECK(control.mode != GateMode::kGiven || static_cast<int>(control.masks.size()) == layers,
              "forward_gated: ", control.masks.size(), " masks given, the model has ", layers, " gates");
  const double tau = control.threshold >= 0 ? control.threshold : config_.threshold;
  // The random-mask baseline samples at inference too.
  const GateMode mode =
      control.mode == GateMode::kThreshold && config_.sampled_inference ? GateMode::kSample : control.mode;
  GatedOutput out;
  // Every map on, known here (the dense warm-up): plain BN-ReLU, no keep masks (the same
  // values as all-ones masks, without their operators); recalibration still sums through them.
  const bool all_on = mode == GateMode::kAllOn && !masked_norm_.sums;
  std::vector<torch::Tensor> decided_p, decided_m;  // the decisions' p and m, for log pi once at the end
  auto as_4d = [n](const torch::Tensor& m) { return m.view({n, -1, 1, 1}); };

  auto h = stem_->forward(x);
  // keep: (N, C) 0/1 per channel of the running concatenation. Stem and transition
  // outputs are not gated (all 1); each layer appends its own mask.
  torch::Tensor keep = all_on ? torch::Tensor() : torch::ones({n, h.size(1)}, x.options());
  int l = 0;
  for (int b = 0; b < 3; ++b) {
    std::vector<torch::Tensor> maps{h}, keeps{keep};
    for (const auto& module : *blocks_[b]) {
      auto input = maps.size() == 1 ? maps[0] : torch::cat(maps, 1);
      auto in_keep = all_on || keeps.size() == 1 ? keeps[0] : torch::cat(keeps, 1);
      auto s = input.detach().mean({2, 3});  // (N, C_in)
      // One decision per map (N, k), or per layer (N, 1) widened to the layer's k maps.
      auto p = gate_probability(gates_[l]->as<GateImpl>()->forward(s), config_.p_clamp);
      const auto units = p.size(1);
      torch::Tensor m, given;
      switch (mode) {
        case GateMode::kSample: m = torch::bernoulli(p.detach()); break;
        case GateMode::kThreshold: m = p.detach().gt(tau).to(p.scalar_type()); break;
        case GateMode::kAllOn: m = torch::ones_like(p); break;
        case GateMode::kGiven:
          given = control.masks[l].to(p.scalar_type());
          TORCH_CHECK(given.dim() == 2 && given.size(0) == n && given.size(1) == config_.growth,
                      "forward_gated: mask ", l, " has shape ", given.sizes(), ", expected [", n, ", ",
                      config_.growth, "]");
          m = given.narrow(1, 0, units);  // a per-layer gate scores its first map's bit
          break;
        case GateMode::kGumbel: m = gumbel_straight_through(p, control.temperature); break;
      }
      const int core = config_.core_maps;  // 0 with per-layer gates (validate)
      if (core > 0) {
        // The layer's first `core` maps are computed for every image, without a decision:
        // p = m = 1 there (given masks stay as given), and only the other maps enter log pi.
        const auto always = torch::ones({n, core}, p.options());
        p = torch::cat({always, p.narrow(1, core, units - core)}, 1);
        if (!given.defined()) m = torch::cat({always, m.narrow(1, core, units - core)}, 1);
      }
      decided_p.push_back(p.narrow(1, core, units - core));  // once per decision
      decided_m.push_back(m.detach().narrow(1, core, units - core));
      if (units != config_.growth) {
        p = p.expand({n, config_.growth}).contiguous();
        m = m.expand({n, config_.growth}).contiguous();
      }
      if (given.defined()) m = given;
      auto y = module->as<DenseLayerImpl>()->forward(input, in_keep, masked_norm_);
      maps.push_back(all_on ? y : y * as_4d(m));  // a switched-off map is exactly zero
      keeps.push_back(all_on ? torch::Tensor() : m);
      out.masks.push_back(m);
      out.probs.push_back(p);
      ++l;
    }
    h = torch::cat(maps, 1);
    if (!all_on) keep = torch::cat(keeps, 1);
    if (control.keep_features) out.features.push_back(h);
    if (b < 2) {
      h = transitions_[b]->forward(h, keep, masked_norm_);
      if (!all_on) keep = torch::ones({n, h.size(1)}, x.options());
    }
  }
  out.log_prob = bernoulli_log_prob(torch::cat(decided_p, 1), torch::cat(decided_m, 1));
  h = bn_relu(norm_, h, keep, masked_norm_);
  h = F::adaptive_avg_pool2d(h, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  out.logits = classifier_->forward(h).to(torch::kFloat);  // float32 logits under --amp bf16 too
  return out;
}

}  // namespace mapgate
