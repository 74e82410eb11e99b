// What an epoch of training reports, derived once: running sums over its batches (the
// progress line), then, with the test pass, its metrics.jsonl line (to_json) and the
// summary line printed at its end (summary).
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "train/evaluate.h"
#include "train/progress.h"
#include "train/reinforce.h"

namespace mapgate {

// Sums over the batches trained so far, each step's batch mean weighted by its size.
struct EpochTotals {
  std::size_t seen = 0, correct = 0, skipped = 0;  // skipped: non-finite batches left out
  double loss_sum = 0;
  double kept_sum = 0, macs_sum = 0, reward_sum = 0, entropy_sum = 0, rate_loss_sum = 0;  // gated runs

  void add(const GatedStep& step, std::size_t correct_in_batch, std::size_t batch_size);
  double mean(double sum) const { return sum / static_cast<double>(seen); }
  double loss() const { return mean(loss_sum); }
  double accuracy() const { return mean(static_cast<double>(correct)); }
  // The running means of the progress line; the caller adds position and timing.
  StepStats running(bool gated) const;
};

struct EpochReport {
  int epoch = 0, epochs = 0;  // epoch: 1-based
  double lr = 0;
  bool gated = false;         // a gated run (gate metrics follow)
  bool gated_phase = false;   // past --warmup-epochs
  bool gumbel = false;        // --gates gumbel: the target-rate loss is reported
  double penalty = 0;         // lambda at the epoch's last step
  EpochTotals train;
  double train_seconds = 0, data_wait_seconds = 0, eval_seconds = 0;
  EvalResult test;
  double shuffle_accuracy = 0;  // gated: the mask-shuffle ablation's accuracy

  double images_per_s() const;
  nlohmann::json to_json() const;                  // one metrics.jsonl line
  std::string summary(double epoch_seconds) const; // "epoch 3/10 done in 1:02 | train loss ..."
};

}  // namespace mapgate
