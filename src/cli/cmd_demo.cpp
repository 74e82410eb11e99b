// `mapgate demo`: the main job on built-in defaults. Gets CIFAR-10 and shows the shipped
// dense and gated models side by side (demo_gating.h); with --train it first fine-tunes
// gates onto the dense model for a few minutes and shows that model instead.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/demo_gating.h"
#include "common/dir_lock.h"
#include "common/error.h"
#include "data/data_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

struct DemoArgs {
  GatingDemoArgs show;
  bool train = false;
  TrainConfig config;  // --train: the fine-tuning run
};

void log_line(const std::string& line) { std::cerr << line << "\n"; }

// --train's run settings: gates (REINFORCE, lambda --penalty) fine-tuned onto the dense
// run in OUT/run, which is the demo's own (a previous demo's run there is replaced), never
// the dense run it starts from. UsageError naming the flag.
void prepare_training(DemoArgs& args, const TrainedModel& dense) {
  TrainConfig& c = args.config;
  const std::string previous = (std::filesystem::path(c.out_dir) / kCheckpointFile).string();
  if (same_file(checkpoint_path(args.show.dense), previous))
    throw UsageError("--dense " + quoted(args.show.dense) + ": is the run that --train replaces in " +
                     quoted(c.out_dir) + "; choose another --out");
  c.model = dense.config;
  c.dataset = dense.dataset;
  c.init = args.show.dense;
  validate(c);
}

// Trains the run prepare_training set up; returns its directory.
std::string train_gated(const DemoArgs& args) {
  TrainConfig c = args.config;
  std::printf("== mapgate demo --train: gates (lambda %g) fine-tuned onto %s for %d epoch(s) on %zu images\n",
              c.penalty, args.show.dense.c_str(), c.epochs, c.train_limit);
  c.data_dir = resolve_data_dir(args.show.data, c.dataset, log_line);
  const DatasetSplits data = load_dataset(c.dataset, c.data_dir);
  const std::filesystem::path previous = std::filesystem::path(c.out_dir) / kCheckpointFile;
  if (std::filesystem::exists(previous)) {
    std::filesystem::remove(previous);
    std::cout << "replacing the previous demo run in " << c.out_dir << "\n";
  }
  train(c, data, &std::cerr);
  std::printf("run directory: %s (config.json, metrics.jsonl, checkpoint.pt)\n\n", c.out_dir.c_str());
  return c.out_dir;
}

void run(DemoArgs args) {
  // Every flag and run is checked before --out is created and locked.
  check_threads_flag(args.show.threads);
  TrainConfig& c = args.config;
  if (args.train) {
    c.out_dir = (std::filesystem::path(args.show.out) / "run").string();
    c.gates = Gates::kReinforce;
    c.threads = args.show.threads;
    validate(c);  // the flags before the runs, on the default architecture
  }
  TrainedModel dense = load_demo_run("--dense", args.show.dense, /*gated=*/false);
  std::optional<TrainedModel> gated;
  if (args.train)
    prepare_training(args, dense);
  else
    gated = load_demo_run("--gated", args.show.gated, /*gated=*/true);
  // One demo at a time per --out: the lock holds while it writes there.
  std::error_code ec;
  std::filesystem::create_directories(args.show.out, ec);
  if (ec) throw Error("--out " + quoted(args.show.out) + ": cannot create directory (" + ec.message() + ")");
  const DirLock lock(args.show.out, "--out");
  if (args.train) {
    args.show.gated = train_gated(args);
    gated = load_demo_run("--gated", args.show.gated, /*gated=*/true);
  }
  run_gating_demo(args.show, dense, *gated);
}

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<DemoArgs>();
  GatingDemoArgs& show = args->show;
  show.threads = default_threads();
  TrainConfig& c = args->config;
  c.epochs = 1;
  c.train_limit = 10000;
  c.test_limit = 2000;
  c.lr = 0.01;
  c.schedule = Schedule::kCosine;
  c.penalty = 8;
  c.bn_recal_batches = 20;
  auto* cmd = app.add_subcommand(
      "demo", "Get CIFAR-10 and show feature-map gating: the shipped dense and gated models side by side");
  cmd->footer("Examples:\n  mapgate demo                      # from the mapgate source directory\n"
              "  mapgate demo --train --threads 2  # fine-tune gates onto the dense model first (minutes)");
  cmd->add_option("--data", show.data, "CIFAR-10 directory (default: $MAPGATE_DATA or the per-user cache, fetched on first use)");
  cmd->add_option("--dense", show.dense, "the dense reference run");
  cmd->add_option("--gated", show.gated, "the gated run shown beside it");
  cmd->add_option("--test-limit", show.test_limit, "use only the first N test images (0: all)")->check(non_negative());
  cmd->add_option("--threads", show.threads, "threads");
  auto* train = cmd->add_flag("--train", args->train, "first fine-tune gates onto --dense, then show that model");
  cmd->add_option("--out", show.out, "evaluations and pictures go here; --train: also the run (replaced on every demo)");
  cmd->add_option("--epochs", c.epochs, "--train: epochs")->needs(train);
  cmd->add_option("--train-limit", c.train_limit, "--train: training images used")->check(non_negative())->needs(train);
  cmd->add_option("--penalty", c.penalty, "--train: lambda, the price of a kept map")->needs(train);
  cmd->add_option("--seed", c.seed, "--train: seed")->check(non_negative())->needs(train);
  cmd->callback([args, &action] { action = [args] { run(*args); }; });
}

}  // namespace mapgate
