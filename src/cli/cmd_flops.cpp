// `mapgate flops`: parameters and MACs of a DenseNet, per layer or as JSON.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "common/error.h"
#include "model/gated_macs.h"
#include "model/macs.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

struct FlopsArgs {
  DenseNetConfig model;
  int classes = 10;
  std::string checkpoint;
  bool json = false;
};

void print_table(const std::vector<LayerCost>& layers) {
  std::printf("%-18s %-8s %6s %6s %7s %12s %14s\n", "layer", "kind", "in", "out", "HxW",
              "params", "MACs");
  for (const auto& l : layers) {
    if (l.kind == "bn") continue;  // BN has parameters but no MACs; summed below
    char hw[16];
    std::snprintf(hw, sizeof hw, "%dx%d", l.height, l.width);
    std::printf("%-18s %-8s %6d %6d %7s %12lld %14lld\n", l.name.c_str(), l.kind.c_str(),
                l.in_channels, l.out_channels, hw, static_cast<long long>(l.params),
                static_cast<long long>(l.macs));
  }
  long long bn_params = 0;
  for (const auto& l : layers)
    if (l.kind == "bn") bn_params += l.params;
  const auto total = total_cost(layers);
  std::printf("%-18s %-8s %6s %6s %7s %12lld %14s\n", "batch norms", "bn", "", "", "", bn_params, "0");
  std::printf("total: %lld parameters, %lld MACs per image (%.1f M)\n",
              static_cast<long long>(total.params), static_cast<long long>(total.macs),
              total.macs / 1e6);
}

void run(const FlopsArgs& args) {
  if (args.classes < 2) throw UsageError("--classes " + std::to_string(args.classes) + ": expected >= 2");
  DenseNetConfig config = args.model;
  config.num_classes = args.classes;
  if (!args.checkpoint.empty()) {
    config = read_model_config(args.checkpoint);
  }
  validate(config);
  const auto layers = densenet_layer_costs(config);
  const auto total = total_cost(layers);
  // A gated model adds its gates: C_in * k MACs each, and their parameters.
  std::int64_t gate_macs = 0;
  if (config.gated) gate_macs = GatedCost(config).gate_macs();
  const std::int64_t gate_params = config.gated ? gate_macs + config.dense_layers() * config.growth : 0;
  if (args.json) {
    nlohmann::json out = {{"params", total.params + gate_params}, {"macs", total.macs},
                          {"model", to_json(config)}};
    if (config.gated) {
      out["gate_params"] = gate_params;
      out["gate_macs"] = gate_macs;
      out["macs_all_on"] = total.macs + gate_macs;
    }
    std::cout << out.dump(2) << "\n";
  } else {
    print_table(layers);
    if (config.gated)
      std::printf("gates: %lld parameters, %lld MACs per image (all gates on: %lld MACs; "
                  "`mapgate eval` gives the mean under the masks)\n",
                  static_cast<long long>(gate_params), static_cast<long long>(gate_macs),
                  static_cast<long long>(total.macs + gate_macs));
  }
}

}  // namespace

void add_flops_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<FlopsArgs>();
  auto* cmd = app.add_subcommand("flops", "Parameters and multiply-accumulates of a DenseNet");
  cmd->footer("Examples:\n  mapgate flops --depth 40 --growth 12\n  mapgate flops --model models/densenet22-gated --json");
  add_model_flags(cmd, args->model);
  cmd->add_option("--classes", args->classes, "number of output classes");
  auto* model = cmd->add_option("--model", args->checkpoint, "a run directory or checkpoint: count its architecture");
  // The architecture comes from the checkpoint: a flag that would change it conflicts.
  for (const char* flag : {"--depth", "--growth", "--bc", "--compression", "--dropout", "--classes"})
    model->excludes(cmd->get_option(flag));
  cmd->add_flag("--json", args->json, "print JSON (params, macs) instead of the per-layer table");
  cmd->callback([args, &action] { action = [args] { run(*args); }; });
}

}  // namespace mapgate
