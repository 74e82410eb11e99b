// TrainConfig: checks, learning-rate schedule and JSON form.
#include "train/train_config.h"

#include <cmath>

#include "common/error.h"

namespace mapgate {

double TrainConfig::lr_at(int epoch) const {
  if (schedule == "cosine") return 0.5 * lr * (1 + std::cos(M_PI * epoch / epochs));
  double rate = lr;
  if (epoch >= epochs / 2) rate *= 0.1;
  if (epoch >= epochs * 3 / 4) rate *= 0.1;
  return rate;
}

void validate(const TrainConfig& c) {
  validate(c.model);
  if (c.epochs < 1) throw UsageError("--epochs " + std::to_string(c.epochs) + ": expected >= 1");
  if (c.batch < 1) throw UsageError("--batch " + std::to_string(c.batch) + ": expected >= 1");
  if (!(c.lr > 0)) throw UsageError("--lr " + std::to_string(c.lr) + ": expected > 0");
  if (c.schedule != "step" && c.schedule != "cosine")
    throw UsageError("--schedule " + quoted(c.schedule) + ": unknown; expected one of step, cosine");
  if (c.threads < 0) throw UsageError("--threads " + std::to_string(c.threads) + ": expected >= 1");
  if (c.stop_after < 0) throw UsageError("--stop-after " + std::to_string(c.stop_after) + ": expected >= 0");
  if (c.out_dir.empty()) throw UsageError("--out: required (the run directory)");
}

nlohmann::json to_json(const TrainConfig& c) {
  return {{"dataset", c.dataset},
          {"data_dir", c.data_dir},
          {"out_dir", c.out_dir},
          {"model", to_json(c.model)},
          {"epochs", c.epochs},
          {"batch", c.batch},
          {"lr", c.lr},
          {"schedule", c.schedule},
          {"momentum", c.momentum},
          {"nesterov", true},
          {"weight_decay", c.weight_decay},
          {"threads", c.threads},
          {"seed", c.seed},
          {"train_limit", c.train_limit},
          {"test_limit", c.test_limit},
          {"augment", c.augment},
          {"revision", MAPGATE_REVISION}};
}

}  // namespace mapgate
