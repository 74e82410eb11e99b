// `mapgate demo`: the main job on built-in defaults. Gets CIFAR-10, trains a small
// DenseNet for a few minutes, evaluates it and says what it found.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "data/fetch.h"
#include "model/macs.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/progress.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

struct DemoArgs {
  TrainConfig config;
  std::string data;
};

void log_line(const std::string& line) { std::cerr << line << "\n"; }

void run(DemoArgs args) {
  TrainConfig& c = args.config;
  validate(c);
  const auto start = std::chrono::steady_clock::now();
  std::cout << "== mapgate demo: a dense DenseNet-" << c.model.depth << " (k=" << c.model.growth
            << ") on CIFAR-10, " << c.threads << " thread(s)\n";
  c.data_dir = resolve_data_dir(args.data, c.dataset, log_line);
  const DatasetSplits data = load_dataset(c.dataset, c.data_dir);
  std::cout << "data: " << data.train.size() << " training / " << data.test.size()
            << " test images from " << c.data_dir << "; using the first "
            << std::min(c.train_limit, data.train.size()) << " / "
            << std::min(c.test_limit, data.test.size()) << "\n";
  const auto cost = total_cost(densenet_layer_costs(c.model));
  std::printf("model: %lld parameters, %.1f M MACs per image\n", static_cast<long long>(cost.params),
              cost.macs / 1e6);

  // The demo owns its run directory: a previous demo's run is replaced.
  if (std::filesystem::exists(std::filesystem::path(c.out_dir) / kCheckpointFile)) {
    std::filesystem::remove(std::filesystem::path(c.out_dir) / kCheckpointFile);
    std::cout << "replacing the previous demo run in " << c.out_dir << "\n";
  }
  const TrainSummary summary = train(c, data, &std::cerr);

  TrainedModel trained = load_trained_model(c.out_dir);
  const EvalResult r = evaluate(trained.model, data.test.head(c.test_limit), trained.normalization);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\n== what it found\n");
  std::printf("test accuracy %.4f on %zu images after %d epochs (chance: %.2f)\n", r.accuracy(),
              r.examples, summary.epochs_done, 1.0 / data.test.num_classes);
  std::printf("training throughput %.0f images/s on %d thread(s); whole demo took %s\n",
              summary.train_images_per_s, c.threads, format_duration(seconds).c_str());
  std::printf("per class:");
  for (int k = 0; k < data.test.num_classes; ++k)
    std::printf(" %s %.2f", data.test.class_names[k].c_str(),
                r.class_total[k] ? double(r.class_correct[k]) / r.class_total[k] : 0.0);
  std::printf("\nrun directory: %s (config.json, metrics.jsonl, checkpoint.pt)\n", c.out_dir.c_str());
  std::printf("next: mapgate eval --model %s --data %s\n", c.out_dir.c_str(), c.data_dir.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<DemoArgs>();
  TrainConfig& c = args->config;
  c.out_dir = "mapgate-demo";
  c.model.depth = 22;
  c.model.growth = 12;
  c.epochs = 3;
  c.train_limit = 10000;
  c.test_limit = 2000;
  c.threads = default_threads();
  auto* cmd = app.add_subcommand("demo", "Get CIFAR-10, train a small DenseNet for a few minutes, evaluate it");
  cmd->add_option("--data", args->data, "CIFAR-10 directory (default: $MAPGATE_DATA or the per-user cache, fetched on first use)");
  cmd->add_option("--out", c.out_dir, "run directory (replaced on every demo)");
  cmd->add_option("--depth", c.model.depth, "DenseNet depth");
  cmd->add_option("--growth", c.model.growth, "growth rate k");
  cmd->add_option("--epochs", c.epochs, "epochs");
  cmd->add_option("--train-limit", c.train_limit, "training images used")->check(non_negative());
  cmd->add_option("--test-limit", c.test_limit, "test images used")->check(non_negative());
  cmd->add_option("--threads", c.threads, "LibTorch intra-op threads");
  cmd->add_option("--seed", c.seed, "seed")->check(non_negative());
  cmd->callback([args, &action] { action = [args] { run(*args); }; });
}

}  // namespace mapgate
