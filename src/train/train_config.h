// Every setting of a training run; written to RUN/config.json and into checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "train/data_parallel.h"  // WorldSettings
#include "train/choices.h"

namespace mapgate {

// Most LibTorch threads a flag may ask for (--threads): every extra thread past the
// cores only slows LibTorch down, and 10^5 of them look like a hang.
inline constexpr int kMaxThreads = 256;

struct TrainConfig {
  std::string dataset = "cifar10";
  std::string data_dir;             // resolved directory
  std::string out_dir;              // RUN
  DenseNetConfig model;
  int epochs = 300;                 // the DenseNet recipe
  int batch = 64;
  double lr = 0.1;
  Schedule schedule = Schedule::kStep;
  double momentum = 0.9;            // Nesterov
  double weight_decay = 1e-4;
  int threads = 0;                  // 0: all cores
  std::string device = "cpu";       // --device: cpu, cuda or cuda:N (train/device.h)
  std::uint64_t seed = 0;
  std::size_t train_limit = 0;      // 0: whole split
  std::size_t test_limit = 0;
  bool augment = true;
  bool resume = false;
  int stop_after = 0;               // stop (resumably) once this many epochs are done; 0: never
  bool skip_nonfinite = false;      // skip (and count) a batch with a non-finite loss, advantage or gradient
  WorldSettings world;              // this process among data-parallel ones (docs/scale.md); not saved
  DistBackend dist_backend = DistBackend::kAuto;  // --dist-backend: their collectives; not saved

  // Gates (docs/design.md §3; the choices in choices.h). model.gated follows `gates`
  // (train() sets it); the gate threshold and p clamp live in `model` since the model carries them.
  Gates gates = Gates::kOff;
  double penalty = 0.5;             // lambda in R = -CE - lambda * cost (gumbel: target-rate weight)
  GateCost cost = GateCost::kMaps;
  Baseline baseline = Baseline::kAuto;
  int warmup_epochs = 0;            // dense epochs (all gates on, gates untrained) first
  int penalty_ramp_epochs = 0;      // lambda grows linearly over this many gated epochs
  double entropy = 0;               // entropy bonus beta
  double gate_lr = 0.01;            // learning rate of the gate weights (routing test: docs/method.md)
  GateOptimizer gate_optimizer = GateOptimizer::kAdam;
  GateInput gate_input = GateInput::kStandardized;  // model.gate_standardize follows
  GateWeights gate_weights = GateWeights::kLearned;
  BnStats bn_stats = BnStats::kMasked;
  CostGradient cost_gradient = CostGradient::kAnalytic;
  double cost_target = 0;           // T: the penalty acts only above this batch-mean expected cost
  double gate_variance = 0;         // gamma: Bengio et al.'s batch-variance bonus
  double logit_variance = 0;        // delta: penalty on the batch variance of the gates' log-odds
  ThetaMasks theta_masks = ThetaMasks::kSampled;
  Amp amp = Amp::kOff;  // --amp: bf16 runs the training forwards under autocast
  GateUnit gate_unit = GateUnit::kMap;  // model.gate_per_layer follows
  std::vector<double> random_keep;  // --gates random: kept rate of each gated layer
  std::vector<int> fixed_maps;      // --gates fixed: 0/1 per gated map, layer after layer
  std::vector<int> init_mask;       // --gates reinforce: start at this static mask (0/1 per gated map)
  int bn_recal_batches = 0;         // BN recalibration under thresholded masks before eval
  std::string init;                 // dense weights to start from (run dir or checkpoint)
  // --distill RUN (src/train/distillation.h): the weights' loss is (1 - alpha) CE +
  // alpha T^2 KL(teacher || student) at temperature T.
  std::string distill;
  double distill_weight = 0.5;      // alpha
  double distill_temperature = 4.0; // T
  // --gates gumbel (src/train/gumbel.h): --penalty weighs the target-rate loss.
  double gumbel_temperature = 1.0;  // T in sigmoid((logit p + L) / T)
  double target_rate = 0.5;         // t: wanted kept fraction per layer

  bool gated() const { return gates != Gates::kOff; }
  bool learns_gates() const { return gates == Gates::kReinforce || gates == Gates::kGumbel; }
  // One decision per dense layer (--gate-unit layer) instead of one per map.
  bool gates_per_layer() const { return gated() && gate_unit == GateUnit::kLayer; }
  // Gates that do not train: the baselines (random, fixed) and --gates frozen.
  bool fixed_rate_gates() const {
    return gates == Gates::kRandom || gates == Gates::kFixed || gates == Gates::kFrozen;
  }

  // Learning rate during epoch `epoch` (0-based).
  double lr_at(int epoch) const;
};

// Throws UsageError naming the flag.
void validate(const TrainConfig& config);

nlohmann::json to_json(const TrainConfig& config);

}  // namespace mapgate
