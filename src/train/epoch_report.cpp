// EpochTotals and EpochReport; see epoch_report.h. docs/method.md and tools/ (plots,
// compare.py) read the metrics keys: keep them stable.
#include "train/epoch_report.h"

#include <algorithm>
#include <cstdio>

namespace mapgate {

void EpochTotals::add(const GatedStep& step, std::size_t correct_in_batch, std::size_t batch_size) {
  const double n = static_cast<double>(batch_size);
  seen += batch_size;
  correct += correct_in_batch;
  loss_sum += step.ce * n;
  kept_sum += step.kept * n;
  macs_sum += step.macs * n;
  reward_sum += step.reward * n;
  entropy_sum += step.entropy * n;
  rate_loss_sum += step.rate_loss * n;
}

StepStats EpochTotals::running(bool gated) const {
  StepStats s;
  s.loss = loss();
  s.accuracy = accuracy();
  if (gated) {
    s.gated = true;
    s.kept = mean(kept_sum);
    s.macs = mean(macs_sum);
    s.reward = mean(reward_sum);
    s.entropy = mean(entropy_sum);
  }
  return s;
}

double EpochReport::images_per_s() const { return train.seen / std::max(train_seconds, 1e-9); }

nlohmann::json EpochReport::to_json() const {
  nlohmann::json j = {{"epoch", epoch},
                      {"lr", lr},
                      {"train_loss", train.loss()},
                      {"train_accuracy", train.accuracy()},
                      {"test_loss", test.loss()},
                      {"test_accuracy", test.accuracy()},
                      {"test_examples", test.examples},
                      {"train_seconds", train_seconds},
                      {"data_wait_seconds", data_wait_seconds},
                      {"images_per_s", images_per_s()},
                      {"skipped_batches", train.skipped},
                      {"eval_seconds", eval_seconds}};
  if (!gated) return j;
  j["gated_phase"] = gated_phase;
  j["penalty"] = gated_phase ? penalty : 0.0;
  j["train_kept_fraction"] = train.mean(train.kept_sum);
  j["train_macs_mean"] = train.mean(train.macs_sum);
  j["train_reward"] = train.mean(train.reward_sum);    // 0 in the warm-up
  j["gate_entropy"] = train.mean(train.entropy_sum);
  if (gumbel) j["train_rate_loss"] = train.mean(train.rate_loss_sum);
  j["test_macs_dense"] = test.macs_dense;
  j["test_macs_mean"] = test.macs_mean();
  j["test_active_fraction"] = test.active_fraction();
  j["test_speedup_potential"] = test.macs_dense / std::max(test.macs_mean(), 1.0);
  j["test_per_layer_active"] = test.layer_active;
  j["test_input_dependence"] = input_dependence_json(test, shuffle_accuracy);
  return j;
}

std::string EpochReport::summary(double epoch_seconds) const {
  char line[256];
  std::snprintf(line, sizeof line,
                "epoch %d/%d done in %s | train loss %.4f acc %.4f | test loss %.4f acc %.4f "
                "| %.0f img/s, data wait %.1fs",
                epoch, epochs, format_duration(epoch_seconds).c_str(), train.loss(),
                train.accuracy(), test.loss(), test.accuracy(), images_per_s(),
                data_wait_seconds);
  std::string out = line;
  if (train.skipped > 0) out += " | skipped " + std::to_string(train.skipped) + " non-finite batch(es)";
  if (!gated) return out;
  char gate_line[192];
  std::snprintf(gate_line, sizeof gate_line,
                " | test kept %.3f MACs %.1fM (x%.2f, CV %.3f) shuffled masks %+.4f | train kept %.3f reward %.4f H %.3f",
                test.active_fraction(), test.macs_mean() / 1e6, test.macs_dense / std::max(test.macs_mean(), 1.0),
                test.dependence.macs_cv, shuffle_accuracy - test.accuracy(), train.mean(train.kept_sum),
                train.mean(train.reward_sum), train.mean(train.entropy_sum));
  return out + gate_line;
}

}  // namespace mapgate
