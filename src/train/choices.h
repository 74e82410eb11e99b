// The named settings of a training run (TrainConfig, ReinforceSettings) as enums: the
// CLI parses each flag's text once (parse_choice), config.json stores its name
// (choice_name); code compares enum values, never strings.
#pragma once

#include <utility>

#include "common/choice.h"

namespace mapgate {

// What trains the gates (docs/design.md §3): off (no gates), reinforce, gumbel; the
// baselines random (masks drawn at fixed rates) and fixed (one static mask); frozen (the
// gates of --init kept, the weights fine-tuned under their masks).
enum class Gates { kOff, kReinforce, kGumbel, kRandom, kFixed, kFrozen };
enum class Schedule { kStep, kCosine };       // step: /10 at 50% and 75% of the epochs
enum class GateCost { kMaps, kMacs };         // fraction of gated maps on | of dense MACs
enum class Baseline { kAuto, kGreedy, kEngine, kMean };  // engine where it applies, else greedy | self-critical (LibTorch | engine) | moving average
enum class CostGradient { kAnalytic, kReinforce };  // lambda E[cost] through p | cost inside R
enum class ThetaMasks { kSampled, kGreedy };  // masks the weights train under
enum class GateOptimizer { kAdam, kSgd };     // sgd: plain, no momentum
enum class GateInput { kStandardized, kRaw };
enum class GateWeights { kLearned, kFrozen }; // frozen: W = 0, a static mask learned by its biases
enum class BnStats { kMasked, kAll };         // masked: BN counts the examples that keep a map
enum class GateUnit { kMap, kLayer };         // what one gate decision switches
enum class Amp { kOff, kBf16 };               // bf16: training forwards under bfloat16 autocast
// c10d backend of several processes' collectives; auto: resolve_dist_backend (train/data_parallel.h)
enum class DistBackend { kAuto, kGloo, kNccl };

template <>
struct ChoiceNames<Gates> {
  static constexpr const char* kFlag = "--gates";
  static constexpr std::pair<Gates, const char*> kNames[] = {
      {Gates::kOff, "off"},       {Gates::kReinforce, "reinforce"}, {Gates::kGumbel, "gumbel"},
      {Gates::kRandom, "random"}, {Gates::kFixed, "fixed"},         {Gates::kFrozen, "frozen"}};
};
template <>
struct ChoiceNames<Schedule> {
  static constexpr const char* kFlag = "--schedule";
  static constexpr std::pair<Schedule, const char*> kNames[] = {{Schedule::kStep, "step"},
                                                                {Schedule::kCosine, "cosine"}};
};
template <>
struct ChoiceNames<GateCost> {
  static constexpr const char* kFlag = "--cost";
  static constexpr std::pair<GateCost, const char*> kNames[] = {{GateCost::kMaps, "maps"}, {GateCost::kMacs, "macs"}};
};
template <>
struct ChoiceNames<Baseline> {
  static constexpr const char* kFlag = "--baseline";
  static constexpr std::pair<Baseline, const char*> kNames[] = {{Baseline::kAuto, "auto"},
                                                                {Baseline::kGreedy, "greedy"},
                                                                {Baseline::kEngine, "engine"},
                                                                {Baseline::kMean, "mean"}};
};
template <>
struct ChoiceNames<CostGradient> {
  static constexpr const char* kFlag = "--cost-gradient";
  static constexpr std::pair<CostGradient, const char*> kNames[] = {{CostGradient::kAnalytic, "analytic"},
                                                                    {CostGradient::kReinforce, "reinforce"}};
};
template <>
struct ChoiceNames<Amp> {
  static constexpr const char* kFlag = "--amp";
  static constexpr std::pair<Amp, const char*> kNames[] = {{Amp::kOff, "off"}, {Amp::kBf16, "bf16"}};
};
template <>
struct ChoiceNames<DistBackend> {
  static constexpr const char* kFlag = "--dist-backend";
  static constexpr std::pair<DistBackend, const char*> kNames[] = {
      {DistBackend::kAuto, "auto"}, {DistBackend::kGloo, "gloo"}, {DistBackend::kNccl, "nccl"}};
};
template <>
struct ChoiceNames<ThetaMasks> {
  static constexpr const char* kFlag = "--theta-masks";
  static constexpr std::pair<ThetaMasks, const char*> kNames[] = {{ThetaMasks::kSampled, "sampled"},
                                                                  {ThetaMasks::kGreedy, "greedy"}};
};
template <>
struct ChoiceNames<GateOptimizer> {
  static constexpr const char* kFlag = "--gate-optimizer";
  static constexpr std::pair<GateOptimizer, const char*> kNames[] = {{GateOptimizer::kAdam, "adam"},
                                                                     {GateOptimizer::kSgd, "sgd"}};
};
template <>
struct ChoiceNames<GateInput> {
  static constexpr const char* kFlag = "--gate-input";
  static constexpr std::pair<GateInput, const char*> kNames[] = {{GateInput::kStandardized, "standardized"},
                                                                 {GateInput::kRaw, "raw"}};
};
template <>
struct ChoiceNames<GateWeights> {
  static constexpr const char* kFlag = "--gate-weights";
  static constexpr std::pair<GateWeights, const char*> kNames[] = {{GateWeights::kLearned, "learned"},
                                                                   {GateWeights::kFrozen, "frozen"}};
};
template <>
struct ChoiceNames<BnStats> {
  static constexpr const char* kFlag = "--bn-stats";
  static constexpr std::pair<BnStats, const char*> kNames[] = {{BnStats::kMasked, "masked"}, {BnStats::kAll, "all"}};
};
template <>
struct ChoiceNames<GateUnit> {
  static constexpr const char* kFlag = "--gate-unit";
  static constexpr std::pair<GateUnit, const char*> kNames[] = {{GateUnit::kMap, "map"}, {GateUnit::kLayer, "layer"}};
};

}  // namespace mapgate
