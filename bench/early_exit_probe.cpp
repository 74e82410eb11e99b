// Would an early exit inside one network pay? (docs/results.md, "Early exit: a probe"). The
// cascade of two networks (tools/cascade.py) spends by difficulty but wastes its first
// network's MACs on every image it passes on; an exit inside the network reuses them. This
// program puts softmax heads on the global average of a trained dense DenseNet's block 1 and
// block 2 outputs (the network frozen, the heads linear, fit on the first half of the test
// images, scored on the second, as in gate_input_probe.cpp) and lets an image stop at the
// first head whose top probability reaches t; the others run the whole network and take its
// answer. Per t: held-out accuracy, mean MACs (the heads' own included) and the share of
// images that stop at each exit. Heads trained jointly with the network (BranchyNet,
// MSDNet) would do better: this is a lower bound on the idea, not a method.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/error.h"
#include "data/dataset.h"
#include "held_out_probe.h"
#include "model/macs.h"
#include "probe_program.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"

namespace {

using namespace mapgate;

// The dense model's weights in the gated class with every map on (GateMode::kAllOn), the
// one forward that returns each block's output; loaded as --init loads dense weights, the
// gates' own parameters left out (unused).
DenseNet all_on_twin(const TrainedModel& dense) {
  DenseNetConfig c = dense.config;
  c.gated = true;
  DenseNet twin(c);
  Checkpoint(dense.path).load_model(*twin, [](const std::string& name) { return name.rfind("gates.", 0) == 0; });
  twin->eval();
  return twin;
}

struct Passes {
  std::vector<torch::Tensor> block_means;  // blocks 1 and 2: GAP of the block's output (N, C)
  torch::Tensor logits, labels;            // the whole network's
  double max_diff = 0;                     // |twin - dense| logits on the first batch: the twin is the dense model
};

Passes run_network(TrainedModel& dense, const Dataset& test, int batch) {
  torch::NoGradGuard no_grad;
  DenseNet twin = all_on_twin(dense);
  dense.model->eval();
  std::vector<std::vector<torch::Tensor>> means(2);
  std::vector<torch::Tensor> logits;
  Passes p;
  for (std::size_t at = 0; at < test.size(); at += batch) {
    const auto x = probe_images(test, at, std::min<std::size_t>(batch, test.size() - at), dense.normalization);
    GateControl control;
    control.mode = GateMode::kAllOn;
    control.keep_features = true;
    const auto out = twin->forward_gated(x, control);
    for (int b = 0; b < 2; ++b) means[b].push_back(out.features[b].mean({2, 3}));
    logits.push_back(out.logits);
    if (at == 0) p.max_diff = (out.logits - dense.model->forward(x)).abs().max().item<double>();
  }
  for (auto& m : means) p.block_means.push_back(torch::cat(m));
  p.logits = torch::cat(logits);
  std::vector<std::int64_t> labels(test.labels.begin(), test.labels.end());
  p.labels = torch::tensor(labels);
  return p;
}

// MACs of the network up to the end of block 1, of block 2, and in all, by the hand count
// (a transition's BN row starts it).
std::vector<double> macs_to_block_ends(const DenseNetConfig& c) {
  std::vector<double> ends;
  double sum = 0;
  for (const LayerCost& l : densenet_layer_costs(c)) {
    if (l.name == "trans1.norm" || l.name == "trans2.norm") ends.push_back(sum);
    sum += static_cast<double>(l.macs);
  }
  ends.push_back(sum);
  if (ends.size() != 3) throw Error("early exit probe: expected two transitions in the MAC count");
  return ends;
}

struct Exit {
  int block;                     // 1 or 2
  double macs;                   // MACs to reach its decision (heads before it included)
  torch::Tensor confidence, prediction;  // held-out half
};

// `hidden` > 0: heads with one ReLU layer of that many units instead of linear ones.
nlohmann::json exit_table(const TrainedModel& dense, const Passes& p, int hidden) {
  const auto n = p.labels.size(0), half = n / 2;
  const auto labels = p.labels.narrow(0, half, n - half);
  const auto full_prediction = p.logits.narrow(0, half, n - half).argmax(1);
  const auto cost = macs_to_block_ends(dense.config);
  const int classes = dense.config.num_classes;
  std::vector<Exit> exits;
  double heads = 0;
  for (int b = 0; b < 2; ++b) {
    const auto& x = p.block_means[b];
    heads += static_cast<double>(hidden > 0 ? x.size(1) * hidden + hidden * classes : x.size(1) * classes);
    const auto probs = torch::softmax(probe_held_out(x, p.labels, classes, hidden), 1);
    const auto [confidence, prediction] = probs.max(1);
    exits.push_back({b + 1, cost[b] + heads, confidence, prediction});
  }
  const double full_accuracy = full_prediction.eq(labels).to(torch::kDouble).mean().item<double>();
  std::printf("held-out images %lld; the whole network: accuracy %.4f at %.1f M MACs (twin |diff| %.1e)\n",
              static_cast<long long>(n - half), full_accuracy, cost[2] / 1e6, p.max_diff);
  for (const Exit& e : exits)
    std::printf("head after block %d alone: accuracy %.4f at %.1f M MACs\n", e.block,
                e.prediction.eq(labels).to(torch::kDouble).mean().item<double>(), e.macs / 1e6);
  nlohmann::json rows = nlohmann::json::array();
  std::printf("\n| exits | t | accuracy | mean MACs (M) | x fewer | stop at block 1 | stop at block 2 |\n|---|---|---|---|---|---|---|\n");
  const std::vector<std::vector<int>> plans = {{1}, {2}, {1, 2}};
  for (const auto& plan : plans)
    for (double t : {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}) {
      auto prediction = full_prediction.clone();
      auto macs = torch::full({n - half}, cost[2] + heads, torch::kDouble);
      auto open = torch::ones({n - half}, torch::kBool);  // not stopped yet
      double stopped[2] = {0, 0};
      for (int b : plan) {
        const Exit& e = exits[b - 1];
        const auto stop = open.logical_and(e.confidence.ge(t));
        prediction = torch::where(stop, e.prediction, prediction);
        macs = torch::where(stop, torch::full_like(macs, e.macs), macs);
        stopped[b - 1] = stop.to(torch::kDouble).mean().item<double>();
        open = open.logical_and(stop.logical_not());
      }
      const double accuracy = prediction.eq(labels).to(torch::kDouble).mean().item<double>();
      const double mean_macs = macs.mean().item<double>();
      const std::string name = plan.size() == 2 ? "1+2" : std::to_string(plan[0]);
      std::printf("| %s | %.2f | %.4f | %.1f | %.2f | %.3f | %.3f |\n", name.c_str(), t, accuracy, mean_macs / 1e6,
                  cost[2] / mean_macs, stopped[0], stopped[1]);
      rows.push_back({{"exits", name}, {"t", t}, {"accuracy", accuracy}, {"macs_mean", mean_macs},
                      {"stopped_block1", stopped[0]}, {"stopped_block2", stopped[1]}});
    }
  return {{"held_out_images", n - half}, {"head_hidden_units", hidden}, {"full_accuracy", full_accuracy}, {"macs_dense", cost[2]},
          {"macs_to_block1", exits[0].macs}, {"macs_to_block2", exits[1].macs}, {"rows", rows}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Early exits on a trained dense DenseNet: linear heads after blocks 1 and 2, stopping when confident"};
  ProbeFlags flags;
  int hidden = 0;
  add_probe_flags(app, flags, "dense run or checkpoint");
  app.add_option("--hidden", hidden, "heads with one ReLU layer of this many units (0: linear)")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  return run_probe("mapgate_early_exit_probe", [&] {
    TrainedModel dense = load_trained_model(flags.model);
    if (dense.config.gated) throw UsageError("--model " + flags.model + ": is gated; expected a dense run");
    const Dataset test = probe_test_split(flags, dense.dataset);
    write_probe_json(flags, exit_table(dense, run_network(dense, test, /*batch=*/64), hidden));
  });
}
