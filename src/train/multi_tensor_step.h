// The optimizers' step and zero_grad over all parameters at once (LibTorch's _foreach_
// operators), instead of LibTorch's per-parameter loops: the same arithmetic, tensor by
// tensor the same kernels on the CPU (bit for bit what torch::optim::SGD / Adam::step()
// give: tests/unit/test_multi_tensor_step.cpp), and on a GPU a few multi-tensor kernels
// instead of five to eight launches per parameter, which bound a DenseNet's step there
// (docs/scale.md, "Fewer operators per step for a GPU"). The state lives where LibTorch's own
// step() keeps it, so checkpoints and --resume are unchanged.
#pragma once

#include <torch/optim/optimizer.h>

namespace mapgate {

// optimizer.step() for torch::optim::SGD (any momentum, dampening, weight decay, Nesterov)
// and torch::optim::Adam (without amsgrad); any other optimizer, or Adam with amsgrad, takes
// its own step().
void multi_tensor_step(torch::optim::Optimizer& optimizer);

// optimizer.zero_grad(): every defined gradient detached and zeroed, in one operator.
void multi_tensor_zero_grad(torch::optim::Optimizer& optimizer);

}  // namespace mapgate
