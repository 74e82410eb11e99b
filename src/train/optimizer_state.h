// The per-parameter state of the optimizers mapgate trains with (SGD's momentum buffer,
// Adam's step and moments) as named tensors, so that a checkpoint stores plain tensors
// and no LibTorch archive. Names are "I/FIELD": I the parameter's position over the
// optimizer's param_groups, FIELD momentum_buffer, step, exp_avg, exp_avg_sq or
// max_exp_avg_sq. Hyper-parameters are not stored: the run's config and the lr schedule
// set them again on --resume.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>

namespace mapgate {

// "sgd" or "adam"; Error for any other optimizer.
std::string optimizer_kind(const torch::optim::Optimizer& optimizer);

// Every state tensor of `optimizer` (Adam's step as an int64 scalar), by name.
std::vector<std::pair<std::string, torch::Tensor>> optimizer_state_tensors(const torch::optim::Optimizer& optimizer);

// Replaces the state of `optimizer` with `stored` (names as above, float32 tensors already
// checked finite, step int64). Throws Error "`who`I/FIELD ..." for a name that no parameter
// has, a missing moment, a shape other than the parameter's or a negative step.
void restore_optimizer_state(torch::optim::Optimizer& optimizer, const std::map<std::string, torch::Tensor>& stored,
                             const std::string& who);

// The state LibTorch's optimizers keep for parameter `p` (nullptr before its first step),
// and a new one in its place: the same entry LibTorch's own step() reads and writes.
torch::optim::OptimizerParamState* parameter_state(torch::optim::Optimizer& optimizer, const torch::Tensor& p);
void set_parameter_state(torch::optim::Optimizer& optimizer, const torch::Tensor& p,
                         std::unique_ptr<torch::optim::OptimizerParamState> state);

}  // namespace mapgate
