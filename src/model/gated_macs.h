// Exact multiply-accumulates of one example through a gated DenseNet, from the number of
// maps each gate kept (DESIGN.md §2, §4). A switched-off map is never computed and never
// read: a dense layer costs 9 * (active inputs) * (active outputs) * H * W, transitions
// and the classifier read only active inputs. Stem and transition outputs are not gated.
// With every gate on this equals densenet_layer_costs() (macs.h) plus the gate cost.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace mapgate {

class GatedCost {
 public:
  explicit GatedCost(const DenseNetConfig& config);

  int layers() const { return static_cast<int>(gate_in_.size()); }  // dense layers = gates
  std::int64_t dense_macs() const { return dense_macs_; }            // the ungated network
  // Sum over gates of C_in * k: each gate's linear map. GAP and the sigmoid are not MACs.
  std::int64_t gate_macs() const { return gate_macs_; }
  // active[l] in 0..k: maps kept by the gate of dense layer l (block-major order).
  // Includes gate_macs(). Throws Error on a wrong length or count.
  std::int64_t macs(const std::vector<int>& active) const;

 private:
  DenseNetConfig config_;
  std::vector<int> gate_in_;   // C_in of each gated layer
  std::int64_t dense_macs_ = 0, gate_macs_ = 0;
};

}  // namespace mapgate
