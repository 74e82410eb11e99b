// Operators per training step: how many ATen operators that run a kernel one dense and one
// REINFORCE-gated training step of mapgate launch, forward, backward, the gradient check
// and both optimizers included, and how many of them read a value back to the host
// (item()). On a GPU a step of a DenseNet at batch 64 is bound by launching kernels
// (docs/scale.md, "Measured on a lent H200"), so the count is a device-independent proxy
// for its time there; it is counted on the CPU with LibTorch's RecordFunction callbacks.
// --generic-bn runs the masked BatchNorm as a GPU does (masked_batch_norm's LibTorch
// operators) instead of the CPU's fused kernel (masked_bn_relu). Used for docs/scale.md,
// "Fewer operators per step for a GPU".
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <ATen/record_function.h>
#include <CLI/CLI.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include "cli/choice_option.h"
#include "model/densenet.h"
#include "model/gated_macs.h"
#include "common/error.h"
#include "train/device.h"
#include "train/gate_setup.h"
#include "train/multi_tensor_step.h"
#include "train/numeric_guard.h"
#include "train/train_step.h"

namespace {

using namespace mapgate;

// Operators that only make a new view or read metadata: no kernel on any device.
const std::set<std::string> kNoKernel = {
    "aten::view",       "aten::reshape",      "aten::_reshape_alias", "aten::narrow",        "aten::select",
    "aten::slice",      "aten::expand",       "aten::expand_as",      "aten::view_as",       "aten::as_strided",
    "aten::as_strided_", "aten::flatten",     "aten::unsqueeze",      "aten::squeeze",       "aten::t",
    "aten::transpose",  "aten::permute",      "aten::numpy_T",        "aten::detach",        "aten::detach_",
    "detach",           "detach_",            "aten::alias",          "aten::empty",         "aten::empty_like",
    "aten::empty_strided", "aten::resize_",   "aten::contiguous",     "aten::to",            "aten::lift_fresh",
    "aten::result_type", "aten::is_nonzero",  "aten::requires_grad_", "aten::resolve_conj",  "aten::resolve_neg"};

// Counts the operators that launch work, per name: the operators mapgate's code (and the
// autograd engine's backward functions) call that run at least one kernel, themselves or
// through their callees. One count per such call: on a GPU most ATen operators are one
// kernel (a reduction, a cast inside an elementwise operator), while the CPU
// implementations call helpers (fill_, copy_) that a count of every kernel would add. View
// operators (kNoKernel) run none. A multi-tensor (_foreach_) operator counts once: CUDA
// runs it as a few kernels, one per chunk of tensors, the CPU tensor by tensor.
class OperatorCounter {
 public:
  OperatorCounter() {
    handle_ = at::addGlobalCallback(
        at::RecordFunctionCallback(&OperatorCounter::enter, &OperatorCounter::leave).scopes({at::RecordScope::FUNCTION}));
  }
  ~OperatorCounter() { at::removeCallback(handle_); }
  OperatorCounter(const OperatorCounter&) = delete;
  OperatorCounter& operator=(const OperatorCounter&) = delete;

  static void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    kernels_.clear();
  }
  static std::map<std::string, long> kernels() {
    std::lock_guard<std::mutex> lock(mutex_);
    return kernels_;
  }

 private:
  struct Frame {
    bool kernel_below = false;  // this call, or one of its callees, runs a kernel
    bool autograd = false;      // an autograd engine record: its callees count as called by code
  };
  static std::unique_ptr<at::ObserverContext> enter(const at::RecordFunction& fn) {
    stack_.push_back(Frame{false, std::string(fn.name()).rfind("autograd::", 0) == 0});
    return nullptr;
  }
  static void leave(const at::RecordFunction& fn, at::ObserverContext*) {
    if (stack_.empty()) return;  // entered before the counter existed
    const Frame frame = stack_.back();
    stack_.pop_back();
    const std::string name = fn.name();
    if (frame.autograd) return;
    const bool runs = frame.kernel_below || !kNoKernel.count(name);
    const bool called_by_code = stack_.empty() || stack_.back().autograd;
    if (!called_by_code) {
      stack_.back().kernel_below |= runs;
      return;
    }
    if (!runs) return;
    std::lock_guard<std::mutex> lock(mutex_);
    ++kernels_[name];
  }

  at::CallbackHandle handle_ = 0;
  static thread_local std::vector<Frame> stack_;
  static std::mutex mutex_;
  static std::map<std::string, long> kernels_;
};
thread_local std::vector<OperatorCounter::Frame> OperatorCounter::stack_;
std::mutex OperatorCounter::mutex_;
std::map<std::string, long> OperatorCounter::kernels_;

long total(const std::map<std::string, long>& kernels) {
  long n = 0;
  for (const auto& kv : kernels) n += kv.second;
  return n;
}

// The phases of a step, in order, and the kernel operators of each, summed over steps.
const char* const kPhases[] = {"zero_grad",          "forward (step's passes, losses)", "backward",
                               "gradient check",     "weights' SGD step",               "gates' optimizer step",
                               "number correct"};
constexpr int kPhaseCount = 7;

struct StepCount {
  long kernels = 0, host_reads = 0;
  long phase[kPhaseCount] = {};
  std::vector<std::pair<long, std::string>> top;  // kernel operators, most frequent first
};

// `steps` training steps as Trainer::train_batch takes them in one process (zero_grad,
// the step's forwards, backward, the gradient check, the optimizers' steps, the number
// correct), counted after one uncounted step.
StepCount count_steps(TrainConfig c, bool generic_bn, int batch, int steps, torch::Device device) {
  torch::manual_seed(0);
  apply_gate_flags(c);
  DenseNet model(c.model);
  model->to(device);
  model->train();
  model->set_masked_norm(MaskedNorm{true, nullptr, /*fused_cpu=*/!generic_bn});
  initialise_gates(model, c);
  torch::optim::SGD sgd(split_parameters(*model).first,
                        torch::optim::SGDOptions(c.lr).momentum(0.9).nesterov(true).weight_decay(1e-4));
  std::unique_ptr<torch::optim::Optimizer> gate_optimizer;
  const auto phi = trainable_gate_parameters(model, c);
  if (!phi.empty()) gate_optimizer = make_gate_optimizer(c.gate_optimizer, c.gate_lr, phi);
  std::unique_ptr<GatedCost> cost;
  if (c.gated()) cost = std::make_unique<GatedCost>(c.model);
  double mean_baseline = std::nan("");
  const StepContext context{c, cost.get(), nullptr, &mean_baseline};
  const auto images = torch::randn({batch, 3, 32, 32}).to(device);
  const auto labels = torch::randint(0, 10, {batch}, torch::kInt64).to(device);
  const OperatorCounter counter;
  StepCount out;
  std::map<std::string, long> sum;
  int phase = 0;
  auto end_phase = [&](bool counted) {
    const auto kernels = OperatorCounter::kernels();
    OperatorCounter::reset();
    if (!counted) return;
    out.phase[phase++ % kPhaseCount] += total(kernels);
    for (const auto& [name, n] : kernels) sum[name] += n;
  };
  for (int s = 0; s <= steps; ++s) {
    const bool counted = s > 0;
    multi_tensor_zero_grad(sgd);
    if (gate_optimizer) multi_tensor_zero_grad(*gate_optimizer);
    end_phase(counted);
    TrainStep step = train_step(model, images, labels, c.gated(), c.penalty, context);
    end_phase(counted);
    step.out.loss.backward();
    end_phase(counted);
    first_nonfinite_gradient(*model);
    end_phase(counted);
    multi_tensor_step(sgd);
    end_phase(counted);
    if (gate_optimizer) multi_tensor_step(*gate_optimizer);
    end_phase(counted);
    step.out.logits.argmax(1).eq(labels).sum().item<std::int64_t>();
    end_phase(counted);
  }
  for (const auto& [name, n] : sum) {
    out.kernels += n / steps;
    if (name == "aten::item") out.host_reads += n / steps;
    out.top.emplace_back(n / steps, name);
  }
  std::sort(out.top.rbegin(), out.top.rend());
  for (auto& p : out.phase) p /= steps;
  return out;
}

void print(const char* arm, const StepCount& s, int top) {
  std::printf("%s: %ld kernel operators per step, %ld of them host reads (item())\n", arm, s.kernels,
              s.host_reads);
  for (int p = 0; p < kPhaseCount; ++p) std::printf("  %6ld in %s\n", s.phase[p], kPhases[p]);
  std::printf("  most frequent:\n");
  for (int i = 0; i < top && i < static_cast<int>(s.top.size()); ++i)
    std::printf("  %6ld %s\n", s.top[i].first, s.top[i].second.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ATen operators per training step, dense and REINFORCE-gated (a GPU's kernel launches)"};
  app.option_defaults()->always_capture_default();
  TrainConfig c;
  c.penalty = 4;
  int batch = 16, steps = 2, top = 15;
  bool generic_bn = false;
  app.add_option("--depth", c.model.depth, "DenseNet depth");
  app.add_option("--growth", c.model.growth, "growth rate");
  app.add_option("--batch", batch, "batch size (the count does not depend on it)");
  app.add_option("--steps", steps, "counted steps, after one uncounted");
  app.add_option("--top", top, "most frequent operators to list");
  std::string device_name = "cpu";
  app.add_option("--device", device_name,
                 "where the steps run: cpu, cuda or cuda:N (on a GPU the count is of its own operators, "
                 "and the masked BatchNorm is the generic one)");
  app.add_flag("--generic-bn", generic_bn,
               "masked BatchNorm by LibTorch operators, as on a GPU (default: the CPU's fused kernel)");
  add_choice_option(&app, c.cost, "gated arm: the cost lambda weighs, as mapgate train --cost");
  add_choice_option(&app, c.baseline, "gated arm: REINFORCE baseline, as mapgate train --baseline (a GPU's auto: greedy)");
  add_choice_option(&app, c.theta_masks, "gated arm: as mapgate train --theta-masks");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(1);
  torch::Device device = torch::kCPU;
  try {
    device = open_device("--device", device_name);
  } catch (const Error& e) {
    std::fprintf(stderr, "mapgate_step_ops: %s\n", e.what());
    return 1;
  }

  TrainConfig dense = c;
  dense.gates = Gates::kOff;
  TrainConfig gated = c;
  gated.gates = Gates::kReinforce;
  const StepCount a = count_steps(dense, generic_bn, batch, steps, device);
  const StepCount b = count_steps(gated, generic_bn, batch, steps, device);
  const bool generic = generic_bn || !device.is_cpu();
  std::printf("DenseNet-%d k=%d, batch %d, %s, %s masked BatchNorm, gated: lambda 4, cost %s, baseline %s\n",
              c.model.depth, c.model.growth, batch, device.str().c_str(), generic ? "generic (GPU)" : "fused CPU",
              choice_name(c.cost), choice_name(c.baseline));
  print("dense", a, top);
  print("gated", b, top);
  std::printf("gated / dense kernel operators: %.2f\n", static_cast<double>(b.kernels) / a.kernels);
  return 0;
}
