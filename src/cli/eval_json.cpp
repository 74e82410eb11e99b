// The JSON of `mapgate eval --json` (eval_json.h).
#include "cli/eval_json.h"

#include <algorithm>
#include <cstdint>

#include "model/macs.h"

namespace mapgate {

nlohmann::json gate_json(const EvalResult& r, double tau) {
  return {{"threshold", tau},
          {"accuracy", r.accuracy()},
          {"macs_dense", r.macs_dense},
          {"macs_mean", r.macs_mean()},
          {"macs_p50", r.macs_percentile(0.5)},
          {"macs_p95", r.macs_percentile(0.95)},
          {"speedup_potential", r.macs_dense / std::max(r.macs_mean(), 1.0)},
          {"active_fraction", r.active_fraction()},
          {"per_layer_active", r.layer_active}};
}

nlohmann::json eval_json(const TrainedModel& trained, const Dataset& test, const EvalResult& r, double shuffled,
                         bool per_example) {
  nlohmann::json per_class = nlohmann::json::array();
  for (int c = 0; c < test.num_classes; ++c)
    per_class.push_back({{"class", test.class_names[c]},
                         {"examples", r.class_total[c]},
                         {"accuracy", r.class_total[c] ? double(r.class_correct[c]) / r.class_total[c] : 0.0}});
  nlohmann::json out = {{"model", trained.path},
                        {"dataset", trained.dataset},
                        {"epoch", trained.epoch},
                        {"examples", r.examples},
                        {"accuracy", r.accuracy()},
                        {"loss", r.loss()},
                        {"backend", r.on_engine ? "engine" : "libtorch"},
                        {"per_class", per_class}};
  if (!r.gated) {  // every example costs the dense count: the point a trade-off plot needs
    const std::int64_t macs = total_cost(densenet_layer_costs(trained.config)).macs;
    out["macs_dense"] = macs;
    out["macs_mean"] = macs;
  }
  if (r.gated) {
    out.update(gate_json(r, trained.config.threshold));
    for (int c = 0; c < test.num_classes; ++c) out["per_class"][c]["macs_mean"] = r.class_macs[c];
    out["input_dependence"] = input_dependence_json(r, shuffled);
    out["shuffle_accuracy"] = shuffled;
  }
  if (per_example) out["per_example"] = per_example_json(r);
  return out;
}

nlohmann::json tau_curve_json(TrainedModel& trained, const Dataset& test, const std::vector<double>& taus, int batch,
                              EvalBackend backend, const std::function<void(double, const EvalResult&)>& on_point) {
  nlohmann::json curve = nlohmann::json::array();
  for (double tau : taus) {
    trained.model->set_threshold(tau);
    const EvalResult r = evaluate(trained.model, test, trained.normalization, batch, backend);
    curve.push_back(gate_json(r, tau));
    if (on_point) on_point(tau, r);
  }
  return {{"model", trained.path}, {"examples", test.size()}, {"curve", curve}};
}

}  // namespace mapgate
