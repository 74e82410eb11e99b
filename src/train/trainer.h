// DenseNet training, dense or gated (docs/design.md §3; one batch of each kind of run in
// train_step.h, the run directory in run_dir.h, what an epoch reports in epoch_report.h): SGD with Nesterov
// momentum, weight decay, step or cosine learning rate; per-epoch metrics, atomic
// checkpoints and exact resume (data order, augmentation and dropout depend only on
// the seed and the epoch, so an interrupted run continues as if never stopped).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "data/dataset.h"
#include "train/run_dir.h"  // kConfigFile, kMetricsFile
#include "train/train_config.h"

namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace mapgate {

struct TrainSummary {
  int epochs_done = 0;          // epochs completed in total (including resumed ones)
  double test_accuracy = 0;     // after the last epoch run; 0 if none ran
  double test_loss = 0;
  double train_images_per_s = 0;  // mean over the epochs run in this call
};

// Test seam: `after_backward` runs after each backward pass, before the gradients are
// checked and the optimizers step (`step` counts from 1 over the call), so tests can
// inject a numerical fault.
struct TrainHooks {
  std::function<void(std::int64_t step, torch::nn::Module& model)> after_backward;
};

// Trains on `data.train`, evaluates on `data.test` after every epoch, writes RUN/.
// `log` receives the progress line and epoch summaries (nullptr: silent).
// A non-finite loss, REINFORCE advantage or gradient stops the run with an Error
// naming the quantity, epoch and step (config.skip_nonfinite: the batch is skipped and
// counted as "skipped_batches" in metrics.jsonl); the last checkpoint stays intact.
TrainSummary train(TrainConfig config, const DatasetSplits& data, std::ostream* log,
                   const TrainHooks* hooks = nullptr);

// Seed of the per-epoch random streams (loader, dropout).
std::uint64_t epoch_seed(std::uint64_t seed, int epoch);

}  // namespace mapgate
