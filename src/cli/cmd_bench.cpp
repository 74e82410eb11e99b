// `mapgate bench`: measured inference time (docs/design.md §5, §7; issue 4). In one process and
// alternating within every repeat, LibTorch dense (eval-mode forward of the plain DenseNet),
// engine dense and engine gated, at each (batch, threads) configuration; per-image median
// milliseconds. Also checks the engine against LibTorch on the same inputs: logits, masks
// and predictions.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <optional>
#include <random>

#include <torch/utils.h>

#include "cli/commands.h"
#include "cli/network_inputs.h"
#include "common/error.h"
#include "common/median.h"
#include "data/data_dir.h"
#include "engine/engine.h"
#include "model/gated_macs.h"
#include "train/device.h"
#include "train/engine_check.h"
#include "train/export.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

// Most images a configuration times, and most random images held (3x32x32 floats each:
// 805 MB at the limit), so that a huge --batch or --images names its flag instead of
// ending in std::bad_alloc.
constexpr int kMaxBenchImages = 65536;

const char* kBenchHelp =
    "Time LibTorch dense, engine dense and engine gated inference, alternating in one process.\n"
    "  --model M --data DIR: a trained model on its first --test-limit test images; the\n"
    "    engine gates in threshold mode (the model's tau), compared with LibTorch's\n"
    "    forward_gated in threshold mode.\n"
    "  --random-weights --depth D --growth K [--bc] --keep F: random weights and random\n"
    "    masks keeping round(F k) maps of every layer of every image (engine given-masks\n"
    "    mode), on --images random inputs; compared with LibTorch under the same masks.\n"
    "Configurations: every --batch x --threads pair (default batch 1,64 x threads 1,2).\n"
    "JSON: the docs/design.md keys libtorch_dense_ms, engine_dense_ms, engine_gated_ms (per image,\n"
    "median over --repeats) for the first configuration at the top level, with its batch and\n"
    "threads; \"runs\": one object per configuration with the same keys; macs_dense,\n"
    "macs_gated_mean, macs_ratio (dense / gated mean MACs, gates' own MACs included in threshold\n"
    "mode), kept_fraction; macs_executed_dense, macs_executed_gated_mean: the MACs the engine\n"
    "executes (its transitions pool before their 1x1 convolution, a quarter of those MACs; the\n"
    "other macs_ keys count them at full resolution, docs/design.md §4); max_abs_diff =\n"
    "max(max_abs_diff_dense, max_abs_diff_gated) over engine vs LibTorch logits (dense\n"
    "network; gated network under the same masks; a trained gated model is checked gated only\n"
    "and max_abs_diff_dense is null);\n"
    "max_abs_logit, the largest LibTorch logit compared (the scale of max_abs_diff);\n"
    "mask_mismatches and prediction_mismatches (examples) of the gated comparison;\n"
    "libtorch_device: where LibTorch ran (--device; the comparison always runs on the CPU).";

struct BenchArgs {
  std::string model, data;
  bool random_weights = false;
  DenseNetConfig arch;
  double keep = 0.5;
  std::vector<int> batches, threads;
  int repeats = 3;
  std::size_t test_limit = 256;
  int images = 64;
  std::uint64_t seed = 1;
  bool json = false;
  std::string device = "cpu";  // where the LibTorch side runs; the engine is CPU-only
};

// Everything the timing loop needs, built once.
struct Setup {
  std::string description;
  Weights weights;                 // the (possibly gated) network
  DenseNet torch_dense{nullptr};   // the plain DenseNet of the same weights
  DenseNet torch_gated{nullptr};   // gated model (null for an ungated model)
  EngineMode gated_mode = EngineMode::kGated;
  // False for a trained gated model: its BN statistics are calibrated under its masks, so
  // with every map on, maps it always switches off are normalised by a variance of ~0 and
  // the logits overflow in both implementations. Only its gated forward is checked.
  bool dense_checked = true;
  int n = 0;                       // images
  std::vector<float> images;       // (n, C, S, S), normalised
  std::vector<std::uint8_t> masks; // kGiven: (n, layers, k)
};

std::size_t image_floats(const DenseNetConfig& c) {
  return static_cast<std::size_t>(c.in_channels) * c.image_size * c.image_size;
}

torch::Tensor as_tensor(const DenseNetConfig& c, const float* images, int n) {
  return torch::from_blob(const_cast<float*>(images), {n, c.in_channels, c.image_size, c.image_size},
                          torch::kFloat);
}

Setup setup_model(const BenchArgs& args) {
  Setup s;
  TrainedModel trained = load_trained_model(args.model);
  s.weights = export_weights(trained);
  const DenseNetConfig& c = s.weights.config;
  s.torch_dense = densenet_from_weights(without_gates(s.weights), trained.path);
  if (c.gated) s.torch_gated = trained.model;
  s.dense_checked = !c.gated;
  s.gated_mode = c.gated ? EngineMode::kGated : EngineMode::kDense;
  check_checkpoint_dataset(trained.path, trained.dataset);
  const std::string dir = resolve_data_dir(args.data, trained.dataset,
                                           [](const std::string& l) { std::cerr << l << "\n"; });
  const Dataset test = load_test_split(trained.dataset, dir).head(args.test_limit);
  check_network_takes(test, dir, c, "model " + quoted(trained.path));
  s.n = static_cast<int>(test.size());
  s.images = network_inputs(test, 0, test.size(), trained.normalization);
  s.description = trained.path + " (" + trained.dataset + ", DenseNet-" + std::to_string(c.depth) +
                  (c.bc ? "-BC" : "") + " k=" + std::to_string(c.growth) +
                  (c.gated ? ", gates at tau " + std::to_string(c.threshold) : ", no gates") + ")";
  return s;
}

Setup setup_random(const BenchArgs& args) {
  if (!(args.keep >= 0 && args.keep <= 1))
    throw UsageError("--keep " + std::to_string(args.keep) + ": expected 0 <= F <= 1");
  if (args.images < 1 || args.images > kMaxBenchImages)
    throw UsageError("--images " + std::to_string(args.images) + ": expected 1.." + std::to_string(kMaxBenchImages));
  Setup s;
  DenseNetConfig c = args.arch;
  c.gated = true;
  validate(c);
  s.weights = random_weights(c, args.seed, 0.0);
  s.torch_dense = densenet_from_weights(without_gates(s.weights), "random weights");
  s.torch_gated = densenet_from_weights(s.weights, "random weights");
  s.gated_mode = EngineMode::kGiven;
  s.n = std::max(args.images, *std::max_element(args.batches.begin(), args.batches.end()));
  std::mt19937_64 rng(args.seed + 1);
  std::normal_distribution<float> normal;
  s.images.resize(static_cast<std::size_t>(s.n) * image_floats(c));
  for (auto& v : s.images) v = normal(rng);
  s.masks = random_layer_masks(c, s.n, args.keep, args.seed + 2);
  const int k = c.growth, kept = static_cast<int>(std::lround(args.keep * k));
  char keep[32];
  std::snprintf(keep, sizeof keep, "%.3g", args.keep);
  s.description = "random weights, DenseNet-" + std::to_string(c.depth) + (c.bc ? "-BC" : "") +
                  " k=" + std::to_string(k) + ", random masks keeping " + std::to_string(kept) + " of " +
                  std::to_string(k) + " maps per layer (--keep " + keep + ")";
  return s;
}

struct Check {
  std::optional<double> diff_dense;  // none when the dense forward is not compared
  double diff_gated = 0;
  double max_abs_logit = 0;  // of the LibTorch logits compared: the scale of the diffs
  int mask_mismatches = 0, prediction_mismatches = 0;
  std::int64_t macs_dense = 0, macs_executed_dense = 0;  // the paper's count; what the engine executes
  double macs_gated = 0, macs_executed_gated = 0, kept_fraction = 0;
};

Check check(Setup& s, Engine& dense, Engine& gated, int threads) {
  const DenseNetConfig& c = s.weights.config;
  const int layers = c.dense_layers(), k = c.growth;
  Check r;
  if (s.dense_checked) {
    const EngineComparison d = compare_engine_with_libtorch(dense, s.torch_dense, s.images.data(), s.n, nullptr, threads);
    r.diff_dense = d.max_abs_diff;
    r.max_abs_logit = d.max_abs_logit;
  }
  // What engine dense executes: the same for every input (these logits are not used).
  EngineStats dense_stats;
  std::vector<float> logits(c.num_classes);
  dense.forward(s.images.data(), logits.data(), &dense_stats);
  r.macs_executed_dense = dense_stats.macs_executed;
  r.macs_dense = GatedCost(c).dense_macs();
  if (!s.torch_gated) {  // ungated model: the "gated" engine is the dense one
    r.macs_gated = static_cast<double>(r.macs_dense);
    r.macs_executed_gated = static_cast<double>(r.macs_executed_dense);
    r.kept_fraction = 1.0;
    r.diff_gated = *r.diff_dense;
    return r;
  }
  const EngineComparison g = compare_engine_with_libtorch(gated, s.torch_gated, s.images.data(), s.n,
                                                          s.masks.empty() ? nullptr : s.masks.data(), threads);
  double macs = 0, executed = 0, kept = 0;
  for (const auto& st : g.stats) {
    macs += static_cast<double>(st.macs);
    executed += static_cast<double>(st.macs_executed);
    for (int a : st.active) kept += double(a) / k;
  }
  r.macs_gated = macs / s.n;
  r.macs_executed_gated = executed / s.n;
  r.kept_fraction = kept / (double(s.n) * layers);
  r.diff_gated = g.max_abs_diff;
  r.max_abs_logit = std::max(r.max_abs_logit, g.max_abs_logit);
  r.prediction_mismatches = g.prediction_mismatches;
  r.mask_mismatches = g.mask_mismatches;
  return r;
}

struct Run {
  int batch, threads;
  double torch_ms, dense_ms, gated_ms;
};

// LibTorch's time on a GPU (--device) includes the copies of the images there and of the
// logits back: what a caller of either implementation gets is host logits.
Run time_config(Setup& s, Engine& dense, Engine& gated, int batch, int threads, int repeats, torch::Device device) {
  torch::set_num_threads(threads);
  const DenseNetConfig& c = s.weights.config;
  const int layers = c.dense_layers(), k = c.growth;
  std::vector<float> logits(static_cast<std::size_t>(batch) * c.num_classes);
  auto pass = [&](int method, int count) {
    for (int at = 0; at < count; at += batch) {
      const int b = std::min(batch, count - at);
      const float* x = s.images.data() + at * image_floats(c);
      if (method == 0) {
        torch::NoGradGuard no_grad;
        auto y = s.torch_dense->forward(as_tensor(c, x, b).to(device)).to(torch::kCPU);
        (void)y;
      } else if (method == 1) {
        dense.forward_batch(x, b, logits.data(), nullptr, threads);
      } else {
        gated.forward_batch(x, b, logits.data(), nullptr, threads,
                            s.masks.empty() ? nullptr : s.masks.data() + static_cast<std::size_t>(at) * layers * k);
      }
    }
  };
  for (int m = 0; m < 3; ++m) pass(m, std::min(s.n, 2 * batch));  // warm-up
  std::vector<double> ms[3];
  for (int r = 0; r < repeats; ++r)
    for (int m = 0; m < 3; ++m) {
      const auto t0 = std::chrono::steady_clock::now();
      pass(m, s.n);
      const auto t1 = std::chrono::steady_clock::now();
      ms[m].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / s.n);
    }
  return {batch, threads, median(ms[0]), median(ms[1]), median(ms[2])};
}

void run(BenchArgs args) {
  if (args.random_weights == !args.model.empty())
    throw UsageError(args.random_weights ? "--random-weights and --model: give one of them"
                                         : "expected --model M --data DIR or --random-weights");
  if (args.repeats < 1) throw UsageError("--repeats " + std::to_string(args.repeats) + ": expected >= 1");
  if (args.batches.empty()) args.batches = {1, 64};
  if (args.threads.empty()) args.threads = {1, 2};
  for (int b : args.batches)
    if (b < 1 || b > kMaxBenchImages)
      throw UsageError("--batch " + std::to_string(b) + ": expected 1.." + std::to_string(kMaxBenchImages));
  for (int t : args.threads) check_threads_flag(t);
  torch::set_num_threads(args.threads[0]);
  const torch::Device device = open_device("--device", args.device);

  Setup s = args.random_weights ? setup_random(args) : setup_model(args);
  EngineOptions dense_options;
  dense_options.mode = EngineMode::kDense;
  EngineOptions gated_options;
  gated_options.mode = s.gated_mode;
  Engine dense(s.weights, dense_options), gated(s.weights, gated_options);

  const Check ch = check(s, dense, gated, args.threads[0]);  // on the CPU, before the model moves
  s.torch_dense->to(device);
  std::vector<Run> runs;
  for (int b : args.batches)
    for (int t : args.threads) runs.push_back(time_config(s, dense, gated, b, t, args.repeats, device));

  const double ratio = ch.macs_dense / std::max(ch.macs_gated, 1.0);
  const double diff = std::max(ch.diff_dense.value_or(0.0), ch.diff_gated);
  if (args.json) {
    auto run_json = [&](const Run& r) {
      return nlohmann::json{{"batch", r.batch},
                            {"threads", r.threads},
                            {"libtorch_dense_ms", r.torch_ms},
                            {"engine_dense_ms", r.dense_ms},
                            {"engine_gated_ms", r.gated_ms},
                            {"engine_vs_libtorch_speedup", r.torch_ms / r.dense_ms},
                            {"gated_speedup", r.dense_ms / r.gated_ms},
                            {"gated_speedup_over_macs_ratio", r.dense_ms / r.gated_ms / ratio}};
    };
    nlohmann::json out = run_json(runs[0]);
    out["source"] = s.description;
    out["mode"] = args.random_weights ? "random-weights" : "model";
    if (!args.random_weights) out["model"] = args.model;
    else out["keep"] = args.keep;
    out["architecture"] = to_json(s.weights.config);
    out["images"] = s.n;
    out["repeats"] = args.repeats;
    out["libtorch_device"] = device.str();
    out["macs_dense"] = ch.macs_dense;
    out["macs_gated_mean"] = ch.macs_gated;
    out["macs_ratio"] = ratio;
    out["macs_executed_dense"] = ch.macs_executed_dense;
    out["macs_executed_gated_mean"] = ch.macs_executed_gated;
    out["kept_fraction"] = ch.kept_fraction;
    out["max_abs_diff"] = diff;
    out["max_abs_diff_dense"] = ch.diff_dense ? nlohmann::json(*ch.diff_dense) : nlohmann::json(nullptr);
    out["max_abs_diff_gated"] = ch.diff_gated;
    out["max_abs_logit"] = ch.max_abs_logit;
    out["mask_mismatches"] = ch.mask_mismatches;
    out["prediction_mismatches"] = ch.prediction_mismatches;
    out["runs"] = nlohmann::json::array();
    for (const auto& r : runs) out["runs"].push_back(run_json(r));
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%s\n%d images, median of %d repeats, per image; LibTorch on %s\n", s.description.c_str(), s.n,
              args.repeats, device.str().c_str());
  std::printf("MACs: dense %lld, gated mean %.0f, macs_ratio %.3f, kept fraction %.4f\n",
              static_cast<long long>(ch.macs_dense), ch.macs_gated, ratio, ch.kept_fraction);
  const std::string dense_diff =
      ch.diff_dense ? std::to_string(*ch.diff_dense) : "not compared: gated model, BN calibrated under its masks";
  std::printf("engine vs LibTorch: max_abs_diff %.3g (dense %s, gated %.3g), mask mismatches %d, "
              "prediction mismatches %d of %d\n",
              diff, dense_diff.c_str(), ch.diff_gated, ch.mask_mismatches, ch.prediction_mismatches, s.n);
  std::printf("largest |logit| %.4g (float32 keeps ~7 significant digits of it)\n", ch.max_abs_logit);
  std::printf("%5s %7s %12s %12s %12s %10s %10s %12s\n", "batch", "threads", "libtorch ms", "engine ms",
              "gated ms", "eng/torch", "gated x", "x/macs_ratio");
  for (const auto& r : runs)
    std::printf("%5d %7d %12.3f %12.3f %12.3f %10.2f %10.2f %12.2f\n", r.batch, r.threads, r.torch_ms,
                r.dense_ms, r.gated_ms, r.torch_ms / r.dense_ms, r.dense_ms / r.gated_ms,
                r.dense_ms / r.gated_ms / ratio);
}

}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", kBenchHelp);
  cmd->footer("Examples:\n  mapgate bench --model models/densenet22-gated --data $MAPGATE_DATA --test-limit 1000\n  mapgate bench --random-weights --depth 40 --growth 12 --keep 0.3 --batch 1,64 --threads 1,2");
  auto* model = cmd->add_option("--model", args->model, "run directory or checkpoint file");
  auto* data = cmd->add_option("--data", args->data, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  auto* test_limit = cmd->add_option("--test-limit", args->test_limit, "--model: the first N test images (0: all)")
                         ->check(non_negative());
  auto* random = cmd->add_flag("--random-weights", args->random_weights, "random weights and random masks");
  // Each mode's own flags conflict with the other mode (--random-weights with --model is
  // reported in run(), naming both).
  std::vector<CLI::Option*> random_only = {
      cmd->add_option("--depth", args->arch.depth, "--random-weights: DenseNet depth"),
      cmd->add_option("--growth", args->arch.growth, "--random-weights: growth rate k"),
      cmd->add_flag("--bc", args->arch.bc, "--random-weights: DenseNet-BC"),
      cmd->add_option("--keep", args->keep, "--random-weights: kept fraction F of every layer's maps"),
      cmd->add_option("--images", args->images, "--random-weights: random input images (at least the largest batch)"),
      cmd->add_option("--seed", args->seed, "--random-weights: seed of weights, images and masks")
          ->check(non_negative())};
  for (CLI::Option* o : random_only) model->excludes(o);
  random->excludes(data);
  random->excludes(test_limit);
  cmd->add_option("--batch", args->batches, "batch sizes, comma-separated (default 1,64)")->delimiter(',');
  cmd->add_option("--threads", args->threads, "thread counts, comma-separated (default 1,2)")->delimiter(',');
  cmd->add_option("--repeats", args->repeats, "timed passes over the images per method and configuration");
  cmd->add_option("--device", args->device,
                  "where LibTorch runs: cpu, cuda or cuda:N (its time then includes the copies to the GPU and "
                  "back; the engine is CPU-only)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, &action] { action = [args] { run(*args); }; });
}

}  // namespace mapgate
