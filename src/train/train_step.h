// One training batch's forward and loss, by kind of run (docs/method.md): the dense step
// (a dense model, or a gated one's warm-up with every gate on), REINFORCE, Gumbel, or the
// fixed-rate gates of the baselines; --distill then mixes the teacher into the weights' loss.
// The optimizers' zero_grad, backward and step stay with the caller (trainer.cpp).
#pragma once

#include <string>

#include "model/densenet.h"
#include "model/gated_macs.h"
#include "train/distillation.h"
#include "train/reinforce.h"
#include "train/train_config.h"

namespace mapgate {

// What a step needs beyond the model and the batch, for the whole run.
struct StepContext {
  const TrainConfig& config;
  const GatedCost* cost = nullptr;  // gated runs
  Teacher* teacher = nullptr;       // --distill
  double* mean_baseline = nullptr;  // --baseline mean's running state (NaN before the first step)
};

struct TrainStep {
  GatedStep out;      // logits, loss (call backward), batch means; a dense step fills logits, loss, ce
  std::string fault;  // the non-finite quantity found before backward, "" if none
};

// lambda at `epoch_progress` (epochs done, fractional) of a gated run: --penalty, ramped
// linearly over --penalty-ramp-epochs after the --warmup-epochs.
double ramped_penalty(const TrainConfig& c, double epoch_progress);

// gated_phase: a gated run past its warm-up (else every gate is on and untrained; a gated
// model's step then reports kept 1 and the dense MACs plus the gates'). `penalty` is the
// lambda in effect (ramped_penalty).
TrainStep train_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels, bool gated_phase,
                     double penalty, const StepContext& ctx);

}  // namespace mapgate
