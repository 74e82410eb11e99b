// TrainConfig: checks, learning-rate schedule and JSON form.
#include "train/train_config.h"

#include "train/device.h"

#include <cmath>

#include "common/error.h"
#include "common/revision.h"

namespace mapgate {

double TrainConfig::lr_at(int epoch) const {
  if (schedule == Schedule::kCosine) return 0.5 * lr * (1 + std::cos(M_PI * epoch / epochs));
  double rate = lr;
  if (epoch >= epochs / 2) rate *= 0.1;
  if (epoch >= epochs * 3 / 4) rate *= 0.1;
  return rate;
}

namespace {

// One 0/1 per gated map (layers x growth, layer after layer).
void check_mask_bits(const char* flag, const std::vector<int>& bits, const DenseNetConfig& model) {
  const int maps = model.dense_layers() * model.growth;
  if (static_cast<int>(bits.size()) != maps)
    throw UsageError(std::string(flag) + ": " + std::to_string(bits.size()) + " values given, " +
                     std::to_string(maps) + " needed (one 0/1 per gated map: layers x growth)");
  for (int b : bits)
    if (b != 0 && b != 1) throw UsageError(std::string(flag) + " " + std::to_string(b) + ": expected 0 or 1");
}

// --gate-unit layer: a layer's k bits are one decision, so they must agree.
void check_layer_bits(const char* flag, const std::vector<int>& bits, const DenseNetConfig& model) {
  const int k = model.growth;
  for (int l = 0; l < model.dense_layers(); ++l)
    for (int j = 1; j < k; ++j)
      if (bits[l * k + j] != bits[l * k])
        throw UsageError(std::string(flag) + ": layer " + std::to_string(l) +
                         " has maps on and off; with --gate-unit layer each layer's " + std::to_string(k) +
                         " values must be equal");
}

}  // namespace

void validate(const TrainConfig& c) {
  if (c.gates == Gates::kFrozen && c.init.empty())
    throw UsageError("--gates frozen: needs --init RUN, a gated run whose gates it keeps");
  if (c.model.core_maps != 0 && !(c.learns_gates() || c.gates == Gates::kRandom))
    throw UsageError("--core-maps: only with --gates reinforce, gumbel (gates that learn which of the other maps "
                     "to compute) or random (a coin for each of the other maps)");
  DenseNetConfig model = c.model;
  model.gated = c.gated();
  model.gate_per_layer = c.gates_per_layer();  // as apply_gate_flags sets them
  validate(model);
  if (c.gated()) {
    if (!(c.penalty >= 0) || !std::isfinite(c.penalty))
      throw UsageError("--penalty " + std::to_string(c.penalty) + ": expected a finite value >= 0");
    if (c.warmup_epochs < 0)
      throw UsageError("--warmup-epochs " + std::to_string(c.warmup_epochs) + ": expected >= 0");
    if (c.penalty_ramp_epochs < 0)
      throw UsageError("--penalty-ramp-epochs " + std::to_string(c.penalty_ramp_epochs) + ": expected >= 0");
    if (!(c.entropy >= 0) || !std::isfinite(c.entropy))
      throw UsageError("--entropy " + std::to_string(c.entropy) + ": expected a finite value >= 0");
    if (!(c.gate_lr > 0) || !std::isfinite(c.gate_lr))
      throw UsageError("--gate-lr " + std::to_string(c.gate_lr) + ": expected a finite value > 0");
    if (c.bn_recal_batches < 0)
      throw UsageError("--bn-recal " + std::to_string(c.bn_recal_batches) + ": expected >= 0");
    if (!(c.gate_variance >= 0) || !std::isfinite(c.gate_variance))
      throw UsageError("--gate-variance " + std::to_string(c.gate_variance) + ": expected a finite value >= 0");
    if (!(c.logit_variance >= 0) || !std::isfinite(c.logit_variance))
      throw UsageError("--logit-variance " + std::to_string(c.logit_variance) + ": expected a finite value >= 0");
    if (!(c.cost_target >= 0 && c.cost_target < 1))
      throw UsageError("--cost-target " + std::to_string(c.cost_target) + ": expected 0 <= T < 1 (a fraction of --cost)");
    if (c.cost_target != 0 && (c.gates != Gates::kReinforce || c.cost_gradient != CostGradient::kAnalytic))
      throw UsageError("--cost-target: only with --gates reinforce and --cost-gradient analytic");
    if (c.baseline == Baseline::kEngine && c.gates != Gates::kReinforce)
      throw UsageError("--baseline engine: only with --gates reinforce (the other gates use no baseline)");
    if (c.baseline == Baseline::kEngine && c.device != "cpu")
      throw UsageError("--baseline engine: the engine runs on the CPU; with --device " + c.device +
                       " use --baseline greedy");
  }
  if (c.gates == Gates::kRandom) {
    const int layers = c.model.dense_layers();
    if (static_cast<int>(c.random_keep.size()) != layers)
      throw UsageError("--random-keep: " + std::to_string(c.random_keep.size()) + " rates given, --gates random needs " +
                       std::to_string(layers) + " (one per gated layer)");
    for (double r : c.random_keep) {
      if (!(r > c.model.p_clamp && r < 1 - c.model.p_clamp))
        throw UsageError("--random-keep " + std::to_string(r) + ": expected eps < rate < 1 - eps (--p-clamp)");
      if (c.model.routed_rate(r) < -1e-9)
        throw UsageError("--random-keep " + std::to_string(r) + ": below the share the core keeps, --core-maps " +
                         std::to_string(c.model.core_maps) + " of " + std::to_string(c.model.growth) + " maps");
    }
  } else if (!c.random_keep.empty()) {
    throw UsageError("--random-keep: only with --gates random");
  }
  if (c.gates == Gates::kFixed) {
    check_mask_bits("--fixed-maps", c.fixed_maps, c.model);
  } else if (!c.fixed_maps.empty()) {
    throw UsageError("--fixed-maps: only with --gates fixed");
  }
  if (c.gate_unit == GateUnit::kLayer && !(c.learns_gates() || c.gates == Gates::kRandom))
    throw UsageError("--gate-unit layer: only with --gates reinforce, gumbel or random (--gates fixed gives "
                     "its maps one by one in --fixed-maps)");
  if (!(c.distill_weight >= 0 && c.distill_weight <= 1))
    throw UsageError("--distill-weight " + std::to_string(c.distill_weight) + ": expected 0..1");
  if (!(c.distill_temperature > 0) || !std::isfinite(c.distill_temperature))
    throw UsageError("--distill-temperature " + std::to_string(c.distill_temperature) + ": expected a finite value > 0");
  if (!c.init_mask.empty()) {
    if (c.gates != Gates::kReinforce) throw UsageError("--init-mask: only with --gates reinforce");
    check_mask_bits("--init-mask", c.init_mask, c.model);
    if (c.gate_unit == GateUnit::kLayer) check_layer_bits("--init-mask", c.init_mask, c.model);
  }
  if (c.gates == Gates::kGumbel) {
    if (c.cost != GateCost::kMaps)
      throw UsageError("--cost " + quoted(choice_name(c.cost)) +
                       ": --gates gumbel's target-rate loss counts maps; --cost macs is for --gates reinforce");
    if (!(c.gumbel_temperature > 0) || !std::isfinite(c.gumbel_temperature))
      throw UsageError("--gumbel-temperature " + std::to_string(c.gumbel_temperature) +
                       ": expected a finite value > 0");
    if (!(c.target_rate >= 0 && c.target_rate <= 1))
      throw UsageError("--target-rate " + std::to_string(c.target_rate) + ": expected 0 <= t <= 1");
  }
  if (c.epochs < 1) throw UsageError("--epochs " + std::to_string(c.epochs) + ": expected >= 1");
  if (c.batch < 1) throw UsageError("--batch " + std::to_string(c.batch) + ": expected >= 1");
  if (!(c.lr > 0) || !std::isfinite(c.lr))
    throw UsageError("--lr " + std::to_string(c.lr) + ": expected a finite value > 0");
  if (!(c.momentum > 0 && c.momentum < 1))  // Nesterov needs momentum > 0
    throw UsageError("--momentum " + std::to_string(c.momentum) + ": expected 0 < m < 1");
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay))
    throw UsageError("--weight-decay " + std::to_string(c.weight_decay) + ": expected a finite value >= 0");
  if (c.threads < 0 || c.threads > kMaxThreads)
    throw UsageError("--threads " + std::to_string(c.threads) + ": expected 1.." + std::to_string(kMaxThreads) +
                     " (0: every core)");
  check_device_flag("--device", c.device);
  if (c.stop_after < 0) throw UsageError("--stop-after " + std::to_string(c.stop_after) + ": expected >= 0");
  if (c.out_dir.empty()) throw UsageError("--out: required (the run directory)");
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j = {{"dataset", c.dataset},
          {"data_dir", c.data_dir},
          {"out_dir", c.out_dir},
          {"model", to_json(c.model)},
          {"epochs", c.epochs},
          {"batch", c.batch},
          {"lr", c.lr},
          {"schedule", choice_name(c.schedule)},
          {"momentum", c.momentum},
          {"nesterov", true},
          {"weight_decay", c.weight_decay},
          {"threads", c.threads},
          {"device", c.device},
          {"seed", c.seed},
          {"train_limit", c.train_limit},
          {"test_limit", c.test_limit},
          {"augment", c.augment},
          {"skip_nonfinite", c.skip_nonfinite},
          {"revision", source_revision()}};
  if (!c.init.empty()) j["init"] = c.init;
  if (!c.distill.empty()) {  // only when set: older runs still --resume
    j["distill"] = c.distill;
    j["distill_weight"] = c.distill_weight;
    j["distill_temperature"] = c.distill_temperature;
  }
  if (c.gated()) {  // a dense run's config.json keeps its keys
    j["gates"] = choice_name(c.gates);
    j["penalty"] = c.penalty;
    j["cost"] = choice_name(c.cost);
    j["baseline"] = choice_name(c.baseline);
    j["warmup_epochs"] = c.warmup_epochs;
    j["penalty_ramp_epochs"] = c.penalty_ramp_epochs;
    j["entropy"] = c.entropy;
    j["gate_lr"] = c.gate_lr;
    j["bn_recal_batches"] = c.bn_recal_batches;
    j["gate_optimizer"] = choice_name(c.gate_optimizer);
    j["gate_input"] = choice_name(c.gate_input);
    j["gate_weights"] = choice_name(c.gate_weights);
    j["bn_stats"] = choice_name(c.bn_stats);
    j["cost_gradient"] = choice_name(c.cost_gradient);
    j["gate_variance"] = c.gate_variance;
    j["theta_masks"] = choice_name(c.theta_masks);
  }
  if (c.gates == Gates::kRandom) j["random_keep"] = c.random_keep;
  if (c.gates == Gates::kFixed) j["fixed_maps"] = c.fixed_maps;
  if (!c.init_mask.empty()) j["init_mask"] = c.init_mask;
  if (c.amp != Amp::kOff) j["amp"] = choice_name(c.amp);  // only when set: older runs still --resume
  if (c.gate_unit != GateUnit::kMap) j["gate_unit"] = choice_name(c.gate_unit);  // only when set: older runs still --resume
  // Only when set, so that runs from before the flag still --resume.
  if (c.logit_variance != 0) j["logit_variance"] = c.logit_variance;
  if (c.cost_target != 0) j["cost_target"] = c.cost_target;
  if (c.gates == Gates::kGumbel) {  // a REINFORCE run's config.json keeps its keys
    j["gumbel_temperature"] = c.gumbel_temperature;
    j["target_rate"] = c.target_rate;
  }
  return j;
}

}  // namespace mapgate
