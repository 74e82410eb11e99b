// One training batch by kind of run; see train_step.h.
#include "train/train_step.h"

#include <algorithm>
#include <cmath>

#include "train/gumbel.h"
#include "train/numeric_guard.h"

namespace mapgate {
namespace {

// A dense model, or a gated one's dense warm-up: all gates on, gates untouched.
GatedStep dense_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                     const StepContext& ctx) {
  GatedStep step;
  if (ctx.config.gated()) {
    GateControl all_on;
    all_on.mode = GateMode::kAllOn;
    step.logits = model->forward_gated(images, all_on).logits;
    step.kept = 1;
    step.macs = static_cast<double>(ctx.cost->dense_macs() + ctx.cost->gate_macs());
  } else {
    step.logits = model->forward(images);
  }
  step.loss = step.ce_loss = torch::nn::functional::cross_entropy(step.logits, labels);
  step.ce = step.loss.item<double>();
  return step;
}

GatedStep gated_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels, double penalty,
                     const StepContext& ctx) {
  const TrainConfig& c = ctx.config;
  if (c.fixed_rate_gates())
    return fixed_gates_step(model, images, labels, *ctx.cost,
                            c.gates == Gates::kRandom ? GateMode::kSample : GateMode::kThreshold);
  if (c.gates == Gates::kGumbel) {
    GumbelSettings gs;
    gs.penalty = penalty;
    gs.target = c.target_rate;
    gs.temperature = c.gumbel_temperature;
    gs.entropy = c.entropy;
    return gumbel_step(model, images, labels, *ctx.cost, gs);
  }
  ReinforceSettings rs;
  rs.penalty = penalty;
  rs.cost = c.cost;
  rs.baseline = c.baseline;
  rs.entropy = c.entropy;
  rs.cost_gradient = c.cost_gradient;
  rs.cost_target = c.cost_target;
  rs.variance = c.gate_variance;
  rs.logit_variance = c.logit_variance;
  rs.theta_masks = c.theta_masks;
  return reinforce_step(model, images, labels, *ctx.cost, rs, *ctx.mean_baseline);
}

// The non-finite quantity a step's forward produced, "" if none.
std::string forward_fault(const GatedStep& g, bool gated_phase) {
  if (!std::isfinite(g.ce)) return "loss (" + std::to_string(g.ce) + ")";
  if (!gated_phase) return "";
  if (!g.advantage_finite) return "REINFORCE advantage";
  if (!all_finite(g.loss)) return "gate loss";  // CE finite, total not
  return "";
}

}  // namespace

double ramped_penalty(const TrainConfig& c, double epoch_progress) {
  if (c.penalty_ramp_epochs <= 0) return c.penalty;
  return c.penalty * std::min(1.0, (epoch_progress - c.warmup_epochs) / c.penalty_ramp_epochs);
}

TrainStep train_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels, bool gated_phase,
                     double penalty, const StepContext& ctx) {
  TrainStep step;
  step.out = gated_phase ? gated_step(model, images, labels, penalty, ctx) : dense_step(model, images, labels, ctx);
  step.fault = forward_fault(step.out, gated_phase);
  if (ctx.teacher) {
    // The weights' CE becomes (1 - alpha) CE + alpha KD; gates keep their CE reward. The CE
    // node gets gradient 1 - alpha, exactly 1 or 0 at alpha 0 or 1 (tests rely on it).
    GatedStep& g = step.out;
    const auto kd = distillation_loss(g.logits, ctx.teacher->logits(images), ctx.config.distill_temperature);
    g.loss = g.loss + ctx.config.distill_weight * (kd - g.ce_loss);
  }
  return step;
}

}  // namespace mapgate
