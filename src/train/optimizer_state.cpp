// Optimizer state as named tensors; see optimizer_state.h.
#include "train/optimizer_state.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <type_traits>

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include "common/error.h"

namespace mapgate {
namespace {

using StateMap = std::decay_t<decltype(std::declval<const torch::optim::Optimizer&>().state())>;

// The key LibTorch files a parameter's state under: the TensorImpl's address, as text in
// LibTorch 1.13 and as the pointer itself in later releases.
template <typename Key = StateMap::key_type>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << static_cast<const void*>(p.unsafeGetTensorImpl());
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

std::vector<torch::Tensor> parameters_of(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) params.push_back(p);
  return params;
}

// The stored tensors of one parameter: FIELD -> tensor.
using Fields = std::map<std::string, torch::Tensor>;

// Groups `stored` by parameter index, refusing names no parameter has.
std::map<std::size_t, Fields> by_parameter(const std::map<std::string, torch::Tensor>& stored, std::size_t count,
                                           bool sgd, const std::string& who) {
  static const std::vector<std::string> kSgd = {"momentum_buffer"};
  static const std::vector<std::string> kAdam = {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  const auto& known = sgd ? kSgd : kAdam;
  std::map<std::size_t, Fields> out;
  for (const auto& [name, tensor] : stored) {
    const auto slash = name.find('/');
    const std::string index = name.substr(0, slash), field = slash == std::string::npos ? "" : name.substr(slash + 1);
    const bool numeric = !index.empty() && index.size() < 10 && index.find_first_not_of("0123456789") == std::string::npos;
    if (!numeric || std::stoul(index) >= count || std::find(known.begin(), known.end(), field) == known.end())
      throw Error(who + quoted(name) + ": no such state (" + std::to_string(count) + " parameters, fields " +
                  (sgd ? "momentum_buffer" : "step, exp_avg, exp_avg_sq, max_exp_avg_sq") + ")");
    out[std::stoul(index)][field] = tensor;
  }
  return out;
}

torch::Tensor moment(const Fields& fields, std::size_t i, const char* field, const torch::Tensor& param,
                     const std::string& who, bool required = true) {
  const auto it = fields.find(field);
  const std::string name = who + quoted(std::to_string(i) + "/" + field);
  if (it == fields.end()) {
    if (required) throw Error(name + " is missing");
    return {};
  }
  if (it->second.scalar_type() != torch::kFloat || !it->second.sizes().equals(param.sizes()))
    throw Error(name + " does not match its parameter (float32 of the parameter's shape expected)");
  return it->second.to(param.device());
}

}  // namespace

std::string optimizer_kind(const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::SGD*>(&optimizer)) return "sgd";
  if (dynamic_cast<const torch::optim::Adam*>(&optimizer)) return "adam";
  throw Error("checkpoint: cannot store the state of an optimizer other than SGD or Adam");
}

std::vector<std::pair<std::string, torch::Tensor>> optimizer_state_tensors(const torch::optim::Optimizer& optimizer) {
  const bool sgd = optimizer_kind(optimizer) == "sgd";
  const auto& state = optimizer.state();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const auto params = parameters_of(optimizer);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto it = state.find(state_key(params[i]));
    if (it == state.end()) continue;
    const std::string at = std::to_string(i) + "/";
    if (sgd) {
      const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
      if (s.momentum_buffer().defined()) out.emplace_back(at + "momentum_buffer", s.momentum_buffer());
      continue;
    }
    const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
    out.emplace_back(at + "step", torch::scalar_tensor(s.step(), torch::kLong));
    out.emplace_back(at + "exp_avg", s.exp_avg());
    out.emplace_back(at + "exp_avg_sq", s.exp_avg_sq());
    if (s.max_exp_avg_sq().defined()) out.emplace_back(at + "max_exp_avg_sq", s.max_exp_avg_sq());
  }
  return out;
}

void restore_optimizer_state(torch::optim::Optimizer& optimizer, const std::map<std::string, torch::Tensor>& stored,
                             const std::string& who) {
  const bool sgd = optimizer_kind(optimizer) == "sgd";
  const auto params = parameters_of(optimizer);
  StateMap restored;
  for (const auto& [i, fields] : by_parameter(stored, params.size(), sgd, who)) {
    if (sgd) {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(moment(fields, i, "momentum_buffer", params[i], who));
      restored[state_key(params[i])] = std::move(s);
      continue;
    }
    const auto step = fields.find("step");
    if (step == fields.end() || step->second.scalar_type() != torch::kLong || step->second.numel() != 1 ||
        step->second.item<std::int64_t>() < 0)
      throw Error(who + quoted(std::to_string(i) + "/step") + " is missing or not a step count (an int64 >= 0)");
    auto s = std::make_unique<torch::optim::AdamParamState>();
    s->step(step->second.item<std::int64_t>());
    s->exp_avg(moment(fields, i, "exp_avg", params[i], who));
    s->exp_avg_sq(moment(fields, i, "exp_avg_sq", params[i], who));
    s->max_exp_avg_sq(moment(fields, i, "max_exp_avg_sq", params[i], who, /*required=*/false));
    restored[state_key(params[i])] = std::move(s);
  }
  optimizer.state() = std::move(restored);
}

torch::optim::OptimizerParamState* parameter_state(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  const auto it = optimizer.state().find(state_key(p));
  return it == optimizer.state().end() ? nullptr : it->second.get();
}

void set_parameter_state(torch::optim::Optimizer& optimizer, const torch::Tensor& p,
                         std::unique_ptr<torch::optim::OptimizerParamState> state) {
  optimizer.state()[state_key(p)] = std::move(state);
}

}  // namespace mapgate
