// `mapgate eval`: accuracy of a trained model on its dataset's test split.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "data/fetch.h"
#include "train/evaluate.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

struct EvalArgs {
  std::string model;
  std::string data;
  std::size_t test_limit = 0;
  int batch = 256;
  int threads = 0;
  bool json = false;
};

void run(const EvalArgs& args) {
  if (args.batch < 1) throw UsageError("--batch " + std::to_string(args.batch) + ": expected >= 1");
  if (args.threads < 1) throw UsageError("--threads " + std::to_string(args.threads) + ": expected >= 1");
  torch::set_num_threads(args.threads);
  TrainedModel trained = load_trained_model(args.model);
  const std::string dir = resolve_data_dir(args.data, trained.dataset,
                                           [](const std::string& l) { std::cerr << l << "\n"; });
  const Dataset test = load_dataset(trained.dataset, dir).test.head(args.test_limit);
  if (test.channels != trained.config.in_channels || test.height != trained.config.image_size ||
      test.num_classes != trained.config.num_classes)
    throw Error("--data " + quoted(dir) + ": images do not fit the model in " + quoted(trained.path));
  const EvalResult r = evaluate(trained.model, test, trained.normalization, args.batch);

  if (args.json) {
    nlohmann::json per_class = nlohmann::json::array();
    for (int c = 0; c < test.num_classes; ++c)
      per_class.push_back({{"class", test.class_names[c]},
                           {"examples", r.class_total[c]},
                           {"accuracy", r.class_total[c] ? double(r.class_correct[c]) / r.class_total[c] : 0.0}});
    std::cout << nlohmann::json{{"model", trained.path},
                                {"dataset", trained.dataset},
                                {"epoch", trained.epoch},
                                {"examples", r.examples},
                                {"accuracy", r.accuracy()},
                                {"loss", r.loss},
                                {"per_class", per_class}}
                     .dump(2)
              << "\n";
    return;
  }
  std::printf("%s (%s, epoch %d) on %zu %s test images: accuracy %.4f, loss %.4f\n",
              trained.path.c_str(), trained.dataset.c_str(), trained.epoch, r.examples,
              trained.dataset.c_str(), r.accuracy(), r.loss);
  std::printf("%-14s %8s %9s\n", "class", "examples", "accuracy");
  for (int c = 0; c < test.num_classes; ++c)
    std::printf("%-14s %8zu %9.4f\n", test.class_names[c].c_str(), r.class_total[c],
                r.class_total[c] ? double(r.class_correct[c]) / r.class_total[c] : 0.0);
}

}  // namespace

void add_eval_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<EvalArgs>();
  args->threads = default_threads();
  auto* cmd = app.add_subcommand("eval", "Evaluate a trained model on its test split");
  cmd->add_option("--model", args->model, "run directory or checkpoint file")->required();
  cmd->add_option("--data", args->data, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  cmd->add_option("--test-limit", args->test_limit, "use only the first N test images (0: all)");
  cmd->add_option("--batch", args->batch, "evaluation batch size");
  cmd->add_option("--threads", args->threads, "LibTorch intra-op threads");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, &action] { action = [args] { run(*args); }; });
}

}  // namespace mapgate
