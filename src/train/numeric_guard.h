// Guards of a training step against numerical faults (issue: reliability): finiteness
// of the loss, the REINFORCE advantage and every gradient, and a snapshot of the
// model's buffers (BN running statistics) so that a skipped batch leaves no trace.
#pragma once

#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace mapgate {

bool all_finite(const torch::Tensor& t);

// Name of the first parameter whose gradient holds a NaN or an infinity, or "" when
// every gradient is finite. One multi-tensor reduction over all gradients in the common case.
std::string first_nonfinite_gradient(const torch::nn::Module& model);

// Copies of every buffer of a module, to undo the running-statistics updates of a
// forward pass (a skipped batch, the greedy baseline's extra pass, every gated step). The
// buffers of one dtype and device are saved as one flat copy and restored by two
// multi-tensor operators: a handful of kernels, not two per buffer.
class BufferSnapshot {
 public:
  explicit BufferSnapshot(const torch::nn::Module& model);
  void restore(torch::nn::Module& model) const;

 private:
  struct Group {
    std::vector<std::size_t> index;   // positions in model.buffers()
    torch::Tensor saved;              // their values, flattened one after another
  };
  std::vector<Group> groups_;
};

}  // namespace mapgate
