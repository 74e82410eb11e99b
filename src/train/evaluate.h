// Test-set evaluation of a model in eval mode: accuracy, loss and per-class accuracy;
// for a gated model (thresholded masks, docs/design.md §4) also the exact MACs of every
// example, the kept fraction per gate and the mean MACs per class.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/densenet.h"
#include "model/input_dependence.h"

namespace mapgate {

inline constexpr std::uint64_t kSampledInferenceSeed = 20181004;

// kAuto runs the forward passes on the LibTorch-free engine (src/engine: exactly the
// eval-mode network, switched-off maps skipped) from the model's in-memory weights,
// wherever it applies (engine_evaluates), else on LibTorch; kLibTorch always on LibTorch.
enum class EvalBackend { kAuto, kLibTorch };

struct EvalResult {
  std::size_t examples = 0;
  std::size_t correct = 0;
  std::vector<std::size_t> class_total, class_correct;
  std::vector<int> labels;                // per example, in dataset order
  std::vector<int> predictions;           // per example: the first arg-max of the logits
  std::vector<double> losses;             // per example: its cross-entropy
  std::vector<double> confidences;        // per example: the largest softmax probability
  bool on_engine = false;                 // run on the engine (else LibTorch)
  double accuracy() const { return examples ? double(correct) / examples : 0; }
  double loss() const;                    // mean cross-entropy

  // Gated models only (gated = true); everything counted under m = [p > tau].
  bool gated = false;
  std::int64_t macs_dense = 0;                  // the ungated network, per image
  std::vector<std::int64_t> macs;               // per example, in dataset order
  std::vector<double> layer_active;             // per gate: mean fraction of its k maps kept
  std::vector<double> class_macs;               // per class: mean MACs
  double macs_mean() const;
  double macs_percentile(double q) const;       // q in [0, 1], nearest rank
  double active_fraction() const;               // mean over gates of layer_active
  MaskMatrix masks;                             // per example, every gate's k maps in layer order
  InputDependence dependence;                   // measured on masks, labels and macs
};

// Whether the engine computes what this model computes at inference: every model except
// one that samples its masks (--gates random, a baseline).
bool engine_evaluates(const DenseNet& model);

EvalResult evaluate(DenseNet& model, const Dataset& data, const Normalization& norm,
                    int batch_size = 64, EvalBackend backend = EvalBackend::kAuto);

// The mask-shuffle ablation (docs/method.md §4): accuracy when example i runs under the
// masks `gated` recorded for example perm[i] (shuffle_permutation, no fixed point): the
// same per-map rates and MACs distribution, no link to the image. gated.accuracy() minus
// this is what input dependence is worth. Runs where `gated` ran (engine or LibTorch);
// where every example has the same mask it is gated.accuracy() without a pass.
double mask_shuffle_accuracy(DenseNet& model, const Dataset& data, const Normalization& norm,
                             const EvalResult& gated, int batch_size = 64, std::uint64_t seed = 1);

// The input-dependence keys of metrics.jsonl and `mapgate eval --json`.
nlohmann::json input_dependence_json(const EvalResult& r, double shuffle_accuracy);

// `mapgate eval --json --per-example`: one entry per example, in dataset order, under
// "label" and "prediction" (class indices), "loss" (its cross-entropy) and, for a gated
// model, "macs" and "mask" (a string with one '0'/'1' per gated map, layer after layer as
// map_on_rate). Read by tools/plot_gallery.py, tools/plot_layers.py --by-class and
// tools/plot_difficulty.py (docs/pictures.md).
nlohmann::json per_example_json(const EvalResult& r);

// Re-estimates every BN layer's running statistics over the first `batches` batches of
// `data` (no augmentation, fixed order), run in training mode with thresholded masks, so
// that inference normalises what inference computes. A gated model pools, per channel,
// the examples that keep it (or all, under --bn-stats all); a channel kept by at most one
// value keeps its statistics, so no variance becomes zero. No-op for batches = 0.
void recalibrate_batch_norm(DenseNet& model, const Dataset& data, const Normalization& norm,
                            int batches, int batch_size = 64);

}  // namespace mapgate
