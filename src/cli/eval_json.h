// The JSON `mapgate eval --json` prints, shared with `mapgate demo`, which writes the same
// files for tools/plot_tradeoff.py and tools/plot_gallery.py (docs/pictures.md).
#pragma once

#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "train/evaluate.h"
#include "train/trained_model.h"

namespace mapgate {

// A gated evaluation at tau: accuracy, MACs (mean, p50, p95, dense), speed-up potential,
// kept fractions; one point of a --thresholds curve.
nlohmann::json gate_json(const EvalResult& r, double tau);

// The whole evaluation: model, dataset, epoch, accuracy, loss, backend, per class; dense,
// also macs_dense = macs_mean (the hand count, docs/design.md §4); gated, also gate_json at the model's tau, input_dependence and shuffle_accuracy (`shuffled`,
// ignored for a dense model); with per_example, every example's label, prediction, MACs
// and mask.
nlohmann::json eval_json(const TrainedModel& trained, const Dataset& test, const EvalResult& r, double shuffled,
                         bool per_example);

// The accuracy/MACs curve: one evaluation per tau (left set on the model), as
// {"model", "examples", "curve": [gate_json...]}; each point also goes to on_point.
nlohmann::json tau_curve_json(TrainedModel& trained, const Dataset& test, const std::vector<double>& taus, int batch,
                              EvalBackend backend,
                              const std::function<void(double, const EvalResult&)>& on_point = {});

}  // namespace mapgate
