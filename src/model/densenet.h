// DenseNet for small images (Huang et al., CVPR 2017; docs/design.md §1) as LibTorch modules.
// Module names match the rows of densenet_layer_costs() in macs.h, so the hand count
// and the parameter count of this model can be compared layer by layer.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "model/config.h"
#include "model/gate.h"
#include "model/masked_batch_norm.h"

namespace mapgate {

// How the BatchNorm layers of a gated forward count switched-off maps (docs/method.md §1).
struct MaskedNorm {
  bool masked_stats = true;            // training statistics over the kept examples only
  BatchStatAccumulator* sums = nullptr; // recalibration: accumulate instead of updating
  bool fused_cpu = true;                // the CPU's fused kernel (masked_bn_relu) where it applies;
                                        // false: LibTorch operators, as on a GPU (bench/step_ops.cpp)
};

// BN-ReLU-conv3x3 -> k maps (BC: BN-ReLU-conv1x1 -> 4k, BN-ReLU-conv3x3 -> k).
class DenseLayerImpl : public torch::nn::Module {
 public:
  DenseLayerImpl(int in_channels, const DenseNetConfig& config);
  // x: (N, C_in, H, W) -> new maps (N, k, H, W). keep (N, C_in) 0/1, if defined, zeroes
  // switched-off input maps after BN-ReLU (BN maps a zero map to a constant), so a
  // switched-off map contributes nothing, exactly as if its channel were absent; `norm`
  // says whether it also leaves the BN statistics.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep = {}, const MaskedNorm& norm = {});

 private:
  bool bc_;
  double dropout_;
  torch::nn::BatchNorm2d norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
};
TORCH_MODULE(DenseLayer);

// BN-ReLU-conv1x1 then 2x2 average pooling.
class TransitionImpl : public torch::nn::Module {
 public:
  TransitionImpl(int in_channels, int out_channels);
  // keep and norm as for DenseLayerImpl::forward.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep = {}, const MaskedNorm& norm = {});

 private:
  torch::nn::BatchNorm2d norm_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Transition);

class DenseNetImpl : public torch::nn::Module {
 public:
  explicit DenseNetImpl(const DenseNetConfig& config);
  // x: (N, in_channels, S, S) normalised images -> logits (N, num_classes).
  // A gated model samples masks in training mode and thresholds them in eval mode.
  torch::Tensor forward(const torch::Tensor& x);
  // Gated forward (config().gated only): logits plus every gate's mask, p and the
  // log-probability of the masks. The gate input s = GAP(x_l) is detached, so the
  // policy loss trains only the gates, never the network weights. GateMode::kGumbel masks
  // are exactly 0/1 but carry a straight-through gradient to the gates (--gates gumbel).
  GatedOutput forward_gated(const torch::Tensor& x, const GateControl& control);
  const DenseNetConfig& config() const { return config_; }
  // tau used by GateMode::kThreshold (eval's --threshold override).
  void set_threshold(double tau);
  // BN statistics of the gated forward in training mode (--bn-stats; default masked).
  void set_masked_norm(const MaskedNorm& norm) { masked_norm_ = norm; }
  const MaskedNorm& masked_norm() const { return masked_norm_; }

 private:
  DenseNetConfig config_;
  MaskedNorm masked_norm_;
  torch::nn::Conv2d stem_{nullptr};
  torch::nn::ModuleList blocks_[3];
  Transition transitions_[2] = {nullptr, nullptr};
  torch::nn::BatchNorm2d norm_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  // One gate per dense layer, block-major; registered after every dense parameter so
  // that the dense weights draw the same random numbers as in an ungated model.
  torch::nn::ModuleList gates_{nullptr};
};
TORCH_MODULE(DenseNet);

}  // namespace mapgate
