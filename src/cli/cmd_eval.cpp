// `mapgate eval`: accuracy of a trained model on its dataset's test split; for a gated
// model also its exact MACs under thresholded masks (docs/design.md §4, §7 keys) and, with
// --thresholds, the accuracy/MACs curve across tau.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/eval_json.h"
#include "common/error.h"
#include "data/data_dir.h"
#include "train/device.h"
#include "train/evaluate.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

struct EvalArgs {
  std::string model;
  std::string data;
  std::size_t test_limit = 0;
  int batch = 64;
  int threads = 0;
  bool json = false;
  double threshold = -1;     // used when --threshold is given; else the model's own tau
  bool threshold_given = false;
  std::string thresholds;    // "0.3,0.4,...": one evaluation per tau
  bool libtorch = false;     // forward passes on LibTorch, not the engine (a cross-check)
  std::string device = "cpu";  // LibTorch's device; the engine runs on the CPU only
  bool per_example = false;  // --json: also every example's label, prediction, loss, MACs, mask
};

std::vector<double> parse_thresholds(const std::string& text) {
  std::vector<double> taus;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double tau = -1;
    try {
      tau = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !is_valid_threshold(tau))
      throw UsageError("--thresholds " + quoted(text) + ": " + quoted(item) +
                       " is not a number in [0, 1]; expected e.g. 0.3,0.4,0.5");
    taus.push_back(tau);
  }
  if (taus.empty()) throw UsageError("--thresholds " + quoted(text) + ": expected e.g. 0.3,0.4,0.5");
  return taus;
}

EvalBackend backend(const EvalArgs& args) {
  return args.libtorch ? EvalBackend::kLibTorch : EvalBackend::kAuto;
}

void print_curve(TrainedModel& trained, const Dataset& test, const std::vector<double>& taus,
                 const EvalArgs& args) {
  if (!trained.config.gated)
    throw UsageError("--thresholds: " + quoted(trained.path) + " has no gates (trained with --gates off)");
  if (!args.json) std::printf("%6s %9s %14s %8s %8s\n", "tau", "accuracy", "mean MACs", "speedup", "kept");
  const nlohmann::json curve = tau_curve_json(trained, test, taus, args.batch, backend(args), [&](double tau, const EvalResult& r) {
    if (!args.json)
      std::printf("%6.3f %9.4f %14.0f %8.3f %8.4f\n", tau, r.accuracy(), r.macs_mean(),
                  r.macs_dense / std::max(r.macs_mean(), 1.0), r.active_fraction());
  });
  if (args.json) std::cout << curve.dump(2) << "\n";
}

void run(const EvalArgs& args) {
  if (args.batch < 1) throw UsageError("--batch " + std::to_string(args.batch) + ": expected >= 1");
  check_threads_flag(args.threads);
  if (args.threshold_given) check_threshold_flag("--threshold", args.threshold);
  if (args.per_example && (!args.json || !args.thresholds.empty()))
    throw UsageError("--per-example: only with --json and without --thresholds");
  check_device_flag("--device", args.device);
  torch::set_num_threads(args.threads);
  const std::vector<double> taus = args.thresholds.empty() ? std::vector<double>{} : parse_thresholds(args.thresholds);
  TrainedModel trained = load_trained_model(args.model);
  trained.model->to(open_device("--device", args.device));  // not cpu: LibTorch evaluates (evaluate.h)
  if (args.threshold_given || !args.thresholds.empty()) {
    if (!trained.config.gated)
      throw UsageError(std::string(args.threshold_given ? "--threshold" : "--thresholds") + ": " +
                       quoted(trained.path) + " has no gates (trained with --gates off)");
  }
  if (args.threshold_given) {
    trained.model->set_threshold(args.threshold);  // checked above
    trained.config.threshold = args.threshold;
  }
  check_checkpoint_dataset(trained.path, trained.dataset);
  const std::string dir = resolve_data_dir(args.data, trained.dataset,
                                           [](const std::string& l) { std::cerr << l << "\n"; });
  const Dataset test = load_test_split(trained.dataset, dir).head(args.test_limit);
  if (test.channels != trained.config.in_channels || test.height != trained.config.image_size ||
      test.num_classes != trained.config.num_classes)
    throw Error("--data " + quoted(dir) + ": images do not fit the model in " + quoted(trained.path));
  if (!taus.empty()) {
    print_curve(trained, test, taus, args);
    return;
  }
  const EvalResult r = evaluate(trained.model, test, trained.normalization, args.batch, backend(args));
  // Finite weights can still overflow (a huge weight): such a model's predictions are
  // noise, and an accuracy printed with exit 0 would pass for a result.
  if (!std::isfinite(r.loss()))
    throw Error("checkpoint " + quoted(trained.path) + ": the model's test loss is " +
                (std::isnan(r.loss()) ? "NaN" : r.loss() > 0 ? "inf" : "-inf") +
                " (its logits are not finite on these images); no accuracy is reported");

  if (args.json) {
    const double shuffled =
        r.gated ? mask_shuffle_accuracy(trained.model, test, trained.normalization, r, args.batch) : 0;
    const nlohmann::json out = eval_json(trained, test, r, shuffled, args.per_example);
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%s (%s, epoch %d) on %zu %s test images (%s): accuracy %.4f, loss %.4f\n",
              trained.path.c_str(), trained.dataset.c_str(), trained.epoch, r.examples,
              trained.dataset.c_str(), r.on_engine ? "engine" : "LibTorch", r.accuracy(), r.loss());
  if (r.gated) {
    std::printf("gates at tau %.3f: mean %.0f MACs (p50 %.0f, p95 %.0f) of %lld dense, potential "
                "speed-up x%.3f, %.4f of gated maps kept\n",
                trained.config.threshold, r.macs_mean(), r.macs_percentile(0.5), r.macs_percentile(0.95),
                static_cast<long long>(r.macs_dense), r.macs_dense / std::max(r.macs_mean(), 1.0),
                r.active_fraction());
    std::printf("kept per layer:");
    for (double a : r.layer_active) std::printf(" %.2f", a);
    std::printf("\n");
    const auto& d = r.dependence;
    const double shuffled = mask_shuffle_accuracy(trained.model, test, trained.normalization, r, args.batch);
    std::printf("input dependence: MACs CV %.4f (p5 %.0f, p95 %.0f), %zu distinct masks, %.3f of maps "
                "conditional, I(map; label) %.4f bits (shuffled labels %.4f), accuracy with another "
                "image's masks %.4f (%+.4f)\n",
                d.macs_cv, d.macs_p5, d.macs_p95, d.distinct_masks, d.conditional_fraction, d.mi_labels_bits,
                d.mi_shuffled_labels_bits, shuffled, shuffled - r.accuracy());
  }
  std::printf("%-14s %8s %9s%s\n", "class", "examples", "accuracy", r.gated ? "   mean MACs" : "");
  for (int c = 0; c < test.num_classes; ++c) {
    std::printf("%-14s %8zu %9.4f", test.class_names[c].c_str(), r.class_total[c],
                r.class_total[c] ? double(r.class_correct[c]) / r.class_total[c] : 0.0);
    if (r.gated) std::printf(" %12.0f", r.class_macs[c]);
    std::printf("\n");
  }
}

}  // namespace

void add_eval_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<EvalArgs>();
  args->threads = default_threads();
  auto* cmd = app.add_subcommand("eval", "Evaluate a trained model on its test split");
  cmd->footer("Examples:\n  mapgate eval --model models/densenet22-gated\n  mapgate eval --model RUN --thresholds 0.3,0.4,0.5,0.6,0.7 --json > curve.json");
  cmd->add_option("--model", args->model, "run directory or checkpoint file")->required();
  cmd->add_option("--data", args->data, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  cmd->add_option("--test-limit", args->test_limit, "use only the first N test images (0: all)")
      ->check(non_negative());
  cmd->add_option("--batch", args->batch, "evaluation batch size");
  cmd->add_option("--threads", args->threads, "threads (engine and LibTorch)");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_flag("--per-example", args->per_example,
                "with --json: every test image's label, prediction, loss, confidence and (gated) MACs and mask, "
                "for tools/plot_gallery.py, tools/plot_layers.py --by-class, tools/plot_difficulty.py and "
                "tools/cascade.py");
  cmd->add_flag("--libtorch", args->libtorch,
                "run the forward passes on LibTorch instead of the engine (a cross-check; slower)");
  cmd->add_option("--device", args->device,
                  "LibTorch's device: cpu, cuda or cuda:N (not cpu: LibTorch evaluates, the engine is CPU-only)");
  auto* threshold =
      cmd->add_option("--threshold", args->threshold, "gated models: tau for p > tau (default: the model's)");
  cmd->add_option("--thresholds", args->thresholds,
                  "gated models: comma-separated taus, prints the accuracy/MACs curve")
      ->excludes(threshold);
  cmd->callback([args, threshold, &action] {
    args->threshold_given = threshold->count() > 0;
    action = [args] { run(*args); };
  });
}

}  // namespace mapgate
