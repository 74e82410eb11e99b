// `mapgate infer`: the LibTorch-free engine on an exported weight file (mapgate export),
// over a dataset's test split: accuracy, exact MACs per image and throughput. What a
// deployment runs; the CLI links LibTorch, the engine and this path do not use it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/network_inputs.h"
#include "common/error.h"
#include "data/dataset.h"
#include "data/data_dir.h"
#include "data/loader.h"
#include "engine/engine.h"
#include "engine/weights.h"

namespace mapgate {
namespace {

struct InferArgs {
  std::string weights, dataset = "cifar10", data;
  std::size_t test_limit = 0;
  int threads = 0;             // 0: every core
  double threshold = -1;       // used when --threshold is given; else the file's own tau
  bool threshold_given = false;
  bool json = false;
};

void run_infer(const InferArgs& args) {
  check_dataset_flag(args.dataset);
  check_threads_flag(args.threads, /*zero_is_every_core=*/true);
  const int threads = args.threads > 0 ? args.threads : default_threads();
  if (args.threshold_given) check_threshold_flag("--threshold", args.threshold);
  const Weights weights = read_weights(args.weights);  // Error naming the file if malformed
  const DenseNetConfig& c = weights.config;
  const std::string dir = resolve_data_dir(args.data, args.dataset,
                                           [](const std::string& l) { std::cerr << l << "\n"; });
  const Dataset test = load_test_split(args.dataset, dir).head(args.test_limit);
  check_network_takes(test, dir, c, "weights " + quoted(args.weights));

  EngineOptions options;
  if (args.threshold_given) options.threshold = args.threshold;
  Engine engine(weights, options);
  const Normalization norm{weights.mean, weights.std};
  // In chunks, so that memory stays bounded whatever the split's size.
  constexpr std::size_t kChunk = 1024;
  const int n = static_cast<int>(test.size());
  std::vector<float> logits(kChunk * c.num_classes);
  std::vector<EngineStats> stats(kChunk);
  std::size_t correct = 0;
  double macs = 0, macs_executed = 0, seconds = 0;
  for (std::size_t first = 0; first < test.size(); first += kChunk) {
    const std::size_t count = std::min(kChunk, test.size() - first);
    const std::vector<float> images = network_inputs(test, first, count, norm);
    const auto start = std::chrono::steady_clock::now();
    engine.forward_batch(images.data(), static_cast<int>(count), logits.data(), stats.data(), threads);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (std::size_t i = 0; i < count; ++i) {
      const float* row = logits.data() + i * c.num_classes;
      correct += std::max_element(row, row + c.num_classes) - row == test.labels[first + i];
      macs += static_cast<double>(stats[i].macs);
      macs_executed += static_cast<double>(stats[i].macs_executed);
    }
  }
  // macs_mean: the paper's count (docs/design.md §4); macs_executed_mean: what the engine
  // ran (its transitions pool before their 1x1 convolution).
  const double accuracy = double(correct) / n, macs_mean = macs / n, macs_executed_mean = macs_executed / n;
  if (args.json) {
    nlohmann::json out = {{"weights", args.weights},
                          {"dataset", args.dataset},
                          {"examples", n},
                          {"accuracy", accuracy},
                          {"macs_mean", macs_mean},
                          {"macs_executed_mean", macs_executed_mean},
                          {"gated", c.gated},
                          {"threads", threads},
                          {"images_per_s", n / std::max(seconds, 1e-9)}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%s: DenseNet-%d%s k=%d%s on %d %s test images, %d thread(s)\n", args.weights.c_str(), c.depth,
              c.bc ? "-BC" : "", c.growth, c.gated ? ", gated" : "", n, args.dataset.c_str(), threads);
  std::printf("accuracy %.4f | mean MACs %.1fM (executed %.1fM) | %.0f images/s\n", accuracy, macs_mean / 1e6,
              macs_executed_mean / 1e6, n / std::max(seconds, 1e-9));
}

}  // namespace

void add_infer_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<InferArgs>();
  auto* cmd = app.add_subcommand(
      "infer", "Run the LibTorch-free engine on an exported weight file over a dataset's test split");
  cmd->footer("Examples:\n  mapgate infer --weights gated.mgw --threads 2\n  mapgate infer --weights gated.mgw --threshold 0.6 --json");
  cmd->add_option("--weights", args->weights, "weight file written by mapgate export")->required();
  cmd->add_option("--dataset", args->dataset, "cifar10, cifar100, mnist or fashion-mnist")->capture_default_str();
  cmd->add_option("--data", args->data, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  cmd->add_option("--test-limit", args->test_limit, "use only the first N test images (0: all)")
      ->check(non_negative());
  cmd->add_option("--threads", args->threads, "engine threads, one image each (default: every core)");
  auto* threshold = cmd->add_option("--threshold", args->threshold, "tau for the gates (default: the weight file's)");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, threshold, &action] {
    args->threshold_given = threshold->count() > 0;
    action = [args] { run_infer(*args); };
  });
}

}  // namespace mapgate
