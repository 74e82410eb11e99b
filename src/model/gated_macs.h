// Exact multiply-accumulates of one example through a gated DenseNet, from the number of
// maps each gate kept (docs/design.md §2, §4). A switched-off map is never computed and never
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
  const DenseNetConfig& config() const { return config_; }

 private:
  DenseNetConfig config_;
  std::vector<int> gate_in_;   // C_in of each gated layer
  std::int64_t dense_macs_ = 0, gate_macs_ = 0;
};

// The walk behind GatedCost::macs (without the gate cost), over any count type T with
// T + T, T * T and T * int64: the integers of one mask, or expected counts (the count is
// linear in each layer's kept maps given the earlier layers', and masks of different
// layers are independent). batch_gated_macs (src/train/reinforce.h) computes the same for
// a batch of tensors a block at a time; its tests hold it to this walk.
// any_on[l]: 1 when layer l keeps a map (the BC bottleneck is skipped otherwise), or its
// probability.
template <class T>
T gated_macs_walk(const DenseNetConfig& c, const std::vector<T>& active, const std::vector<T>& any_on,
                  const T& zero) {
  const std::int64_t k = c.growth;
  std::int64_t h = c.image_size, w = c.image_size;
  const std::int64_t stem = std::int64_t{9} * c.in_channels * c.stem_channels() * h * w;
  T total = zero + stem;
  std::int64_t channels = c.stem_channels();  // all maps of the concatenation
  T on = zero + channels;                     // the active ones among them (as T)
  std::size_t l = 0;
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < c.layers_per_block(); ++i, ++l) {
      const T& a = active[l];
      if (c.bc)  // conv1x1 on -> 4k bottleneck, conv3x3 4k -> a; both skipped when a = 0
        total = total + any_on[l] * on * (4 * k * h * w) + a * (9 * 4 * k * h * w);
      else
        total = total + on * a * (9 * h * w);
      channels += k;
      on = on + a;
    }
    if (b < 2) {
      const std::int64_t out = c.transition_out(static_cast<int>(channels));
      total = total + on * (out * h * w);  // conv1x1 before the 2x2 pooling
      channels = out;
      on = zero + out;
      h /= 2;
      w /= 2;
    }
  }
  return total + on * std::int64_t{c.num_classes};  // classifier
}

}  // namespace mapgate
