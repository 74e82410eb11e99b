// Gated MAC count; walks the network in the order of densenet_layer_costs() (macs.cpp).
#include "model/gated_macs.h"

#include <string>

#include "common/error.h"
#include "model/macs.h"

namespace mapgate {

GatedCost::GatedCost(const DenseNetConfig& config) : config_(config) {
  validate(config_);
  dense_macs_ = total_cost(densenet_layer_costs(config_)).macs;
  int in = config_.stem_channels();
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < config_.layers_per_block(); ++i) {
      gate_in_.push_back(in);
      gate_macs_ += static_cast<std::int64_t>(in) * config_.growth;
      in += config_.growth;
    }
    if (b < 2) in = config_.transition_out(in);
  }
}

std::int64_t GatedCost::macs(const std::vector<int>& active) const {
  const auto& c = config_;
  const std::int64_t k = c.growth;
  if (static_cast<int>(active.size()) != layers())
    throw Error("gated MACs: " + std::to_string(active.size()) + " gate counts given, the model has " +
                std::to_string(layers()) + " gates");
  std::int64_t h = c.image_size, w = c.image_size;
  std::int64_t total = 9LL * c.in_channels * c.stem_channels() * h * w;  // stem
  std::int64_t channels = c.stem_channels();  // all maps of the concatenation
  std::int64_t on = channels;                 // the active ones among them
  int l = 0;
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < c.layers_per_block(); ++i, ++l) {
      const std::int64_t a = active[l];
      if (a < 0 || a > k)
        throw Error("gated MACs: layer " + std::to_string(l) + " keeps " + std::to_string(a) +
                    " maps, expected 0.." + std::to_string(k));
      if (c.bc) {
        // conv1x1 on -> 4k bottleneck, conv3x3 4k -> a; both skipped when a = 0.
        if (a > 0) total += on * 4 * k * h * w + 9 * 4 * k * a * h * w;
      } else {
        total += 9 * on * a * h * w;
      }
      channels += k;
      on += a;
    }
    if (b < 2) {
      const std::int64_t out = c.transition_out(static_cast<int>(channels));
      total += on * out * h * w;  // conv1x1 before the 2x2 pooling
      channels = on = out;
      h /= 2;
      w /= 2;
    }
  }
  total += on * c.num_classes;  // classifier
  return total + gate_macs_;
}

}  // namespace mapgate
