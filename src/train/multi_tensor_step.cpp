// Multi-tensor optimizer steps; see multi_tensor_step.h. Each step is LibTorch 1.13's
// torch::optim::SGD::step() / Adam::step() with its per-parameter loop turned inside out:
// one _foreach_ operator per line of the loop body, over the parameters that have a
// gradient.
#include "train/multi_tensor_step.h"

#include <cmath>
#include <map>
#include <vector>

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_sqrt.h>
#include <ATen/ops/_foreach_zero.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include "train/optimizer_state.h"

namespace mapgate {
namespace {

struct WithGradient {
  std::vector<torch::Tensor> params, grads;
};

WithGradient with_gradient(const torch::optim::OptimizerParamGroup& group) {
  WithGradient out;
  for (const auto& p : group.params())
    if (p.grad().defined()) {
      out.params.push_back(p);
      out.grads.push_back(p.grad());
    }
  return out;
}

// d = grad + weight_decay p; v = momentum v + (1 - dampening) d (v = d at a parameter's
// first step); d = d + momentum v (Nesterov) or v; p = p - lr d.
void sgd_step(torch::optim::SGD& sgd, torch::optim::OptimizerParamGroup& group) {
  const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
  const WithGradient g = with_gradient(group);
  if (g.params.empty()) return;
  std::vector<torch::Tensor> d = o.weight_decay() != 0 ? at::_foreach_add(g.grads, g.params, o.weight_decay()) : g.grads;
  if (o.momentum() != 0) {
    std::vector<torch::Tensor> buffers, stepped, stepped_d;  // buffers of every parameter; those past their first step
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      auto* state = static_cast<torch::optim::SGDParamState*>(parameter_state(sgd, g.params[i]));
      if (!state) {
        auto fresh = std::make_unique<torch::optim::SGDParamState>();
        fresh->momentum_buffer(d[i].detach().clone());
        buffers.push_back(fresh->momentum_buffer());
        set_parameter_state(sgd, g.params[i], std::move(fresh));
        continue;
      }
      buffers.push_back(state->momentum_buffer());
      stepped.push_back(state->momentum_buffer());
      stepped_d.push_back(d[i]);
    }
    if (!stepped.empty()) {
      at::_foreach_mul_(stepped, o.momentum());
      at::_foreach_add_(stepped, stepped_d, 1 - o.dampening());
    }
    d = o.nesterov() ? at::_foreach_add(d, buffers, o.momentum()) : buffers;
  }
  at::_foreach_add_(g.params, d, -o.lr());
}

// Adam over the parameters of one step count (normally all: they step together).
void adam_step(const torch::optim::AdamOptions& o, std::int64_t step, const std::vector<torch::Tensor>& params,
               std::vector<torch::Tensor> grads, const std::vector<torch::Tensor>& exp_avg,
               const std::vector<torch::Tensor>& exp_avg_sq) {
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const double correction1 = 1 - std::pow(beta1, step), correction2 = 1 - std::pow(beta2, step);
  if (o.weight_decay() != 0) grads = at::_foreach_add(grads, params, o.weight_decay());
  at::_foreach_mul_(exp_avg, beta1);
  at::_foreach_add_(exp_avg, grads, 1 - beta1);
  at::_foreach_mul_(exp_avg_sq, beta2);
  at::_foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2);
  auto denominator = at::_foreach_sqrt(exp_avg_sq);
  at::_foreach_div_(denominator, std::sqrt(correction2));
  at::_foreach_add_(denominator, o.eps());
  at::_foreach_addcdiv_(params, exp_avg, denominator, -o.lr() / correction1);
}

void adam_step(torch::optim::Adam& adam, torch::optim::OptimizerParamGroup& group) {
  const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
  const WithGradient g = with_gradient(group);
  struct Part {
    std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq;
  };
  std::map<std::int64_t, Part> by_step;
  for (std::size_t i = 0; i < g.params.size(); ++i) {
    auto* state = static_cast<torch::optim::AdamParamState*>(parameter_state(adam, g.params[i]));
    if (!state) {
      auto fresh = std::make_unique<torch::optim::AdamParamState>();
      fresh->exp_avg(torch::zeros_like(g.params[i], torch::MemoryFormat::Preserve));
      fresh->exp_avg_sq(torch::zeros_like(g.params[i], torch::MemoryFormat::Preserve));
      state = fresh.get();
      set_parameter_state(adam, g.params[i], std::move(fresh));
    }
    state->step(state->step() + 1);
    Part& part = by_step[state->step()];
    part.params.push_back(g.params[i]);
    part.grads.push_back(g.grads[i]);
    part.exp_avg.push_back(state->exp_avg());
    part.exp_avg_sq.push_back(state->exp_avg_sq());
  }
  for (auto& [step, part] : by_step) adam_step(o, step, part.params, part.grads, part.exp_avg, part.exp_avg_sq);
}

bool has_amsgrad(const torch::optim::Optimizer& optimizer) {
  for (const auto& group : optimizer.param_groups())
    if (static_cast<const torch::optim::AdamOptions&>(group.options()).amsgrad()) return true;
  return false;
}

}  // namespace

void multi_tensor_step(torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  if (auto* sgd = dynamic_cast<torch::optim::SGD*>(&optimizer)) {
    for (auto& group : sgd->param_groups()) sgd_step(*sgd, group);
    return;
  }
  auto* adam = dynamic_cast<torch::optim::Adam*>(&optimizer);
  if (!adam || has_amsgrad(*adam)) {
    optimizer.step();
    return;
  }
  for (auto& group : adam->param_groups()) adam_step(*adam, group);
}

void multi_tensor_zero_grad(torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> grads;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) {
        p.mutable_grad().detach_();
        grads.push_back(p.grad());
      }
  if (!grads.empty()) at::_foreach_zero_(grads);
}

}  // namespace mapgate
