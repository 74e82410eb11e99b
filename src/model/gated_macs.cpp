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
  const std::int64_t k = config_.growth;
  if (static_cast<int>(active.size()) != layers())
    throw Error("gated MACs: " + std::to_string(active.size()) + " gate counts given, the model has " +
                std::to_string(layers()) + " gates");
  std::vector<std::int64_t> counts(active.size()), any_on(active.size());
  for (std::size_t l = 0; l < active.size(); ++l) {
    if (active[l] < 0 || active[l] > k)
      throw Error("gated MACs: layer " + std::to_string(l) + " keeps " + std::to_string(active[l]) +
                  " maps, expected 0.." + std::to_string(k));
    counts[l] = active[l];
    any_on[l] = active[l] > 0 ? 1 : 0;
  }
  return gated_macs_walk<std::int64_t>(config_, counts, any_on, 0) + gate_macs_;
}

}  // namespace mapgate
